"""The demo workspace: real state for the dashboard, built from scratch by ``kfm demo``.

:func:`build_demo` ``(workspace, *, trust, progress=None, fresh=False, candidate_source=None) ->
DemoInfo`` runs these steps (:data:`DEMO_STEPS`), each through the owning module's public API:

1. **reference candidate** — :func:`core.demo.reference.build_reference_candidate` into
   ``<workspace>/candidate`` (or a copy of ``candidate_source``, checked, to reuse a build);
2. **workspace** — :func:`core.workspace.init_workspace`: policy, example regions, root and
   pipeline keys, a roster holding the pipeline; the root key is pinned in the given
   :class:`core.decisions.trust.TrustStore` (for the final path once the build is moved there);
3. **reviewer keys** — three FAIR+CARE Council reviewers (``amara``, ``bruno``, ``chidi``), one
   steward per example region the model's footprint touches (their ids are the regions'
   ``steward_id``, so their approvals are required; the reference's North American footprint
   touches all four example regions), one Climate AI Working Group member (``dana``);
4. **roster** — every reviewer added, the roster re-signed by the root key;
5. **deploy** — :func:`core.pipeline.deploy_candidate`, submitted by council reviewer ``chidi``:
   self-approval is forbidden, and ``amara`` and ``bruno`` still make the quorum of two;
6. **first approval** — ``amara`` approves through an engine that holds no pipeline key (as
   every reviewer does), so the dashboard opens on a version under review with decisions still
   to make (``bruno``'s and every concerned steward's);
7. **monitoring runs** (unless ``monitoring=False``) — two real batches from the held-out
   reanalysis times (:mod:`core.monitoring.batches`), written to ``batches/``: under a +3 K
   warming, then as they are; both are run through
   :func:`core.monitoring.record.monitor_version`, so the drift, energy and explainability pages
   have runs. The warming run records a drift breach (no rollback: the version is not in
   production yet), which blocks promotion; the later in-bounds run closes it, so the
   remaining approvals promote the version;
8. **verify** — the whole ledger (the engine's verified state: every entry checked once) and
   the registry version (:meth:`core.registry.versions.Registry.verify`) must check out.

The pipeline key is used by this process for deploy and monitoring only; no reviewer's step
needs it.

Every private key is passphrase-protected. The passphrases are for the demo only and
deterministic (:data:`DEMO_PASSPHRASE_PREFIX` + id); they are written to
``DEMO-PASSPHRASES.txt`` (mode 0600) in the workspace and printed by the CLI. ``demo.json``
records who is who (no passphrases) and marks the directory as a demo workspace.

The same inputs give the same candidate bytes, ids, roles, version and ledger shape; key
material and ECDSA signatures are fresh on each build. The demo is built in a temporary
directory beside the target and renamed into place at the end: a failed build leaves nothing
behind, and ``fresh=True`` replaces an earlier demo only once the new one is complete. An
existing workspace is never touched without ``fresh``, and ``fresh`` only replaces a directory
this module built (one holding ``demo.json``).

:func:`load_demo` ``(workspace) -> DemoInfo`` reads a built demo back. :func:`dashboard_command`
and :func:`dashboard_env` are the command line and environment that
serve ``app/streamlit_app.py`` on the demo (the CLI runs them; core never imports Streamlit).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from core.decisions.trust import TrustStore
from core.errors import KfmError
from core.workspace import CONFIG_NAME, PIPELINE_ID, Workspace, init_workspace

Progress = Callable[[str], None]

DEMO_STEPS: tuple[str, ...] = (
    "reference candidate",
    "workspace",
    "reviewer keys",
    "roster",
    "deploy",
    "first approval",
    "monitoring runs",
    "verify",
)
DEMO_MARKER = "demo.json"
PASSPHRASES_FILE = "DEMO-PASSPHRASES.txt"
DEMO_PASSPHRASE_PREFIX = "demo-only-"
ROOT_ID = "root"
COUNCIL: tuple[tuple[str, str], ...] = (
    ("amara", "Amara, FAIR+CARE Council (demo)"),
    ("bruno", "Bruno, FAIR+CARE Council (demo)"),
    ("chidi", "Chidi, FAIR+CARE Council (demo)"),
)
WORKING_GROUP: tuple[str, str] = ("dana", "Dana, Climate AI Working Group (demo)")
SUBMITTER = "chidi"
FIRST_APPROVER = "amara"
APP_ENTRY = Path(str(files("app").joinpath("streamlit_app.py")))


class DemoError(KfmError):
    """The demo cannot be built here, or a step of it failed."""


@dataclass(frozen=True)
class DemoPerson:
    """Someone in the demo roster (or the root key) with their key and demo passphrase."""

    id: str
    name: str
    roles: tuple[str, ...]
    key: str  # workspace-relative path of the private key
    passphrase: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data without the passphrase."""
        return {"id": self.id, "name": self.name, "roles": list(self.roles), "key": self.key}


@dataclass(frozen=True)
class DemoInfo:
    """What :func:`build_demo` built and the state it left."""

    workspace: Path
    version: str
    people: tuple[DemoPerson, ...]
    submitter: str
    approved_by: tuple[str, ...]
    concerned_stewards: tuple[str, ...]
    state: str
    missing: tuple[str, ...]
    ledger_entries: int

    @property
    def candidate(self) -> Path:
        return self.workspace / "candidate"

    @property
    def passphrases_file(self) -> Path:
        return self.workspace / PASSPHRASES_FILE

    def person(self, person_id: str) -> DemoPerson:
        """The person with this id (``root`` and ``pipeline`` included)."""
        for person in self.people:
            if person.id == person_id:
                return person
        raise DemoError(
            "no such person in the demo",
            field="id",
            expected=[p.id for p in self.people],
            found=person_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """What ``demo.json`` holds (relative paths, no passphrases)."""
        return {
            "format": 1,
            "version": self.version,
            "candidate": "candidate",
            "people": [p.to_dict() for p in self.people],
            "submitter": self.submitter,
            "approved_by": list(self.approved_by),
            "concerned_stewards": list(self.concerned_stewards),
            "state": self.state,
            "missing": list(self.missing),
            "ledger_entries": self.ledger_entries,
            "passphrases": PASSPHRASES_FILE,
        }


def load_demo(workspace: Path) -> DemoInfo:
    """The :class:`DemoInfo` of a built demo, from its ``demo.json`` (demo passphrases derived)."""
    marker = read_demo_marker(workspace)
    if marker is None or marker.get("format") != 1:
        raise DemoError(
            "not a demo workspace",
            file=str(workspace / DEMO_MARKER),
            expected="demo.json (format 1) written by `kfm demo`",
            found="missing or unreadable" if marker is None else marker.get("format"),
        )
    try:
        return DemoInfo(
            workspace=Path(os.path.abspath(workspace)),
            version=marker["version"],
            people=tuple(
                DemoPerson(
                    p["id"], p["name"], tuple(p["roles"]), p["key"], demo_passphrase(p["id"])
                )
                for p in marker["people"]
            ),
            submitter=marker["submitter"],
            approved_by=tuple(marker["approved_by"]),
            concerned_stewards=tuple(marker["concerned_stewards"]),
            state=marker["state"],
            missing=tuple(marker["missing"]),
            ledger_entries=marker["ledger_entries"],
        )
    except (KeyError, TypeError) as error:
        raise DemoError(
            "demo.json is missing a field",
            file=str(workspace / DEMO_MARKER),
            field=str(error),
            expected="demo.json as written by `kfm demo`",
            found=type(error).__name__,
        ) from error


def demo_passphrase(person_id: str) -> str:
    """The demo-only passphrase of ``person_id``'s key (deterministic, never for real use)."""
    return DEMO_PASSPHRASE_PREFIX + person_id


def read_demo_marker(workspace: Path) -> dict[str, Any] | None:
    """``demo.json`` of a demo workspace, or ``None`` when there is none (or it is unreadable)."""
    try:
        data = json.loads((workspace / DEMO_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_target(workspace: Path, *, fresh: bool) -> None:
    """Refuse to build over anything but nothing, an empty folder or (with ``fresh``) a demo."""
    if not workspace.exists():
        return
    if not workspace.is_dir():
        raise DemoError(
            "the demo workspace path is a file",
            file=str(workspace),
            expected="a folder for the demo (or nothing)",
            found="a file",
        )
    if not any(workspace.iterdir()):
        return
    marker = read_demo_marker(workspace)
    if marker is not None and fresh:
        return
    if marker is not None:
        raise DemoError(
            "a demo workspace already exists here; nothing was changed",
            file=str(workspace / DEMO_MARKER),
            expected="no demo yet (or --fresh to rebuild it)",
            found=f"a demo of version {marker.get('version')} "
            f"({marker.get('ledger_entries')} ledger entries)",
            hint=f"open it as it is with `KFM_WORKSPACE={workspace} "
            f"KFM_PIPELINE_PASSPHRASE={demo_passphrase(PIPELINE_ID)} streamlit run "
            "app/streamlit_app.py`, or rebuild it from scratch with `kfm demo --fresh`",
        )
    what = "a kfm workspace" if (workspace / CONFIG_NAME).exists() else "other files"
    raise DemoError(
        "this folder is not a demo workspace; nothing was changed",
        file=str(workspace),
        expected=f"an empty folder, nothing, or a demo workspace (with {DEMO_MARKER})",
        found=what,
        hint="choose another --workspace (--fresh only replaces a demo built by `kfm demo`)",
    )


def build_demo(
    workspace: Path,
    *,
    trust: TrustStore,
    progress: Progress | None = None,
    fresh: bool = False,
    candidate_source: Path | None = None,
    monitoring: bool = True,
) -> DemoInfo:
    """Build the demo workspace (see the module docstring); returns what was built."""
    target = Path(os.path.abspath(workspace))
    check_target(target, fresh=fresh)
    if candidate_source is not None and not candidate_source.is_dir():
        raise DemoError(
            "the candidate to reuse is not a folder",
            file=str(candidate_source),
            field="--candidate",
            expected="a candidate directory (kfm candidate reference OUT)",
            found="missing" if not candidate_source.exists() else "a file",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.building-{uuid.uuid4().hex[:8]}"
    try:
        say = progress or (lambda _message: None)
        info = _build(staging, say, candidate_source, monitoring, trust)
        _move_into_place(staging, target)
        trust.move_pin(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        trust.forget(staging)
    return replace(info, workspace=target)


def _build(
    root: Path, say: Progress, candidate_source: Path | None, monitoring: bool, trust: TrustStore
) -> DemoInfo:
    from core.candidate.load import check_candidate, load_candidate
    from core.signing.keys import generate_key_pair
    from core.sovereignty.care import touched_regions
    from core.sovereignty.regions import load_regions

    say(DEMO_STEPS[0])
    candidate_dir = root / "candidate"
    if candidate_source is None:
        from core.demo.reference import build_reference_candidate

        build_reference_candidate(candidate_dir)
    else:
        shutil.copytree(candidate_source, candidate_dir, symlinks=True)
    report = check_candidate(candidate_dir)
    if not report.ok:
        failed = next((c for c in report.checks if not c.ok), None)
        raise DemoError(
            "the demo candidate failed its check",
            file=str(candidate_source or "reference candidate"),
            field=failed.name if failed else None,
            expected="a complete, consistent candidate",
            found=failed.detail if failed else "no checks ran",
        )

    say(DEMO_STEPS[1])
    ws = init_workspace(
        root,
        trust=trust,
        root_passphrase=demo_passphrase(ROOT_ID),
        pipeline_passphrase=demo_passphrase(PIPELINE_ID),
    )

    say(DEMO_STEPS[2])
    footprint = load_candidate(candidate_dir).footprint  # computed from the validation grid
    regions = touched_regions(footprint, load_regions(ws.regions_path), ws.policy().screening)
    stewards = sorted({(r.properties.steward_id, r.properties.nation) for r in regions})
    if not stewards:
        raise DemoError(
            "the model's footprint touches no example region: the demo would have no steward",
            file=str(ws.regions_path),
            expected="a region overlapping the footprint",
            found=f"footprint bbox {footprint}",
        )
    reviewers: list[tuple[str, str, tuple[str, ...]]] = [
        *((rid, name, ("council",)) for rid, name in COUNCIL),
        *((sid, f"Data steward, {nation}", ("steward",)) for sid, nation in stewards),
        (WORKING_GROUP[0], WORKING_GROUP[1], ("working_group",)),
    ]
    people = [
        DemoPerson(ROOT_ID, "Governance root key", (), "keys/root.key", demo_passphrase(ROOT_ID)),
        DemoPerson(
            PIPELINE_ID,
            "KFM deployment pipeline",
            ("pipeline",),
            ws.config.pipeline_key,
            demo_passphrase(PIPELINE_ID),
        ),
    ]
    public_keys = {}
    for rid, name, roles in reviewers:
        pair = generate_key_pair(rid, ws.reviewer_key_path(rid).parent, demo_passphrase(rid))
        public_keys[rid] = pair.public_key.read_text(encoding="ascii")
        key = pair.private_key.relative_to(root).as_posix()
        people.append(DemoPerson(rid, name, roles, key, demo_passphrase(rid)))

    say(DEMO_STEPS[3])
    _write_roster(ws, reviewers, public_keys)
    _write_passphrases(root, people)
    return _deploy_and_approve(ws, people, [s for s, _ in stewards], say, monitoring)


def _write_roster(
    ws: Workspace,
    reviewers: list[tuple[str, str, tuple[str, ...]]],
    public_keys: Mapping[str, str],
) -> None:
    from core.decisions.roster import RosterEntry, add_reviewer, sign_roster
    from core.signing.keys import load_signer

    valid_from = datetime.now(UTC).replace(microsecond=0)
    for rid, name, roles in reviewers:
        entry = RosterEntry(
            id=rid,
            name=name,
            roles=roles,  # type: ignore[arg-type]  # validated by pydantic
            public_key=public_keys[rid],
            valid_from=valid_from,
        )
        add_reviewer(ws.roster_path, entry)
    root_key = load_signer(ws.path("keys/root.key"), demo_passphrase(ROOT_ID))
    sign_roster(ws.roster_path, root_key)
    ws.roster()  # the signed roster must verify against the workspace's root public key


def _deploy_and_approve(
    ws: Workspace,
    people: list[DemoPerson],
    stewards: list[str],
    say: Progress,
    monitoring: bool,
) -> DemoInfo:
    from core.decisions.reviewer import submit_decision
    from core.decisions.verify import BrokenEntryError
    from core.pipeline import deploy_candidate
    from core.signing.keys import load_signer

    say(DEMO_STEPS[4])
    pipeline_passphrase = demo_passphrase(PIPELINE_ID)
    with ws.decision_engine(pipeline_passphrase) as engine:
        outcome = deploy_candidate(
            ws.root / "candidate",
            engine=engine,
            policy=ws.policy(),
            regions_path=ws.regions_path,
            submitter=SUBMITTER,
            progress=lambda stage: say(f"{DEMO_STEPS[4]} · {stage}"),
        )
        if outcome.pushed is None:
            raise DemoError(
                "the demo candidate was blocked by gates",
                file="candidate",
                field="gates",
                expected="every gate passes",
                found=list(outcome.gates.get("blocking_gates", [])),
            )
        if sorted(outcome.concerned_stewards) != stewards:
            raise DemoError(
                "deploy found other concerned stewards than the demo roster holds",
                field="concerned_stewards",
                expected=stewards,
                found=list(outcome.concerned_stewards),
            )
        version = outcome.version

    say(DEMO_STEPS[5])
    approver = next(p for p in people if p.id == FIRST_APPROVER)
    signer = load_signer(ws.path(approver.key), approver.passphrase, key_id=approver.id)
    with ws.decision_engine() as reviewer_engine:  # a reviewer holds no pipeline key
        submit_decision(
            reviewer_engine,
            "approve",
            version,
            signer,
            role="council",
            reason="demo: gates pass, attributions and lineage reviewed",
        )

    say(DEMO_STEPS[6])
    if monitoring:
        with ws.decision_engine(pipeline_passphrase) as engine:
            _monitoring_runs(ws, engine, version)

    say(DEMO_STEPS[7])
    with ws.decision_engine() as engine:
        try:
            verified = engine.state()
        except BrokenEntryError as error:
            raise DemoError(
                "the demo ledger does not verify",
                field=error.field,
                expected="every entry verified",
                found=error.reason,
            ) from error
        registry_report = engine.registry.verify(version)
        if not registry_report.ok:
            raise DemoError(
                "the demo registry version does not verify",
                field=version,
                expected="every stored file matching its record",
                found=list(registry_report.problems),
            )
        state = verified.versions[version]
    info = DemoInfo(
        workspace=ws.root,
        version=version,
        people=tuple(people),
        submitter=SUBMITTER,
        approved_by=tuple(v.actor for v in state.approvals),
        concerned_stewards=tuple(outcome.concerned_stewards),
        state=state.state,
        missing=tuple(state.missing),
        ledger_entries=verified.head_seq,
    )
    text = json.dumps(info.to_dict(), indent=2, sort_keys=True) + "\n"
    (ws.root / DEMO_MARKER).write_text(text, encoding="utf-8")
    return info


def _monitoring_runs(ws: Workspace, engine: Any, version: str) -> None:
    """Two monitoring runs on real batches: warmed by 3 K (a breach), then as they are."""
    from core.monitoring.batches import make_batch
    from core.monitoring.record import monitor_version

    validation = ws.root / "candidate" / "data" / "validation.nc"
    policy = ws.policy().monitoring
    for kind, name in (
        ("warming", "batch-warming-3K.nc"),
        ("in-distribution", "batch-held-out.nc"),
    ):
        batch = make_batch(validation, kind, ws.root / "batches" / name)  # type: ignore[arg-type]
        monitor_version(engine, version, batch, policy)


def _write_passphrases(root: Path, people: list[DemoPerson]) -> None:
    lines = [
        "DEMO ONLY. These passphrases open the demo's private keys in keys/. They are printed",
        "by `kfm demo` and derived from the ids, so anyone can open these keys: never use this",
        "workspace, its keys or these passphrases for real decisions.",
        "",
        f"{'id':<24} {'roles':<16} {'key':<34} passphrase",
    ]
    for p in people:
        roles = ",".join(p.roles) or "root"
        lines.append(f"{p.id:<24} {roles:<16} {p.key:<34} {p.passphrase}")
    lines += [
        "",
        "Serve the dashboard on this workspace by hand (from the project folder):",
        f"  KFM_WORKSPACE=<this folder> KFM_PIPELINE_PASSPHRASE={demo_passphrase(PIPELINE_ID)} "
        f"{' '.join(dashboard_command(8501)[2:])}",
        "",
    ]
    descriptor = os.open(root / PASSPHRASES_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the finished build onto ``target``; an earlier demo there goes only after."""
    old = None
    if target.exists():
        if any(target.iterdir()):
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
        else:
            target.rmdir()
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def dashboard_command(port: int) -> list[str]:
    """The command that serves the dashboard on loopback (run it from the project folder)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(Path("app") / "streamlit_app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        # The URL Streamlit prints comes from browser.serverPort (8501 in .streamlit/config.toml).
        "--browser.serverPort",
        str(port),
    ]


def dashboard_env(info: DemoInfo, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus the demo workspace (absolute) and the pipeline key's demo passphrase."""
    ws = Workspace.open(info.workspace)
    return {
        **base,
        "KFM_WORKSPACE": str(info.workspace.resolve()),
        ws.config.pipeline_passphrase_env: info.person(PIPELINE_ID).passphrase,
    }
