"""kfm demo: a complete demo workspace with a version under review, never built over other data."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app, main
from core.decisions.reviewer import submit_decision
from core.decisions.trust import TrustStore
from core.demo.build import (
    DEMO_STEPS,
    PASSPHRASES_FILE,
    DemoError,
    build_demo,
    dashboard_command,
    dashboard_env,
    demo_passphrase,
    load_demo,
)
from core.errors import AuthorizationError, KeyError_
from core.signing.keys import load_signer
from core.workspace import Workspace, init_workspace

runner = CliRunner()
COUNCIL = {"amara", "bruno", "chidi"}


def kfm_json(*args: str) -> dict:
    """Run kfm with --json; exit 0 required."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict = json.loads(result.stdout)
    return data


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root`` with its SHA-256 and mtime."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the console script (errors printed as diagnostics) and return its exit code."""
    monkeypatch.setattr(sys, "argv", ["kfm", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    return int(caught.value.code or 0)


@pytest.fixture(scope="module")
def built_demo(
    reference_candidate_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """The demo built once by the CLI with --no-serve (reusing the session's reference build)."""
    target = tmp_path_factory.mktemp("demo") / "demo"
    result = runner.invoke(
        app,
        ["demo", "--workspace", str(target), "--no-serve", "--candidate",
         str(reference_candidate_dir), "--port", "8642"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return target, result.output


@pytest.fixture
def demo_dir(
    built_demo: tuple[Path, str], pin_workspace: Callable[[Path], None]
) -> tuple[Path, str]:
    """The demo built once, its root key pinned for this test's client."""
    pin_workspace(built_demo[0])
    return built_demo


def test_demo_leaves_a_version_under_review(
    demo_dir: tuple[Path, str], trust_store: TrustStore
) -> None:
    """The ledger verifies; status shows one approval and names every rule still to meet."""
    root, output = demo_dir
    report = kfm_json("ledger", "verify", "--workspace", str(root))
    assert report["ok"] and report["entries"] == 5, report  # + two signed monitoring records
    status = kfm_json("status", "--workspace", str(root))
    (version,) = status["versions"]
    state = status["versions"][version]
    assert status["staging"] == version and status["production"] is None
    assert state["state"] == "under_review"
    assert [(a["actor"], a["role"]) for a in state["approvals"]] == [("amara", "council")]
    roster = Workspace.open(root, trust=trust_store).roster().roster
    stewards = sorted(r.id for r in roster.reviewers if "steward" in r.roles)
    assert stewards and all(s.startswith("steward-") for s in stewards)
    assert state["missing"] == [
        "1 more council approval(s) (have 1 of 2)",
        *(f"approval by concerned steward '{s}'" for s in stewards),
    ]
    assert {r.id for r in roster.reviewers if "council" in r.roles} == COUNCIL
    assert [r.id for r in roster.reviewers if "working_group" in r.roles] == ["dana"]
    assert "still needed: 1 more council approval" in " ".join(output.split())
    record = Workspace.open(root, trust=trust_store).registry().show(version)
    assert record.submitter == "chidi" and sorted(record.concerned_stewards) == stewards


def test_demo_has_monitoring_runs_on_real_batches(demo_dir: tuple[Path, str]) -> None:
    """Two runs are recorded: the +3 K batch with a drift breach, then held-out times in bounds."""
    root, _ = demo_dir
    history = kfm_json("monitor", "history", "1.0.0", "--workspace", str(root))
    assert [row["batch"] for row in history] == ["batch-warming-3K.nc", "batch-held-out.nc"]
    warming, held_out = history
    assert held_out["breaches"] == []
    assert warming["breaches"] and all("t_coarse" in b for b in warming["breaches"])
    status = kfm_json("status", "--workspace", str(root))
    assert status["production"] is None  # nothing rolled back: 1.0.0 was not in production
    assert status["versions"]["1.0.0"]["open_breaches"] == []  # closed by the in-bounds run
    shown = kfm_json("ledger", "show", "--workspace", str(root))
    assert [e["kind"] for e in shown][-2:] == ["monitoring", "monitoring"]


def test_every_key_is_protected_and_the_passphrases_are_written(
    demo_dir: tuple[Path, str],
) -> None:
    """Each key opens with its printed demo passphrase only; the file is owner-only, labelled."""
    root, output = demo_dir
    text = (root / PASSPHRASES_FILE).read_text(encoding="utf-8")
    assert text.startswith("DEMO ONLY")
    assert stat.S_IMODE((root / PASSPHRASES_FILE).stat().st_mode) == 0o600
    marker = json.loads((root / "demo.json").read_text(encoding="utf-8"))
    people = marker["people"]
    assert {"root", "pipeline", "dana", *COUNCIL} <= {p["id"] for p in people}
    assert "passphrase" not in json.dumps(people)
    for person in people:
        passphrase = demo_passphrase(person["id"])
        assert passphrase in text and passphrase in output
        assert load_signer(root / person["key"], passphrase).key_id
        with pytest.raises(KeyError_, match="wrong passphrase"):
            load_signer(root / person["key"], "not-" + passphrase)


@pytest.mark.slow
def test_the_demo_does_the_full_flow(
    demo_dir: tuple[Path, str],
    tmp_path: Path,
    trust_store: TrustStore,
    pin_workspace: Callable[[Path], None],
) -> None:
    """Approvals promote (derived, no reviewer holds the pipeline key); a drift breach of
    production rolls it back, leaving production empty and the three files written."""
    from core.monitoring.record import monitor_version

    root = tmp_path / "copy"
    shutil.copytree(demo_dir[0], root)
    pin_workspace(root)
    ws = Workspace.open(root, trust=trust_store)
    with ws.decision_engine() as engine:
        assert engine.pipeline is None
        version = engine.state().staging
        assert version is not None

        def approve(actor: str, role: str) -> list[str]:
            signer = load_signer(ws.reviewer_key_path(actor), demo_passphrase(actor), key_id=actor)
            outcome = submit_decision(engine, "approve", version, signer, role=role, reason="test")
            return [outcome.entry.kind, *(e.kind for e in outcome.events)]

        with pytest.raises(AuthorizationError, match="self-approval"):
            approve("chidi", "council")
        stewards = engine.version_facts(version).concerned_stewards
        kinds = [approve("bruno", "council"), *(approve(s, "steward") for s in stewards)]
        assert kinds[-1] == ["approve", "promotion"] and all(k == ["approve"] for k in kinds[:-1])
        assert engine.state().production == version
    with ws.decision_engine(demo_passphrase("pipeline")) as pipeline:
        batch = root / "batches" / "batch-warming-3K.nc"
        outcome = monitor_version(pipeline, version, batch, ws.policy().monitoring)
        assert outcome.rollback is not None and outcome.rollback.target_version is None
        assert pipeline.state().production is None
        files = pipeline.registry.store.list(f"climate/rollbacks/{outcome.rollback.rollback_id}")
    assert len(files) == 3
    assert kfm_json("ledger", "verify", "--workspace", str(root))["ok"]


def test_rerun_without_fresh_changes_nothing(
    demo_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second `kfm demo` on the demo exits non-zero, says so and how to rebuild, touches nothing."""
    root = demo_dir[0]
    before = snapshot(root)
    code = run_main(monkeypatch, "demo", "--workspace", str(root), "--no-serve")
    message = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert "a demo workspace already exists here; nothing was changed" in message
    assert "--fresh" in message and "demo.json" in message
    assert snapshot(root) == before
    assert sorted(p.name for p in root.parent.iterdir()) == ["demo"]


def test_fresh_rebuilds_only_a_demo(
    demo_dir: tuple[Path, str],
    reference_candidate_dir: Path,
    tmp_path: Path,
    trust_store: TrustStore,
) -> None:
    """--fresh replaces a demo with new keys and the same state; other folders are refused."""
    root = tmp_path / "demo"
    shutil.copytree(demo_dir[0], root)
    old_key = (root / "keys" / "amara.pub").read_text()
    steps: list[str] = []
    info = build_demo(
        root,
        trust=trust_store,
        fresh=True,
        candidate_source=reference_candidate_dir,
        progress=steps.append,
        monitoring=False,
    )
    assert [s for s in steps if s in DEMO_STEPS] == list(DEMO_STEPS)
    assert (root / "keys" / "amara.pub").read_text() != old_key
    assert info.state == "under_review" and info.approved_by == ("amara",)
    assert info.ledger_entries == 3 and info.workspace == root
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no staging leftovers
    pins = trust_store.pins()  # the new root is pinned where the demo is; no staging pin left
    assert pins[str(root.resolve())] == Workspace.open(root).root_fingerprint()
    assert not any(".building-" in where for where in pins)

    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(DemoError, match="not a demo workspace") as caught:
        build_demo(other, trust=trust_store, fresh=True, candidate_source=reference_candidate_dir)
    assert caught.value.found == "other files"
    plain = init_workspace(
        tmp_path / "plain", trust=trust_store, root_passphrase="r", pipeline_passphrase="p"
    )
    with pytest.raises(DemoError, match="not a demo workspace") as caught:
        build_demo(
            plain.root, trust=trust_store, fresh=True, candidate_source=reference_candidate_dir
        )
    assert caught.value.found == "a kfm workspace"
    assert (other / "keep.txt").read_text() == "mine"


def test_failed_build_leaves_nothing(tmp_path: Path, trust_store: TrustStore) -> None:
    """A candidate that fails its check stops the build and leaves no workspace (and no pin)."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_metadata.json").write_text("{}")
    with pytest.raises(DemoError, match="failed its check") as caught:
        build_demo(tmp_path / "demo", trust=trust_store, candidate_source=broken)
    assert caught.value.field
    with pytest.raises(DemoError, match="not a folder") as caught:
        build_demo(tmp_path / "demo", trust=trust_store, candidate_source=tmp_path / "nowhere")
    assert (caught.value.field, caught.value.found) == ("--candidate", "missing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]
    assert trust_store.pins() == {}


def test_dashboard_command_and_environment(demo_dir: tuple[Path, str]) -> None:
    """The dashboard runs this Python's streamlit on loopback with the demo's workspace and key."""
    root, output = demo_dir
    command = dashboard_command(8642)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py"]
    assert command[5:] == [
        "--server.port", "8642", "--server.address", "127.0.0.1", "--browser.serverPort", "8642"
    ]  # fmt: skip
    assert " ".join(command[1:]) in " ".join(output.split())
    info = load_demo(root)
    assert (info.version, info.submitter, info.approved_by) == ("1.0.0", "chidi", ("amara",))
    env = dashboard_env(info, {"PATH": "/bin"})
    assert env["PATH"] == "/bin" and env["KFM_WORKSPACE"] == str(root.resolve())
    signer = Workspace.open(Path(env["KFM_WORKSPACE"])).pipeline_signer(
        env["KFM_PIPELINE_PASSPHRASE"]
    )
    assert signer.key_id == "pipeline"
    with pytest.raises(DemoError, match="not a demo workspace"):
        load_demo(root / "keys")


def test_monitor_cli_on_the_demo(
    demo_dir: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pin_workspace: Callable[[Path], None],
) -> None:
    """`kfm monitor VERSION --batch FILE --json` records a run; a missing batch is a clear error."""
    monkeypatch.setenv("KFM_PIPELINE_PASSPHRASE", "demo-only-pipeline")
    root = tmp_path / "demo"
    shutil.copytree(demo_dir[0], root)
    pin_workspace(root)
    batch = root / "batches" / "batch-held-out.nc"
    outcome = kfm_json("monitor", "1.0.0", "--batch", str(batch), "--workspace", str(root))
    assert outcome["needs_rollback"] is False and outcome["note"].startswith("within bounds")
    assert len(kfm_json("monitor", "history", "1.0.0", "--workspace", str(root))) == 3
    missing = runner.invoke(
        app, ["monitor", "1.0.0", "--batch", str(root / "nope.nc"), "--workspace", str(root)]
    )
    assert missing.exit_code != 0
    assert "batch file not found" in str(missing.exception or missing.output)


def test_rerun_serves_the_existing_demo(
    demo_dir: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running the main job again serves the demo as left, without rebuilding it."""
    import subprocess

    import core.cli.demo as demo_cli

    root = tmp_path / "demo"
    shutil.copytree(demo_dir[0], root)
    before = snapshot(root)
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(
        command: list[str], cwd: Path, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        calls.append((command, env))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(demo_cli.subprocess, "run", fake_run)
    result = runner.invoke(app, ["demo", "--workspace", str(root), "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert "serving it as it is" in " ".join(result.output.split())
    ((command, env),) = calls
    assert "streamlit" in command and "8765" in command
    assert (
        env["KFM_WORKSPACE"] == str(root) and env["KFM_PIPELINE_PASSPHRASE"] == "demo-only-pipeline"
    )
    assert snapshot(root) == before
