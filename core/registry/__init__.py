"""Push stage: the immutable model registry over object storage.

- :mod:`core.registry.stores` — the :class:`ObjectStore` seam with create-once writes:
  :class:`LocalStore` (a directory) and :class:`FsspecStore` (``s3://...``); :func:`open_store`.
- :mod:`core.registry.versions` — :class:`Registry` (``push``, ``list``, ``show``, ``verify``,
  ``fsck``, rollback and monitoring files) and the :class:`VersionRecord` committed last.
"""
