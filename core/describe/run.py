"""The describe stage end to end: candidate → item + lineage → files → checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prov.model import ProvDocument

from core.candidate.load import Candidate
from core.describe.checks import Finding, describe_findings
from core.describe.lineage import (
    StageRecord,
    candidate_stages,
    lineage_document,
    prov_json,
    prov_n,
    prov_turtle,
)
from core.describe.stac import ITEM_FILE, PROVENANCE_FILE, build_item, item_json
from core.errors import DescribeError

PROVN_FILE = "provenance.provn"
TURTLE_FILE = "provenance.ttl"
OUTPUT_FILES = (ITEM_FILE, PROVENANCE_FILE, PROVN_FILE, TURTLE_FILE)


@dataclass(frozen=True)
class Description:
    """What describe produced: the item, the lineage and their serializations by file name."""

    item: dict[str, Any]
    document: ProvDocument
    texts: dict[str, str]

    def write(self, out: Path) -> list[Path]:
        """Write every file into ``out`` (created if needed); returns the paths in order."""
        try:
            out.mkdir(parents=True, exist_ok=True)
            paths = []
            for name in OUTPUT_FILES:
                path = out / name
                path.write_bytes(self.texts[name].encode("utf-8"))
                paths.append(path)
        except OSError as error:
            raise DescribeError(
                "cannot write the describe outputs",
                file=str(out),
                expected="a writable folder",
                found=f"{type(error).__name__}: {error.strerror or error}",
            ) from error
        return paths

    def findings(self, roots: Path | Sequence[Path]) -> list[Finding]:
        """Every describe check, resolving asset files in ``roots`` (first match wins)."""
        return describe_findings(self.item, self.document, roots)


def describe_candidate(
    candidate: Candidate,
    *,
    stages: Sequence[StageRecord] = (),
    care_extra: Mapping[str, Any] | None = None,
) -> Description:
    """Build the lineage (candidate stages plus ``stages``) and the STAC item; writes nothing."""
    document = lineage_document(candidate, candidate_stages(candidate, stages))
    provenance = prov_json(document)
    item = build_item(candidate, provenance_json=provenance.encode("utf-8"), care_extra=care_extra)
    texts = {
        ITEM_FILE: item_json(item),
        PROVENANCE_FILE: provenance,
        PROVN_FILE: prov_n(document),
        TURTLE_FILE: prov_turtle(document),
    }
    return Description(item=item, document=document, texts=texts)
