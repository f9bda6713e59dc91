"""The model registry: immutable versions in object storage, committed by one marker written last.

The keys and the files of a version are defined in :mod:`core.registry.layout`.

A push validates everything before writing anything, then creates every file with a create-once
write and creates ``climate/index/<version>.json`` last (create-once again: a conditional put on
S3). Only versions with an index entry exist: a push killed half-way leaves files under
``climate/models/<version>/`` that :meth:`Registry.list` never shows and :meth:`Registry.fsck`
removes. A second push of a committed version is refused; listing is one directory read of
``climate/index/``, so it stays cheap at 10,000 versions.

The index entry is the version's record signed by the pipeline key
(:mod:`core.registry.records`). A :class:`Registry` is built with the pipeline's public key (the
workspace takes it from the trusted roster) and nothing it returns is unverified:
:meth:`Registry.show` verifies the signature before returning a record, :meth:`Registry.read_file`
checks the bytes it returns against the record's SHA-256, and :meth:`Registry.verify` and
:meth:`Registry.fsck` report a record that does not verify. A push is signed with the pipeline
key (:class:`core.signing.keys.KeySigner`) matching that public key.

Public API: :class:`Registry` (``push``, ``list``, ``show``, ``verify``, ``fsck``,
``read_file``, ``write_rollback``, ``write_checkpoint``/``read_checkpoint``/``checkpoint_seqs``), :class:`VersionRecord`, :class:`VerifyReport`,
:class:`FsckReport`, :func:`collect_layout`.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field

from core.errors import RegistryError
from core.registry.layout import (
    CHECKPOINTS,
    INDEX,
    MODELS,
    MONITORING,
    OPTIONAL_DIRS,
    OPTIONAL_FILES,
    REGISTRY_FORMAT,
    REGISTRY_MANIFEST,
    REQUIRED_FILES,
    ROLLBACKS,
    checkpoint_key,
    index_key,
    layout_summary,
    version_key,
    version_prefix,
)
from core.registry.records import (
    PREDATES_HINT,
    RecordVerificationError,
    VersionRecord,
    read_version_record,
    version_record_bytes,
)
from core.registry.stores import ObjectExists, ObjectStore
from core.signing.digests import FileDigest, Manifest
from core.signing.keys import KeySigner, key_fingerprint

# ASCII digits only: ``\d`` would also match other scripts' digits ('٥'), which pass a check
# and then fail to order.
VERSION_PATTERN = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+(?:[.-][0-9A-Za-z.-]+)?")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHECKPOINT_NAME = re.compile(r"[0-9]{12}\.json")


class VerifyReport(BaseModel):
    """The result of re-hashing one version against its record."""

    model_config = ConfigDict(frozen=True)

    version: str
    checked: int
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


class FsckReport(BaseModel):
    """Uncommitted leftovers found (and removed unless dry run) and damaged committed versions."""

    model_config = ConfigDict(frozen=True)

    leftovers: tuple[str, ...] = ()
    removed_objects: int = 0
    damaged: tuple[str, ...] = ()
    unverified: tuple[str, ...] = Field(
        default=(), description="'<version>: <why>' for records the pipeline key did not sign"
    )
    temporary_files: tuple[str, ...] = Field(
        default=(), description="Temporary files of cut-off writes (store-relative), removed"
    )


def version_sort_key(version: str) -> tuple[int, Version | None, str]:
    """Release order (PEP 440): 1.0.0-rc1 before 1.0.0 before 1.2.9 before 1.2.10.

    Total over any text, so a listing never fails: names that are not valid versions (only a
    store written by hand or by an older release can hold them) come last, in text order.
    Equal versions spelled differently (``v1.0.0``, ``1.0.0``) are ordered by their text.
    """
    if VERSION_PATTERN.fullmatch(version):
        try:
            return (0, Version(version), version)
        except InvalidVersion:
            pass
    return (1, None, version)


def check_version(version: str, *, source: str = "version") -> str:
    """The version if it is a registry version string; :class:`RegistryError` otherwise.

    A version is ``[v]X.Y.Z`` in ASCII digits with an optional ``-``/``.`` suffix that PEP 440
    can order (``1.2.0-rc1``, ``1.2.0-beta.2``, ``1.2.0.post1``, ``1.2.0-dev``).
    """
    expected = "a version such as 1.2.0, 1.2.0-rc1 or 1.2.0.post1 (ASCII digits, optional v)"
    if not VERSION_PATTERN.fullmatch(version):
        raise RegistryError("invalid version", field=source, expected=expected, found=version)
    try:
        Version(version)
    except InvalidVersion as error:
        raise RegistryError(
            "version suffix cannot be ordered",
            field=source,
            expected=expected + "; suffixes a, b, rc, alpha, beta, dev, post with a number",
            found=version,
        ) from error
    return version


class Registry:
    """Immutable model versions over an :class:`~core.registry.stores.ObjectStore`."""

    def __init__(
        self, store: ObjectStore, *, pipeline_key: ec.EllipticCurvePublicKey, clock: Any = None
    ) -> None:
        self.store = store
        self.pipeline_key = pipeline_key
        self._clock = clock or (lambda: datetime.now(UTC))
        self._verified: dict[str, tuple[bytes, VersionRecord]] = {}

    @property
    def location(self) -> str:
        return self.store.location

    # ------------------------------------------------------------------ reading
    def list(self) -> builtins.list[str]:
        """Committed versions, in version order (one listing of the index)."""
        lister = getattr(self.store, "list_names", None)
        names = lister(INDEX) if lister else [k.rsplit("/", 1)[-1] for k in self.store.list(INDEX)]
        versions = [n[: -len(".json")] for n in names if n.endswith(".json")]
        return sorted(versions, key=version_sort_key)

    def exists(self, version: str) -> bool:
        """Whether ``version`` is committed."""
        return self.store.exists(index_key(check_version(version)))

    def show(self, version: str) -> VersionRecord:
        """The committed record of ``version``, once its pipeline signature verified.

        :class:`~core.registry.records.RecordVerificationError` (a :class:`RegistryError`) when
        the record is unsigned, signed by another key, edited, or about another version.
        """
        key = index_key(check_version(version))
        if not self.store.exists(key):
            raise RegistryError(
                "no such version in the registry",
                file=f"{self.location}/{key}",
                field="version",
                expected=f"one of {self.list()[-10:]}",
                found=version,
            )
        raw = self.store.read(key)
        cached = self._verified.get(version)
        if cached is not None and cached[0] == raw:
            return cached[1]
        record = read_version_record(
            raw, key=self.pipeline_key, version=version, source=f"{self.location}/{key}"
        )
        self._verified[version] = (raw, record)
        return record

    def read_file(self, version: str, name: str) -> bytes:
        """One file of a committed version, checked against the SHA-256 its signed record holds."""
        record = self.show(version)
        entry = record.manifest.by_name().get(name)
        if entry is None:
            raise RegistryError(
                "no such file in this version",
                file=version_prefix(version),
                field="name",
                expected=[f.name for f in record.manifest.files],
                found=name,
            )
        data = self.store.read(version_key(version, name))
        actual = hashlib.sha256(data).hexdigest()
        if actual != entry.sha256:
            raise RegistryError(
                "stored file does not match the version's signed record",
                file=f"{self.location}/{version_key(version, name)}",
                field="sha256",
                expected=entry.sha256,
                found=actual,
                hint="the file was replaced after the push: run `kfm registry verify`",
            )
        return data

    def verify(self, version: str) -> VerifyReport:
        """Verify the record's signature, then re-hash every stored file against it.

        Each difference is a problem; a record that does not verify is the only problem
        reported (nothing it lists can be trusted).
        """
        try:
            record = self.show(version)
        except RecordVerificationError as error:
            return VerifyReport(
                version=version,
                checked=0,
                problems=(f"{index_key(version)}: {error.diagnostics()}",),
            )
        problems: builtins.list[str] = []
        expected = record.manifest.by_name()
        prefix = version_prefix(version)
        stored = {key[len(prefix) + 1 :] for key in self.store.list(prefix)}
        for name in sorted(stored - set(expected)):
            problems.append(f"{name}: extra file not in the version record")
        for name, entry in expected.items():
            if name not in stored:
                problems.append(f"{name}: missing (expected sha256 {entry.sha256})")
                continue
            actual = hashlib.sha256(self.store.read(version_key(version, name))).hexdigest()
            if actual != entry.sha256:
                problems.append(f"{name}: sha256 {actual} (expected {entry.sha256})")
        return VerifyReport(version=version, checked=len(expected), problems=tuple(problems))

    # ------------------------------------------------------------------ writing
    def push(
        self,
        version: str,
        source: Path,
        *,
        name: str,
        model_family: str,
        submitter: str,
        concerned_stewards: Sequence[str],
        footprint: Sequence[float],
        signer: KeySigner,
    ) -> VersionRecord:
        """Write ``source`` (registry layout) as ``version``, once; the signed index entry last.

        ``signer`` is the pipeline key: it must be the key this registry trusts.
        """
        check_version(version)
        for who in (submitter, *concerned_stewards):
            if not ID_PATTERN.match(who):
                raise RegistryError(
                    "invalid roster id", field="submitter", expected="a roster id", found=who
                )
        trusted = key_fingerprint(self.pipeline_key)
        if signer.fingerprint != trusted:
            raise RegistryError(
                "push signed with a key this registry does not trust",
                field="signer",
                expected=f"the pipeline key {trusted}",
                found=f"key '{signer.key_id}' {signer.fingerprint}",
            )
        files = collect_layout(Path(source))
        if self.exists(version):
            raise RegistryError(
                "version already in the registry; a version is written once",
                file=f"{self.location}/{index_key(version)}",
                field="version",
                expected="a new version",
                found=version,
                hint="bump the version in model_metadata.json",
            )
        leftovers = self.store.list(version_prefix(version))
        if leftovers:
            raise RegistryError(
                "uncommitted files of an interrupted push of this version are in the way",
                file=f"{self.location}/{version_prefix(version)}",
                expected="no files",
                found=f"{len(leftovers)} files",
                hint="run `kfm registry fsck` to remove them, then push again",
            )
        self._ensure_registry_manifest()
        digests: builtins.list[FileDigest] = []
        for rel, path in files:
            data = path.read_bytes()
            digests.append(
                FileDigest(name=rel, size=len(data), sha256=hashlib.sha256(data).hexdigest())
            )
            try:
                self.store.create(version_key(version, rel), data)
            except ObjectExists as error:
                raise RegistryError(
                    "another push of this version is writing the same files",
                    file=f"{self.location}/{version_key(version, rel)}",
                    expected="no concurrent push of one version",
                    found="an existing object",
                ) from error
        record = VersionRecord(
            version=version,
            name=name,
            model_family=model_family,
            pushed_at=self._clock(),
            submitter=submitter,
            concerned_stewards=tuple(sorted(set(concerned_stewards))),
            footprint=tuple(float(v) for v in footprint),  # type: ignore[arg-type]  # 4 checked
            manifest=Manifest(files=tuple(digests)),
        )
        try:
            self.store.create(index_key(version), version_record_bytes(record, signer))
        except ObjectExists as error:
            raise RegistryError(
                "version was committed by another push meanwhile",
                file=f"{self.location}/{index_key(version)}",
                field="version",
                expected="a new version",
                found=version,
            ) from error
        return record

    def fsck(self, *, dry_run: bool = False) -> FsckReport:
        """Find (and remove) files of uncommitted versions; report committed versions damaged.

        Run it when no push is in progress: an in-flight push looks like a leftover. Temporary
        files of writes that were cut off are removed first (stores that keep them: local).
        """
        sweep = getattr(self.store, "sweep_temporary", None)
        temporary = tuple(sweep(dry_run=dry_run)) if sweep else ()
        lister = getattr(self.store, "list_names", None)
        if lister:
            prefixes = lister(MODELS)
        else:
            prefixes = sorted(
                {k[len(MODELS) + 1 :].split("/", 1)[0] for k in self.store.list(MODELS)}
            )
        committed = set(self.list())
        leftovers: builtins.list[str] = []
        removed = 0
        for prefix in prefixes:
            if prefix in committed:
                continue
            leftovers.append(prefix)
            for key in self.store.list(version_prefix(prefix)):
                if not dry_run:
                    self.store.delete(key)
                removed += 1
        damaged, unverified = [], []
        for version in sorted(committed, key=version_sort_key):
            try:
                record = self.show(version)
            except RecordVerificationError as error:
                unverified.append(f"{version}: {error.message}")
                continue
            stored = set(self.store.list(version_prefix(version)))
            expected = {version_key(version, f.name) for f in record.manifest.files}
            if not expected <= stored:
                damaged.append(version)
        return FsckReport(
            leftovers=tuple(leftovers),
            removed_objects=0 if dry_run else removed,
            damaged=tuple(damaged),
            temporary_files=temporary,
            unverified=tuple(unverified),
        )

    def write_rollback(self, rollback_id: str, files: Mapping[str, bytes]) -> builtins.list[str]:
        """Create ``climate/rollbacks/<id>/<name>`` for each file (never overwritten)."""
        if not ID_PATTERN.match(rollback_id):
            raise RegistryError("invalid rollback id", field="id", found=rollback_id)
        keys = []
        for name, data in sorted(files.items()):
            key = f"{ROLLBACKS}/{rollback_id}/{name}"
            self.store.create(key, data)
            keys.append(key)
        return keys

    def read_rollback(self, rollback_id: str, name: str) -> bytes:
        """One file of a rollback report."""
        return self.store.read(f"{ROLLBACKS}/{rollback_id}/{name}")

    def write_run(
        self, version: str, run_id: str, files: Mapping[str, bytes]
    ) -> builtins.list[str]:
        """Create ``climate/monitoring/<version>/<run id>/<name>`` for each file (never overwritten).

        The index entry ``run.json`` is written last, so a run that was cut off is never listed.
        """
        self.show(version)  # the version must be committed
        if not ID_PATTERN.match(run_id):
            raise RegistryError("invalid monitoring run id", field="run_id", found=run_id)
        if "run.json" not in files:
            raise RegistryError(
                "a monitoring run needs its run.json",
                field="files",
                expected="run.json",
                found=sorted(files),
            )
        keys = []
        for name, data in sorted(files.items(), key=lambda item: item[0] == "run.json"):
            key = f"{MONITORING}/{version}/{run_id}/{name}"
            self.store.create(key, data)
            keys.append(key)
        return keys

    def list_runs(self, version: str) -> builtins.list[str]:
        """Monitoring run ids of ``version`` that completed (have a run.json), oldest first."""
        prefix = f"{MONITORING}/{check_version(version)}"
        runs = {
            key[len(prefix) + 1 :].split("/", 1)[0]
            for key in self.store.list(prefix)
            if key.endswith("/run.json")
        }
        return sorted(runs)

    def read_run(self, version: str, run_id: str, name: str) -> bytes:
        """One file of a monitoring run."""
        key = f"{MONITORING}/{check_version(version)}/{run_id}/{name}"
        if not self.store.exists(key):
            raise RegistryError("no such monitoring file", file=key, field="name", found=name)
        return self.store.read(key)

    def write_checkpoint(self, seq: int, data: bytes) -> str:
        """Create ``climate/checkpoints/<seq>.json`` (never overwritten: ``ObjectExists``)."""
        key = checkpoint_key(seq)
        self.store.create(key, data)
        return key

    def read_checkpoint(self, seq: int) -> bytes:
        """The stored checkpoint at ``seq``."""
        return self.store.read(checkpoint_key(seq))

    def checkpoint_seqs(self) -> builtins.list[int]:
        """Ledger positions that have a checkpoint, ascending (one listing; other names ignored)."""
        lister = getattr(self.store, "list_names", None)
        names = lister(CHECKPOINTS) if lister else self.store.list(CHECKPOINTS)
        found = (n.rsplit("/", 1)[-1] for n in names)
        return sorted(int(n[:12]) for n in found if _CHECKPOINT_NAME.fullmatch(n))

    def _ensure_registry_manifest(self) -> None:
        if self.store.exists(REGISTRY_MANIFEST):
            try:
                found = json.loads(self.store.read(REGISTRY_MANIFEST)).get("format")
            except (ValueError, AttributeError):
                found = "unreadable"
            if found != REGISTRY_FORMAT:
                raise RegistryError(
                    "the registry predates signed version records",
                    file=f"{self.location}/{REGISTRY_MANIFEST}",
                    field="format",
                    expected=REGISTRY_FORMAT,
                    found=found,
                    hint=PREDATES_HINT,
                )
            return
        body = {"format": REGISTRY_FORMAT, "layout": layout_summary()}
        text = json.dumps(body, indent=2, sort_keys=True) + "\n"
        with contextlib.suppress(ObjectExists):  # another push wrote the same content first
            self.store.create(REGISTRY_MANIFEST, text.encode("utf-8"))


def collect_layout(source: Path) -> list[tuple[str, Path]]:
    """The files of a registry-layout directory as (relative name, path); refuses anything else."""
    if not source.is_dir():
        raise RegistryError(
            "push source is not a directory", file=str(source), expected="a directory"
        )
    missing = [name for name in REQUIRED_FILES if not (source / name).is_file()]
    if missing:
        raise RegistryError(
            "push source lacks required files",
            file=str(source),
            field=missing[0],
            expected=list(REQUIRED_FILES),
            found=sorted(p.name for p in source.iterdir()),
        )
    found: list[tuple[str, Path]] = []
    for entry in sorted(source.iterdir()):
        if entry.is_symlink():
            raise RegistryError(
                "symbolic link in push source", file=str(entry), expected="a regular file"
            )
        if entry.name in REQUIRED_FILES or (entry.name in OPTIONAL_FILES and entry.is_file()):
            found.append((entry.name, entry))
        elif entry.name in OPTIONAL_DIRS and entry.is_dir():
            for path in sorted(entry.rglob("*")):
                if path.is_symlink():
                    raise RegistryError(
                        "symbolic link in push source", file=str(path), expected="a regular file"
                    )
                if path.is_file():
                    found.append((path.relative_to(source).as_posix(), path))
        else:
            raise RegistryError(
                "unexpected entry in push source",
                file=str(entry),
                expected=f"{list(REQUIRED_FILES + OPTIONAL_FILES)} or folders {list(OPTIONAL_DIRS)}",
                found=entry.name,
            )
    return found
