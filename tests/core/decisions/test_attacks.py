"""Attacks on the decisions, as an attacker who can write database rows but holds no key (or
only their own), and as a careless reviewer — each on SQLite and PostgreSQL.

Each test failed on the code before decision records format 2: the replay trusted row columns
and counted whatever the rows said, the chain had no anchor, a record was authorized at its own
claimed time, a reviewer's process signed the promotion, verification did not recheck the rules,
and monitoring breaches did not block promotion.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.dsse import Envelope
from typer.testing import CliRunner

from core.cli import app
from core.decisions.engine import DecisionEngine, rollback_to_last_good_version
from core.decisions.ledger import (
    COLUMNS,
    LedgerEntry,
    PostgresLedger,
    SQLiteLedger,
    chain,
    entry_hash,
    envelope_sha256,
    format_time,
    make_entry,
    parse_time,
)
from core.decisions.records import (
    IN_TOTO_PAYLOAD_TYPE,
    Anchor,
    EvidenceRef,
    envelope_to_dict,
    read_statement,
)
from core.decisions.reviewer import submit_decision
from core.decisions.roster import RosterEntry, add_reviewer, sign_roster
from core.decisions.trust import TrustStore
from core.decisions.verify import BrokenEntryError, verify_ledger
from core.errors import AuthorizationError, LedgerError
from core.jsonio import canonical_json_bytes
from core.signing.keys import KeySigner, load_signer, public_key_pem
from core.testing import new_signer, register_test_version, signed_decision, write_version_dir
from core.workspace import Workspace, init_workspace

PG_URL = os.environ.get("KFM_TEST_POSTGRES_URL")
runner = CliRunner()
REVOKED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
PEOPLE: dict[str, tuple[str, ...]] = {
    "alice": ("council",),
    "bob": ("council",),
    "carol": ("council",),
    "sam": ("steward",),
    "wendy": ("working_group",),
    "gone": ("council",),  # revoked ten seconds before the test module was imported
}
RUN = EvidenceRef(name="monitoring/1.0.0/run/drift_summary.json", sha256="a" * 64)


@dataclass
class Site:
    """A workspace whose ledger an attacker can write, with the honest people's keys."""

    ws: Workspace
    signers: dict[str, KeySigner]
    tmp: Path

    def pipeline(self) -> DecisionEngine:
        return self.ws.decision_engine("pipe-pw")

    def reviewers(self) -> DecisionEngine:
        return self.ws.decision_engine()

    def deploy(self, version: str) -> None:
        with self.pipeline() as engine:
            source = write_version_dir(self.tmp / version, seed=version)
            register_test_version(engine, source, version, submitter="carol")

    def decide(self, actor: str, kind: str, version: str, **kw: str) -> None:
        role = PEOPLE[actor][0]
        with self.reviewers() as engine:
            submit_decision(engine, kind, version, self.signers[actor], role=role, **kw)

    def promote(self, version: str) -> None:
        self.deploy(version)
        for actor in ("alice", "bob", "sam"):
            self.decide(actor, "approve", version, reason="gates and lineage reviewed")

    def entries(self) -> list[LedgerEntry]:
        ledger = self.ws.ledger()
        try:
            return ledger.entries()
        finally:
            ledger.close()

    def forged(
        self, signer: KeySigner, kind: str, version: str, *, time: datetime | None = None, **kw: Any
    ) -> dict:
        """A record signed by ``signer``, anchored on the head (as a careful forger would)."""
        head = self.entries()[-1]
        subject = self.ws.registry().show(version).subject
        return signed_decision(
            signer,
            kind=kind,
            version=version,
            subject=subject,
            time=time or datetime.now(UTC),
            anchor=Anchor(seq=head.seq, entry_hash=head.entry_hash),
            **kw,
        )

    def insert_statement(self, statement: dict, signer: KeySigner) -> None:
        """Sign any statement with ``signer`` and insert it as a row (columns from the statement)."""
        envelope = Envelope(canonical_json_bytes(statement), IN_TOTO_PAYLOAD_TYPE, {})
        envelope.sign(signer.dsse_signer())
        data = envelope_to_dict(envelope)
        head = self.entries()[-1]
        recorded = format_time(datetime.now(UTC))
        stored = canonical_json_bytes(data).decode("utf-8")
        predicate = statement["predicate"]
        row = LedgerEntry(
            seq=head.seq + 1,
            prev_hash=head.entry_hash,
            entry_hash=entry_hash(head.seq + 1, head.entry_hash, recorded, envelope_sha256(stored)),
            recorded_at=recorded,
            envelope=stored,
            kind=predicate["decision"],
            actor=predicate["actor"],
            role=predicate["role"],
            version=predicate["version"],
            time=predicate["time"],
            target_version=predicate["target_version"],
        )
        self._raw("INSERT INTO TABLE ({}) VALUES ({})", [row])

    def insert(self, envelope: dict, *, recorded_at: datetime | None = None) -> LedgerEntry:
        """Append a row straight into the database, chain hashes computed (no key needed)."""
        head = self.entries()[-1]
        (entry,) = chain(head, [envelope], recorded_at or datetime.now(UTC))
        self._raw("INSERT INTO TABLE ({}) VALUES ({})", [entry])
        return entry

    def rewrite(self, entries: Sequence[LedgerEntry]) -> None:
        """Replace every row by ``entries`` re-chained: seq, prev_hash and hashes recomputed."""
        rows: list[LedgerEntry] = []
        for entry in entries:
            head = rows[-1] if rows else None
            rows.append(
                make_entry(
                    head.seq + 1 if head else 1,
                    head.entry_hash if head else "0" * 64,
                    parse_time(entry.recorded_at),
                    entry.envelope_dict(),
                )
            )
        self._raw("DELETE FROM TABLE", [])
        self._raw("INSERT INTO TABLE ({}) VALUES ({})", rows)

    def _raw(self, sql: str, rows: Sequence[LedgerEntry]) -> None:
        ledger = self.ws.ledger()
        try:
            assert isinstance(ledger, SQLiteLedger | PostgresLedger)
            table = "ledger" if isinstance(ledger, SQLiteLedger) else "{table}"
            mark = "?" if isinstance(ledger, SQLiteLedger) else "%s"
            columns, marks = ", ".join(COLUMNS), ", ".join(mark for _ in COLUMNS)
            statement = sql.format(columns, marks).replace("TABLE", table)
            if not rows:
                ledger.execute_unchecked(statement)
            for row in rows:
                ledger.execute_unchecked(statement, [getattr(row, c) for c in COLUMNS])
        finally:
            ledger.close()

    def status(self) -> tuple[int, str]:
        result = runner.invoke(app, ["status", "--workspace", str(self.ws.root), "--json"])
        return result.exit_code, result.output + str(result.exception or "")


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path, trust_store: TrustStore) -> Iterator[Site]:
    """A fresh workspace (SQLite file or its own PostgreSQL schema) and its people's keys."""
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
    if request.param == "postgres":
        config = (root / "kfm.toml").read_text()
        schema = f"kfm_attack_{uuid.uuid4().hex[:10]}"
        (root / "kfm.toml").write_text(config.replace('schema = "public"', f'schema = "{schema}"'))
        ws = Workspace.open(root, trust=trust_store)
    signers = {rid: new_signer(rid) for rid in PEOPLE}
    for rid, roles in PEOPLE.items():
        revoked = {"revoked": True, "revoked_at": REVOKED_AT} if rid == "gone" else {}
        entry = RosterEntry.model_validate(
            {
                "id": rid,
                "name": rid,
                "roles": roles,
                "public_key": public_key_pem(signers[rid].public_key),
                "valid_from": datetime(2020, 1, 1, tzinfo=UTC),
                **revoked,
            }
        )
        add_reviewer(ws.roster_path, entry)
    sign_roster(ws.roster_path, load_signer(root / "keys" / "root.key", "root-pw"))
    yield Site(ws, signers, tmp_path)
    if request.param == "postgres":
        ledger_obj = ws.ledger()
        ledger_obj.drop()  # type: ignore[attr-defined]
        ledger_obj.close()


def _broken(site: Site) -> BrokenEntryError:
    """Every reader refuses the ledger: verification, the engine, and `kfm status`."""
    report = verify_ledger(site.entries(), site.ws.roster(), site.ws.policy().decisions)
    assert report.broken is not None
    with pytest.raises(BrokenEntryError) as caught, site.reviewers() as engine:
        engine.state()
    assert caught.value.seq == report.broken.seq
    code, output = site.status()
    assert code != 0 and f"ledger entry #{report.broken.seq} is broken" in output, output
    return caught.value


def test_an_approval_by_a_key_not_on_the_roster_is_never_counted(site: Site) -> None:
    """A validly signed approval by a stranger's key, inserted as a row, is a broken entry:
    nothing counts it, and nobody may act until the ledger is repaired."""
    site.deploy("1.0.0")
    site.decide("alice", "approve", "1.0.0", reason="gates pass")
    site.decide("sam", "approve", "1.0.0", reason="my region is safe")
    mallory = new_signer("mallory")
    site.insert(site.forged(mallory, "approve", "1.0.0", role="council"))
    error = _broken(site)
    assert "not on the roster" in error.message
    # The engine refuses to add anything on top of it (bob's vote would have promoted).
    with pytest.raises(BrokenEntryError):
        site.decide("bob", "approve", "1.0.0", reason="gates pass")
    impostor = new_signer("alice")  # a key claiming to be alice
    site.rewrite(site.entries()[:-1])
    site.insert(site.forged(impostor, "approve", "1.0.0", role="council"))
    assert "not the roster key of 'alice'" in _broken(site).message


def test_deleting_a_veto_with_recomputed_hashes_is_detected_by_the_anchors(site: Site) -> None:
    """Erasing a veto (and re-chaining every row after it) breaks the anchor of the next record."""
    site.promote("1.0.0")
    site.promote("1.1.0")
    site.decide("sam", "veto", "1.1.0", reason="outputs reveal a sacred site")
    site.deploy("1.2.0")  # the pipeline saw the veto: its records anchor after it
    with site.reviewers() as engine:
        assert engine.state().production == "1.0.0"
    entries = site.entries()
    veto = next(e for e in entries if e.kind == "veto")
    site.rewrite([e for e in entries if e.seq != veto.seq])
    error = _broken(site)
    assert error.seq == veto.seq  # the first record after the hole, now at the veto's seq
    assert error.field is not None and error.field.startswith("predicate.anchor")
    # Rewriting the veto's row (its recorded time moved back to its predecessor's, every hash
    # recomputed) leaves the row valid but changes its hash, which the next record's anchor holds.
    before_veto = entries[veto.seq - 2].recorded_at
    assert before_veto != veto.recorded_at
    moved = replace(veto, recorded_at=before_veto)
    site.rewrite([moved if e.seq == veto.seq else e for e in entries])
    error = _broken(site)
    assert (error.seq, error.field) == (veto.seq + 1, "predicate.anchor.entry_hash")
    assert "deleted, reordered or rewritten" in error.message


def test_reordered_and_copied_approvals_are_detected(site: Site) -> None:
    """Moving an approval to another position, or copying it, breaks the anchors or the rules."""
    site.deploy("1.0.0")
    site.decide("alice", "approve", "1.0.0", reason="gates pass")
    site.decide("bob", "approve", "1.0.0", reason="tails reviewed")
    entries = site.entries()
    site.rewrite([*entries[:-2], entries[-1], entries[-2]])  # bob's before alice's
    assert _broken(site).field == "predicate.anchor.seq"
    site.rewrite(entries)
    assert verify_ledger(site.entries(), site.ws.roster(), site.ws.policy().decisions).ok
    site.insert(entries[-1].envelope_dict())  # bob's approval again, as a new row
    assert "replayed copy" in _broken(site).message


def test_a_revoked_key_cannot_back_date_a_record(site: Site) -> None:
    """A record by a revoked key, back-dated 30 s before the revocation, is refused by the engine
    (authorized when recorded) and is a broken entry when inserted as a row."""
    site.deploy("1.0.0")
    backdated = site.forged(
        site.signers["gone"],
        "approve",
        "1.0.0",
        role="council",
        time=REVOKED_AT - timedelta(seconds=30),
    )
    before = site.entries()
    with pytest.raises(AuthorizationError, match="revoked"), site.reviewers() as engine:
        engine.submit(backdated)
    assert site.entries() == before
    site.insert(backdated)
    assert "revoked" in _broken(site).message


def test_a_reviewer_cannot_sign_a_rollback_or_promotion_themselves(site: Site) -> None:
    """A reviewer's own rollback record, a pipeline-signed rollback with no breach to justify it
    (a reviewer who also holds the pipeline key), and a signed 'promote' are broken entries:
    verification rechecks the rules."""
    site.promote("1.0.0")
    site.promote("1.1.0")
    honest = site.entries()
    fields = {"breaches": ("drift",), "target_version": "1.0.0"}
    site.insert(site.forged(site.signers["alice"], "rollback", "1.1.0", role="council", **fields))
    assert "role 'council' may not sign 'rollback'" in _broken(site).message
    site.rewrite(honest)
    pipeline = site.ws.pipeline_signer("pipe-pw")
    site.insert(site.forged(pipeline, "rollback", "1.1.0", role="pipeline", **fields))
    assert "justified by an open breach" in _broken(site).message
    site.rewrite(honest)
    site.deploy("1.2.0")
    monitoring = site.forged(pipeline, "monitoring", "1.2.0", role="pipeline")
    statement = read_statement(monitoring).to_statement()
    statement["predicate"]["decision"] = "promote"  # the kind format 1 let a reviewer sign
    site.insert_statement(statement, pipeline)
    assert "statement field is invalid" in _broken(site).message
    with site.pipeline() as engine:
        site.rewrite(site.entries()[:-1])
        assert engine.state().versions["1.2.0"].state == "registered"


def test_an_automatic_rollback_must_go_to_the_last_good_version(site: Site) -> None:
    """A pipeline rollback justified by a breach but to another target is a broken entry."""
    site.promote("0.9.0")
    site.promote("1.0.0")
    site.promote("1.1.0")
    with site.pipeline() as engine:
        engine.record_monitoring("1.1.0", "PSI 0.4 on tas", [RUN], breaches=["drift"])
    honest = site.entries()
    wrong = site.forged(
        site.ws.pipeline_signer("pipe-pw"),
        "rollback",
        "1.1.0",
        role="pipeline",
        breaches=("drift",),
        target_version="0.9.0",
    )
    site.insert(wrong)
    error = _broken(site)
    assert error.field == "predicate.target_version" and error.expected == "1.0.0"
    site.rewrite(honest)
    with site.pipeline() as engine:
        outcome = rollback_to_last_good_version(engine, trigger="drift", reason="PSI 0.4 on tas")
    assert outcome.target_version == "1.0.0"


def test_a_duplicate_veto_is_refused(site: Site) -> None:
    """A second veto by the same person is refused by the engine and is a broken entry as a row."""
    site.deploy("1.0.0")
    site.decide("alice", "veto", "1.0.0", reason="bias in the tails")
    before = site.entries()
    with pytest.raises(AuthorizationError, match="already vetoed"):
        site.decide("alice", "veto", "1.0.0", reason="and again")
    assert site.entries() == before
    site.insert(site.forged(site.signers["alice"], "veto", "1.0.0", role="council", reason="x"))
    assert "already vetoed" in _broken(site).message


def test_an_open_drift_breach_blocks_promotion_until_resolved(site: Site) -> None:
    """With a drift breach open, the last approval does not promote; a working-group resolve
    does, at once; on another version, a later in-bounds run does."""
    for version in ("1.0.0", "1.1.0"):
        site.deploy(version)
        with site.pipeline() as engine:
            engine.record_monitoring(version, "PSI 0.15 on t_coarse", [RUN], breaches=["drift"])
        for actor in ("alice", "bob", "sam"):
            site.decide(actor, "approve", version, reason="gates and lineage reviewed")
        with site.reviewers() as engine:
            state = engine.state()
        assert state.versions[version].state == "under_review"
        assert any(m.startswith("open drift breach") for m in state.versions[version].missing)
    with pytest.raises(AuthorizationError, match="may not resolve"):
        site.decide("alice", "resolve", "1.0.0", reason="looks fine to me")
    site.decide("wendy", "resolve", "1.0.0", reason="seasonal shift, reviewed")
    with site.reviewers() as engine:
        assert engine.state().production == "1.0.0"
    with site.pipeline() as engine:
        engine.record_monitoring("1.1.0", "within bounds", [RUN])
        state = engine.state()
    assert state.production == "1.1.0" and state.versions["1.0.0"].state == "superseded"
    assert verify_ledger(site.entries(), site.ws.roster(), site.ws.policy().decisions).ok


def test_a_registered_version_without_breach_or_record_cannot_be_resolved(site: Site) -> None:
    """A resolve of a version with nothing open is refused; so is one inserted as a row."""
    site.deploy("1.0.0")
    with pytest.raises(LedgerError, match="no open breach"):
        site.decide("wendy", "resolve", "1.0.0", reason="nothing to see")
    site.insert(
        site.forged(site.signers["wendy"], "resolve", "1.0.0", role="working_group", reason="x")
    )
    assert "no open breach" in _broken(site).message
