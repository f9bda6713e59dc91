"""Signed checkpoints anchor the ledger: truncation, deletion and reordering are refused.

The attacks are what someone with write access to the database (and the registry) but no key
can do: delete rows, or rewrite them with recomputed chain hashes. Each runs on SQLite and on
PostgreSQL, against the core checks and through `kfm ledger verify` and `kfm status`. A
rollback caused by a person's veto is derived by the verified replay (never a row): erasing the
veto erases it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.decisions import verify as verify_module
from core.decisions.anchors import check_anchors, read_anchors, verified_and_anchored
from core.decisions.checkpoints import (
    CHECKPOINT_PAYLOAD_TYPE,
    Checkpoint,
    check_against_checkpoint,
    checkpoint_head,
    newest_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from core.decisions.engine import DecisionEngine, SubmitOutcome
from core.decisions.ledger import (
    COLUMNS,
    GENESIS,
    Ledger,
    LedgerEntry,
    PostgresLedger,
    SQLiteLedger,
    make_entry,
)
from core.decisions.records import Anchor
from core.decisions.roster import (
    TrustedRoster,
    revoke_reviewer,
    sign_roster,
    sign_roster_data,
    verify_roster_data,
)
from core.decisions.state import VerifiedState
from core.decisions.trust import TrustStore
from core.decisions.verify import VerifiedLedger, verify_ledger
from core.errors import AuthorizationError, LedgerError, RosterError, TrustError
from core.policy import DecisionPolicy
from core.registry.layout import checkpoint_key
from core.registry.versions import Registry
from core.signing.keys import load_signer
from core.testing import (
    FixedClock,
    Governance,
    MemoryLedger,
    MemoryStore,
    default_reviewers,
    make_governance,
    push_version,
    signed_decision,
    write_version_dir,
)

if TYPE_CHECKING:  # the fixture's type; conftest modules are not imported by name
    from tests.core.decisions.conftest import Governed

PG_URL = os.environ.get("KFM_TEST_POSTGRES_URL")
runner = CliRunner()


# --------------------------------------------------------------------------- the attacker's tools
def execute(ledger: Ledger, sql: str, *params: object) -> None:
    """Raw SQL on the ledger's table, as anyone with write access to the database can run."""
    assert isinstance(ledger, SQLiteLedger | PostgresLedger)
    table = "ledger" if isinstance(ledger, SQLiteLedger) else "{table}"
    text = sql.replace("TABLE", table)
    if isinstance(ledger, PostgresLedger):
        text = text.replace("?", "%s")
    ledger.execute_unchecked(text, params)


def delete_from(ledger: Ledger, seq: int) -> None:
    """Delete every row from ``seq`` on (the tail): the chain before it stays valid."""
    execute(ledger, "DELETE FROM TABLE WHERE seq >= ?", seq)


def rewrite(ledger: Ledger, rows: Sequence[LedgerEntry]) -> None:
    """Replace the ledger by ``rows``' signed records, re-chained with recomputed hashes.

    The recorded times are the original ones in order, so the rebuilt rows never go back in
    time (each record's signed time stays within the allowed skew of its new row's).
    """
    rebuilt, prev = [], GENESIS
    times = sorted(row.recorded for row in rows)
    for seq, (row, recorded) in enumerate(zip(rows, times, strict=True), start=1):
        entry = make_entry(seq, prev, recorded, row.envelope_dict())
        rebuilt.append(entry)
        prev = entry.entry_hash
    execute(ledger, "DELETE FROM TABLE")
    marks = ", ".join("?" for _ in COLUMNS)
    for entry in rebuilt:
        values = [getattr(entry, c) for c in COLUMNS]
        execute(ledger, f"INSERT INTO TABLE ({', '.join(COLUMNS)}) VALUES ({marks})", *values)


def delete_checkpoints(registry: Registry, *, after: int = 0) -> None:
    """Delete the checkpoint files past ``after`` (the registry is writable too)."""
    for seq in registry.checkpoint_seqs():
        if seq > after:
            registry.store.delete(checkpoint_key(seq))


# --------------------------------------------------------------------------- a governed world
@dataclass
class World:
    gov: Governance
    registry: Registry
    ledger: Ledger
    engine: DecisionEngine
    clock: FixedClock
    tmp: Path
    trust: TrustStore

    def deploy(self, version: str) -> None:
        """Push and register ``version`` (steward sam concerned), then checkpoint as deploy does."""
        source = write_version_dir(self.tmp / version, seed=version)
        record = push_version(
            self.registry, version, source, self.gov["pipeline"], concerned_stewards=["sam"]
        )
        self.engine.register(record, gates_json=(source / "gates.json").read_bytes())
        self.checkpoint()

    def submit(
        self, actor: str, kind: str, version: str, *, anchor: Anchor | None = None
    ) -> SubmitOutcome:
        """``actor``'s signed record, built on the head now (or on ``anchor``), submitted."""
        self.clock.advance(seconds=1)
        roles = self.gov.roster.entry(actor).roles  # type: ignore[union-attr]
        envelope = signed_decision(
            self.gov[actor],
            kind=kind,
            role=roles[0],
            version=version,
            subject=self.registry.show(version).subject,
            time=self.clock(),
            anchor=anchor or self.engine.state().anchor,
        )
        return self.engine.submit(envelope)

    def approve_together(self, version: str, *actors: str) -> None:
        """Approvals signed at the same time, each on the head its signer saw then (the same)."""
        head = self.engine.state().anchor
        for actor in actors:
            self.submit(actor, "approve", version, anchor=head)

    def promote(self, version: str) -> None:
        for actor in ("alice", "bob", "sam"):
            self.submit(actor, "approve", version)

    def checkpoint(self) -> None:
        """What a pipeline-key holder does after its appends (deploy, monitoring)."""
        checkpoint_head(self.engine)

    def check(self, roster: TrustedRoster | None = None) -> VerifiedState:
        """What `kfm status` does in a new process: anchors, then one verification, checked."""
        fresh = VerifiedLedger(roster or self.gov.roster, DecisionPolicy())
        state, _ = verified_and_anchored(
            fresh, self.ledger, registry=self.registry, trust=self.trust
        )
        return state

    def verifies_alone(self) -> bool:
        """Whether every entry verifies (chain, signatures, anchors, rules), anchors aside."""
        return verify_ledger(self.ledger.entries(), self.gov.roster, DecisionPolicy()).ok


@pytest.fixture(params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path: Path, trust_store: TrustStore
) -> Iterator[World]:
    """A roster, a registry, a SQL ledger and the engine over them (on each SQL backend)."""
    clock = FixedClock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    if request.param == "sqlite":
        ledger: Ledger = SQLiteLedger(tmp_path / "ledger.sqlite", clock=clock)
    else:
        if not PG_URL:
            pytest.skip("KFM_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
        ledger = PostgresLedger(PG_URL, schema=f"kfm_cp_{uuid.uuid4().hex[:10]}", clock=clock)
    gov = make_governance(default_reviewers())
    registry = Registry(MemoryStore(), pipeline_key=gov["pipeline"].public_key, clock=clock)
    engine = DecisionEngine(
        ledger=ledger,
        registry=registry,
        roster=gov.roster,
        policy=DecisionPolicy(),
        pipeline=gov["pipeline"],
        clock=clock,
    )
    yield World(gov, registry, ledger, engine, clock, tmp_path, trust_store)
    if isinstance(ledger, PostgresLedger):
        ledger.drop()
    ledger.close()


def vetoed(world: World) -> int:
    """1.0.0 then 1.1.0 promoted; 1.1.0 vetoed by carol (production back to 1.0.0).

    Returns the seq of the veto, the ledger's last row: the rollback it causes is derived.
    """
    world.deploy("1.0.0")
    world.promote("1.0.0")
    world.deploy("1.1.0")
    world.promote("1.1.0")
    veto = world.submit("carol", "veto", "1.1.0")
    assert [e.kind for e in veto.events] == ["rollback"]
    assert world.engine.state().production == "1.0.0"
    assert world.ledger.entries()[-1].seq == veto.entry.seq
    return veto.entry.seq


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_create_once(world: World) -> None:
    """A checkpoint is stored once at its seq, read back verified, and never written twice."""
    world.deploy("1.0.0")
    head = world.ledger.entries()[-1]
    newest = newest_checkpoint(world.registry, world.gov.roster)
    assert newest is not None and newest.signer == "pipeline"
    assert (newest.seq, newest.checkpoint.entry_hash) == (head.seq, head.entry_hash)
    assert newest.checkpoint.roster_serial == world.gov.roster.serial
    stored = json.loads(world.registry.store.read(checkpoint_key(head.seq)))
    assert stored["payloadType"] == CHECKPOINT_PAYLOAD_TYPE
    assert world.registry.checkpoint_seqs() == [head.seq]
    world.checkpoint()  # same head: kept, not rewritten
    assert world.registry.checkpoint_seqs() == [head.seq]
    assert json.loads(world.registry.store.read(checkpoint_key(head.seq))) == stored


def test_checkpoint_signed_by_a_reviewer_or_edited_is_refused(world: World) -> None:
    """Only a pipeline key of the roster signs checkpoints; an edited payload does not verify."""
    world.deploy("1.0.0")
    head = world.ledger.entries()[-1]
    checkpoint = Checkpoint(
        seq=head.seq, entry_hash=head.entry_hash, time=world.clock(), roster_serial=1
    )
    by_alice = sign_checkpoint(checkpoint, world.gov["alice"])
    with pytest.raises(TrustError, match="not signed by a pipeline key"):
        verify_checkpoint(by_alice, world.gov.roster, source="test")
    as_alice = DecisionEngine(
        ledger=world.ledger,
        registry=world.registry,
        roster=world.gov.roster,
        policy=DecisionPolicy(),
        pipeline=world.gov["alice"],
    )
    with pytest.raises(AuthorizationError, match="not a pipeline key"):
        checkpoint_head(as_alice)
    envelope = sign_checkpoint(checkpoint, world.gov["pipeline"])
    edited = dict(envelope, payload=envelope["payload"][:-4] + "AAAA")
    with pytest.raises(TrustError):
        verify_checkpoint(edited, world.gov.roster, source="test")
    key = checkpoint_key(head.seq)
    world.registry.store.delete(key)
    world.registry.store.create(checkpoint_key(head.seq + 5), json.dumps(envelope).encode())
    with pytest.raises(TrustError, match="file name and signed position differ"):
        newest_checkpoint(world.registry, world.gov.roster)


def test_empty_ledger_has_nothing_to_checkpoint(world: World) -> None:
    """Checkpointing an empty ledger is refused, naming what was expected."""
    with pytest.raises(LedgerError, match="nothing to checkpoint"):
        world.checkpoint()


def test_erasing_a_veto_is_refused_by_the_checkpoint(world: World) -> None:
    """Deleting the veto (and so the rollback it caused) puts 1.1.0 back; the checkpoint refuses."""
    veto = vetoed(world)
    world.checkpoint()
    head = world.ledger.entries()[-1].seq
    delete_from(world.ledger, veto)
    assert world.verifies_alone()  # the chain and anchors alone cannot tell a cut tail
    assert world.engine.state().production == "1.1.0"  # what the attack achieves
    with pytest.raises(LedgerError, match=f"truncated after checkpoint #{head}:"):
        world.check()
    with pytest.raises(LedgerError, match="truncated after checkpoint"):
        world.checkpoint()  # the pipeline never signs over a ledger cut back


def test_erasing_a_veto_with_recomputed_hashes_is_refused(world: World) -> None:
    """The veto removed from the middle, later rows re-chained: the anchors of the later
    records break, and the verified part is behind the checkpoint."""
    veto = vetoed(world)
    world.deploy("1.2.0")  # later rows, anchored on the head with the veto, and a checkpoint
    rows = world.ledger.entries()
    kept = [r for r in rows if r.seq != veto]
    rewrite(world.ledger, kept)
    report = verify_ledger(world.ledger.entries(), world.gov.roster, DecisionPolicy())
    assert report.broken is not None
    assert (report.broken.seq, report.broken.field) == (veto, "predicate.anchor.seq")
    assert report.state.production == "1.1.0"  # the part that verifies has 1.1.0 back
    newest = newest_checkpoint(world.registry, world.gov.roster)
    assert newest is not None and newest.seq == rows[-1].seq
    with pytest.raises(LedgerError, match=f"truncated after checkpoint #{newest.seq}"):
        check_against_checkpoint(report.state, newest)
    with pytest.raises(LedgerError, match=f"entry #{veto} is broken"):
        world.check()


def test_reordering_rows_with_recomputed_hashes_is_refused(world: World) -> None:
    """Two approvals signed on the same head, swapped and re-chained, verify alone; the
    checkpoint says forked."""
    world.deploy("1.0.0")
    world.approve_together("1.0.0", "alice", "bob")
    world.checkpoint()
    rows = world.ledger.entries()
    swapped = [*rows[:-2], rows[-1], rows[-2]]
    rewrite(world.ledger, swapped)
    assert world.verifies_alone()
    with pytest.raises(LedgerError, match=f"forked at checkpoint #{rows[-1].seq}"):
        world.check()


def test_truncating_to_zero_rows_is_refused(world: World) -> None:
    """An emptied ledger is refused by the checkpoint; without checkpoints, versions are named."""
    world.deploy("1.0.0")
    world.deploy("1.1.0")
    delete_from(world.ledger, 1)
    assert world.ledger.entries() == []
    with pytest.raises(LedgerError, match="truncated after checkpoint #4"):
        world.check()
    delete_checkpoints(world.registry)
    anchors = read_anchors(registry=world.registry, roster=world.gov.roster, trust=world.trust)
    empty = verify_ledger([], world.gov.roster, DecisionPolicy()).state
    report = check_anchors(empty, anchors, roster=world.gov.roster)
    assert report.unregistered == ("1.0.0", "1.1.0") and not report.ok
    assert "not registered in the ledger" in report.warnings[0]


def test_witness_refuses_truncation_when_checkpoints_are_deleted_too(world: World) -> None:
    """A client that saw the veto refuses the ledger without it, even with the checkpoints gone."""
    veto = vetoed(world)
    world.check()  # this client saw the veto (no checkpoint after it)
    head = world.ledger.entries()[-1].seq
    delete_from(world.ledger, veto)
    delete_checkpoints(world.registry)
    with pytest.raises(LedgerError, match=f"verified it up to entry #{head},"):
        world.check()


def test_witness_refuses_a_fork_and_reports_deleted_checkpoints(world: World) -> None:
    """Another hash at the remembered seq is refused; a checkpoint seen and gone is a warning."""
    world.deploy("1.0.0")
    world.approve_together("1.0.0", "alice", "bob")
    world.check()
    rows = world.ledger.entries()
    rewrite(world.ledger, [*rows[:-2], rows[-1], rows[-2]])
    assert world.verifies_alone()
    with pytest.raises(LedgerError, match="forked"):
        world.check()
    rewrite(world.ledger, rows)  # restored from a backup: the same hashes again
    world.checkpoint()
    world.check()
    delete_checkpoints(world.registry)
    anchors = read_anchors(registry=world.registry, roster=world.gov.roster, trust=world.trust)
    state = verify_ledger(world.ledger.entries(), world.gov.roster, DecisionPolicy()).state
    report = check_anchors(state, anchors, roster=world.gov.roster)
    assert report.warnings and "is gone from the registry" in report.warnings[0]


def newer_roster(world: World) -> TrustedRoster:
    """The same people under roster serial 2, signed by the root key."""
    data = {**world.gov.roster_data, "serial": 2}
    return verify_roster_data(
        data, sign_roster_data(data, world.gov.root), world.gov.root.public_key
    )


def pipeline_engine(world: World, roster: TrustedRoster) -> DecisionEngine:
    """The pipeline's engine over the world's ledger and registry, verifying with ``roster``."""
    return DecisionEngine(
        ledger=world.ledger,
        registry=world.registry,
        roster=roster,
        policy=DecisionPolicy(),
        pipeline=world.gov["pipeline"],
        clock=world.clock,
    )


def test_a_roster_older_than_the_checkpoint_is_refused(world: World) -> None:
    """A checkpoint written under roster serial 2 refuses the serial-1 roster afterwards."""
    world.deploy("1.0.0")
    world.submit("alice", "approve", "1.0.0")
    checkpoint_head(pipeline_engine(world, newer_roster(world)))
    anchors = read_anchors(registry=world.registry, roster=world.gov.roster, trust=world.trust)
    state = verify_ledger(world.ledger.entries(), world.gov.roster, DecisionPolicy()).state
    with pytest.raises(RosterError, match="older than one already recorded"):
        check_anchors(state, anchors, roster=world.gov.roster)
    with pytest.raises(TrustError, match="older than the one the newest checkpoint"):
        world.checkpoint()


def test_pipeline_records_sign_the_roster_serial_and_an_older_roster_is_refused(
    world: World,
) -> None:
    """A version registered under roster serial 2 makes every reader holding the serial-1
    roster refuse, the engine included, even with every checkpoint deleted."""
    world.deploy("1.0.0")
    assert world.engine.state().max_roster_serial == world.gov.roster.serial == 1
    newer = newer_roster(world)
    pipeline_engine(world, newer).register(
        push_version(
            world.registry,
            "1.1.0",
            write_version_dir(world.tmp / "1.1.0", seed="1.1.0"),
            world.gov["pipeline"],
        ),
        gates_json=b"{}",
    )
    delete_checkpoints(world.registry)
    assert world.check(newer).max_roster_serial == 2
    with pytest.raises(RosterError, match="pipeline records"):
        world.check()
    with pytest.raises(RosterError, match="older than one already recorded"):
        world.engine.state()
    with pytest.raises(RosterError):
        world.submit("alice", "approve", "1.1.0")


def test_unregistered_versions_are_named(world: World) -> None:
    """Registry versions without a verified registered entry are listed in registry order."""
    world.deploy("1.0.0")
    state = world.engine.state()
    assert state.unregistered(["0.9.0", "1.0.0", "1.1.0"]) == ["0.9.0", "1.1.0"]


def test_memory_ledger_checkpoints_too(tmp_path: Path) -> None:
    """The in-memory ledger and store take checkpoints the same way (the dashboard's fakes)."""
    gov = make_governance(default_reviewers())
    registry = Registry(MemoryStore(), pipeline_key=gov["pipeline"].public_key)
    engine = DecisionEngine(
        ledger=MemoryLedger(),
        registry=registry,
        roster=gov.roster,
        policy=DecisionPolicy(),
        pipeline=gov["pipeline"],
    )
    source = write_version_dir(tmp_path / "v")
    engine.register(push_version(registry, "1.0.0", source, gov["pipeline"]), gates_json=b"{}")
    written = checkpoint_head(engine)
    assert registry.checkpoint_seqs() == [written.seq] == [2]
    assert newest_checkpoint(registry, gov.roster) == written


# --------------------------------------------------------------------------- the command line
def invoke(*args: str) -> tuple[int, dict | None, BaseException | None]:
    """Run kfm with --json: exit code, the JSON printed (if any), the exception raised (if any)."""
    result = runner.invoke(app, [*args, "--json"])
    data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result.exit_code, data, result.exception


def test_cli_checkpoint_then_truncation_is_refused(governed: Governed) -> None:
    """`kfm ledger checkpoint` after a veto; erasing the veto fails verify and stops status."""
    veto = governed.promote_and_veto()
    code, written, _ = invoke("ledger", "checkpoint")
    assert code == 0 and written is not None
    with closing(governed.ws.ledger()) as ledger:
        head = ledger.entries()[-1].seq
        assert written["checkpoint"]["seq"] == head
        code, verified, _ = invoke("ledger", "verify")
        assert code == 0 and verified is not None and verified["ok"], verified
        delete_from(ledger, veto)
    code, verified, _ = invoke("ledger", "verify")
    assert code == 1 and verified is not None and not verified["ok"]
    message = verified["refused"]["message"]
    assert message.startswith(f"ledger truncated after checkpoint #{head}:"), message
    code, _, error = invoke("status")
    assert code != 0 and isinstance(error, LedgerError)
    assert f"checkpoint #{head}" in str(error)


def test_cli_witness_refuses_truncation_without_checkpoint(governed: Governed) -> None:
    """`kfm status` saw the veto; with the rows and the checkpoint files deleted it refuses."""
    veto = governed.promote_and_veto()
    code, status, _ = invoke("status")
    assert code == 0 and status is not None and status["production"] == "1.0.0"
    assert status["anchors"]["root_pin"]["fingerprint"] == governed.ws.root_fingerprint()
    with closing(governed.ws.ledger()) as ledger:
        delete_from(ledger, veto)
    delete_checkpoints(governed.ws.registry())
    code, _, error = invoke("status")
    assert code != 0 and isinstance(error, LedgerError)
    assert "this client verified it up to entry" in str(error)


def test_cli_verify_names_versions_missing_from_an_emptied_ledger(
    governed: Governed, kfm_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Emptied ledger, no checkpoint, a fresh client: verify fails naming the registry versions."""
    governed.promote_and_veto()
    with closing(governed.ws.ledger()) as ledger:
        delete_from(ledger, 1)
    delete_checkpoints(governed.ws.registry())
    fresh = kfm_home.parent / f"{kfm_home.name}-fresh"
    monkeypatch.setenv("KFM_HOME", str(fresh))
    TrustStore(fresh).pin(governed.ws.root, governed.ws.root_fingerprint())
    code, verified, _ = invoke("ledger", "verify")
    assert code == 1 and verified is not None and not verified["ok"]
    assert verified["anchors"]["unregistered_versions"] == ["1.0.0", "1.1.0"]


def test_cli_status_verifies_each_entry_once(
    governed: Governed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kfm status` checks every entry once: the anchors are checked on the engine's state."""
    governed.promote_and_veto()
    invoke("ledger", "checkpoint")
    checked: list[int] = []
    check_entry = verify_module.check_entry

    def counting(fold, entry, roster, policy):  # type: ignore[no-untyped-def]
        checked.append(entry.seq)
        return check_entry(fold, entry, roster, policy)

    monkeypatch.setattr(verify_module, "check_entry", counting)
    code, status, error = invoke("status")
    assert code == 0 and status is not None, error
    with closing(governed.ws.ledger()) as ledger:
        seqs = [e.seq for e in ledger.entries()]
    assert sorted(checked) == seqs  # each entry once, not once per check
    assert status["anchors"]["checkpoint"]["seq"] == seqs[-1]


def test_cli_refuses_an_earlier_roster_put_back(
    governed: Governed, kfm_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Carol revoked, a version deployed, then the earlier signed roster restored (checkpoints
    deleted, a fresh client): status and carol's approval are refused, naming the ledger."""
    roster_files = [governed.ws.roster_path, governed.ws.roster_path.with_suffix(".json.sig")]
    earlier = {path: path.read_bytes() for path in roster_files}
    revoke_reviewer(governed.ws.roster_path, "carol", datetime.now(UTC))
    sign_roster(
        governed.ws.roster_path, load_signer(governed.ws.root / "keys" / "root.key", "root-pw")
    )
    with governed.ws.decision_engine("pipe-pw") as engine:
        governed.deploy(engine, "1.0.0")
    for path, data in earlier.items():
        path.write_bytes(data)
    delete_checkpoints(governed.ws.registry())
    fresh = kfm_home.parent / f"{kfm_home.name}-fresh"
    monkeypatch.setenv("KFM_HOME", str(fresh))
    TrustStore(fresh).pin(governed.ws.root, governed.ws.root_fingerprint())
    code, _, error = invoke("status")
    assert code != 0 and isinstance(error, RosterError), error
    assert "the ledger's pipeline records" in str(error)
    monkeypatch.setenv("CAROL_PW", "carol-pw")
    result = runner.invoke(
        app,
        [
            "approve",
            "1.0.0",
            "--as",
            "carol",
            "--key",
            str(governed.ws.reviewer_key_path("carol")),
            "--reason",
            "my key is back",
            "--passphrase-env",
            "CAROL_PW",
        ],
    )
    assert result.exit_code != 0 and isinstance(result.exception, RosterError)
    with closing(governed.ws.ledger()) as ledger:
        assert [e.kind for e in ledger.entries()] == ["registered", "gates-attested"]
