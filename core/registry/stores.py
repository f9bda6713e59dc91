"""Object storage for the registry: one small Protocol, a local and an fsspec (S3) implementation.

The registry only needs six operations on flat keys (``climate/models/1.0.0/model.onnx``):
read, create-once, overwrite, list a prefix, delete, and ask whether a key exists. *Create-once*
is the one that matters: it must be atomic (a reader never sees half an object) and exclusive
(it fails when the key exists), because the registry's commit marker is written with it.

- :class:`LocalStore` — a directory. Create-once writes a temporary file in the store's
  ``.tmp/`` folder and hard-links it into place (``link`` fails when the target exists, and the
  target appears complete or not at all). Temporary files never sit beside objects, so a write
  cut off by a kill leaves nothing inside a version; :meth:`LocalStore.sweep_temporary` (run by
  ``kfm registry fsck``) removes what such a write left in ``.tmp/``, and the ``.tmp-*`` files
  older releases wrote beside their targets.
- :class:`FsspecStore` — any fsspec URL; for ``s3://`` it uses s3fs's conditional put
  (``If-None-Match: *``), so two writers racing on one key cannot both win.
- :class:`core.testing.MemoryStore` — a dict, for tests and the dashboard's fakes.

:func:`open_store` picks one from a location string (a path, ``file://``, ``s3://``). Vendor
errors (``OSError``, botocore errors) are translated here into :class:`core.errors.RegistryError`.
"""

from __future__ import annotations

import builtins
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from core.errors import RegistryError


class ObjectExists(RegistryError):
    """A create-once write found the key already present."""


@runtime_checkable
class ObjectStore(Protocol):
    """Flat keys (``a/b/c``) to bytes."""

    location: str

    def read(self, key: str) -> bytes:
        """The object's bytes; :class:`RegistryError` when it is missing."""
        ...

    def create(self, key: str, data: bytes) -> None:
        """Write atomically and only if absent; :class:`ObjectExists` otherwise."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Write (or overwrite) atomically."""
        ...

    def list(self, prefix: str) -> builtins.list[str]:
        """Every key under ``prefix`` (recursively), sorted."""
        ...

    def exists(self, key: str) -> bool:
        """Whether the key holds an object."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present."""
        ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise RegistryError(
            "invalid object key",
            field="key",
            expected="a relative key such as climate/models/1.0.0/model.onnx",
            found=key,
        )
    return key


TEMP_DIR = ".tmp"
"""Folder of a local store's in-flight writes (on the store's file system, so links work)."""
LEGACY_TEMP_PREFIX = ".tmp-"
"""Temporary files of older releases, written beside their target."""


class LocalStore:
    """A directory on this machine."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        if _check_key(key).split("/", 1)[0] == TEMP_DIR:
            raise RegistryError(
                "invalid object key",
                field="key",
                expected=f"a key outside the store's {TEMP_DIR}/ folder",
                found=key,
            )
        return self.root / key

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as error:
            raise RegistryError("object not found", file=f"{self.location}/{key}") from error
        except OSError as error:
            raise _os_error("cannot read object", self.location, key, error) from error

    def _write_temp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = self.root / TEMP_DIR
        folder.mkdir(exist_ok=True)
        temp = folder / f"{uuid.uuid4().hex}-{path.name}"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return temp

    def create(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            temp = self._write_temp(path, data)
            try:
                os.link(temp, path)
            finally:
                temp.unlink(missing_ok=True)
        except FileExistsError as error:
            raise ObjectExists(
                "object already exists", file=f"{self.location}/{key}", expected="no object"
            ) from error
        except OSError as error:
            raise _os_error("cannot write object", self.location, key, error) from error

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            temp = self._write_temp(path, data)
            os.replace(temp, path)
        except OSError as error:
            raise _os_error("cannot write object", self.location, key, error) from error

    def list(self, prefix: str) -> builtins.list[str]:
        base = self.root / prefix.strip("/") if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        keys: builtins.list[str] = []
        for directory, dirs, files in os.walk(base):
            rel = Path(directory).relative_to(self.root).as_posix()
            if rel == ".":
                dirs[:] = [d for d in dirs if d != TEMP_DIR]  # in-flight writes: never objects
            for name in files:
                if name.startswith(LEGACY_TEMP_PREFIX):
                    continue  # an older release's in-flight create: never an object
                keys.append(name if rel == "." else f"{rel}/{name}")
        return sorted(keys)

    def list_names(self, prefix: str) -> builtins.list[str]:
        """Names directly under ``prefix`` (one directory read: the registry's fast path)."""
        base = self.root / prefix.strip("/")
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.startswith((LEGACY_TEMP_PREFIX, TEMP_DIR)))

    def sweep_temporary(self, *, dry_run: bool = False) -> builtins.list[str]:
        """Temporary files of writes that were cut off (store-relative paths), removed.

        Run it when no write is in progress: an in-flight write looks the same.
        """
        found: builtins.list[Path] = []
        if (self.root / TEMP_DIR).is_dir():
            found.extend(p for p in (self.root / TEMP_DIR).iterdir() if p.is_file())
        if self.root.is_dir():
            for directory, dirs, files in os.walk(self.root):
                if Path(directory) == self.root:
                    dirs[:] = [d for d in dirs if d != TEMP_DIR]
                found.extend(Path(directory) / n for n in files if n.startswith(LEGACY_TEMP_PREFIX))
        names = sorted(p.relative_to(self.root).as_posix() for p in found)
        if not dry_run:
            for path in found:
                try:
                    path.unlink(missing_ok=True)
                except OSError as error:
                    raise _os_error(
                        "cannot delete temporary file", self.location, str(path), error
                    ) from error
                self._prune(path.parent)
        return names

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise _os_error("cannot delete object", self.location, key, error) from error
        self._prune(path.parent)

    def _prune(self, parent: Path) -> None:
        """Remove directories left empty, up to the store root."""
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


class FsspecStore:
    """Any fsspec location (``s3://bucket/prefix``); S3 creates use conditional puts."""

    def __init__(self, url: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        import fsspec

        self.location = url.rstrip("/")
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.location, **dict(storage_options or {}))
        except (ImportError, ValueError) as error:
            raise RegistryError(
                "cannot open registry storage",
                field="registry",
                expected="a path, file://... or s3://bucket/prefix",
                found=url,
                hint=str(error),
            ) from error
        self.base = str(self.base).rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self.base}/{_check_key(key)}"

    def read(self, key: str) -> bytes:
        try:
            data = self.fs.cat_file(self._path(key))
        except FileNotFoundError as error:
            raise RegistryError("object not found", file=f"{self.location}/{key}") from error
        except Exception as error:  # noqa: BLE001 - botocore/aiohttp errors vary
            raise _os_error("cannot read object", self.location, key, error) from error
        return bytes(data)

    def create(self, key: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(self._path(key), data, mode="create")
        except FileExistsError as error:
            raise ObjectExists(
                "object already exists", file=f"{self.location}/{key}", expected="no object"
            ) from error
        except Exception as error:  # noqa: BLE001
            if _is_precondition_failure(error):
                raise ObjectExists(
                    "object already exists", file=f"{self.location}/{key}", expected="no object"
                ) from error
            raise _os_error("cannot write object", self.location, key, error) from error

    def write(self, key: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(self._path(key), data)
        except Exception as error:  # noqa: BLE001
            raise _os_error("cannot write object", self.location, key, error) from error

    def list(self, prefix: str) -> builtins.list[str]:
        root = f"{self.base}/{prefix.strip('/')}" if prefix.strip("/") else self.base
        try:
            found = self.fs.find(root)
        except FileNotFoundError:
            return []
        except Exception as error:  # noqa: BLE001
            raise _os_error("cannot list objects", self.location, prefix, error) from error
        cut = len(self.base) + 1
        return sorted(str(p)[cut:] for p in found)

    def list_names(self, prefix: str) -> builtins.list[str]:
        """Names directly under ``prefix``."""
        root = f"{self.base}/{prefix.strip('/')}"
        try:
            self.fs.invalidate_cache(root)
            found = self.fs.ls(root, detail=False)
        except FileNotFoundError:
            return []
        except Exception as error:  # noqa: BLE001
            raise _os_error("cannot list objects", self.location, prefix, error) from error
        return sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in found)

    def exists(self, key: str) -> bool:
        try:
            return bool(self.fs.isfile(self._path(key)))
        except Exception as error:  # noqa: BLE001
            raise _os_error("cannot stat object", self.location, key, error) from error

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            return
        except Exception as error:  # noqa: BLE001
            raise _os_error("cannot delete object", self.location, key, error) from error


def _is_precondition_failure(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}"
    return "PreconditionFailed" in text or "412" in text or "ConditionalRequestConflict" in text


def _os_error(message: str, location: str, key: str, error: BaseException) -> RegistryError:
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return RegistryError(message, file=f"{location}/{key}", found=reason)


def open_store(location: str, *, storage_options: Mapping[str, Any] | None = None) -> ObjectStore:
    """The store for a location: a plain path or ``file://`` is local; anything else is fsspec."""
    if "://" not in location:
        return LocalStore(location)
    if location.startswith("file://"):
        return LocalStore(location[len("file://") :])
    return FsspecStore(location, storage_options=storage_options)
