"""Workspace and the decision CLI end to end: init, roster, approve, status, verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.decisions.engine import DecisionEngine
from core.decisions.trust import TrustStore
from core.errors import WorkspaceError
from core.signing.keys import generate_key_pair
from core.testing import push_version, write_version_dir
from core.workspace import Workspace, init_workspace, resolve_workspace_path

runner = CliRunner()


def kfm(*args: str) -> dict | list:
    """Run kfm with --json and return the parsed output (exit 0 required)."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_resolution_order(tmp_path: Path) -> None:
    """--workspace wins over KFM_WORKSPACE, which wins over ./.kfm."""
    assert resolve_workspace_path(Path("a"), "b", tmp_path) == Path("a")
    assert resolve_workspace_path(None, "b", tmp_path) == Path("b")
    assert resolve_workspace_path(None, None, tmp_path) == tmp_path / ".kfm"


def test_init_creates_everything_and_refuses_twice(tmp_path: Path, trust_store: TrustStore) -> None:
    """init writes kfm.toml, policy, regions, keys and a signed roster; a second init is refused."""
    ws = init_workspace(
        tmp_path / "ws", trust=trust_store, root_passphrase="r", pipeline_passphrase="p"
    )
    for name in (
        "kfm.toml",
        "governance/policy.toml",
        "governance/regions.geojson",
        "governance/roster.json",
        "governance/roster.json.sig",
        "keys/root.key",
        "keys/pipeline.key",
    ):
        assert (ws.root / name).is_file(), name
    assert ws.roster().entry("pipeline") is not None
    assert ws.policy().decisions.council_quorum == 2
    with pytest.raises(WorkspaceError, match="already exists"):
        init_workspace(
            tmp_path / "ws", trust=trust_store, root_passphrase="r", pipeline_passphrase="p"
        )


def test_missing_or_bad_workspace_is_clear(tmp_path: Path) -> None:
    """Opening a folder without kfm.toml, or with a malformed one, names the file and field."""
    with pytest.raises(WorkspaceError, match="no workspace here"):
        Workspace.open(tmp_path)
    (tmp_path / "kfm.toml").write_text('format = 1\n[registry]\nlocation = ""\n')
    with pytest.raises(WorkspaceError) as info:
        Workspace.open(tmp_path)
    assert info.value.field == "registry.location"


def test_cli_flow_approve_promote_status_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kfm_home: Path
) -> None:
    """init → roster add/sign → push → approve ×3 via CLI (no pipeline key) promotes; status,
    show and verify agree."""
    monkeypatch.setenv("ROOT_PASS", "root-secret")
    monkeypatch.setenv("KFM_PIPELINE_PASSPHRASE", "pipe-secret")
    monkeypatch.setenv("REVIEWER_PASS", "reviewer-secret")
    root = tmp_path / "ws"
    monkeypatch.setenv("KFM_WORKSPACE", str(root))
    kfm(
        "init",
        "--root-passphrase-env",
        "ROOT_PASS",
        "--pipeline-passphrase-env",
        "KFM_PIPELINE_PASSPHRASE",
    )
    keys = tmp_path / "keys"
    for reviewer, role in (
        ("alice", "council"),
        ("bob", "council"),
        ("sam", "steward"),
        ("dev", "council"),
    ):
        generate_key_pair(reviewer, keys, "reviewer-secret")
        result = runner.invoke(
            app,
            [
                "roster",
                "add",
                "--id",
                reviewer,
                "--role",
                role,
                "--public-key",
                str(keys / f"{reviewer}.pub"),
                "--valid-from",
                "2020-01-01T00:00:00Z",
                "--roster",
                str(root / "governance/roster.json"),
            ],
        )
        assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "roster",
            "sign",
            "--root-key",
            str(root / "keys/root.key"),
            "--passphrase-env",
            "ROOT_PASS",
            "--roster",
            str(root / "governance/roster.json"),
        ],
    )
    assert result.exit_code == 0, result.output

    ws = Workspace.open(root, trust=TrustStore(kfm_home))
    with DecisionEngine(
        ledger=ws.ledger(),
        registry=ws.registry(),
        roster=ws.roster(),
        policy=ws.policy().decisions,
        pipeline=ws.pipeline_signer("pipe-secret"),
    ) as engine:
        record = push_version(
            engine.registry,
            "1.0.0",
            write_version_dir(tmp_path / "v"),
            engine._require_pipeline(),
            name="m",
            concerned_stewards=["sam"],
        )
        engine.register(record, gates_json=b"{}")
    monkeypatch.delenv("KFM_PIPELINE_PASSPHRASE")  # reviewers never need the pipeline key

    assert kfm("registry", "list")["versions"] == ["1.0.0"]
    assert kfm("registry", "show", "1.0.0")["submitter"] == "dev"
    assert kfm("registry", "verify", "1.0.0")["ok"] is True

    def vote(who: str, kind: str = "approve") -> dict | list:
        return kfm(
            kind,
            "1.0.0",
            "--as",
            who,
            "--key",
            str(keys / f"{who}.key"),
            "--reason",
            "gates and lineage reviewed",
            "--passphrase-env",
            "REVIEWER_PASS",
        )

    refused = runner.invoke(
        app,
        [
            "approve",
            "1.0.0",
            "--as",
            "dev",
            "--key",
            str(keys / "dev.key"),
            "--reason",
            "mine",
            "--passphrase-env",
            "REVIEWER_PASS",
        ],
    )
    assert refused.exit_code != 0 and "self-approval" in str(refused.exception)
    vote("alice")
    vote("bob")
    status = kfm("status")
    assert status["production"] is None and status["staging"] == "1.0.0"
    outcome = vote("sam")
    assert [e["kind"] for e in outcome["appended"]] == ["approve"]  # type: ignore[call-overload]
    assert [e["kind"] for e in outcome["events"]] == ["promotion"]  # type: ignore[call-overload]
    status = kfm("status")
    assert status["production"] == "1.0.0"
    assert status["versions"]["1.0.0"]["state"] == "promoted"
    past = kfm("status", "--at", "2020-01-01T00:00:00Z")
    assert past["production"] is None and past["versions"] == {}
    assert kfm("ledger", "verify")["ok"] is True
    shown = kfm("ledger", "show")
    assert len(shown) == 5  # type: ignore[arg-type]
    assert [e["kind"] for e in shown[-1]["events"]] == ["promotion"]  # type: ignore[index]
    assert kfm("registry", "fsck")["leftovers"] == []
