"""PROV-JSON to DOT: every record becomes a node, every relation an edge, deterministically."""

from __future__ import annotations

import json
from pathlib import Path

from core.provgraph import prov_to_dot


def test_training_prov_becomes_a_graph(reference_candidate_dir: Path) -> None:
    """The reference training record draws entities, activities, agents and their relations."""
    doc = json.loads((reference_candidate_dir / "provenance" / "training.prov.json").read_text())
    dot = prov_to_dot(doc)
    assert dot.startswith('digraph "lineage" {')
    for kind in ("entity", "activity", "agent"):
        for node in doc[kind]:
            assert f'"{node}" [label=' in dot
    edges = [line for line in dot.splitlines() if "->" in line]
    relations = sum(
        len(doc.get(k, {}))
        for k in (
            "used",
            "wasGeneratedBy",
            "wasDerivedFrom",
            "wasAssociatedWith",
            "wasAttributedTo",
        )
    )
    assert len(edges) == relations
    assert prov_to_dot(doc) == dot


def test_quotes_in_labels_are_escaped() -> None:
    """Labels with quotes cannot break the DOT syntax."""
    doc = {"entity": {"kfm:x": {"prov:label": 'a "quoted" name'}}}
    assert '\\"quoted\\"' in prov_to_dot(doc)
