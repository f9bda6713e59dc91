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
:func:`check_model` accepts its (file-serialized) ones. Model-signing's own errors, some of
which have an empty message, are translated here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import manifest as ms_manifest
from model_signing._hashing import hashing as ms_hashing
from model_signing._signing import sign_ec_key
from model_signing._signing import sign_sigstore_pb as ms_bundle
from model_signing._signing import signing as ms_signing
from pydantic import BaseModel, ConfigDict, Field

from core.errors import KfmError, SigningError, VerificationError
from core.signing.digests import (
    DEFAULT_EXCLUDE,
    FileDigest,
    Manifest,
    compare_manifests,
    hash_directory,
    multihash,
    parse_multihash,
)
from core.signing.keys import KeySigner, key_fingerprint

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


class _KeyObjectSigner(sign_ec_key.Signer):
    """model-signing's EC signer, built from an opened key instead of a key file."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private_key = private_key
        sign_ec_key._check_supported_ec_key(private_key.public_key())


class _KeyObjectVerifier(sign_ec_key.Verifier):
    """model-signing's EC verifier, built from a public key object."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self._public_key = public_key
        sign_ec_key._check_supported_ec_key(public_key)


def to_model_signing_manifest(model_name: str, manifest: Manifest) -> ms_manifest.Manifest:
    """The model-signing manifest for our manifest (file serialization, SHA-256)."""
    serialization = ms_manifest._FileSerialization(
        "sha256", False, [Path(p) for p in SIGNED_IGNORE_PATHS]
    )
    items = [
        ms_manifest.FileManifestItem(
            path=PurePosixPath(f.name),
            digest=ms_hashing.Digest("sha256", bytes.fromhex(f.sha256)),
        )
        for f in manifest.files
    ]
    return ms_manifest.Manifest(model_name, items, serialization)


def _model_name(model_dir: Path) -> str:
    return model_dir.resolve().name


def sign_model(
    model_dir: Path, signer: KeySigner, *, workers: int | None = None
) -> IntegrityRecord:
    """Hash ``model_dir``, write ``model.sig`` (EC key, offline) and ``integrity.json``."""
    signer_impl = _KeyObjectSigner(signer.private_key)
    return _sign(
        model_dir,
        signer_impl,
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
    from model_signing._signing import sign_sigstore

    try:
        signer_impl = sign_sigstore.Signer(
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
    return _sign(model_dir, signer_impl, {"method": "sigstore"}, workers=workers)


def _sign(
    model_dir: Path,
    signer_impl: ms_signing.Signer,
    signed_with: dict[str, str],
    *,
    workers: int | None,
) -> IntegrityRecord:
    model_dir = Path(model_dir)
    manifest = hash_directory(model_dir, exclude=SIGNED_IGNORE_PATHS, workers=workers)
    if not manifest.files:
        raise SigningError(
            "nothing to sign",
            file=str(model_dir),
            expected="at least one file",
            found="an empty directory",
        )
    payload = ms_signing.Payload(to_model_signing_manifest(_model_name(model_dir), manifest))
    try:
        signature = signer_impl.sign(payload)
    except Exception as error:  # noqa: BLE001 - vendor errors translated at the edge
        raise SigningError(
            "model-signing could not sign",
            file=str(model_dir / SIGNATURE_FILE),
            expected="a signature",
            found=str(error) or type(error).__name__,
        ) from error
    signature_path = model_dir / SIGNATURE_FILE
    signature.write(signature_path)
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


def _signed_manifest(model_manifest: ms_manifest.Manifest) -> tuple[Manifest, list[str]]:
    """Our manifest and the ignored paths from a verified model-signing manifest."""
    serialization = model_manifest.serialization_type
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
    files = tuple(
        FileDigest(name=d.identifier, size=None, sha256=d.digest.digest_hex)
        for d in model_manifest.resource_descriptors()
    )
    return Manifest(files=files), [str(p) for p in serialization.get("ignore_paths", [])]


def _statement_unverified(signature_path: Path) -> ms_manifest.Manifest:
    bundle = json.loads(signature_path.read_text(encoding="utf-8"))
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return ms_signing.dsse_payload_to_manifest(payload)


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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

    # 1. Signature (authenticity of the statement).
    verified: ms_manifest.Manifest | None = None
    if public_key is None:
        add("signature", "skipped", sig_name, "no public key given (--key): not authenticated")
    else:
        fingerprint = key_fingerprint(public_key)
        try:
            bundle = ms_bundle.Signature.read(signature_path)
            verified = _KeyObjectVerifier(public_key).verify(bundle)
            add("signature", "ok", sig_name, f"valid ECDSA signature by key {fingerprint}")
        except Exception as error:  # noqa: BLE001 - model-signing raises bare exceptions
            text = _describe(error)
            if "Key mismatch" in text:
                detail = f"signed by another key than {fingerprint}"
            elif isinstance(error, json.JSONDecodeError | KeyError):
                detail = f"not a Sigstore bundle ({text})"
            else:
                detail = (
                    f"signature does not verify with key {fingerprint}: the DSSE envelope was "
                    f"edited or signed by another key ({text})"
                )
            add("signature", "failed", sig_name, detail)

    # 2. Statement (what was signed): names and digests of every file.
    try:
        statement = verified if verified is not None else _statement_unverified(signature_path)
        signed, ignored = _signed_manifest(statement)
    except KfmError as error:
        add("statement", "failed", sig_name, error.diagnostics())
        return VerificationReport(path=str(model_dir), checks=tuple(checks))
    except Exception as error:  # noqa: BLE001 - malformed bundle or statement
        add("statement", "failed", sig_name, f"statement cannot be read ({_describe(error)})")
        return VerificationReport(path=str(model_dir), checks=tuple(checks))
    add(
        "statement",
        "ok",
        sig_name,
        f"{len(signed.files)} files, root digest {signed.root_digest}, "
        f"manifest digest {signed.digest}",
    )

    # 3. Files: every digest, no extra, missing or renamed file.
    exclude = {*ignored, sig_name}
    try:
        actual = hash_directory(model_dir, exclude=exclude, workers=workers)
    except KfmError as error:
        add("files", "failed", error.file or str(model_dir), error.diagnostics())
    else:
        problems = compare_manifests(signed, actual)
        for problem in problems:
            add("files", "failed", problem.name, f"{problem.kind}: {problem.detail}")
        if not problems:
            add("files", "ok", ".", f"all {len(actual.files)} file digests match")

    # 4. Integrity block.
    checks.extend(_check_integrity(model_dir, signature_path, signed))
    return VerificationReport(path=str(model_dir), checks=tuple(checks), manifest=signed)


def _check_integrity(model_dir: Path, signature_path: Path, signed: Manifest) -> Iterable[Check]:
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
    if record.integrity.signature.href != signature_path.name:
        fail("integrity.signature.href", signature_path.name, record.integrity.signature.href)
    sig_digest = multihash(hashlib.sha256(signature_path.read_bytes()).hexdigest())
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
