"""Every dashboard page on the demo workspace (AppTest), and signing decisions through the UI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import services
from core.decisions.checkpoints import newest_checkpoint
from core.decisions.trust import TrustStore
from core.demo.build import DemoInfo, demo_passphrase
from core.errors import AuthorizationError, KfmError, LedgerError
from core.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_ENTRY = REPO_ROOT / "app" / "streamlit_app.py"
FEATURES = ["t_coarse", "lat", "lon", "hour_sin", "hour_cos"]


def open_page(name: str, reviewer: str | None = None) -> AppTest:
    """Run the dashboard, optionally choose a reviewer in the sidebar, then open a page."""
    at = AppTest.from_file(str(APP_ENTRY), default_timeout=60)
    at.run()
    if reviewer is not None:
        at.sidebar.selectbox(key="reviewer").set_value(reviewer).run()
    at.switch_page(f"app_pages/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def ledger(root: Path) -> list[tuple[int, str, str, str]]:
    """(seq, kind, actor, role) of every ledger entry, read through the core."""
    log = Workspace.open(root).ledger()
    try:
        return [(e.seq, e.kind, e.actor, e.role) for e in log.entries()]
    finally:
        log.close()


def workspace_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file (SQLite's transient -wal/-shm files left out)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def kfm_ledger_verify(root: Path) -> dict[str, object]:
    """`kfm ledger verify --json` in a subprocess; exit 0 required."""
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "ledger", "verify", "--workspace", str(root), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


# --------------------------------------------------------------------------- pages render data
def test_registry_lists_the_version_under_review(on_demo: DemoInfo) -> None:
    """The registry page lists 1.0.0 under review in staging, and amara's approval on the timeline."""
    at = open_page("registry")
    assert at.title[0].value == "Model registry"
    shown = metrics(at)
    assert (shown["In production"], shown["Staging"]) == ("none", "1.0.0")
    versions = at.dataframe[0].value
    assert versions["version"].tolist() == ["1.0.0"]
    assert versions["state"].tolist() == ["under review"]
    assert versions["approvals"].tolist() == [1]
    events = at.dataframe[1].value
    assert len(events) == on_demo.ledger_entries
    approvals = events[events["decision"] == "approve"]
    assert approvals[["actor", "role"]].values.tolist() == [["amara", "council"]]


def test_decisions_page_shows_state_and_verified_ledger(on_demo: DemoInfo) -> None:
    """Decisions shows the replayed state, what is still needed, and a fully verified ledger."""
    at = open_page("decisions")
    shown = metrics(at)
    assert (shown["State"], shown["Council approvals"], shown["Vetoes"]) == (
        "under review",
        "1",
        "0",
    )
    assert "Submitted by chidi" in at.caption[0].value
    assert all(s in at.caption[0].value for s in on_demo.concerned_stewards)
    assert "1 more council approval" in at.warning[0].value
    assert at.success[0].value.startswith(f"chain intact: {on_demo.ledger_entries} entries")
    assert f"consistent with checkpoint #{on_demo.ledger_entries}" in at.success[0].value
    assert set(at.dataframe[0].value["verified"]) == {"yes"}
    assert at.info[0].value == "Choose yourself in the sidebar to act."


def test_review_page_shows_nine_passing_gates(on_demo: DemoInfo) -> None:
    """The gates table holds the 9 gates of the policy, all passing, and the model card renders."""
    at = open_page("review")
    assert at.title[0].value == "Gates and model card — 1.0.0"
    gates = at.dataframe[0].value
    assert len(gates) == 9 and gates["gate"].is_unique
    assert set(gates["status"]) == {"pass"}
    assert "9 of 9 gates pass" in at.success[0].value
    card = " ".join(m.value for m in at.markdown)
    assert "architecture **GradientBoostingRegressor**" in card


def test_explainability_page_shows_the_five_features(on_demo: DemoInfo) -> None:
    """The sample table lists the model's 5 features, and the attributions add up to the prediction."""
    at = open_page("explainability")
    sample = at.dataframe[0].value
    assert sample["feature"].tolist() == FEATURES
    additivity = next(c.value for c in at.caption if c.value.startswith("Additivity"))
    gap = float(additivity.split("=")[1].split()[0])
    assert gap < 1e-3, additivity
    assert len(at.get("plotly_chart")) == 2


def test_sovereignty_map_lists_the_four_regions(on_demo: DemoInfo) -> None:
    """The map page offers the 4 example regions, their stewards, and publishes nothing withheld."""
    at = open_page("sovereignty_map")
    assert len(at.multiselect[0].options) == 4
    regions = at.dataframe[0].value.set_index("region")
    assert sorted(regions["steward"]) == sorted(on_demo.concerned_stewards)
    withheld = regions[regions["tier"] == "withheld"]
    assert len(withheld) == 1 and withheld["cells published"].tolist() == [0]
    assert regions["cells published"].sum() > 0
    assert len(at.get("plotly_chart")) == 1


def test_sovereignty_map_lists_the_reviewers_regions_first(on_demo: DemoInfo) -> None:
    """A steward reviewing sees their own region in the first row."""
    at = open_page("sovereignty_map", reviewer="steward-tidewater")
    assert at.dataframe[0].value["steward"].iloc[0] == "steward-tidewater"
    assert "listed first" in at.info[0].value


def test_energy_page_labels_the_training_run_estimated(on_demo: DemoInfo) -> None:
    """The training run is shown, labelled 'estimated', with non-zero energy and emissions."""
    at = open_page("energy")
    runs = at.dataframe[0].value
    training = runs[runs["kind"] == "training"]
    assert training["method"].tolist() == ["estimated"]
    assert (training["energy (kWh)"] > 0).all() and (training["emissions (kg CO2e)"] > 0).all()
    assert set(runs["method"]) <= {"estimated", "measured"}
    assert metrics(at)["Energy, all runs"].endswith("kWh")


def test_lineage_holds_the_push_and_amaras_approval(on_demo: DemoInfo) -> None:
    """The lineage DOT holds the registry push activity and the approval signed by amara."""
    at = open_page("lineage")
    dot = at.code[0].value
    assert dot.startswith('digraph "lineage 1.0.0"')
    assert '/push" [label="push to the immutable registry' in dot
    assert "approve by amara (council)" in dot
    assert "by KFM pipeline" in dot  # the training's agent, named in its activity


def test_drift_page_shows_the_monitoring_runs(on_demo: DemoInfo) -> None:
    """The drift page lists the demo's monitoring runs; the warmed batch breaches the limits."""
    at = open_page("drift")
    assert at.title[0].value == "Drift — 1.0.0"
    runs = at.dataframe[0].value.set_index("batch")
    assert runs.loc["batch-held-out.nc", "breaches"] == "none"
    assert "drift: t_coarse" in runs.loc["batch-warming-3K.nc", "breaches"]
    assert runs.loc["batch-warming-3K.nc", "needs rollback"]
    assert at.radio[0].options == ["psi", "ks statistic", "wasserstein std"]


# --------------------------------------------------------------------------- signing decisions
def start_approval(reviewer: str, reason: str) -> AppTest:
    """As ``reviewer``, on Decisions, type a reason and open the sign dialog."""
    at = open_page("decisions", reviewer=reviewer)
    at.text_area(key="decide-reason").input(reason).run()
    at.button(key="decide-sign").click().run()
    return at


def sign(at: AppTest, passphrase: str) -> None:
    at.text_input(key="decide-pending-pass").input(passphrase).run()
    at.button(key="decide-pending-ok").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_bruno_approves_through_the_dialog(on_copy: DemoInfo) -> None:
    """bruno's signed approval is recorded, shown, and accepted by `kfm ledger verify`."""
    root = on_copy.workspace
    before = ledger(root)
    at = start_approval("bruno", "gates pass; tails reviewed")
    assert at.radio(key="decide-action").options == ["Approve as council", "Veto as council"]
    assert at.text_input(key="decide-pending-id").value == "bruno"
    sign(at, demo_passphrase("bruno"))
    assert any(
        f"appended #{len(before) + 1}: approve 1.0.0 by bruno" in s.value for s in at.success
    ), [s.value for s in at.success]
    after = ledger(root)
    assert after[:-1] == before and after[-1][1:] == ("approve", "bruno", "council")
    assert metrics(at)["Council approvals"] == "2"
    report = kfm_ledger_verify(root)
    assert report["ok"] is True and report["entries"] == len(after)


def test_wrong_passphrase_is_refused_and_writes_nothing(on_copy: DemoInfo) -> None:
    """A wrong passphrase shows the key error in the dialog and leaves the workspace unchanged."""
    root = on_copy.workspace
    before = workspace_digest(root)
    at = start_approval("bruno", "gates pass")
    sign(at, "not-the-passphrase")
    assert any("wrong passphrase" in e.value for e in at.error), [e.value for e in at.error]
    assert not any("Signed and recorded" in s.value for s in at.success)
    assert workspace_digest(root) == before
    assert kfm_ledger_verify(root)["entries"] == on_copy.ledger_entries


def test_working_group_is_offered_no_veto_and_the_core_refuses_one(on_copy: DemoInfo) -> None:
    """dana (working_group) sees no veto; forcing one through the services is refused, unwritten."""
    root = on_copy.workspace
    at = open_page("decisions", reviewer="dana")
    offered = at.radio(key="decide-action").options
    assert offered == ["Approve as working_group"]
    before = workspace_digest(root)
    with pytest.raises(AuthorizationError) as refused:
        services.submit_decision(
            "veto", "1.0.0", "dana", "working_group", demo_passphrase("dana"), "forced veto"
        )
    message = refused.value.diagnostics()
    assert "role 'working_group' may not veto" in message, message
    assert "expected ['council', 'steward']" in message, message
    assert workspace_digest(root) == before


def test_an_approver_may_request_a_rollback_of_production(
    on_copy: DemoInfo, approve: Callable[[DemoInfo, str, str], list[str]], trust_store: TrustStore
) -> None:
    """Having approved 1.0.0 does not stop bruno from asking, on Drift, to roll it back."""
    for steward in on_copy.concerned_stewards:
        approve(on_copy, steward, "steward")
    assert approve(on_copy, "bruno", "council") == ["approve", "promotion"]
    at = open_page("drift", reviewer="bruno")
    assert at.radio(key="rollback-action").options == ["Request rollback as council"]
    at.text_area(key="rollback-reason").input("warming batch breaches drift limits").run()
    at.button(key="rollback-sign").click().run()
    at.text_input(key="rollback-pending-pass").input(demo_passphrase("bruno")).run()
    at.button(key="rollback-pending-ok").click().run()
    assert not at.exception, [e.value for e in at.exception]
    kinds = [kind for _, kind, _, _ in ledger(on_copy.workspace)]
    assert kinds[-1] == "request-rollback", kinds  # the rollback is derived, not a row
    assert metrics(at)["Production"] == "none"
    assert any("rolled back by the request-rollback of bruno" in s.value for s in at.success)
    assert kfm_ledger_verify(on_copy.workspace)["ok"] is True
    registry = Workspace.open(on_copy.workspace, trust=trust_store).registry()
    folders = registry.store.list("climate/rollbacks")
    assert len(folders) == 3 and all(f"{len(kinds):08d}-1.0.0/" in f for f in folders)


def test_the_dashboard_offers_what_the_engine_accepts(
    on_copy: DemoInfo, approve: Callable[[DemoInfo, str, str], list[str]]
) -> None:
    """Every reviewer is offered the engine's own actions; an approver is still offered a veto."""
    assert approve(on_copy, "bruno", "council") == ["approve"]
    version = on_copy.version
    with services.workspace().decision_engine(None) as engine:
        expected = {r.id: engine.allowed_actions(r.id, version) for r in services.reviewers()}
    assert {r.id: services.allowed_actions(r.id, version) for r in services.reviewers()} == expected
    assert expected["bruno"] == [("veto", "council")]
    assert expected[on_copy.submitter] == [("veto", "council")]  # no self-approval
    at = open_page("decisions", reviewer="bruno")
    assert at.radio(key="decide-action").options == ["Veto as council"]


# --------------------------------------------------------------------------- verified state only
def test_a_forged_row_stops_every_page_and_offers_nothing(
    on_copy: DemoInfo, trust_store: TrustStore
) -> None:
    """A validly signed approval by a key not on the roster, inserted as a row, is never counted:
    every page shows the broken entry and no action, and a forced submission is refused."""
    from datetime import UTC, datetime

    from core.decisions.ledger import COLUMNS, chain
    from core.decisions.records import Anchor
    from core.testing import new_signer, signed_decision

    root = on_copy.workspace
    ws = Workspace.open(root, trust=trust_store)
    log = ws.ledger()
    try:
        head = log.entries()[-1]
        forged = signed_decision(
            new_signer("mallory"),
            kind="approve",
            role="council",
            version=on_copy.version,
            subject=ws.registry().show(on_copy.version).subject,
            time=datetime.now(UTC),
            anchor=Anchor(seq=head.seq, entry_hash=head.entry_hash),
        )
        (row,) = chain(head, [forged], datetime.now(UTC))
        marks = ", ".join("?" for _ in COLUMNS)
        log.execute_unchecked(  # type: ignore[attr-defined]
            f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({marks})",
            [getattr(row, c) for c in COLUMNS],
        )
    finally:
        log.close()
    for page in ("registry", "decisions", "drift"):
        at = AppTest.from_file(str(APP_ENTRY), default_timeout=60)
        at.run()
        at.switch_page(f"app_pages/{page}.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        errors = " ".join(e.value for e in at.error)
        assert f"ledger entry #{row.seq} is broken" in errors and "not on the roster" in errors
        assert not at.radio and not at.button  # nothing is offered
    before = workspace_digest(root)
    with pytest.raises(KfmError, match=f"ledger entry #{row.seq} is broken"):
        services.submit_decision(
            "approve", on_copy.version, "bruno", "council", demo_passphrase("bruno"), "forced"
        )
    assert workspace_digest(root) == before


def refused_everywhere(message: str) -> None:
    """Every page shows ``message`` as an error and offers no action (a fresh server start)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    for page in ("registry", "decisions", "drift"):
        at = AppTest.from_file(str(APP_ENTRY), default_timeout=60)
        at.run()
        at.switch_page(f"app_pages/{page}.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        errors = " ".join(e.value for e in at.error)
        assert message in errors, errors
        assert not at.radio and not at.button  # nothing is offered


def test_a_ledger_cut_behind_its_anchors_stops_every_page_and_offers_nothing(
    on_copy: DemoInfo, approve: Callable[[DemoInfo, str, str], list[str]], trust_store: TrustStore
) -> None:
    """Rows deleted after what this server saw, then behind the newest checkpoint: every page
    shows the refusal like a broken entry and offers nothing; a forced submission is refused."""
    root = on_copy.workspace
    ws = Workspace.open(root, trust=trust_store)
    checkpoint = newest_checkpoint(ws.registry(), ws.roster())
    assert checkpoint is not None and checkpoint.seq == on_copy.ledger_entries
    assert approve(on_copy, "bruno", "council") == ["approve"]  # a row no checkpoint covers
    head = checkpoint.seq + 1
    assert metrics(open_page("registry"))["In production"] == "none"  # this server saw #head
    log = ws.ledger()
    try:
        log.execute_unchecked("DELETE FROM ledger WHERE seq >= ?", [head])  # type: ignore[attr-defined]
        refused_everywhere(f"this client verified it up to entry #{head}, it now ends")
        log.execute_unchecked("DELETE FROM ledger WHERE seq >= ?", [checkpoint.seq])  # type: ignore[attr-defined]
    finally:
        log.close()
    refused_everywhere(f"ledger truncated after checkpoint #{checkpoint.seq}:")
    before = workspace_digest(root)
    with pytest.raises(LedgerError, match=f"truncated after checkpoint #{checkpoint.seq}"):
        services.submit_decision(
            "approve", on_copy.version, "bruno", "council", demo_passphrase("bruno"), "forced"
        )
    assert workspace_digest(root) == before


def test_a_server_holding_the_pipeline_key_checkpoints_each_decision(
    on_copy: DemoInfo, monkeypatch: pytest.MonkeyPatch, trust_store: TrustStore
) -> None:
    """Without the pipeline key a decision leaves the checkpoints as they are; a server that
    holds it signs a checkpoint of the new head right after the decision."""
    registry = Workspace.open(on_copy.workspace, trust=trust_store).registry()
    said = services.submit_decision(
        "approve", on_copy.version, "bruno", "council", demo_passphrase("bruno"), "reviewed"
    )
    assert "checkpoint" not in said
    assert registry.checkpoint_seqs()[-1] == on_copy.ledger_entries
    monkeypatch.setenv("KFM_PIPELINE_PASSPHRASE", demo_passphrase("pipeline"))
    steward = on_copy.concerned_stewards[0]
    said = services.submit_decision(
        "approve", on_copy.version, steward, "steward", demo_passphrase(steward), "my region"
    )
    head = on_copy.ledger_entries + 2
    assert f"checkpoint #{head} signed by the pipeline key" in said, said
    newest = newest_checkpoint(
        registry, Workspace.open(on_copy.workspace, trust=trust_store).roster()
    )
    assert newest is not None and newest.seq == head == ledger(on_copy.workspace)[-1][0]


def test_the_working_group_resolves_a_breach_on_the_drift_page(
    on_copy: DemoInfo, approve: Callable[[DemoInfo, str, str], list[str]], trust_store: TrustStore
) -> None:
    """With a drift breach open, the last approval does not promote; dana's signed resolve on
    the drift page does, at once."""
    from core.decisions.records import EvidenceRef

    ws = Workspace.open(on_copy.workspace, trust=trust_store)
    with ws.decision_engine(demo_passphrase("pipeline")) as engine:
        run = EvidenceRef(name=f"monitoring/{on_copy.version}/run/drift.json", sha256="a" * 64)
        engine.record_monitoring(on_copy.version, "PSI 0.15", [run], breaches=["drift"])
    for steward in on_copy.concerned_stewards:
        approve(on_copy, steward, "steward")
    assert approve(on_copy, "bruno", "council") == ["approve"]  # the breach blocks promotion
    at = open_page("drift", reviewer="dana")
    assert any("Open breaches" in e.value for e in at.error)
    assert at.radio(key="rollback-action").options == ["Resolve the open breaches as working_group"]
    at.text_area(key="rollback-reason").input("seasonal shift; reviewed the runs").run()
    at.button(key="rollback-sign").click().run()
    at.text_input(key="rollback-pending-pass").input(demo_passphrase("dana")).run()
    at.button(key="rollback-pending-ok").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("promoted to production" in s.value for s in at.success)
    assert metrics(at)["Production"] == on_copy.version
    assert ledger(on_copy.workspace)[-1][1:] == ("resolve", "dana", "working_group")
