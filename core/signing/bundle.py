"""Model signatures: ``model.sig`` (OpenSSF model-signing bundle) and ``integrity.json``.

The *sign* stage of the pipeline, after hashing (:mod:`core.signing.digests`):

1. :func:`sign_model` ``(model_dir, signer) -> IntegrityRecord`` hashes every file, builds the
   model-signing manifest (file serialization, SHA-256; ``model.sig``, ``integrity.json`` and
   git paths listed as ignored), signs it offline with an EC P-256 key and writes ``model.sig``
   (a Sigstore bundle holding a DSSE envelope around an in-toto statement) and
   ``integrity.json``: ``{"integrity": {"hash", "signature", "immutable": true}, "manifest",
   "root_digest", "signed_with"}``. ``hash`` is the multihash of the manifest digest (which
   binds file names), ``signature`` names ``model.sig`` with its ``file:checksum``.
   :func:`sign_model_sigstore` does the same keylessly; it first checks in a few seconds that
   the Sigstore services answer and fails at once with a clear message when they do not.
2. :func:`check_model` ``(model_dir, *, public_key=None) -> VerificationReport`` runs every
   check and reports each (signature, statement, files, integrity block);
   :func:`verify_model` raises :class:`core.errors.VerificationError` naming the failed checks.

Signatures are plain model-signing bundles: ``model_signing verify key`` accepts ours and
:func:`check_model` accepts its (file-serialized) ones. Only model-signing's public API is used
(``model_signing.hashing``, ``.signing``, ``.verifying`` and the ``manifest`` types they
exchange); what this module adds on top of it:

- the same statement for the same files: model-signing keeps ignored paths in a frozenset, so
  their order in the signed statement follows the process's string-hash seed;
  :class:`_HashingConfig` sorts them. (The statement's bytes still differ between processes:
  protobuf writes the keys of the ``serialization`` object in a per-process order. Within a
  process they repeat, and the parsed statement is the same everywhere.);
- the private key: model-signing reads a PEM file and hands its ``password`` to
  ``cryptography``, which needs bytes (a ``str``, as annotated, fails on encrypted keys). The
  opened key is written for it to a private temporary file, encrypted with a one-time random
  passphrase, and removed once the signer has read it;
- per-file names: model-signing's root digest covers the file digests, not their names; the
  statement's resources are compared with the directory by name, each difference named
  (renamed, extra, missing, changed), and ``integrity.json`` binds the names' manifest digest;
- readable errors: a tampered envelope makes model-signing raise an exception with an empty
  message; each check says what failed and why. Verification hashes the files once: the
  directory hashed by model-signing after the signature verified is the one compared by name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing as ms_hashing
from model_signing import manifest as ms_manifest
from model_signing import signing as ms_signing
from model_signing import verifying as ms_verifying
from pydantic import BaseModel, ConfigDict, Field

from core.errors import KfmError, SigningError, VerificationError
from core.signing.digests import (
    DEFAULT_EXCLUDE,
    FileDigest,
    Manifest,
    compare_manifests,
    hash_directory,
    is_sha256_hex,
    list_files,
    multihash,
    parse_multihash,
)
from core.signing.keys import KeySigner, key_fingerprint, public_key_pem

SIGNATURE_FILE = "model.sig"
INTEGRITY_FILE = "integrity.json"
SIGNED_IGNORE_PATHS: tuple[str, ...] = tuple(sorted(DEFAULT_EXCLUDE))
SIGSTORE_HOSTS: tuple[tuple[str, int], ...] = (
    ("tuf-repo-cdn.sigstore.dev", 443),
    ("oauth2.sigstore.dev", 443),
    ("fulcio.sigstore.dev", 443),
    ("rekor.sigstore.dev", 443),
)
SIGSTORE_PROBE_TIMEOUT = 3.0
IN_TOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
MODEL_SIGNING_PREDICATE_TYPE = "https://model_signing/signature/v1.0"


class SignatureRef(BaseModel):
    """Where the signature is and the multihash of its bytes."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    href: str
    checksum: str = Field(alias="file:checksum")


class IntegrityBlock(BaseModel):
    """``{"hash", "signature", "immutable": true}`` as STAC and the registry carry it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hash: str = Field(description="multihash of the manifest digest (binds file names)")
    signature: SignatureRef
    immutable: Literal[True] = True


class IntegrityRecord(BaseModel):
    """The content of ``integrity.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    integrity: IntegrityBlock
    root_digest: str = Field(description="multihash of the model-signing root digest")
    manifest: Manifest
    signed_with: dict[str, str]

    def to_json(self) -> str:
        """Stable, indented JSON text."""
        data = self.model_dump(mode="json", by_alias=True)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


class _HashingConfig(ms_hashing.Config):
    """model-signing's file hashing (SHA-256, no symbolic links) with sorted ignored paths.

    The manifest of the last :meth:`hash` is kept in :attr:`hashed` (``None`` until a hash
    completes; :attr:`started` tells whether one began), so callers learn what was signed or
    compared without hashing the files a second time.
    """

    def __init__(self, ignore: Iterable[str], *, workers: int | None) -> None:
        super().__init__()
        self.use_file_serialization(hashing_algorithm="sha256", max_workers=workers)
        self.set_ignored_paths(paths=sorted(ignore), ignore_git_paths=True)
        self.started = False
        self.hashed: ms_manifest.Manifest | None = None

    def hash(
        self,
        model_path: ms_hashing.PathLike,
        *,
        files_to_hash: Iterable[ms_hashing.PathLike] | None = None,
    ) -> ms_manifest.Manifest:
        """Hash as model-signing does, then rebuild the manifest with its ignored paths sorted."""
        self.started = True
        hashed = super().hash(model_path, files_to_hash=files_to_hash)
        parameters = dict(hashed.serialization_type)
        if "ignore_paths" in parameters:
            parameters["ignore_paths"] = sorted(str(p) for p in parameters["ignore_paths"])
        serialization_type = ms_manifest.SerializationType.from_args(parameters)
        items = [
            serialization_type.new_item(d.identifier, d.digest)
            for d in hashed.resource_descriptors()
        ]
        self.hashed = ms_manifest.Manifest(hashed.model_name, items, serialization_type)
        return self.hashed


def _hashed_manifest(hashed: ms_manifest.Manifest, root: Path | None = None) -> Manifest:
    """Our manifest for model-signing's (sizes read from ``root`` when given)."""
    return Manifest(
        files=tuple(
            FileDigest(
                name=d.identifier,
                size=(root / d.identifier).stat().st_size if root is not None else None,
                sha256=d.digest.digest_hex,
            )
            for d in hashed.resource_descriptors()
        )
    )


def _key_signing_config(signer: KeySigner, key_dir: Path) -> ms_signing.Config:
    """A model-signing configuration that signs with ``signer``'s opened key.

    model-signing takes a PEM path and a password; the key is written to ``key_dir`` (a private
    temporary directory) encrypted with a one-time random passphrase. The signer reads it here,
    so the caller may delete ``key_dir`` as soon as this returns.
    """
    secret = secrets.token_bytes(32)
    pem = signer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret),
    )
    path = key_dir / "signing-key.pem"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    # Annotated ``str`` but passed to cryptography as is, which needs bytes (model-signing 1.1.1).
    return ms_signing.Config().use_elliptic_key_signer(
        private_key=path,
        password=secret,  # type: ignore[arg-type]
    )


def sign_model(
    model_dir: Path, signer: KeySigner, *, workers: int | None = None
) -> IntegrityRecord:
    """Hash ``model_dir``, write ``model.sig`` (EC key, offline) and ``integrity.json``."""
    with tempfile.TemporaryDirectory(prefix="kfm-sign-") as key_dir:
        config = _key_signing_config(signer, Path(key_dir))
    return _sign(
        model_dir,
        config,
        {"method": "key", "key_id": signer.key_id, "public_key_fingerprint": signer.fingerprint},
        workers=workers,
    )


def sigstore_unreachable(
    hosts: Sequence[tuple[str, int]] = SIGSTORE_HOSTS, timeout: float = SIGSTORE_PROBE_TIMEOUT
) -> str | None:
    """``None`` when every host accepts a TCP connection within ``timeout`` seconds in total,
    else a description of the first failure. Name resolution runs in a helper thread, so a
    hanging resolver cannot stall the caller past ``timeout``."""
    outcome: list[str | None] = []

    def probe() -> None:
        for host, port in hosts:
            try:
                socket.create_connection((host, port), timeout=timeout).close()
            except OSError as error:
                outcome.append(f"{host}:{port}: {error.strerror or error or type(error).__name__}")
                return
        outcome.append(None)

    worker = threading.Thread(target=probe, name="kfm-sigstore-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no answer from {hosts[0][0]} within {timeout:g} s"
    return outcome[0]


def sign_model_sigstore(
    model_dir: Path,
    *,
    identity_token: str | None = None,
    use_staging: bool = False,
    workers: int | None = None,
    probe: Callable[[], str | None] = sigstore_unreachable,
) -> IntegrityRecord:
    """Keyless Sigstore signature of ``model_dir``; fails fast when Sigstore is unreachable."""
    failure = probe()
    if failure is not None:
        raise SigningError(
            "keyless Sigstore signing needs the network",
            field="--sigstore",
            expected="Sigstore services reachable (TUF, OIDC, Fulcio, Rekor)",
            found=failure,
            hint="offline, sign with a local key: kfm sign DIR --key KEY",
        )
    try:
        config = ms_signing.Config().use_sigstore_signer(
            identity_token=identity_token,
            use_staging=use_staging,
            use_ambient_credentials=identity_token is None,
        )
    except Exception as error:  # noqa: BLE001 - TUF/OIDC errors from sigstore
        raise SigningError(
            "keyless Sigstore signing could not start",
            field="--sigstore",
            expected="a Sigstore trust root and an identity",
            found=str(error) or type(error).__name__,
        ) from error
    return _sign(model_dir, config, {"method": "sigstore"}, workers=workers)


def _sign(
    model_dir: Path,
    config: ms_signing.Config,
    signed_with: dict[str, str],
    *,
    workers: int | None,
) -> IntegrityRecord:
    # Resolved, so the statement names the model after the real directory, as before.
    model_dir = Path(model_dir).resolve()
    # Our walk first: it names a symbolic link or special file clearly, and finds emptiness.
    if not list_files(model_dir, exclude=SIGNED_IGNORE_PATHS):
        raise SigningError(
            "nothing to sign",
            file=str(model_dir),
            expected="at least one file",
            found="an empty directory",
        )
    hashing = _HashingConfig(SIGNED_IGNORE_PATHS, workers=workers)
    signature_path = model_dir / SIGNATURE_FILE
    try:
        config.set_hashing_config(hashing).sign(model_dir, signature_path)
    except Exception as error:  # noqa: BLE001 - vendor errors translated at the edge
        raise SigningError(
            "model-signing could not sign",
            file=str(signature_path),
            expected="a signature",
            found=_describe(error),
        ) from error
    if hashing.hashed is None:
        raise SigningError(
            "model-signing signed without hashing through the given configuration",
            file=str(signature_path),
            expected="the manifest it signed",
            found="none",
        )
    manifest = _hashed_manifest(hashing.hashed, model_dir)
    record = IntegrityRecord(
        integrity=IntegrityBlock(
            hash=multihash(manifest.digest),
            signature=SignatureRef(
                href=SIGNATURE_FILE,
                checksum=multihash(hashlib.sha256(signature_path.read_bytes()).hexdigest()),
            ),
        ),
        root_digest=multihash(manifest.root_digest),
        manifest=manifest,
        signed_with=signed_with,
    )
    (model_dir / INTEGRITY_FILE).write_text(record.to_json(), encoding="utf-8")
    return record


# --- verification ---------------------------------------------------------------------------

CheckStatus = Literal["ok", "failed", "skipped"]


class Check(BaseModel):
    """One verification check and its outcome."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: CheckStatus
    file: str
    detail: str


class VerificationReport(BaseModel):
    """Every check made on a signed directory, with the signed manifest when it could be read."""

    model_config = ConfigDict(frozen=True)

    path: str
    checks: tuple[Check, ...]
    manifest: Manifest | None = None

    @property
    def ok(self) -> bool:
        """No check failed (skipped checks are not failures)."""
        return all(c.status != "failed" for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The failed checks."""
        return [c for c in self.checks if c.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        """JSON data for ``--json``."""
        data = self.model_dump(mode="json")
        data["ok"] = self.ok
        if self.manifest is not None:
            data["manifest_digest"] = self.manifest.digest
            data["root_digest"] = self.manifest.root_digest
        return data


def _read_statement(signature: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Sigstore bundle and the in-toto statement inside its DSSE envelope (not verified)."""
    bundle = json.loads(signature)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True))
    if not isinstance(statement, dict):
        raise TypeError(f"the DSSE payload is a JSON {type(statement).__name__}, not an object")
    return bundle, statement


def _statement_error(field: str, expected: Any, found: Any) -> VerificationError:
    return VerificationError(
        "not a model-signing statement",
        file=SIGNATURE_FILE,
        field=field,
        expected=expected,
        found=found,
    )


def _signed_manifest(statement: Mapping[str, Any]) -> tuple[Manifest, list[str]]:
    """The files (names, digests) and ignored paths listed by a model-signing statement.

    Checks what model-signing checks before it trusts a statement (statement and predicate
    types, one subject whose digest is the SHA-256 over the listed file digests, in the listed
    order) and refuses serializations other than whole files hashed with SHA-256.
    """
    if statement.get("_type") != IN_TOTO_STATEMENT_TYPE:
        raise _statement_error("_type", IN_TOTO_STATEMENT_TYPE, statement.get("_type"))
    if statement.get("predicateType") != MODEL_SIGNING_PREDICATE_TYPE:
        raise _statement_error(
            "predicateType", MODEL_SIGNING_PREDICATE_TYPE, statement.get("predicateType")
        )
    subjects = statement.get("subject")
    if not (isinstance(subjects, list) and len(subjects) == 1 and isinstance(subjects[0], dict)):
        raise _statement_error("subject", "one subject (the model)", subjects)
    predicate = statement.get("predicate")
    serialization = predicate.get("serialization") if isinstance(predicate, dict) else None
    if not isinstance(serialization, dict):
        raise _statement_error("predicate.serialization", "an object", serialization)
    if serialization.get("method") != "files" or serialization.get("hash_type") != "sha256":
        raise VerificationError(
            "unsupported signature serialization",
            file=SIGNATURE_FILE,
            field="predicate.serialization",
            expected="method 'files' with hash_type 'sha256'",
            found=f"method {serialization.get('method')!r}, "
            f"hash {serialization.get('hash_type')!r}",
            hint="sign without --use_shard_serialization and with SHA-256",
        )
    resources = predicate.get("resources") if isinstance(predicate, dict) else None
    if not isinstance(resources, list):
        raise _statement_error("predicate.resources", "a list of files", resources)
    files: list[FileDigest] = []
    root = hashlib.sha256()
    for index, resource in enumerate(resources):
        digest = resource.get("digest") if isinstance(resource, dict) else None
        if not (
            isinstance(resource, dict)
            and resource.get("algorithm") == "sha256"
            and isinstance(digest, str)
            and is_sha256_hex(digest)
            and isinstance(resource.get("name"), str)
        ):
            raise _statement_error(
                f"predicate.resources[{index}]",
                "{name, algorithm: 'sha256', digest: 64 lowercase hex digits}",
                resource,
            )
        root.update(bytes.fromhex(digest))
        try:
            files.append(FileDigest(name=resource["name"], sha256=digest))
        except ValueError as error:  # pydantic's ValidationError: not a relative POSIX path
            raise _statement_error(
                f"predicate.resources[{index}].name", "a relative POSIX path", resource["name"]
            ) from error
    subject_digest = subjects[0].get("digest")
    claimed = subject_digest.get("sha256") if isinstance(subject_digest, dict) else None
    if claimed != root.hexdigest():
        raise VerificationError(
            "statement is inconsistent: its subject digest is not the digest of its files",
            file=SIGNATURE_FILE,
            field="subject[0].digest.sha256",
            expected=root.hexdigest(),
            found=claimed,
        )
    try:
        manifest = Manifest(files=tuple(files))
    except ValueError as error:  # duplicate names
        raise _statement_error("predicate.resources", "unique file names", str(error)) from error
    ignored = serialization.get("ignore_paths", [])
    return manifest, [str(p) for p in ignored] if isinstance(ignored, list) else []


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass(frozen=True)
class _KeyVerification:
    """What model-signing's key verification found."""

    signature_ok: bool
    detail: str
    hashed: ms_manifest.Manifest | None = None
    files_error: str | None = None


def _key_hint(public_key: ec.EllipticCurvePublicKey) -> str:
    """How a model-signing bundle names its key: hex SHA-256 of the public key's PEM."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def _verify_with_key(
    model_dir: Path,
    signature: bytes,
    sig_name: str,
    bundle: Mapping[str, Any],
    public_key: ec.EllipticCurvePublicKey,
    *,
    workers: int | None,
) -> _KeyVerification:
    """model-signing's verification (signature, then every file) of the bytes already read.

    model-signing reads a key file and a signature file: both go to a private temporary
    directory, the signature as the very bytes whose statement the caller parsed. It hashes the
    directory only once the signature and statement verified, so whether hashing started tells
    a bad signature from changed files whatever its (sometimes empty) error message says.
    """
    fingerprint = key_fingerprint(public_key)
    hashing = _HashingConfig({sig_name}, workers=workers)
    try:
        with tempfile.TemporaryDirectory(prefix="kfm-verify-") as work:
            key_path = Path(work) / "public-key.pem"
            key_path.write_text(public_key_pem(public_key), encoding="ascii")
            copy = Path(work) / sig_name
            copy.write_bytes(signature)
            config = ms_verifying.Config().use_elliptic_key_verifier(public_key=key_path)
            config.set_hashing_config(hashing).verify(model_dir, copy)
    except Exception as error:  # noqa: BLE001 - model-signing raises bare exceptions
        if hashing.started:
            return _KeyVerification(
                signature_ok=True,
                detail=f"valid ECDSA signature by key {fingerprint}",
                hashed=hashing.hashed,
                files_error=_describe(error),
            )
        material = bundle.get("verificationMaterial")
        key = material.get("publicKey") if isinstance(material, dict) else None
        hint = key.get("hint") if isinstance(key, dict) else None
        if hint and hint != _key_hint(public_key):
            detail = f"signed by another key than {fingerprint}"
        else:
            detail = (
                f"signature does not verify with key {fingerprint}: the DSSE envelope was "
                f"edited or signed by another key ({_describe(error)})"
            )
        return _KeyVerification(signature_ok=False, detail=detail)
    return _KeyVerification(
        signature_ok=True,
        detail=f"valid ECDSA signature by key {fingerprint}",
        hashed=hashing.hashed,
    )


def check_model(
    path: Path,
    *,
    public_key: ec.EllipticCurvePublicKey | None = None,
    workers: int | None = None,
) -> VerificationReport:
    """Run every check on a signed directory (or its ``model.sig``) and report each one."""
    path = Path(path)
    model_dir = path.parent if path.is_file() else path
    signature_path = path if path.is_file() else model_dir / SIGNATURE_FILE
    sig_name = signature_path.name
    checks: list[Check] = []

    def add(name: str, status: CheckStatus, file: str, detail: str) -> None:
        checks.append(Check(name=name, status=status, file=file, detail=detail))

    if not signature_path.exists():
        add("signature", "failed", sig_name, "signature file is missing")
        return VerificationReport(path=str(model_dir), checks=tuple(checks))
    signature = signature_path.read_bytes()
    try:
        bundle, statement = _read_statement(signature)
        unreadable = None
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        bundle, statement, unreadable = {}, {}, _describe(error)

    # 1. Signature (authenticity of the statement), and model-signing's own file check.
    verification: _KeyVerification | None = None
    if public_key is None:
        add("signature", "skipped", sig_name, "no public key given (--key): not authenticated")
    elif unreadable is not None:
        add("signature", "failed", sig_name, f"not a Sigstore bundle ({unreadable})")
    else:
        verification = _verify_with_key(
            model_dir, signature, sig_name, bundle, public_key, workers=workers
        )
        add(
            "signature",
            "ok" if verification.signature_ok else "failed",
            sig_name,
            verification.detail,
        )

    # 2. Statement (what was signed): names and digests of every file.
    if unreadable is not None:
        add("statement", "failed", sig_name, f"statement cannot be read ({unreadable})")
        return VerificationReport(path=str(model_dir), checks=tuple(checks))
    try:
        signed, ignored = _signed_manifest(statement)
    except KfmError as error:
        add("statement", "failed", sig_name, error.diagnostics())
        return VerificationReport(path=str(model_dir), checks=tuple(checks))
    add(
        "statement",
        "ok",
        sig_name,
        f"{len(signed.files)} files, root digest {signed.root_digest}, "
        f"manifest digest {signed.digest}",
    )

    # 3. Files, by name: every digest, no extra, missing or renamed file. After a verified
    # signature, model-signing has hashed the directory already; otherwise hash it here.
    vendor_error = verification.files_error if verification else None
    try:
        if verification is not None and verification.hashed is not None:
            actual = _hashed_manifest(verification.hashed)
        else:
            actual = hash_directory(model_dir, exclude={*ignored, sig_name}, workers=workers)
    except KfmError as error:
        add("files", "failed", error.file or str(model_dir), error.diagnostics())
    else:
        problems = compare_manifests(signed, actual)
        for problem in problems:
            add("files", "failed", problem.name, f"{problem.kind}: {problem.detail}")
        if not problems and vendor_error is not None:
            add("files", "failed", ".", f"model-signing refused the files ({vendor_error})")
        elif not problems:
            add("files", "ok", ".", f"all {len(actual.files)} file digests match")

    # 4. Integrity block.
    checks.extend(_check_integrity(model_dir, signature_path.name, signature, signed))
    return VerificationReport(path=str(model_dir), checks=tuple(checks), manifest=signed)


def _check_integrity(
    model_dir: Path, sig_name: str, signature: bytes, signed: Manifest
) -> Iterable[Check]:
    integrity_path = model_dir / INTEGRITY_FILE
    if not integrity_path.exists():
        return [
            Check(
                name="integrity",
                status="skipped",
                file=INTEGRITY_FILE,
                detail="no integrity.json (signature made by another tool)",
            )
        ]
    try:
        record = IntegrityRecord.model_validate(
            json.loads(integrity_path.read_text(encoding="utf-8"))
        )
    except Exception as error:  # noqa: BLE001 - JSON or validation error
        return [
            Check(
                name="integrity",
                status="failed",
                file=INTEGRITY_FILE,
                detail=f"malformed ({_describe(error)})",
            )
        ]
    found: list[Check] = []

    def fail(field: str, expected: str, actual: str) -> None:
        found.append(
            Check(
                name="integrity",
                status="failed",
                file=INTEGRITY_FILE,
                detail=f"field '{field}': expected {expected}, found {actual}",
            )
        )

    try:
        hash_hex = parse_multihash(record.integrity.hash, file=INTEGRITY_FILE, field="hash")
    except KfmError as error:
        hash_hex = error.diagnostics()
    if hash_hex != signed.digest:
        fail("integrity.hash", multihash(signed.digest), record.integrity.hash)
    if record.integrity.signature.href != sig_name:
        fail("integrity.signature.href", sig_name, record.integrity.signature.href)
    sig_digest = multihash(hashlib.sha256(signature).hexdigest())
    if record.integrity.signature.checksum != sig_digest:
        fail("integrity.signature.file:checksum", sig_digest, record.integrity.signature.checksum)
    if record.root_digest != multihash(signed.root_digest):
        fail("root_digest", multihash(signed.root_digest), record.root_digest)
    listed = Manifest(
        files=tuple(f.model_copy(update={"size": None}) for f in record.manifest.files)
    )
    if listed != signed:
        names = [str(p) for p in compare_manifests(signed, listed)]
        fail("manifest", "the signed file list", "; ".join(names) or "other content")
    if not found:
        found.append(
            Check(
                name="integrity",
                status="ok",
                file=INTEGRITY_FILE,
                detail="hash, signature checksum and manifest match the signature",
            )
        )
    return found


def verify_model(
    path: Path,
    *,
    public_key: ec.EllipticCurvePublicKey | None = None,
    workers: int | None = None,
) -> VerificationReport:
    """:func:`check_model`, raising :class:`VerificationError` naming every failed check."""
    report = check_model(path, public_key=public_key, workers=workers)
    if not report.ok:
        first = report.failures[0]
        raise VerificationError(
            "verification failed: "
            + "; ".join(f"{c.name} [{c.file}]: {c.detail}" for c in report.failures),
            file=first.file,
            field=first.name,
            expected="every check ok",
            found=f"{len(report.failures)} failed check(s)",
        )
    return report
