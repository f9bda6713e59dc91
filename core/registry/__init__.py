"""Push stage: the immutable model registry over object storage.

- :mod:`core.registry.stores` — the :class:`ObjectStore` seam with create-once writes:
  :class:`LocalStore` (a directory) and :class:`FsspecStore` (``s3://...``); :func:`open_store`.
- :mod:`core.registry.records` — the :class:`VersionRecord` committed last, signed by the
  pipeline key (a DSSE envelope), and its verification.
- :mod:`core.registry.versions` — :class:`Registry` (``push``, ``list``, ``show``, ``verify``,
  ``fsck``, rollback and monitoring files), built with the pipeline public key it trusts.
- :mod:`core.registry.audit` — :func:`audit_version`: a version verified whole (its record, every
  stored file, ``model.sig``), for ``kfm verify``.
"""
