"""Per-file digests, the name-binding manifest and the comparison that names what changed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import signing as ms_signing

from core.errors import VerificationError
from core.signing.digests import (
    FileDigest,
    Manifest,
    compare_manifests,
    hash_directory,
    multihash,
    parse_multihash,
    sha256_file,
    verify_directory,
)


def _bundle(root: Path) -> Path:
    (root / "xai").mkdir(parents=True)
    (root / "model.onnx").write_bytes(os.urandom(50_000))
    (root / "model_metadata.json").write_text('{"name": "m"}')
    (root / "xai" / "shap.json").write_text("[1, 2, 3]")
    (root / "a-b.txt").write_text("dash sorts before slash in strings, not in paths")
    (root / "a").mkdir()
    (root / "a" / "b.txt").write_text("nested")
    return root


def test_multihash_round_trip_and_refusal() -> None:
    """A SHA-256 multihash is '1220'+hex and parses back; other prefixes are refused."""
    digest = hashlib.sha256(b"x").hexdigest()
    assert multihash(digest) == "1220" + digest
    assert parse_multihash(multihash(digest)) == digest
    with pytest.raises(VerificationError, match="multihash"):
        parse_multihash("1e20" + digest, file="item.json", field="file:checksum")


def test_every_file_hashed_with_its_sha256(tmp_path: Path) -> None:
    """Each manifest entry holds the file's plain SHA-256 and size."""
    root = _bundle(tmp_path / "m")
    manifest = hash_directory(root)
    names = [f.name for f in manifest.files]
    assert sorted(names) == sorted(
        ["model.onnx", "model_metadata.json", "xai/shap.json", "a-b.txt", "a/b.txt"]
    )
    for entry in manifest.files:
        data = (root / entry.name).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert entry.size == len(data)
        assert manifest.checksums()[entry.name] == "1220" + entry.sha256


def test_large_file_streamed_in_shards_gives_whole_file_digest(tmp_path: Path) -> None:
    """A file larger than the shard size hashes to the SHA-256 of the whole file."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(10_000) + b"tail")
    digest = sha256_file(path, chunk_size=1024)
    assert digest.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest.size == 10_004


def test_parallel_and_serial_hashing_agree(tmp_path: Path) -> None:
    """Hashing with several threads gives the same manifest as one thread."""
    root = _bundle(tmp_path / "m")
    assert hash_directory(root, workers=4, chunk_size=4096) == hash_directory(root, workers=1)


def test_root_digest_equals_model_signing(tmp_path: Path) -> None:
    """The root digest equals model-signing's subject digest for the same files and order."""
    root = _bundle(tmp_path / "m")
    ours = hash_directory(root)
    key = tmp_path / "key.pem"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signature = tmp_path / "model.sig"
    ms_signing.Config().use_elliptic_key_signer(private_key=key).sign(root, signature)
    bundle = json.loads(signature.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == ours.root_digest
    assert [f.name for f in ours.files][:2] == ["a/b.txt", "a-b.txt"]


def test_rename_keeps_root_digest_but_changes_manifest_digest(tmp_path: Path) -> None:
    """The manifest digest binds names: a rename changes it though the root digest stays."""
    root = _bundle(tmp_path / "m")
    before = hash_directory(root)
    (root / "model.onnx").rename(root / "model2.onnx")
    after = hash_directory(root)
    assert after.root_digest == before.root_digest
    assert after.digest != before.digest


def test_manifest_round_trip_and_canonical_bytes(tmp_path: Path) -> None:
    """to_dict/from_dict round-trips and equal manifests give byte-identical canonical JSON."""
    root = _bundle(tmp_path / "m")
    manifest = hash_directory(root)
    again = Manifest.from_dict(manifest.to_dict())
    assert again == manifest
    assert again.canonical_bytes() == hash_directory(root, workers=1).canonical_bytes()
    reordered = Manifest(files=tuple(reversed(manifest.files)))
    assert reordered.canonical_bytes() == manifest.canonical_bytes()


@pytest.mark.parametrize(
    ("change", "kind", "name"),
    [
        ("flip", "changed", "model.onnx"),
        ("rename", "renamed", "xai/shap.json"),
        ("extra", "extra", "xai/extra.json"),
        ("missing", "missing", "model_metadata.json"),
    ],
)
def test_compare_names_each_discrepancy(tmp_path: Path, change: str, kind: str, name: str) -> None:
    """A flipped byte, a rename, an extra and a missing file are each named."""
    root = _bundle(tmp_path / "m")
    expected = hash_directory(root)
    if change == "flip":
        data = bytearray((root / name).read_bytes())
        data[1234] ^= 0x01
        (root / name).write_bytes(bytes(data))
    elif change == "rename":
        (root / name).rename(root / "xai" / "renamed.json")
    elif change == "extra":
        (root / name).write_text("{}")
    else:
        (root / name).unlink()
    problems = compare_manifests(expected, hash_directory(root))
    assert [(p.kind, p.name) for p in problems] == [(kind, name)]
    with pytest.raises(VerificationError) as caught:
        verify_directory(root, expected)
    assert caught.value.file == name
    assert name in str(caught.value)


def test_git_paths_and_signature_are_not_hashed(tmp_path: Path) -> None:
    """model.sig, integrity.json and git paths are outside the manifest."""
    root = _bundle(tmp_path / "m")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    (root / "model.sig").write_text("{}")
    (root / "integrity.json").write_text("{}")
    names = {f.name for f in hash_directory(root).files}
    assert not names & {".git/HEAD", "model.sig", "integrity.json"}


def test_symlink_is_refused(tmp_path: Path) -> None:
    """A symbolic link inside a hashed directory is an error naming it."""
    root = _bundle(tmp_path / "m")
    (root / "link.onnx").symlink_to(root / "model.onnx")
    with pytest.raises(VerificationError, match="symbolic link") as caught:
        hash_directory(root)
    assert caught.value.file == "link.onnx"


def test_file_names_must_be_relative(tmp_path: Path) -> None:
    """A manifest entry cannot escape its root."""
    with pytest.raises(ValueError, match="relative"):
        FileDigest(name="../etc/passwd", sha256="0" * 64)
    with pytest.raises(ValueError, match="duplicate"):
        Manifest(files=(FileDigest(name="a", sha256="0" * 64),) * 2)
