"""A PROV-JSON document drawn as a Graphviz DOT graph (for the dashboard's lineage page).

Entities are ellipses and activities boxes, as in the W3C PROV primer's figures; each activity's
agents (pipeline, reviewers) are named in its label ("by ..."). Edges carry the relation name and
point from the later record to the earlier one, as PROV does.
The output is deterministic (sorted) so the same document always gives the same graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NODE_STYLE = {
    "entity": 'shape=ellipse style=filled fillcolor="#fff7c2"',
    "activity": 'shape=box style=filled fillcolor="#cfe2ff"',
    "agent": 'shape=house style=filled fillcolor="#ffd8b1"',
}
# relation -> (from-role, to-role, label)
RELATIONS = {
    "used": ("prov:activity", "prov:entity", "used"),
    "wasGeneratedBy": ("prov:entity", "prov:activity", "wasGeneratedBy"),
    "wasDerivedFrom": ("prov:generatedEntity", "prov:usedEntity", "wasDerivedFrom"),
    "wasAssociatedWith": ("prov:activity", "prov:agent", "wasAssociatedWith"),
    "wasAttributedTo": ("prov:entity", "prov:agent", "wasAttributedTo"),
    "wasInformedBy": ("prov:informed", "prov:informant", "wasInformedBy"),
    "actedOnBehalfOf": ("prov:delegate", "prov:responsible", "actedOnBehalfOf"),
}


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


MAX_LABEL = 32
AGENT_RELATIONS = ("wasAssociatedWith", "wasAttributedTo", "actedOnBehalfOf")


def _label(node_id: str, attrs: Mapping[str, Any]) -> str:
    """A short, readable label: the PROV label (trimmed) over the id's last path segment."""
    label = attrs.get("prov:label")
    if isinstance(label, dict):
        label = label.get("$")
    tail = node_id.split(":", 1)[-1].rstrip("/").rsplit("/", 1)[-1]
    if not label:
        return tail
    text = str(label)
    text = text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"
    return f"{text}\n{tail}" if tail and tail not in text else text


def prov_to_dot(document: Mapping[str, Any], *, title: str = "lineage") -> str:
    """DOT source for a PROV-JSON document (nested bundles are flattened)."""
    records: dict[str, dict[str, Any]] = {}
    for kind in (*NODE_STYLE, *RELATIONS):
        merged: dict[str, Any] = dict(document.get(kind, {}) or {})
        for bundle in (document.get("bundle") or {}).values():
            merged.update(bundle.get(kind, {}) or {})
        records[kind] = merged
    lines = [
        f"digraph {_quote(title)} {{",
        "  rankdir=TB;",
        "  nodesep=0.2;",
        "  ranksep=0.3;",
        '  node [fontname="Helvetica" fontsize=10];',
        '  edge [fontname="Helvetica" fontsize=8 color="#555555"];',
    ]
    # Agents are written into the label of the activities they are associated with ("by ..."),
    # not drawn as nodes: every stage and decision has one, and their edges would cross the graph.
    agents: dict[str, list[str]] = {}
    for rel in records["wasAssociatedWith"].values():
        for item in rel if isinstance(rel, list) else [rel]:
            activity, agent = item.get("prov:activity"), item.get("prov:agent")
            if activity and agent:
                agents.setdefault(activity, []).append(
                    _label(agent, _first(records["agent"].get(agent)))
                )
    for kind in ("entity", "activity"):
        for node_id in sorted(records[kind]):
            label = _label(node_id, _first(records[kind][node_id]))
            names = sorted({a for a in agents.get(node_id, []) if a.split("\n")[0] not in label})
            if names:
                label += "\nby " + ", ".join(names).replace("\n", " ")
            lines.append(f"  {_quote(node_id)} [label={_quote(label)} {NODE_STYLE[kind]}];")
    for kind, (src_role, dst_role, label) in RELATIONS.items():
        if kind in AGENT_RELATIONS:
            continue
        for rel_id in sorted(records[kind]):
            rel = records[kind][rel_id]
            for item in rel if isinstance(rel, list) else [rel]:
                src, dst = item.get(src_role), item.get(dst_role)
                if src and dst:
                    lines.append(f"  {_quote(src)} -> {_quote(dst)} [label={_quote(label)}];")
    # Stack activities in time order (later above earlier, like the PROV edges), so a long
    # chain of stages and decisions reads top to bottom instead of spreading into one wide row.
    timed = sorted(
        (str(_first(attrs).get("prov:startTime", "")), node_id)
        for node_id, attrs in records["activity"].items()
        if _first(attrs).get("prov:startTime")
    )
    for (_, earlier), (_, later) in zip(timed, timed[1:], strict=False):
        lines.append(f"  {_quote(later)} -> {_quote(earlier)} [style=invis weight=4];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _first(attrs: Any) -> Mapping[str, Any]:
    """PROV-JSON allows a record id to map to a list of records: take the first."""
    if isinstance(attrs, list):
        return attrs[0] if attrs else {}
    return attrs or {}
