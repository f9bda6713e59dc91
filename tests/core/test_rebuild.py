"""Rebuilds: describe twice in fresh processes gives byte-identical files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.cli.describe import compare_trees
from core.describe import OUTPUT_FILES


def test_describe_command_writes_every_file(reference_candidate_dir: Path, tmp_path: Path) -> None:
    """kfm describe writes the item and the three PROV serializations and passes its checks."""
    result = CliRunner().invoke(
        app, ["describe", str(reference_candidate_dir), "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUT_FILES)
    assert '"ok": true' in result.output


def test_describe_command_refuses_bad_care_file(
    reference_candidate_dir: Path, tmp_path: Path
) -> None:
    """A --care file that is not {"kfm:care": {...}} is an error, not silently ignored."""
    care = tmp_path / "care.json"
    care.write_text('["not", "an", "object"]', encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "describe",
            str(reference_candidate_dir),
            "--out",
            str(tmp_path / "out"),
            "--care",
            str(care),
        ],
    )
    assert result.exit_code != 0
    assert not (tmp_path / "out" / "model.stac.json").exists()


def test_compare_trees_names_each_differing_file(tmp_path: Path) -> None:
    """A changed file and a file present on one side only are both named."""
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        root.mkdir()
        (root / "same.json").write_text("1", encoding="utf-8")
    (a / "model.stac.json").write_text("1", encoding="utf-8")
    (b / "model.stac.json").write_text("2", encoding="utf-8")
    (b / "extra.ttl").write_text("", encoding="utf-8")
    assert compare_trees(a, b) == ["extra.ttl", "model.stac.json"]
    assert compare_trees(a, a) == []


@pytest.mark.slow
def test_rebuild_check_passes_in_fresh_processes(reference_candidate_dir: Path) -> None:
    """kfm rebuild-check runs describe in two fresh interpreters and finds identical bytes."""
    result = CliRunner().invoke(app, ["rebuild-check", str(reference_candidate_dir)])
    assert result.exit_code == 0, result.output
    assert "byte-identical" in result.output and "(4 files)" in result.output
