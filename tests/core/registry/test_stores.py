"""Local object store: temporary files of a create never end up inside a committed version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.registry import stores
from core.registry.stores import LocalStore
from core.registry.versions import Registry
from core.testing import new_signer, push_version, write_version_dir

PIPELINE = new_signer("pipeline")


class Killed(BaseException):
    """Stands for the process dying: no ``except`` or cleanup of the store runs."""


def _temp_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".tmp" in p.as_posix()
    )


def test_push_interrupted_mid_write_leaves_no_temporary_file_in_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push killed while writing a file, fsck, then the push again: no .tmp file anywhere."""
    root = tmp_path / "registry"
    registry = Registry(LocalStore(root), pipeline_key=PIPELINE.public_key)
    source = write_version_dir(tmp_path / "src")
    real_fsync, calls = os.fsync, {"n": 0}

    def dying_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed
        real_fsync(fd)

    monkeypatch.setattr(stores.os, "fsync", dying_fsync)
    with pytest.raises(Killed):
        push_version(registry, "1.0.0", source, PIPELINE)
    monkeypatch.setattr(stores.os, "fsync", real_fsync)
    assert registry.list() == []
    assert not any(p.name.startswith(".tmp") for p in (root / "climate").rglob("*"))
    report = registry.fsck()
    assert report.leftovers == ("1.0.0",)
    assert _temp_files(root) == []
    push_version(registry, "1.0.0", source, PIPELINE)
    assert _temp_files(root) == []
    assert registry.verify("1.0.0").ok


def test_fsck_removes_temporary_files_an_older_release_left_in_a_version(tmp_path: Path) -> None:
    """A .tmp-* file left inside a committed version by an interrupted write is removed."""
    root = tmp_path / "registry"
    registry = Registry(LocalStore(root), pipeline_key=PIPELINE.public_key)
    push_version(registry, "1.0.0", write_version_dir(tmp_path / "src"), PIPELINE)
    stray = root / "climate" / "models" / "1.0.0" / ".tmp-0123abcd-model.onnx"
    stray.write_bytes(b"half")
    assert registry.fsck(dry_run=True).temporary_files == (f"climate/models/1.0.0/{stray.name}",)
    assert stray.exists()
    report = registry.fsck()
    assert report.temporary_files == (f"climate/models/1.0.0/{stray.name}",)
    assert _temp_files(root) == []
    assert registry.verify("1.0.0").ok
