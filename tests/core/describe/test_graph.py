"""PROV-JSON to DOT: every record becomes a node, every relation an edge, deterministically."""

from __future__ import annotations

import json
from pathlib import Path

from core.describe.graph import prov_to_dot


def test_training_prov_becomes_a_graph(reference_candidate_dir: Path) -> None:
    """The reference training record draws entities, activities, agents and their relations."""
    doc = json.loads((reference_candidate_dir / "provenance" / "training.prov.json").read_text())
    dot = prov_to_dot(doc)
    assert dot.startswith('digraph "lineage" {')
    for kind in ("entity", "activity"):
        for node in doc[kind]:
            assert f'"{node}" [label=' in dot
    assert "by KFM pipeline" in dot  # the training's agent, named in its label
    edges = [line for line in dot.splitlines() if "->" in line and "style=invis" not in line]
    relations = sum(
        len(doc.get(k, {}))
        for k in (
            "used",
            "wasGeneratedBy",
            "wasDerivedFrom",
        )
    )
    assert len(edges) == relations
    assert prov_to_dot(doc) == dot


def test_quotes_in_labels_are_escaped() -> None:
    """Labels with quotes cannot break the DOT syntax."""
    doc = {"entity": {"kfm:x": {"prov:label": 'a "quoted" name'}}}
    assert '\\"quoted\\"' in prov_to_dot(doc)


def test_activities_are_stacked_in_time_order(reference_candidate_dir: Path) -> None:
    """Invisible layout edges chain the activities from the latest down to the earliest."""
    doc = json.loads((reference_candidate_dir / "provenance" / "training.prov.json").read_text())
    layout = [line for line in prov_to_dot(doc).splitlines() if "style=invis" in line]
    assert len(layout) == len(doc["activity"]) - 1
    assert any(
        "/training" in line.split("->")[0] and "/coarsen" in line.split("->")[1] for line in layout
    )
