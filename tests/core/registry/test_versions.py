"""Registry: immutable versions, commit marker last, verify and fsck."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import rfc8785

from core.errors import RegistryError
from core.registry.layout import INDEX, MODELS
from core.registry.stores import LocalStore, ObjectStore, open_store
from core.registry.versions import Registry, VersionRecord, check_version, version_sort_key
from core.testing import MemoryStore, new_signer, push_version, write_version_dir

PIPELINE = new_signer("pipeline")


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """A local directory store and the in-memory fake: both must behave the same."""
    return LocalStore(tmp_path / "registry") if request.param == "local" else MemoryStore()


def registry_of(store: ObjectStore) -> Registry:
    """A registry over ``store`` trusting the test pipeline key."""
    return Registry(store, pipeline_key=PIPELINE.public_key)


def push(registry: Registry, tmp: Path, version: str, seed: str | None = None) -> VersionRecord:
    source = write_version_dir(tmp / f"src-{version}-{seed}", seed=seed or version)
    return push_version(registry, version, source, PIPELINE, concerned_stewards=["sam"])


def test_push_show_list_roundtrip(store: ObjectStore, tmp_path: Path) -> None:
    """A pushed version is listed, its record reads back equal and every file verifies."""
    registry = registry_of(store)
    record = push(registry, tmp_path, "1.0.0")
    push(registry, tmp_path, "1.10.0")
    push(registry, tmp_path, "1.2.0")
    assert registry.list() == ["1.0.0", "1.2.0", "1.10.0"]
    assert registry.show("1.0.0") == record
    names = [f.name for f in record.manifest.files]
    assert {"model.onnx", "model.sig", "gates.json", "xai/summary.json"} <= set(names)
    assert registry.verify("1.0.0").ok
    assert registry.read_file("1.0.0", "model.onnx").startswith(b"ONNX")
    assert store.exists("climate/registry.json")


def test_record_digest_is_recomputable_from_the_stored_record(
    store: ObjectStore, tmp_path: Path
) -> None:
    """The record digest is SHA-256 of the signed payload: the RFC 8785 form of the record."""
    registry = registry_of(store)
    record = push(registry, tmp_path, "1.0.0")
    envelope = json.loads(store.read(f"{INDEX}/1.0.0.json"))
    assert envelope["payloadType"] == "application/vnd.kfm.version+json"
    payload = base64.b64decode(envelope["payload"])
    assert payload == rfc8785.dumps(json.loads(payload))
    assert record.digest == hashlib.sha256(payload).hexdigest()
    assert registry.show("1.0.0").digest == record.digest


def test_second_push_of_same_version_is_refused(store: ObjectStore, tmp_path: Path) -> None:
    """A version is written once; a second push is refused and changes nothing."""
    registry = registry_of(store)
    push(registry, tmp_path, "1.0.0")
    before = {k: store.read(k) for k in store.list("climate")}
    with pytest.raises(RegistryError, match="written once") as info:
        push(registry, tmp_path, "1.0.0", seed="other")
    assert info.value.found == "1.0.0"
    assert {k: store.read(k) for k in store.list("climate")} == before


def test_bad_source_leaves_registry_untouched(store: ObjectStore, tmp_path: Path) -> None:
    """A source missing model.sig or with a stray file is refused before any write."""
    registry = registry_of(store)
    source = write_version_dir(tmp_path / "bad")
    (source / "model.sig").unlink()
    with pytest.raises(RegistryError, match="lacks required files") as info:
        push_version(registry, "1.0.0", source, PIPELINE)
    assert info.value.field == "model.sig"
    source = write_version_dir(tmp_path / "stray")
    (source / "notes.txt").write_text("hi")
    with pytest.raises(RegistryError, match="unexpected entry"):
        push_version(registry, "1.0.0", source, PIPELINE)
    with pytest.raises(RegistryError, match="invalid version"):
        push_version(registry, "latest", write_version_dir(tmp_path / "ok"), PIPELINE)
    assert store.list("climate") == []


def test_uncommitted_version_is_invisible_and_fsck_removes_it(
    store: ObjectStore, tmp_path: Path
) -> None:
    """Files without a commit marker are never listed; fsck removes them; push then works."""
    registry = registry_of(store)
    push(registry, tmp_path, "1.0.0")
    store.create(f"{MODELS}/2.0.0/model.onnx", b"half")
    assert registry.list() == ["1.0.0"]
    with pytest.raises(RegistryError, match="interrupted push"):
        push(registry, tmp_path, "2.0.0")
    dry = registry.fsck(dry_run=True)
    assert dry.leftovers == ("2.0.0",) and store.exists(f"{MODELS}/2.0.0/model.onnx")
    report = registry.fsck()
    assert report.leftovers == ("2.0.0",) and report.removed_objects == 1
    assert not store.exists(f"{MODELS}/2.0.0/model.onnx")
    push(registry, tmp_path, "2.0.0")
    assert registry.list() == ["1.0.0", "2.0.0"]


def test_verify_detects_tampered_missing_and_extra_files(
    store: ObjectStore, tmp_path: Path
) -> None:
    """Editing, deleting or adding a stored file is reported by verify and fsck."""
    registry = registry_of(store)
    push(registry, tmp_path, "1.0.0")
    store.write(f"{MODELS}/1.0.0/model.onnx", b"evil")
    store.delete(f"{MODELS}/1.0.0/gates.json")
    store.write(f"{MODELS}/1.0.0/extra.bin", b"x")
    report = registry.verify("1.0.0")
    text = "\n".join(report.problems)
    assert not report.ok
    assert "model.onnx: sha256" in text and "gates.json: missing" in text
    assert "extra.bin: extra file" in text
    assert registry.fsck().damaged == ("1.0.0",)


def test_show_unknown_version_names_it(store: ObjectStore) -> None:
    """Asking for a version that was never pushed is a clear error."""
    with pytest.raises(RegistryError, match="no such version") as info:
        registry_of(store).show("9.9.9")
    assert info.value.found == "9.9.9"


def test_malformed_index_record_is_reported(store: ObjectStore, tmp_path: Path) -> None:
    """A corrupted commit record is refused with its key named."""
    store.create(f"{INDEX}/1.0.0.json", b"{not json")
    with pytest.raises(RegistryError, match="not JSON") as info:
        registry_of(store).show("1.0.0")
    assert "1.0.0.json" in (info.value.file or "")


def test_open_store_picks_implementation(tmp_path: Path) -> None:
    """Plain paths and file:// are local directories."""
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    with pytest.raises(RegistryError, match="invalid object key"):
        LocalStore(tmp_path).read("../etc/passwd")


def test_rollback_files_are_create_once(store: ObjectStore) -> None:
    """Rollback reports are never overwritten."""
    registry = registry_of(store)
    registry.write_rollback("rb-1", {"rollback_report.json": b"{}"})
    with pytest.raises(RegistryError, match="already exists"):
        registry.write_rollback("rb-1", {"rollback_report.json": b"{}"})


def test_versions_sort_in_release_order() -> None:
    """Pre-releases come before their release, 1.2.10 after 1.2.9, non-versions last."""
    names = ["1.10.0", "1.2.10", "1.0.0", "1.0.0-rc1", "1.2.9", "v1.0.0", "1.0.0-beta.2", "junk"]
    assert sorted(names, key=version_sort_key) == [
        "1.0.0-beta.2",
        "1.0.0-rc1",
        "1.0.0",
        "v1.0.0",
        "1.2.9",
        "1.2.10",
        "1.10.0",
        "junk",
    ]


def test_registry_lists_pre_release_before_release(store: ObjectStore, tmp_path: Path) -> None:
    """A pushed release candidate is listed before its release and after the previous one."""
    registry = registry_of(store)
    for version in ("1.10.0", "1.0.0", "1.0.0-rc1", "0.9.0"):
        push(registry, tmp_path, version)
    assert registry.list() == ["0.9.0", "1.0.0-rc1", "1.0.0", "1.10.0"]


@pytest.mark.parametrize("version", ["١.٢.٣", "1.2.٥", "1.2.3-rc٥", "１.2.3"])
def test_unicode_digits_are_refused(version: str) -> None:
    """Digits of other scripts are refused with an error naming the version, not a crash."""
    with pytest.raises(RegistryError, match="invalid version") as caught:
        check_version(version)
    assert caught.value.found == version
    assert "ASCII" in str(caught.value.expected)


@pytest.mark.parametrize("version", ["1.2.3\n", "1.2", "1.2.3-", "../1.2.3", "1.2.3/x"])
def test_malformed_versions_are_refused(version: str) -> None:
    """A trailing newline, a missing part, an empty suffix or a path are refused."""
    with pytest.raises(RegistryError, match="invalid version"):
        check_version(version)


def test_unorderable_suffix_is_refused_at_push(store: ObjectStore, tmp_path: Path) -> None:
    """A suffix PEP 440 cannot order is refused before anything is written."""
    registry = registry_of(store)
    with pytest.raises(RegistryError, match="cannot be ordered") as caught:
        push(registry, tmp_path, "1.0.0-foo")
    assert caught.value.found == "1.0.0-foo"
    assert registry.list() == []
    for version in ("1.2.0-rc1", "1.2.0-beta.2", "1.2.0.post1", "1.2.0-dev", "v1.2.0"):
        assert check_version(version) == version
