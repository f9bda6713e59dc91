"""Per-file SHA-256 digests and a manifest that binds file names to them.

This is the first step of the *sign* stage (hash → manifest → sign → verify) and is also used
on registry versions. The public API:

- :func:`hash_directory` ``(root, *, exclude=DEFAULT_EXCLUDE, workers=None,
  chunk_size=CHUNK_SIZE) -> Manifest`` hashes every regular file under ``root`` in parallel
  threads (hashlib releases the GIL), largest files first. Each file is streamed in fixed-size
  shards of ``chunk_size`` bytes into one SHA-256, so memory stays bounded for any file size and
  the digest is the plain SHA-256 of the whole file (what STAC ``file:checksum`` needs). Symbolic
  links, and anything that is not a regular file, are refused.
- :func:`sha256_file` ``(path, *, chunk_size=CHUNK_SIZE) -> FileDigest`` hashes one file.
- :class:`Manifest` (frozen): ``files`` sorted by path, ``digest`` (SHA-256 over the RFC 8785
  canonical ``{"algorithm", "files": [{"name", "sha256"}]}``, so it changes when a file is
  renamed) and ``root_digest`` (the OpenSSF model-signing root digest: SHA-256 over the raw
  per-file digests in path order; it does **not** cover names). ``checksums()`` gives the
  multihash per file for STAC; ``to_dict``/``from_dict`` round-trip.
- :func:`compare_manifests` ``(expected, actual) -> list[Discrepancy]`` names every missing,
  extra, renamed and changed file; :func:`verify_directory` ``(root, expected, *, exclude)``
  raises :class:`core.errors.VerificationError` listing them.
- :func:`multihash` / :func:`parse_multihash` convert between hex SHA-256 and the multihash
  form ``"1220" + hex``.

File paths in a manifest are POSIX paths relative to the root; they are ordered the way
model-signing orders them (by path components), so :attr:`Manifest.root_digest` equals the
subject digest of a ``model.sig`` made over the same files.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import VerificationError
from core.jsonio import canonical_json_bytes

MULTIHASH_SHA256_PREFIX = "1220"
"""Multihash prefix for SHA-256: function code 0x12, digest length 0x20 (32 bytes)."""

CHUNK_SIZE = 1024 * 1024
"""Bytes read per shard of a file: amortizes syscalls while the buffer stays in the CPU cache
(1 MiB hashed a 1 GiB file ~6% faster than 8 MiB here; see docs/benchmarks.md)."""

DEFAULT_EXCLUDE: frozenset[str] = frozenset(
    {"model.sig", "integrity.json", ".git", ".gitattributes", ".github", ".gitignore"}
)
"""Top-level names never hashed: the signature and integrity block themselves, and git files
(model-signing ignores the same git paths by default)."""

MANIFEST_ALGORITHM: Literal["sha256"] = "sha256"


def multihash(hex_digest: str) -> str:
    """The multihash form (``"1220" + hex``) of a hex SHA-256 digest."""
    _check_hex(hex_digest, "sha256")
    return MULTIHASH_SHA256_PREFIX + hex_digest


def parse_multihash(value: str, *, file: str | None = None, field: str | None = None) -> str:
    """The hex SHA-256 inside a multihash string; refuses other algorithms or lengths."""
    if not (value.startswith(MULTIHASH_SHA256_PREFIX) and len(value) == 68):
        raise VerificationError(
            "not a SHA-256 multihash",
            file=file,
            field=field,
            expected="'1220' followed by 64 hex digits",
            found=value,
        )
    hex_digest = value[4:]
    _check_hex(hex_digest, field or "multihash", file=file)
    return hex_digest


def is_sha256_hex(value: str) -> bool:
    """Whether ``value`` is 64 lowercase hex digits."""
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_hex(value: str, field: str, *, file: str | None = None) -> None:
    if not is_sha256_hex(value):
        raise VerificationError(
            "not a SHA-256 hex digest",
            file=file,
            field=field,
            expected="64 lowercase hex digits",
            found=value,
        )


def path_sort_key(name: str) -> tuple[str, ...]:
    """Order of files in a manifest: by path components, as model-signing orders them."""
    return PurePosixPath(name).parts


class FileDigest(BaseModel):
    """One file of a manifest: POSIX path relative to the root, SHA-256 and (if known) size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="POSIX path relative to the hashed root")
    size: int | None = Field(
        default=None, ge=0, description="Size in bytes; informative, not in the manifest digest"
    )
    sha256: str = Field(description="Hex SHA-256 of the whole file")

    @field_validator("name")
    @classmethod
    def _relative_posix(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not value or path.is_absolute() or ".." in path.parts or str(path) != value:
            raise ValueError(f"file name must be a normalized relative POSIX path, got {value!r}")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not is_sha256_hex(value):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {value!r}")
        return value

    @property
    def multihash(self) -> str:
        """The digest as a multihash, for STAC ``file:checksum``."""
        return MULTIHASH_SHA256_PREFIX + self.sha256


class Manifest(BaseModel):
    """Every file of a directory with its digest, sorted by path; immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Literal["sha256"] = MANIFEST_ALGORITHM
    files: tuple[FileDigest, ...]

    @field_validator("files")
    @classmethod
    def _sorted_unique(cls, files: tuple[FileDigest, ...]) -> tuple[FileDigest, ...]:
        ordered = tuple(sorted(files, key=lambda f: path_sort_key(f.name)))
        names = [f.name for f in ordered]
        if len(set(names)) != len(names):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate file names in manifest: {duplicates}")
        return ordered

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of the names and digests (sizes are not bound)."""
        body: dict[str, Any] = {
            "algorithm": self.algorithm,
            "files": [{"name": f.name, "sha256": f.sha256} for f in self.files],
        }
        return canonical_json_bytes(body)

    @property
    def digest(self) -> str:
        """Hex SHA-256 of :meth:`canonical_bytes`: binds every name to its digest."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    @property
    def root_digest(self) -> str:
        """Hex model-signing root digest: SHA-256 over the raw file digests in path order."""
        hasher = hashlib.sha256()
        for f in self.files:
            hasher.update(bytes.fromhex(f.sha256))
        return hasher.hexdigest()

    @property
    def total_size(self) -> int:
        """Sum of the file sizes in bytes."""
        return sum(f.size or 0 for f in self.files)

    def by_name(self) -> dict[str, FileDigest]:
        """Files keyed by name."""
        return {f.name: f for f in self.files}

    def checksums(self) -> dict[str, str]:
        """Multihash per file name, for STAC ``file:checksum``."""
        return {f.name: f.multihash for f in self.files}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (names, sizes, hex digests) in manifest order."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Inverse of :meth:`to_dict`."""
        return cls.model_validate(dict(data))


def sha256_file(path: Path, *, name: str | None = None, chunk_size: int = CHUNK_SIZE) -> FileDigest:
    """SHA-256 of one file, streamed in shards of ``chunk_size`` bytes into one reused buffer."""
    hasher = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size <= chunk_size:
                data = handle.read()
                hasher.update(data)
                read = len(data)
            else:
                buffer = bytearray(chunk_size)
                view = memoryview(buffer)
                read = 0
                while count := handle.readinto(buffer):
                    hasher.update(view[:count])
                    read += count
    except OSError as error:
        raise VerificationError(
            "file cannot be read",
            file=str(name or path),
            expected="a readable regular file",
            found=f"{type(error).__name__}: {error.strerror or error}",
        ) from error
    return FileDigest(name=name or path.name, size=read, sha256=hasher.hexdigest())


def list_files(root: Path, *, exclude: Iterable[str] = DEFAULT_EXCLUDE) -> list[str]:
    """Relative POSIX names of every regular file under ``root``, minus excluded paths.

    ``exclude`` holds relative paths (a directory excludes everything below it). Symbolic links
    and special files are refused: a signed bundle must not point outside itself.
    """
    if not root.is_dir():
        raise VerificationError(
            "not a directory", file=str(root), expected="a directory of files", found="missing"
        )
    excluded = {PurePosixPath(e).as_posix().rstrip("/") for e in exclude}
    names: list[str] = []
    for directory, subdirs, files in os.walk(root, followlinks=False):
        rel_dir = PurePosixPath(Path(directory).relative_to(root).as_posix())
        kept_dirs = []
        for sub in sorted(subdirs):
            rel = (rel_dir / sub).as_posix()
            if rel in excluded:
                continue
            if os.path.islink(os.path.join(directory, sub)):
                raise _symlink_error(rel)
            kept_dirs.append(sub)
        subdirs[:] = kept_dirs
        for file_name in files:
            rel = (rel_dir / file_name).as_posix()
            if rel in excluded:
                continue
            mode = os.lstat(os.path.join(directory, file_name)).st_mode
            if stat.S_ISLNK(mode):
                raise _symlink_error(rel)
            if not stat.S_ISREG(mode):
                raise VerificationError(
                    "not a regular file", file=rel, expected="a regular file", found="special file"
                )
            names.append(rel)
    return sorted(names, key=path_sort_key)


def _symlink_error(rel: str) -> VerificationError:
    return VerificationError(
        "symbolic link in a signed directory",
        file=rel,
        expected="a regular file",
        found="symbolic link",
        hint="copy the target into the directory instead of linking to it",
    )


def hash_directory(
    root: Path,
    *,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Manifest:
    """Manifest of every file under ``root``, hashed in ``workers`` threads (default: CPUs)."""
    root = Path(root)
    names = list_files(root, exclude=exclude)
    return Manifest(files=tuple(hash_files(root, names, workers=workers, chunk_size=chunk_size)))


def hash_files(
    root: Path, names: Iterable[str], *, workers: int | None = None, chunk_size: int = CHUNK_SIZE
) -> list[FileDigest]:
    """Digests of the given relative files, hashed in parallel, largest first (load balance)."""
    sized = [(name, (root / name).stat().st_size) for name in names]
    sized.sort(key=lambda item: -item[1])
    count = max(1, min(workers or os.cpu_count() or 1, len(sized) or 1))
    if count == 1:
        return [sha256_file(root / n, name=n, chunk_size=chunk_size) for n, _ in sized]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="kfm-hash") as pool:
        futures = [
            pool.submit(sha256_file, root / n, name=n, chunk_size=chunk_size) for n, _ in sized
        ]
        return [future.result() for future in futures]


class Discrepancy(BaseModel):
    """One way a directory differs from its manifest."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["missing", "extra", "renamed", "changed"]
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.name} ({self.detail})"


def compare_manifests(expected: Manifest, actual: Manifest) -> list[Discrepancy]:
    """Every missing, extra, renamed (same digest, new name) and changed file, by name."""
    want = expected.by_name()
    have = actual.by_name()
    missing = sorted(set(want) - set(have), key=path_sort_key)
    extra = sorted(set(have) - set(want), key=path_sort_key)
    found: list[Discrepancy] = []
    extra_by_digest: dict[str, list[str]] = {}
    for name in extra:
        extra_by_digest.setdefault(have[name].sha256, []).append(name)
    renamed_to: set[str] = set()
    for name in missing:
        candidates = [n for n in extra_by_digest.get(want[name].sha256, []) if n not in renamed_to]
        if candidates:
            renamed_to.add(candidates[0])
            found.append(
                Discrepancy(
                    kind="renamed", name=name, detail=f"same content now named '{candidates[0]}'"
                )
            )
        else:
            found.append(Discrepancy(kind="missing", name=name, detail="listed but not present"))
    for name in extra:
        if name not in renamed_to:
            found.append(Discrepancy(kind="extra", name=name, detail="present but not listed"))
    for name in sorted(set(want) & set(have), key=path_sort_key):
        if want[name].sha256 != have[name].sha256:
            found.append(
                Discrepancy(
                    kind="changed",
                    name=name,
                    detail=f"sha256 expected {want[name].sha256}, found {have[name].sha256}",
                )
            )
    return found


def verify_directory(
    root: Path,
    expected: Manifest,
    *,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    workers: int | None = None,
) -> Manifest:
    """Re-hash ``root`` and raise :class:`VerificationError` naming every file that differs."""
    actual = hash_directory(root, exclude=exclude, workers=workers)
    problems = compare_manifests(expected, actual)
    if problems:
        first = problems[0]
        raise VerificationError(
            "directory does not match its manifest: " + "; ".join(str(p) for p in problems),
            file=first.name,
            field="sha256" if first.kind == "changed" else "name",
            expected=f"{len(expected.files)} files as listed (manifest {expected.digest})",
            found=f"{len(actual.files)} files (manifest {actual.digest})",
        )
    return actual


MANIFEST_SUBJECT_SUFFIX = "/manifest"


class ModelSubject(BaseModel):
    """The model a decision is about: its name, model-signing root digest and manifest digest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    root_digest: str
    manifest_digest: str

    @field_validator("root_digest", "manifest_digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not is_sha256_hex(value):
            raise ValueError(f"must be 64 lowercase hex digits, got {value!r}")
        return value

    @classmethod
    def from_manifest(cls, name: str, manifest: Manifest) -> ModelSubject:
        """The subject for a hashed model directory."""
        return cls(name=name, root_digest=manifest.root_digest, manifest_digest=manifest.digest)

    def to_statement_subject(self) -> list[dict[str, Any]]:
        """The in-toto ``subject`` list: root digest, then manifest digest."""
        return [
            {"name": self.name, "digest": {"sha256": self.root_digest}},
            {
                "name": self.name + MANIFEST_SUBJECT_SUFFIX,
                "digest": {"sha256": self.manifest_digest},
            },
        ]
