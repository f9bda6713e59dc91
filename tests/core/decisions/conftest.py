"""A governed workspace for command-line tests of the decisions stage, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.decisions.engine import DecisionEngine, SubmitOutcome
from core.decisions.roster import RosterEntry, add_reviewer, sign_roster
from core.decisions.trust import TrustStore
from core.signing.keys import generate_key_pair, load_public_key, load_signer, public_key_pem
from core.testing import push_version, signed_decision, write_version_dir
from core.workspace import Workspace, init_workspace

PG_URL = os.environ.get("KFM_TEST_POSTGRES_URL")
PEOPLE = {"alice": "council", "bob": "council", "carol": "council", "sam": "steward"}


@dataclass
class Governed:
    """A workspace with three council members and steward sam; passphrases are ``<id>-pw``."""

    ws: Workspace
    tmp: Path

    def deploy(self, engine: DecisionEngine, version: str) -> None:
        """Push a small version (concerned steward sam) and register it."""
        source = write_version_dir(self.tmp / version, seed=version)
        record = push_version(
            engine.registry,
            version,
            source,
            engine._require_pipeline(),
            name="m",
            submitter="carol",
            concerned_stewards=["sam"],
        )
        engine.register(record, gates_json=b"{}")

    def vote(self, engine: DecisionEngine, who: str, kind: str, version: str) -> SubmitOutcome:
        """``who``'s signed decision on the head now, submitted to the engine."""
        signer = load_signer(self.ws.reviewer_key_path(who), f"{who}-pw", key_id=who)
        envelope = signed_decision(
            signer,
            kind=kind,
            role=PEOPLE[who],
            version=version,
            subject=engine.version_record(version).subject,
            time=engine.now(),
            anchor=engine.state().anchor,
        )
        return engine.submit(envelope)

    def promote_and_veto(self) -> int:
        """1.0.0 and 1.1.0 promoted, then 1.1.0 vetoed by carol; returns the veto's seq.

        The veto is the ledger's last row: the rollback it causes is derived, and its three
        files are written by the engine.
        """
        with self.ws.decision_engine("pipe-pw") as engine:
            for version in ("1.0.0", "1.1.0"):
                self.deploy(engine, version)
                for who in ("alice", "bob", "sam"):
                    self.vote(engine, who, "approve", version)
            veto = self.vote(engine, "carol", "veto", "1.1.0")
            assert engine.state().production == "1.0.0"
            assert len(veto.rollback_keys) == 3
        return veto.entry.seq


@pytest.fixture(params=["sqlite", "postgres"])
def governed(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    trust_store: TrustStore,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Governed]:
    """The governed workspace on each ledger backend, set as the CLI's workspace."""
    ledger = "ledger.sqlite"
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("KFM_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
        ledger = PG_URL
    root = tmp_path / "ws"
    init_workspace(
        root,
        trust=trust_store,
        root_passphrase="root-pw",
        pipeline_passphrase="pipe-pw",
        ledger=ledger,
    )
    if request.param == "postgres":
        config = (root / "kfm.toml").read_text()
        schema = f"kfm_gov_{uuid.uuid4().hex[:10]}"
        (root / "kfm.toml").write_text(config.replace('schema = "public"', f'schema = "{schema}"'))
    ws = Workspace.open(root, trust=trust_store)
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
    monkeypatch.setenv("KFM_PIPELINE_PASSPHRASE", "pipe-pw")
    monkeypatch.setenv("KFM_WORKSPACE", str(root))
    yield Governed(ws, tmp_path)
    if request.param == "postgres":
        with closing(ws.ledger()) as opened:
            opened.drop()  # type: ignore[attr-defined]
