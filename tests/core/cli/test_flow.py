"""The full decision flow from the CLI, on SQLite and on PostgreSQL.

deploy → two council approvals plus the concerned steward's → automatic promotion; a second
version promoted over it; a council veto → automatic rollback to the first, with its artifacts.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.decisions.roster import RosterEntry, add_reviewer, sign_roster
from core.decisions.trust import TrustStore
from core.demo.reference import build_reference_candidate
from core.signing.keys import generate_key_pair, load_public_key, load_signer, public_key_pem
from core.workspace import Workspace, init_workspace

PG_URL = os.environ.get("KFM_TEST_POSTGRES_URL")
runner = CliRunner()
STEWARD = "steward-aster-river"
PEOPLE = {"ana": ("council",), "ben": ("council",), "cy": ("council",), STEWARD: ("steward",)}


def kfm(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def second_candidate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference candidate built again as version 1.1.0."""
    return build_reference_candidate(tmp_path_factory.mktemp("v110") / "candidate", version="1.1.0")


@pytest.fixture(params=["sqlite", "postgres"])
def workspace(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trust_store: TrustStore,
) -> Iterator[Path]:
    """A workspace with three council members and the steward of the one region in play."""
    ledger = "ledger.sqlite"
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("KFM_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
        ledger = PG_URL
    root = tmp_path / "ws"
    ws = init_workspace(
        root,
        trust=trust_store,
        root_passphrase="root-pw",
        pipeline_passphrase="pipe-pw",
        ledger=ledger,
    )
    schema = f"kfm_flow_{uuid.uuid4().hex[:10]}"
    if request.param == "postgres":
        config = (root / "kfm.toml").read_text()
        (root / "kfm.toml").write_text(config.replace('schema = "public"', f'schema = "{schema}"'))
    regions = json.loads(ws.regions_path.read_text())
    regions["features"] = [
        f for f in regions["features"] if f["properties"]["steward_id"] == STEWARD
    ]
    ws.regions_path.write_text(json.dumps(regions))
    for rid, roles in PEOPLE.items():
        pair = generate_key_pair(rid, root / "keys", f"{rid}-pw")
        entry = RosterEntry(
            id=rid,
            name=rid,
            roles=roles,
            public_key=public_key_pem(load_public_key(pair.public_key)),
            valid_from=datetime(2020, 1, 1, tzinfo=UTC),
        )
        add_reviewer(ws.roster_path, entry)
    sign_roster(ws.roster_path, load_signer(root / "keys" / "root.key", "root-pw"))
    monkeypatch.setenv("KFM_PIPELINE_PASSPHRASE", "pipe-pw")
    monkeypatch.setenv("KFM_WORKSPACE", str(root))
    yield root
    if request.param == "postgres":
        ledger_obj = Workspace.open(root, trust=trust_store).ledger()
        ledger_obj.drop()  # type: ignore[attr-defined]
        ledger_obj.close()


def decide(kind: str, version: str, who: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("REVIEWER_PW", f"{who}-pw")
    return kfm(
        kind,
        version,
        "--as",
        who,
        "--key",
        str(root / "keys" / f"{who}.key"),
        "--reason",
        f"{kind} after reviewing gates, XAI and lineage",
        "--passphrase-env",
        "REVIEWER_PW",
    )


@pytest.mark.slow
def test_full_flow(
    workspace: Path,
    reference_candidate_dir: Path,
    second_candidate: Path,
    monkeypatch: pytest.MonkeyPatch,
    trust_store: TrustStore,
) -> None:
    """Deploy, quorum + steward → promotion; newer version promoted; veto → rollback with artifacts."""
    for candidate, version in ((reference_candidate_dir, "1.0.0"), (second_candidate, "1.1.0")):
        deployed = kfm("deploy", str(candidate), "--as", "cy")
        assert deployed["version"] == version and deployed["concerned_stewards"] == [STEWARD]
        decide("approve", version, "ana", workspace, monkeypatch)
        decide("approve", version, "ben", workspace, monkeypatch)
        assert kfm("status")["production"] != version  # the steward has not approved yet
        decide("approve", version, STEWARD, workspace, monkeypatch)
        status = kfm("status")
        assert status["production"] == version, status
    assert kfm("status")["versions"]["1.0.0"]["state"] == "superseded"

    decide("veto", "1.1.0", "ana", workspace, monkeypatch)
    status = kfm("status")
    assert status["production"] == "1.0.0"
    assert status["versions"]["1.1.0"]["state"] == "rolled_back"
    verify = kfm("ledger", "verify")
    assert verify["ok"], verify
    ws = Workspace.open(workspace, trust=trust_store)
    rollbacks = sorted({k.split("/")[2] for k in ws.registry().store.list("climate/rollbacks")})
    assert len(rollbacks) == 1
    names = {
        k.rsplit("/", 1)[1] for k in ws.registry().store.list(f"climate/rollbacks/{rollbacks[0]}")
    }
    assert names == {"rollback_report.json", "drift_summary.json", "sovereignty_conflict.json"}
    report = json.loads(ws.registry().read_rollback(rollbacks[0], "rollback_report.json"))
    assert (report["rolled_back"], report["target_version"], report["trigger"]) == (
        "1.1.0",
        "1.0.0",
        "veto",
    )
    assert re.search(r"veto by ana", report["reason"])
