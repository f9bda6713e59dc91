"""`kfm approve | waive | resolve | status`: reviewers decide from the CLI with no pipeline key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.decisions.records import EvidenceRef
from core.decisions.roster import RosterEntry, add_reviewer, sign_roster
from core.decisions.trust import TrustStore
from core.signing.keys import generate_key_pair, load_public_key, load_signer, public_key_pem
from core.testing import register_test_version, write_version_dir
from core.workspace import Workspace, init_workspace

runner = CliRunner()
PEOPLE = {"ana": "council", "ben": "council", "cy": "council", "wendy": "working_group"}
RUN = EvidenceRef(name="monitoring/1.1.0/run/drift_summary.json", sha256="a" * 64)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trust_store: TrustStore) -> Path:
    """A workspace with 1.0.0 (gate 'impact' failed) and 1.1.0 (a drift breach open)."""
    root = tmp_path / "ws"
    ws = init_workspace(
        root, trust=trust_store, root_passphrase="root-pw", pipeline_passphrase="pipe-pw"
    )
    for rid, role in PEOPLE.items():
        pair = generate_key_pair(rid, root / "keys", f"{rid}-pw")
        add_reviewer(
            ws.roster_path,
            RosterEntry(
                id=rid,
                name=rid,
                roles=(role,),  # type: ignore[arg-type]
                public_key=public_key_pem(load_public_key(pair.public_key)),
                valid_from=datetime(2020, 1, 1, tzinfo=UTC),
            ),
        )
    sign_roster(ws.roster_path, load_signer(root / "keys" / "root.key", "root-pw"))
    with ws.decision_engine("pipe-pw") as engine:
        for version, failed in (("1.0.0", ("impact",)), ("1.1.0", ())):
            source = write_version_dir(tmp_path / version, seed=version)
            register_test_version(
                engine, source, version, submitter="cy", concerned_stewards=(), gates_failed=failed
            )
        engine.record_monitoring("1.1.0", "PSI 0.15 on t_coarse", [RUN], breaches=["drift"])
    monkeypatch.delenv("KFM_PIPELINE_PASSPHRASE", raising=False)  # reviewers never need it
    monkeypatch.setenv("KFM_WORKSPACE", str(root))
    return root


def kfm(root: Path, who: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("REVIEWER_PW", f"{who}-pw")
    result = runner.invoke(
        app,
        [
            *args,
            "--as",
            who,
            "--key",
            str(root / "keys" / f"{who}.key"),
            "--reason",
            "reviewed",
            "--passphrase-env",
            "REVIEWER_PW",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output + str(result.exception)
    data: dict = json.loads(result.stdout)
    return data


def status() -> dict:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data: dict = json.loads(result.stdout)
    return data


def test_a_council_quorum_of_waivers_lets_a_failing_gate_through(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approvals alone do not promote a version whose gate failed; two council waivers do."""
    for who in ("ana", "ben"):
        assert kfm(root, who, "approve", "1.0.0", monkeypatch=monkeypatch)["events"] == []
    missing = status()["versions"]["1.0.0"]["missing"]
    assert missing == ["gate 'impact' failed and is not waived (0 of 2 council waivers)"]
    assert kfm(root, "ana", "waive", "1.0.0", "--gate", "impact", monkeypatch=monkeypatch)
    outcome = kfm(root, "ben", "waive", "1.0.0", "--gate", "impact", monkeypatch=monkeypatch)
    assert [e["kind"] for e in outcome["appended"]] == ["waive"]
    assert [(e["kind"], e["version"]) for e in outcome["events"]] == [("promotion", "1.0.0")]
    waivers = status()["versions"]["1.0.0"]["waivers"]
    assert sorted((w["actor"], w["gate"]) for w in waivers) == [
        ("ana", "impact"),
        ("ben", "impact"),
    ]


def test_a_working_group_resolve_promotes_a_version_held_by_a_breach(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last approval is held by the open drift breach; wendy's resolve promotes at once."""
    for who in ("ana", "ben"):
        kfm(root, who, "approve", "1.1.0", monkeypatch=monkeypatch)
    assert status()["production"] is None
    outcome = kfm(root, "wendy", "resolve", "1.1.0", monkeypatch=monkeypatch)
    assert outcome["production"] == "1.1.0"
    text = runner.invoke(app, ["status"])
    assert text.exit_code == 0 and "1.1.0 promoted to production" in text.output


def test_refusals_are_clear_and_write_nothing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A waiver by the working group and a resolve by the council are refused with the rule."""
    monkeypatch.setenv("REVIEWER_PW", "wendy-pw")
    result = runner.invoke(
        app,
        ["waive", "1.0.0", "--gate", "impact", "--as", "wendy", "--key",
         str(root / "keys" / "wendy.key"), "--reason", "x", "--passphrase-env", "REVIEWER_PW"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "does not grant role 'council'" in str(result.exception)
    monkeypatch.setenv("REVIEWER_PW", "ana-pw")
    result = runner.invoke(
        app,
        ["resolve", "1.1.0", "--as", "ana", "--key", str(root / "keys" / "ana.key"),
         "--reason", "x", "--passphrase-env", "REVIEWER_PW"],
    )  # fmt: skip
    assert result.exit_code != 0 and "role 'council' may not resolve" in str(result.exception)
    ledger = Workspace.open(root).ledger()
    try:
        assert [e.kind for e in ledger.entries()][-1] == "monitoring"
    finally:
        ledger.close()
