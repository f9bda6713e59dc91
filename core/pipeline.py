"""The pipeline: stage a version once, for ``kfm deploy`` and for ``kfm ci``.

:func:`stage_version` is the one place a version is staged; each stage is the owning module's
public function and this module only orders them and lays out their outputs:

1. load — :func:`core.candidate.load.load_candidate` (the caller loads; ``kfm deploy`` checks the
   version is new before anything runs);
2. gates — :func:`core.gates.run_gates` with the policy and regions (``gates.json``); when the
   pipeline key is given and the report is blocked, staging stops here: the pipeline key never
   signs a candidate the gates refused;
3. sign — :func:`core.signing.bundle.sign_model` with the pipeline key, on a private copy of the
   candidate (``signed/``; the candidate directory is never modified). Unsigned stagings lay out
   a signature made elsewhere for this candidate (a registry version's ``model.sig``) or the
   candidate's own, when it has one;
4. sovereignty — :func:`core.sovereignty.screen.screen_candidate`, the H3 screen of the model's
   outputs (``published.geojson``, ``report.json``, ``sovereignty_conflict.json``, ``care.json``)
   and the stewards whose regions the footprint touches; it runs before describe so the STAC item
   carries the CARE block (DESIGN lists describe first; the item needs the screen's result);
5. describe — :func:`core.describe.describe_candidate` on the signed copy (so the item carries
   the signature asset and integrity block) with the lineage of validation, signing, screening
   and push (:func:`core.describe.stages.deployment_stages`, derived times so rebuilds are
   byte-stable; the real times are in the ledger and the registry record);
6. layout — the registry layout (:mod:`core.registry.layout`) in ``layout/``.

Staging folder::

    layout/    the version's files, ready for Registry.push
    describe/  model.stac.json, provenance.json, provenance.provn, provenance.ttl
    signed/    the signed copy of the candidate (signed stagings only)

:func:`deploy_candidate` (``kfm deploy``) stages signed, then pushes
(:meth:`core.registry.versions.Registry.push`: the version record signed by the pipeline key)
and registers (:func:`register_version` → :meth:`core.decisions.engine.DecisionEngine.register`:
the signed ``registered`` record, with the version's facts: submitter, concerned stewards, model
family, footprint, then ``gates-attested``), then checkpoints the verified ledger head
(:func:`core.decisions.checkpoints.checkpoint_head`).

The push and the ledger records are two stores, so a deploy killed between them leaves a
committed version no ledger record names: :func:`unregistered_versions` finds such versions in
the verified ledger (``kfm registry fsck`` reports them) and :func:`complete_registration`
appends the missing records from the version's signed record (``kfm registry fsck --register``,
with the pipeline key). Until then ``kfm deploy`` of that version is refused, saying so.

``kfm ci`` runs ``python -m core.pipeline CANDIDATE OUT --policy P --regions R`` (:func:`main`:
an unsigned staging) twice in fresh interpreters with different
``PYTHONHASHSEED`` and compares the folders; nothing is signed, pushed or recorded there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.candidate.load import Candidate, load_candidate
from core.decisions.checkpoints import checkpoint_head
from core.describe import deployment_stages, describe_candidate
from core.errors import KfmError
from core.gates import GateReport, run_gates
from core.jsonio import dumps
from core.policy import Policy, load_policy
from core.registry.layout import (
    CANDIDATE_DIRS,
    CANDIDATE_FILES,
    GATES_FILE,
    INTEGRITY_FILE,
    ITEM_FILE,
    METADATA_FILE,
    PROVENANCE_FILE,
    SIGNATURE_FILE,
    SOVEREIGNTY_DIR,
)
from core.signing.bundle import sign_model
from core.signing.keys import KeySigner
from core.sovereignty.regions import RegionSet, load_regions
from core.sovereignty.screen import DEFAULT_RESOLUTION_DEG, screen_candidate

if TYPE_CHECKING:  # annotations only: a staging process never loads the decisions engine
    from core.decisions.engine import DecisionEngine
    from core.decisions.ledger import LedgerEntry
    from core.registry.versions import VersionRecord

LAYOUT = "layout"
DESCRIBE = "describe"
SIGNED = "signed"
Progress = Callable[[str], None]


class DeployError(KfmError):
    """A deployment stage refused the candidate."""


@dataclass(frozen=True)
class StagedVersion:
    """What staging produced; ``layout`` is ``None`` when the gates stopped a signed staging.

    ``footprint`` is the validation grid's extent (:attr:`Candidate.footprint`, never the
    declared box) and ``concerned_stewards`` the stewards whose region or its withheld buffer it
    touches (set by the sovereignty stage): the version's facts the registry record and the
    ledger's ``registered`` record carry.
    """

    version: str
    name: str
    model_family: str
    footprint: tuple[float, float, float, float]
    gates: GateReport
    gates_json: bytes
    layout: Path | None
    concerned_stewards: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        return not self.gates.passed


def stage_version(
    candidate: Candidate,
    out: Path,
    *,
    policy: Policy,
    regions: RegionSet,
    resolution_deg: float = DEFAULT_RESOLUTION_DEG,
    signer: KeySigner | None = None,
    signature: Path | None = None,
    progress: Progress | None = None,
) -> StagedVersion:
    """Stage ``candidate`` into ``out`` (see the module docstring for the stages and folders).

    ``signer`` signs a private copy with the pipeline key; without it, ``signature`` is a
    ``model.sig`` made for this candidate elsewhere (a registry version's), laid out and recorded
    in the lineage as deploy does after signing, else the candidate's own ``model.sig`` if any.
    """
    say = progress or (lambda _stage: None)
    if signer is not None and signature is not None:
        raise DeployError(
            "a staging is signed with the pipeline key or given a signature, not both",
            field="signature",
            expected="none when signing",
            found=str(signature),
        )
    say("gates")
    report = run_gates(candidate, policy, regions=regions)
    gates_json = dumps(report.to_dict()).encode("utf-8")
    staged = StagedVersion(
        version=candidate.metadata.version,
        name=candidate.metadata.name,
        model_family=candidate.metadata.model_family,
        footprint=candidate.footprint,
        gates=report,
        gates_json=gates_json,
        layout=None,
    )
    if signer is not None and not report.passed:
        return staged
    described = candidate
    if signer is not None:
        say("sign")
        signed = out / SIGNED
        shutil.copytree(candidate.root, signed, symlinks=True)
        sign_model(signed, signer)
        described = load_candidate(signed)
        signature = signed / SIGNATURE_FILE
    elif signature is None and (candidate.root / SIGNATURE_FILE).is_file():
        signature = candidate.root / SIGNATURE_FILE
    layout = out / LAYOUT
    layout.mkdir(parents=True)
    (layout / GATES_FILE).write_bytes(gates_json)
    say("sovereignty")
    screened = screen_candidate(candidate, regions, policy.screening, resolution_deg=resolution_deg)
    screened.write(layout / SOVEREIGNTY_DIR)
    say("describe")
    stages = deployment_stages(
        described,
        gates_json=gates_json,
        signature=signature,
        screen_dir=layout / SOVEREIGNTY_DIR,
    )
    description = describe_candidate(described, stages=stages, care_extra=screened.care)
    description.write(out / DESCRIBE)
    for name in (ITEM_FILE, PROVENANCE_FILE):
        shutil.copyfile(out / DESCRIBE / name, layout / name)
    _lay_out_candidate(described.root, layout, signature)
    return replace(staged, layout=layout, concerned_stewards=tuple(screened.concerned_stewards))


def _lay_out_candidate(root: Path, layout: Path, signature: Path | None) -> None:
    """Copy the candidate's own files, and the signature with its integrity record, in."""
    for name in CANDIDATE_FILES:
        shutil.copyfile(root / name, layout / name)
    for folder in CANDIDATE_DIRS:
        if (root / folder).is_dir():
            shutil.copytree(root / folder, layout / folder)
    if signature is not None:
        shutil.copyfile(signature, layout / SIGNATURE_FILE)
        if (root / INTEGRITY_FILE).is_file():
            shutil.copyfile(root / INTEGRITY_FILE, layout / INTEGRITY_FILE)


@dataclass(frozen=True)
class DeployOutcome:
    """What a deployment did; ``pushed`` is ``None`` when the gates blocked it."""

    version: str
    gates: dict[str, Any]
    footprint: tuple[float, float, float, float]
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
            "footprint": list(self.footprint),
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
    """Stage ``directory`` signed, push it and register it; a blocked report stops before signing.

    A blocked report pushes nothing and appends nothing (``gates.json`` is still returned so the
    submitter sees why).
    """
    say = progress or (lambda _stage: None)
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
        cut_off = version in unregistered_versions(engine)
        raise DeployError(
            "version already in the registry; a version is written once",
            file=str(directory / METADATA_FILE),
            field="version",
            expected="a version not yet pushed",
            found=version,
            hint=(
                "an earlier deploy of this version was cut off after its push and before its "
                "ledger records: `kfm registry fsck --register` completes its registration"
            )
            if cut_off
            else "bump the version in model_metadata.json",
        )
    regions = load_regions(regions_path)
    with tempfile.TemporaryDirectory(prefix="kfm-deploy-") as work:
        staged = stage_version(
            candidate,
            Path(work),
            policy=policy,
            regions=regions,
            resolution_deg=screen_resolution_deg,
            signer=engine._require_pipeline(),
            progress=say,
        )
        if staged.layout is None:
            return DeployOutcome(
                version=version, gates=staged.gates.to_dict(), footprint=staged.footprint
            )
        say("push")
        record = engine.registry.push(
            version,
            staged.layout,
            name=staged.name,
            model_family=staged.model_family,
            submitter=submitter,
            concerned_stewards=staged.concerned_stewards,
            footprint=staged.footprint,
            signer=engine._require_pipeline(),
        )
    say("register")
    entries = register_version(engine, record, gates_json=staged.gates_json)
    checkpoint_head(engine)
    return DeployOutcome(
        version=version,
        gates=staged.gates.to_dict(),
        footprint=staged.footprint,
        pushed=record,
        entries=tuple(entries),
        concerned_stewards=staged.concerned_stewards,
    )


def register_version(
    engine: DecisionEngine,
    record: VersionRecord,
    *,
    gates_json: bytes,
    reason: str = "pushed by kfm deploy",
) -> list[LedgerEntry]:
    """Append the ``registered`` and ``gates-attested`` records of a pushed version.

    The version's facts go to :meth:`DecisionEngine.register` from its signed registry record
    (submitter, concerned stewards, model family, the footprint computed from the data, and the
    record's :attr:`~core.registry.records.VersionRecord.digest`), and the ``registered`` ledger
    record signs them.
    """
    return engine.register(
        record,
        gates_json=gates_json,
        reason=reason,
    )


def unregistered_versions(engine: DecisionEngine) -> list[str]:
    """Committed versions that no verified ``registered`` record names, in version order.

    A deploy cut off between its push (the registry commit) and its ledger records leaves one;
    so does a ledger truncated after the version was registered. ``kfm registry fsck`` reports
    them; :func:`complete_registration` heals the first kind.
    """
    return engine.state().unregistered(engine.registry.list())


def complete_registration(engine: DecisionEngine, version: str) -> list[LedgerEntry]:
    """Append the ``registered`` and ``gates-attested`` records a cut-off deploy did not write.

    The version must verify (its record signed by the pipeline key, every stored file matching
    it) and its stored ``gates.json`` must say every gate passed; it is then registered with
    the facts its signed record holds, exactly as its deploy would have. The engine refuses a
    version the ledger already registers (under the ledger's lock), so two healers, or a healer
    and a late deploy, never register a version twice.
    """
    report = engine.registry.verify(version)
    if not report.ok:
        raise DeployError(
            "the version does not verify: it is not registered",
            file=f"{engine.registry.location}/{version}",
            field="version",
            expected="a record signed by the pipeline key and every stored file matching it",
            found="; ".join(report.problems[:3]),
            hint="`kfm registry verify VERSION` names every problem",
        )
    record = engine.registry.show(version)
    gates_json = engine.registry.read_file(version, GATES_FILE)
    try:
        passed = json.loads(gates_json).get("passed")
    except (ValueError, AttributeError):
        passed = None
    if passed is not True:
        raise DeployError(
            "the version's gates did not pass: it is not registered",
            file=f"{engine.registry.location}/{version}/{GATES_FILE}",
            field="passed",
            expected=True,
            found=passed,
        )
    return register_version(
        engine,
        record,
        gates_json=gates_json,
        reason="registration completed by kfm registry fsck --register after a cut-off deploy",
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m core.pipeline CANDIDATE OUT --policy P --regions R``: one unsigned staging.

    Exit 2 on an error (its diagnostics on stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m core.pipeline", description="Stage one unsigned version in a folder."
    )
    parser.add_argument("candidate", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--regions", type=Path, required=True)
    parser.add_argument("--resolution-deg", type=float, default=DEFAULT_RESOLUTION_DEG)
    parser.add_argument("--signature", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        stage_version(
            load_candidate(args.candidate),
            args.out,
            policy=load_policy(args.policy),
            regions=load_regions(args.regions),
            resolution_deg=args.resolution_deg,
            signature=args.signature,
        )
    except KfmError as error:
        print(f"error: {error.diagnostics()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
