"""Reviewer, pipeline and root keys: EC P-256, private keys passphrase-protected.

Every signature in the engine (``model.sig``, the roster signature, decision records) is made
with an EC P-256 key: model-signing accepts elliptic-curve keys only, and the same key type
keeps DSSE envelopes verifiable by in-toto and Sigstore tooling. The public API:

- :func:`generate_key_pair` ``(key_id, out_dir, passphrase) -> KeyPairPaths`` writes
  ``<key_id>.key`` (PKCS#8 PEM, encrypted with the passphrase) and ``<key_id>.pub``
  (SubjectPublicKeyInfo PEM). An empty passphrase and an existing file are refused.
- :func:`load_signer` ``(path, passphrase, *, key_id=None) -> KeySigner`` opens a private key;
  the :class:`KeySigner` is what :func:`core.decisions.records.sign_decision`,
  :func:`core.decisions.roster.sign_roster` and :func:`core.signing.bundle.sign_model` take.
- :func:`load_public_key` ``(path)``, :func:`public_key_from_pem` ``(pem, *, source)`` and
  :func:`public_key_pem` ``(key)`` read and write public keys; :func:`key_fingerprint`
  ``(public_key) -> str`` is the hex SHA-256 of its DER SubjectPublicKeyInfo, used as the DSSE
  ``keyid`` everywhere.
- :func:`passphrase_from_env` ``(variable, *, environ)`` reads a passphrase from the
  environment variable *named* by the caller (the CLI's ``--passphrase-env``).

Errors are :class:`core.errors.KeyError_` naming the key file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.signer import CryptoSigner, SSlibKey

from core.errors import KeyError_

CURVE_NAME = "secp256r1"
PRIVATE_KEY_SUFFIX = ".key"
PUBLIC_KEY_SUFFIX = ".pub"


@dataclass(frozen=True)
class KeyPairPaths:
    """Where :func:`generate_key_pair` wrote a key pair, and the public key's fingerprint."""

    key_id: str
    private_key: Path
    public_key: Path
    fingerprint: str


@dataclass(frozen=True)
class KeySigner:
    """An opened private key with the id of its owner (reviewer, pipeline or root)."""

    key_id: str
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The matching public key."""
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the public key (the DSSE ``keyid``)."""
        return key_fingerprint(self.public_key)

    def public_key_pem(self) -> str:
        """The public key as PEM text."""
        return public_key_pem(self.public_key)

    def dsse_signer(self) -> CryptoSigner:
        """A securesystemslib signer whose ``keyid`` is :attr:`fingerprint`."""
        return CryptoSigner(self.private_key, dsse_public_key(self.public_key))


def key_fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo of ``public_key``."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def dsse_public_key(public_key: ec.EllipticCurvePublicKey) -> SSlibKey:
    """The securesystemslib form of a public key, keyed by :func:`key_fingerprint`."""
    return SSlibKey.from_crypto(public_key, keyid=key_fingerprint(public_key))


def public_key_pem(public_key: ec.EllipticCurvePublicKey) -> str:
    """SubjectPublicKeyInfo PEM text of ``public_key``."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _require_p256(key: object, source: str, field: str) -> None:
    curve = getattr(getattr(key, "curve", None), "name", None)
    if not isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) or (
        curve != CURVE_NAME
    ):
        found = f"{type(key).__name__}" + (f" on {curve}" if curve else "")
        raise KeyError_(
            "unsupported key type",
            file=source,
            field=field,
            expected=f"an EC key on {CURVE_NAME} (P-256)",
            found=found,
            hint="create one with `kfm keys new`",
        )


def public_key_from_pem(
    pem: str | bytes, *, source: str = "<public key>"
) -> ec.EllipticCurvePublicKey:
    """Parse a P-256 public key from PEM; ``source`` names where it came from in errors."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise KeyError_(
            "not a PEM public key",
            file=source,
            field="public_key",
            expected="-----BEGIN PUBLIC KEY----- PEM (SubjectPublicKeyInfo)",
            found=str(error) or type(error).__name__,
        ) from error
    _require_p256(key, source, "public_key")
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Read a P-256 public key PEM file."""
    return public_key_from_pem(_read(path), source=str(path))


def load_signer(path: Path, passphrase: str | bytes, *, key_id: str | None = None) -> KeySigner:
    """Open a passphrase-protected private key; ``key_id`` defaults to the file stem."""
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=secret or None)
    except TypeError as error:
        # Raised for an encrypted key without a passphrase, or a passphrase on a plain key.
        raise KeyError_(
            "private key and passphrase do not match",
            file=str(path),
            field="passphrase",
            expected="the passphrase the key was encrypted with",
            found="no passphrase" if not secret else "a passphrase for an unencrypted key",
        ) from error
    except ValueError as error:
        message = str(error)
        # A wrong passphrase usually fails the decryption ("bad decrypt"), but now and then it
        # decrypts to padding-valid garbage that then fails to parse as a key: for an encrypted
        # PEM with a passphrase given, both mean the passphrase is wrong.
        encrypted = b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data
        wrong = (
            "password" in message.lower()
            or "decrypt" in message.lower()
            or (encrypted and bool(secret))
        )
        raise KeyError_(
            "wrong passphrase" if wrong else "not a PEM private key",
            file=str(path),
            field="passphrase" if wrong else "private_key",
            expected="the passphrase the key was encrypted with" if wrong else "PKCS#8 PEM",
            found="a passphrase that does not decrypt it" if wrong else message,
        ) from error
    _require_p256(key, str(path), "private_key")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return KeySigner(key_id=key_id or path.stem, private_key=key)


def generate_key_pair(key_id: str, out_dir: Path, passphrase: str | bytes) -> KeyPairPaths:
    """Create ``<out_dir>/<key_id>.key`` (encrypted) and ``<key_id>.pub``; never overwrite."""
    if not key_id or "/" in key_id or "\\" in key_id or key_id.startswith("."):
        raise KeyError_(
            "invalid key id",
            field="id",
            expected="a plain name such as 'alice' or 'root'",
            found=key_id,
        )
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    if not secret:
        raise KeyError_(
            "empty passphrase",
            field="passphrase",
            expected="a non-empty passphrase",
            found="''",
            hint="private keys are always stored encrypted",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path = out_dir / f"{key_id}{PRIVATE_KEY_SUFFIX}"
    public_path = out_dir / f"{key_id}{PUBLIC_KEY_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyError_(
                "key file already exists",
                file=str(path),
                expected="no file (keys are never overwritten)",
                found="an existing file",
                hint="choose another --id or --out",
            )
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret),
    )
    # The private key is created readable by its owner only.
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    public_path.write_text(public_key_pem(key.public_key()), encoding="ascii")
    return KeyPairPaths(
        key_id=key_id,
        private_key=private_path,
        public_key=public_path,
        fingerprint=key_fingerprint(key.public_key()),
    )


def passphrase_from_env(variable: str, *, environ: Mapping[str, str] | None = None) -> str:
    """The passphrase held in the environment variable named ``variable``; refuses unset/empty."""
    source = os.environ if environ is None else environ
    value = source.get(variable)
    if not value:
        raise KeyError_(
            "environment variable is unset or empty",
            field=variable,
            expected="a non-empty secret (passphrase or token)",
            found="unset" if value is None else "''",
        )
    return value


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise KeyError_(
            "key file cannot be read",
            file=str(path),
            expected="a PEM key file",
            found=error.strerror or type(error).__name__,
        ) from error
