"""Signed version records: the registry acts only on records the pipeline key signed."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import rfc8785

from core.errors import RegistryError
from core.registry.layout import INDEX, MODELS, REGISTRY_MANIFEST
from core.registry.records import RecordVerificationError, VersionRecord, version_record_bytes
from core.registry.versions import Registry
from core.testing import (
    TEST_FOOTPRINT,
    MemoryStore,
    new_signer,
    push_version,
    write_version_dir,
)

PIPELINE = new_signer("pipeline")
STRANGER = new_signer("pipeline")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """A registry holding 1.0.0 (submitted by dev, concerning steward sam)."""
    reg = Registry(MemoryStore(), pipeline_key=PIPELINE.public_key)
    push_version(
        reg, "1.0.0", write_version_dir(tmp_path / "v"), PIPELINE, concerned_stewards=["sam"]
    )
    return reg


def _edit_payload(registry: Registry, version: str, **changes: object) -> None:
    """Rewrite the record inside the envelope (what an attacker without the key can do)."""
    key = f"{INDEX}/{version}.json"
    envelope = json.loads(registry.store.read(key))
    record = json.loads(base64.b64decode(envelope["payload"]))
    record.update(changes)
    envelope["payload"] = base64.b64encode(rfc8785.dumps(record)).decode()
    registry.store.write(key, json.dumps(envelope).encode())


def test_signed_record_reads_back_equal(registry: Registry) -> None:
    """The stored envelope reads back as the pushed record, footprint and family included."""
    record = registry.show("1.0.0")
    assert record.format == 2 and record.footprint == TEST_FOOTPRINT
    assert record.concerned_stewards == ("sam",) and record.submitter == "dev"
    fresh = Registry(registry.store, pipeline_key=PIPELINE.public_key)
    assert fresh.show("1.0.0") == record
    assert VersionRecord.model_validate_json(record.payload_bytes()) == record


@pytest.mark.parametrize(
    "changes", [{"concerned_stewards": []}, {"submitter": "mallory"}, {"footprint": [0, 0, 1, 1]}]
)
def test_edited_record_is_refused_everywhere(registry: Registry, changes: dict) -> None:
    """Emptying the stewards or changing the submitter is caught by show, verify and fsck."""
    _edit_payload(registry, "1.0.0", **changes)
    with pytest.raises(RecordVerificationError, match="signature does not verify"):
        registry.show("1.0.0")
    report = registry.verify("1.0.0")
    assert not report.ok and report.checked == 0
    assert report.problems[0].startswith("climate/index/1.0.0.json: ")
    fsck = registry.fsck()
    assert [u.split(":")[0] for u in fsck.unverified] == ["1.0.0"]
    with pytest.raises(RecordVerificationError):
        registry.read_file("1.0.0", "model.onnx")


def test_record_resigned_by_a_stranger_is_refused(registry: Registry) -> None:
    """A record signed by any key but the pipeline's is refused, naming the expected key."""
    forged = registry.show("1.0.0").model_copy(update={"concerned_stewards": ()})
    registry.store.write(f"{INDEX}/1.0.0.json", version_record_bytes(forged, STRANGER))
    with pytest.raises(RecordVerificationError, match="not signed by the pipeline key") as caught:
        registry.show("1.0.0")
    assert PIPELINE.fingerprint in str(caught.value.expected)


def test_swapped_model_with_a_rewritten_index_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    """Replacing model.onnx and rewriting the index to match fails verify and every read."""
    swapped = b"ONNX another valid model"
    registry.store.write(f"{MODELS}/1.0.0/model.onnx", swapped)
    with pytest.raises(RegistryError, match="does not match the version's signed record"):
        registry.read_file("1.0.0", "model.onnx")
    assert "model.onnx: sha256" in "\n".join(registry.verify("1.0.0").problems)
    record = registry.show("1.0.0")
    files = [
        f.model_copy(update={"sha256": hashlib.sha256(swapped).hexdigest()})
        if f.name == "model.onnx"
        else f
        for f in record.manifest.files
    ]
    _edit_payload(
        registry,
        "1.0.0",
        manifest=json.loads(
            record.manifest.model_copy(update={"files": tuple(files)}).model_dump_json()
        ),
    )
    assert not registry.verify("1.0.0").ok
    with pytest.raises(RecordVerificationError):
        registry.read_file("1.0.0", "model.onnx")


def test_record_copied_under_another_version_is_refused(registry: Registry, tmp_path: Path) -> None:
    """A validly signed record of 1.0.0 stored as 1.1.0's index is about another version."""
    registry.store.write(f"{INDEX}/1.1.0.json", registry.store.read(f"{INDEX}/1.0.0.json"))
    with pytest.raises(RecordVerificationError, match="about another version") as caught:
        registry.show("1.1.0")
    assert (caught.value.expected, caught.value.found) == ("1.1.0", "1.0.0")


def test_unsigned_record_of_an_older_registry_is_refused_with_advice(tmp_path: Path) -> None:
    """A format-1 (unsigned) record says the registry predates signed records."""
    store = MemoryStore()
    store.create(f"{INDEX}/1.0.0.json", json.dumps({"format": 1, "version": "1.0.0"}).encode())
    registry = Registry(store, pipeline_key=PIPELINE.public_key)
    with pytest.raises(RecordVerificationError, match="predates signed version records") as caught:
        registry.show("1.0.0")
    assert "format 2" in (caught.value.hint or "")
    store.create(REGISTRY_MANIFEST, json.dumps({"format": 1}).encode())
    with pytest.raises(RegistryError, match="predates signed version records"):
        push_version(registry, "2.0.0", write_version_dir(tmp_path / "v"), PIPELINE)
    assert store.list(MODELS) == []


def test_push_signed_by_an_untrusted_key_writes_nothing(tmp_path: Path) -> None:
    """A push signed with another key than the registry's pipeline key is refused up front."""
    store = MemoryStore()
    registry = Registry(store, pipeline_key=PIPELINE.public_key)
    with pytest.raises(RegistryError, match="does not trust") as caught:
        push_version(registry, "1.0.0", write_version_dir(tmp_path / "v"), STRANGER)
    assert STRANGER.fingerprint in str(caught.value.found)
    assert store.list("climate") == []
