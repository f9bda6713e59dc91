"""The registry layout is defined once and agrees with the stages that write its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.describe import stac
from core.errors import RegistryError
from core.registry import layout
from core.registry.versions import Registry, collect_layout
from core.signing import bundle
from core.testing import MemoryStore, new_signer, push_version, write_version_dir


def test_file_names_are_the_writing_stages_names() -> None:
    """model.sig, integrity.json, the STAC item and the lineage are named as their stages write them."""
    assert layout.SIGNATURE_FILE == bundle.SIGNATURE_FILE == stac.SIGNATURE_FILE
    assert layout.INTEGRITY_FILE == bundle.INTEGRITY_FILE == stac.INTEGRITY_FILE
    assert layout.ITEM_FILE == stac.ITEM_FILE
    assert layout.PROVENANCE_FILE == stac.PROVENANCE_FILE


def test_stage_sources_cover_exactly_what_a_push_accepts() -> None:
    """Candidate files, signature, deploy outputs: together exactly the files a push accepts."""
    staged = [
        *layout.CANDIDATE_FILES,
        *layout.CANDIDATE_DIRS,
        layout.SIGNATURE_FILE,
        layout.INTEGRITY_FILE,
        *layout.DEPLOY_OUTPUTS,
    ]
    accepted = [*layout.REQUIRED_FILES, *layout.OPTIONAL_FILES, *layout.OPTIONAL_DIRS]
    assert len(staged) == len(set(staged)) and len(accepted) == len(set(accepted))
    assert set(staged) == set(accepted)


def test_keys_of_a_version() -> None:
    """A version's files live under climate/models/<v>/ and its marker at climate/index/<v>.json."""
    assert layout.version_key("1.2.0", "xai/a.json") == "climate/models/1.2.0/xai/a.json"
    assert layout.version_prefix("1.2.0") == "climate/models/1.2.0"
    assert layout.index_key("1.2.0") == "climate/index/1.2.0.json"


def test_registry_manifest_records_the_layout(tmp_path: Path) -> None:
    """The first push writes climate/registry.json naming every layout file and folder."""
    store, pipeline = MemoryStore(), new_signer("pipeline")
    registry = Registry(store, pipeline_key=pipeline.public_key)
    push_version(registry, "1.0.0", write_version_dir(tmp_path / "v"), pipeline)
    body = json.loads(store.read(layout.REGISTRY_MANIFEST))
    assert body == {"format": layout.REGISTRY_FORMAT, "layout": layout.layout_summary()}
    for name in (*layout.REQUIRED_FILES, *layout.OPTIONAL_FILES):
        assert name in body["layout"]["models"]
    for folder in layout.OPTIONAL_DIRS:
        assert f"{folder}/*" in body["layout"]["models"]


def test_collect_layout_refuses_a_name_outside_the_layout(tmp_path: Path) -> None:
    """A file the layout does not name is refused, naming it and the accepted names."""
    source = write_version_dir(tmp_path / "v")
    (source / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(RegistryError, match="unexpected entry") as info:
        collect_layout(source)
    assert info.value.found == "notes.txt"
    assert layout.SIGNATURE_FILE in str(info.value.expected)
