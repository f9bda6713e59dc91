"""``kfm deploy``: load → gates → sign → sovereignty → describe → push → register, end to end.

Each stage is the owning module's public function; this module only orders them, stages the
registry layout in a temporary folder and stops at the first stage that refuses:

1. load — :func:`core.candidate.load.load_candidate`;
2. gates — :func:`core.gates.run_gates` with the workspace policy and regions; a blocked
   report stops here: nothing is pushed and nothing is appended (``gates.json`` is still
   returned so the submitter sees why);
3. sign — :func:`core.signing.bundle.sign_model` with the pipeline key, on a private copy of the
   candidate (the candidate directory is never modified);
4. sovereignty — :func:`core.sovereignty.screen.screen_candidate`, the H3 screen of the model's outputs
   (``published.geojson``, ``report.json``, ``sovereignty_conflict.json``, ``care.json``) and
   the stewards whose regions the footprint touches; it runs before describe so the STAC item
   carries the CARE block (DESIGN lists describe first; the item needs the screen's result);
5. describe — :func:`core.describe.describe_candidate` (``model.stac.json``, ``provenance.json``)
   with the lineage of validation, signing, screening and push
   (:func:`core.describe.stages.deployment_stages`, derived times so rebuilds are byte-stable;
   the real times are in the ledger and the registry record);
6. push — :meth:`core.registry.versions.Registry.push` (``climate/models/<version>/...``);
7. register — :meth:`core.decisions.engine.DecisionEngine.register` appends the signed
   ``gates-attested`` and ``registered`` records.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.candidate.load import Candidate, load_candidate
from core.decisions.engine import DecisionEngine
from core.decisions.ledger import LedgerEntry
from core.errors import KfmError
from core.jsonio import dumps
from core.policy import Policy
from core.registry.versions import VersionRecord
from core.sovereignty.regions import load_regions
from core.sovereignty.screen import DEFAULT_RESOLUTION_DEG

Progress = Callable[[str], None]


class DeployError(KfmError):
    """A deployment stage refused the candidate."""


@dataclass(frozen=True)
class DeployOutcome:
    """What a deployment did; ``pushed`` is ``None`` when the gates blocked it."""

    version: str
    gates: dict[str, Any]
    pushed: VersionRecord | None = None
    entries: tuple[LedgerEntry, ...] = ()
    concerned_stewards: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        return self.pushed is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "blocked": self.blocked,
            "gates": {
                "passed": self.gates.get("passed"),
                "blocking": list(self.gates.get("blocking_gates", [])),
            },
            "registry_files": None
            if self.pushed is None
            else [f.name for f in self.pushed.manifest.files],
            "concerned_stewards": list(self.concerned_stewards),
            "ledger": [e.to_dict() for e in self.entries],
        }


def deploy_candidate(
    directory: Path,
    *,
    engine: DecisionEngine,
    policy: Policy,
    regions_path: Path,
    submitter: str,
    progress: Progress | None = None,
    screen_resolution_deg: float = DEFAULT_RESOLUTION_DEG,
) -> DeployOutcome:
    """Run every stage on ``directory``; see the module docstring for the order."""
    from core.gates import run_gates
    from core.signing.bundle import sign_model
    from core.sovereignty.screen import screen_candidate

    say = progress or (lambda _message: None)
    if engine.roster.entry(submitter) is None:
        raise DeployError(
            "submitter is not on the roster",
            field="--as",
            expected=sorted(r.id for r in engine.roster.roster.reviewers),
            found=submitter,
        )
    say("load")
    candidate = load_candidate(directory)
    version = candidate.metadata.version
    if engine.registry.exists(version):
        raise DeployError(
            "version already in the registry; a version is written once",
            file=str(directory / "model_metadata.json"),
            field="version",
            expected="a version not yet pushed",
            found=version,
            hint="bump the version in model_metadata.json",
        )
    regions = load_regions(regions_path)
    say("gates")
    report = run_gates(candidate, policy, regions=regions)
    gates_text = dumps(report.to_dict())
    if not report.passed:
        return DeployOutcome(version=version, gates=report.to_dict())
    with tempfile.TemporaryDirectory(prefix="kfm-deploy-") as work:
        signed = Path(work) / "signed"
        shutil.copytree(candidate.root, signed, symlinks=True)
        say("sign")
        sign_model(signed, engine._require_pipeline())
        stage = Path(work) / "version"
        stage.mkdir()
        say("sovereignty")
        screened = screen_candidate(
            candidate, regions, policy.screening, resolution_deg=screen_resolution_deg
        )
        screened.write(stage / "sovereignty")
        stewards = list(screened.concerned_stewards)
        say("describe")
        # The signed copy is described, so the item carries the signature asset and integrity block.
        _describe(load_candidate(signed), screened.care, stage, gates_text, signed / "model.sig")
        _layout(signed, stage, gates_text)
        say("push")
        record = engine.registry.push(
            version,
            stage,
            name=candidate.metadata.name,
            submitter=submitter,
            concerned_stewards=stewards,
        )
    say("register")
    entries = engine.register(record, gates_json=gates_text.encode("utf-8"))
    return DeployOutcome(
        version=version,
        gates=report.to_dict(),
        pushed=record,
        entries=tuple(entries),
        concerned_stewards=tuple(stewards),
    )


def _layout(signed: Path, stage: Path, gates_text: str) -> None:
    """Copy the registry files from the signed candidate into the staging folder."""
    shutil.copyfile(signed / "model.onnx", stage / "model.onnx")
    shutil.copyfile(signed / "model.sig", stage / "model.sig")
    (stage / "gates.json").write_text(gates_text, encoding="utf-8")
    for name in ("model_metadata.json", "model_summary.json", "integrity.json"):
        shutil.copyfile(signed / name, stage / name)
    for folder in ("xai", "telemetry", "data", "provenance"):
        if (signed / folder).is_dir():
            shutil.copytree(signed / folder, stage / folder)


def _describe(
    candidate: Candidate, care: dict[str, Any], stage: Path, gates_text: str, signature: Path
) -> None:
    """Describe with the lineage of every stage so far (validation, signing, screening, push)."""
    from core.describe import describe_candidate
    from core.describe.stac import ITEM_FILE, PROVENANCE_FILE
    from core.describe.stages import deployment_stages

    stages = deployment_stages(
        candidate,
        gates_json=gates_text.encode("utf-8"),
        signature=signature,
        screen_dir=stage / "sovereignty",
    )
    description = describe_candidate(candidate, stages=stages, care_extra=care)
    (stage / "model.stac.json").write_text(description.texts[ITEM_FILE], encoding="utf-8")
    (stage / "provenance.json").write_text(description.texts[PROVENANCE_FILE], encoding="utf-8")
