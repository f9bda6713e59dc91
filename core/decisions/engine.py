"""Decisions in, verified state out: the engine that drives the channel.

:class:`DecisionEngine` joins the ledger, the registry, the verified roster and the policy's
``[decisions]`` table. Everything it decides reads a :class:`core.decisions.state.VerifiedState`
(:meth:`DecisionEngine.state`: every entry verified — signature, role at its recorded time,
anchor, the rules at that point of the chain — incrementally, by a
:class:`core.decisions.verify.VerifiedLedger`). A broken entry stops it with an error naming
the entry. Every append goes through :meth:`Ledger.transact`, so the check "may this be
appended now?" and the append happen under one lock, on the ledger as verified at that moment.

- :meth:`DecisionEngine.submit` takes a person's signed record (approve, veto,
  request-rollback, waive, resolve), verifies it (signature, roster key and role now, the
  subject the version registered, a signed time within the policy's clock skew, an anchor in
  this chain), refuses what :func:`core.decisions.rules.refusal` refuses and appends it — *only
  it*: the promotion or rollback it causes is derived by the verified replay, so a reviewer
  never needs the pipeline key. When the record rolls production back, the engine writes the
  rollback's three files (:mod:`core.decisions.rollbacks`) from the verified state. Reviewers
  build and sign their record with :mod:`core.decisions.reviewer`.
- :meth:`DecisionEngine.register` (deploy) and :meth:`DecisionEngine.record_monitoring`
  (monitoring) append pipeline-signed records and need the pipeline key.
- :func:`rollback_to_last_good_version` is the one entry point for automatic rollbacks (drift,
  telemetry, validation regression, sovereignty violation): justified by an open breach of the
  production version, it writes the three files first and appends a pipeline-signed
  ``rollback`` whose evidence is their digests.
- The engine holds the ledger open: use it as a context manager (``with ws.decision_engine()
  as engine:``), which closes the ledger on the way out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from securesystemslib.dsse import Envelope

from core.decisions.ledger import Ledger, LedgerEntry, format_time
from core.decisions.records import (
    Anchor,
    BreachKind,
    DecisionRecord,
    EvidenceRef,
    PromotionRules,
    VersionFacts,
    envelope_from_dict,
    envelope_to_dict,
    read_statement,
    sign_decision,
    verify_decision,
)
from core.decisions.rollbacks import (
    evidence_of,
    missing_rollback_files,
    rollback_files,
    rollback_id,
    write_missing_rollback_files,
    write_rollback_once,
)
from core.decisions.roster import TrustedRoster
from core.decisions.rules import allowed_actions, refusal, rollback_refusal, waivable_gates
from core.decisions.state import PRODUCTION, ChannelEvent, VerifiedState
from core.decisions.verify import VerifiedLedger
from core.errors import AuthorizationError, LedgerError, RegistryError
from core.policy import DecisionPolicy
from core.registry.versions import Registry, VersionRecord
from core.signing.digests import ModelSubject
from core.signing.keys import KeySigner


@dataclass(frozen=True)
class SubmitOutcome:
    """What a submitted record did: its entry, the channel events it caused, files written."""

    entry: LedgerEntry
    events: tuple[ChannelEvent, ...]
    state: VerifiedState
    rollback_keys: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """What happened, for people: the entry, then each consequence."""
        e = self.entry
        out = [f"appended #{e.seq}: {e.kind} {e.version} by {e.actor} ({e.role})"]
        out += [f"→ {event.said}" for event in self.events]
        if self.rollback_keys:
            folder = self.rollback_keys[0].rsplit("/", 1)[0]
            out.append(f"→ rollback report written to {folder}/")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "appended": [self.entry.to_dict()],
            "events": [event.to_dict() for event in self.events],
            "rollback_keys": list(self.rollback_keys),
            "production": self.state.production,
        }


@dataclass(frozen=True)
class RollbackOutcome:
    """What an automatic rollback did: which version left production, which came back, where."""

    rollback_id: str
    rolled_back: str
    target_version: str | None
    trigger: str
    report_keys: tuple[str, ...]
    entry: LedgerEntry

    def to_dict(self) -> dict[str, Any]:
        return {
            "rollback_id": self.rollback_id,
            "rolled_back": self.rolled_back,
            "target_version": self.target_version,
            "trigger": self.trigger,
            "report_keys": list(self.report_keys),
            "seq": self.entry.seq,
        }


class DecisionEngine:
    """Verifies and appends decisions; reads the channel only as verified."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        registry: Registry,
        roster: TrustedRoster,
        policy: DecisionPolicy,
        pipeline: KeySigner | None = None,
        clock: Callable[[], datetime] | None = None,
        verified: VerifiedLedger | None = None,
    ) -> None:
        self.ledger = ledger
        self.registry = registry
        self.roster = roster
        self.policy = policy
        self.pipeline = pipeline
        self._clock = clock or (lambda: datetime.now(UTC))
        self._records: dict[str, VersionRecord] = {}
        self.verified = verified or VerifiedLedger(roster, policy)

    # ----------------------------------------------------------------- lifetime
    def __enter__(self) -> DecisionEngine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the ledger (the engine is not used after this)."""
        self.ledger.close()

    def now(self) -> datetime:
        """The engine's clock: decisions are timed, and checked to be current, by it."""
        return self._clock()

    # ----------------------------------------------------------------- state
    def state(self, *, at: datetime | None = None) -> VerifiedState:
        """The channel now (or as it was at ``at``), from the verified ledger; raises if broken."""
        state = self.verified.refresh(self.ledger)
        return state if at is None else self.verified.at(at)

    def version_facts(self, version: str) -> VersionFacts:
        """The signed facts of ``version`` (from its ``registered`` record)."""
        facts = self.state().facts.get(version)
        if facts is None:
            raise LedgerError(
                "version has no registered record in the ledger",
                field="version",
                expected="a version registered by `kfm deploy`",
                found=version,
            )
        return facts

    def version_record(self, version: str) -> VersionRecord:
        """The registry record of ``version``, checked against the digest its facts signed."""
        if version not in self._records:
            record = self.registry.show(version)
            facts = self.state().facts.get(version)
            if facts is not None and record.digest != facts.record_sha256:
                raise RegistryError(
                    "the registry record is not the one the ledger registered",
                    file=f"climate/index/{version}.json",
                    field="record_sha256",
                    expected=facts.record_sha256,
                    found=record.digest,
                )
            self._records[version] = record
        return self._records[version]

    def allowed_actions(self, actor: str, version: str) -> list[tuple[str, str]]:
        """The ``(action, role)`` pairs :meth:`submit` would accept from ``actor`` now."""
        state = self.state()
        return allowed_actions(
            actor,
            version,
            state=state,
            facts=state.facts.get(version),
            roster=self.roster,
            at=self.now(),
        )

    def waivable_gates(self, actor: str, version: str) -> list[str]:
        """The failing gates of ``version`` that ``actor`` may waive now."""
        state = self.state()
        return waivable_gates(actor, version, state=state, facts=state.facts.get(version))

    # ----------------------------------------------------------------- people
    def submit(self, envelope: Envelope | Mapping[str, Any]) -> SubmitOutcome:
        """Verify and append a person's signed record; derive and report what it causes.

        No pipeline key is involved: the promotion or rollback the record causes is derived by
        the verified replay. A rollback's three files are written after the append.
        """
        data = envelope_to_dict(envelope) if isinstance(envelope, Envelope) else dict(envelope)
        parsed = envelope_from_dict(data)
        version = read_statement(parsed).version
        subject = self.state().subjects.get(version)
        if subject is None:
            raise LedgerError(
                "version has no registered record in the ledger",
                field="version",
                expected="a version registered by `kfm deploy`",
                found=version,
            )
        now = self.now()
        record = verify_decision(parsed, self.roster, at=now, expected_subject=subject)
        skew = timedelta(seconds=self.policy.clock_skew_seconds)
        if abs(record.time - now) > skew:
            raise AuthorizationError(
                "decision time is not current",
                field="predicate.time",
                expected=f"within {self.policy.clock_skew_seconds} s of {format_time(now)}",
                found=format_time(record.time),
            )

        def decide(entries: Sequence[LedgerEntry]) -> list[Envelope | Mapping[str, Any]]:
            state = self.verified.update(entries)
            _check_anchor(record.anchor, state)
            refused = refusal(
                record.kind,
                record.role,
                record.actor,
                version,
                state=state,
                facts=state.facts.get(version),
                gate=record.gate,
                anchor=record.anchor,
            )
            if refused is not None:
                raise refused
            if hashlib.sha256(parsed.payload).hexdigest() in state.record_digests:
                raise AuthorizationError(
                    "this exact decision record is already in the ledger (replayed record)",
                    field="envelope",
                    expected="a new record",
                    found="a copy of an earlier entry",
                )
            return [data]

        (entry,) = self.ledger.transact(decide)
        after = self.state()
        events = after.events_at(entry.seq)
        keys: list[str] = []
        if any(event.kind == "rollback" for event in events):
            keys = write_missing_rollback_files(self.registry, after)
        return SubmitOutcome(entry, events, after, tuple(keys))

    # ----------------------------------------------------------------- pipeline
    def _require_pipeline(self) -> KeySigner:
        if self.pipeline is None:
            raise AuthorizationError(
                "this needs the pipeline key (deploy, monitoring and automatic rollbacks)",
                field="pipeline",
                expected="the workspace pipeline key",
                found="none",
            )
        return self.pipeline

    def _pipeline_record(
        self,
        kind: str,
        version: str,
        reason: str,
        now: datetime,
        anchor: Anchor,
        *,
        subject: ModelSubject,
        **fields: Any,
    ) -> Envelope:
        """A record signed by the pipeline key (called inside a transaction: reads nothing).

        It carries the serial of the roster the engine verified against: a reader holding an
        older roster is refused from then on.
        """
        signer = self._require_pipeline()
        record = DecisionRecord(
            kind=kind,  # type: ignore[arg-type]  # validated by pydantic
            actor=signer.key_id,
            role="pipeline",
            reason=reason,
            time=now,
            subject=subject,
            version=version,
            anchor=anchor,
            channel=PRODUCTION,
            roster_serial=self.roster.serial,
            **fields,
        )
        return sign_decision(record, signer)

    def register(
        self,
        record: VersionRecord,
        *,
        gates_json: bytes,
        gates_failed: Sequence[str] = (),
        reason: str = "pushed by kfm deploy",
    ) -> list[LedgerEntry]:
        """Append the pipeline's ``registered`` and ``gates-attested`` records for ``record``.

        The ``registered`` record signs the version's facts, all from its signed registry record
        (submitter, concerned stewards, model family, the footprint computed from the data, the
        record's digest) plus the promotion rules of the policy now; ``gates_failed`` lists the
        gates that failed (each then needs a council quorum of waivers before promotion).
        """
        self._require_pipeline()
        now = self._clock()
        facts = VersionFacts(
            submitter=record.submitter,
            concerned_stewards=tuple(record.concerned_stewards),
            model_family=record.model_family,
            footprint=tuple(record.footprint),  # type: ignore[arg-type]  # validated by pydantic
            record_sha256=record.digest,
            rules=PromotionRules.from_policy(self.policy),
        )
        gates = EvidenceRef(name="gates.json", sha256=hashlib.sha256(gates_json).hexdigest())
        registry_ref = EvidenceRef(name="registry/version.json", sha256=record.digest)
        failed = sorted(set(gates_failed))
        verdict = "every gate passed" if not failed else f"gates failed: {', '.join(failed)}"

        def decide(entries: Sequence[LedgerEntry]) -> list[Envelope | Mapping[str, Any]]:
            state = self.verified.update(entries)
            if record.version in state.versions:
                raise LedgerError(
                    "version is already registered in the ledger",
                    field="version",
                    expected="a new version",
                    found=record.version,
                )

            def pipeline(kind: str, reason: str, **fields: Any) -> Envelope:
                return self._pipeline_record(
                    kind, record.version, reason, now, state.anchor, subject=record.subject,
                    **fields,
                )  # fmt: skip

            return [
                pipeline(
                    "registered",
                    f"{reason}; submitted by {record.submitter}",
                    evidence=(gates, registry_ref),
                    facts=facts,
                ),
                pipeline("gates-attested", verdict, evidence=(gates,), gates_failed=tuple(failed)),
            ]

        self._records[record.version] = record
        return self.ledger.transact(decide)

    def record_monitoring(
        self,
        version: str,
        reason: str,
        evidence: Sequence[EvidenceRef],
        *,
        breaches: Sequence[BreachKind] = (),
    ) -> LedgerEntry:
        """Append a pipeline-signed ``monitoring`` record of a run on ``version``.

        ``breaches`` (drift, telemetry, validation, sovereignty) open on the version and block
        its promotion until a later in-bounds run (no breaches) or a working-group ``resolve``.
        """
        self._require_pipeline()
        now = self._clock()

        def decide(entries: Sequence[LedgerEntry]) -> list[Envelope | Mapping[str, Any]]:
            state = self.verified.update(entries)
            if version not in state.versions:
                raise LedgerError(
                    "cannot monitor a version the ledger never registered",
                    field="version",
                    expected="a registered version",
                    found=version,
                )
            return [
                self._pipeline_record(
                    "monitoring",
                    version,
                    reason,
                    now,
                    state.anchor,
                    subject=state.subjects[version],
                    evidence=tuple(evidence),
                    breaches=tuple(sorted(set(breaches))),
                )
            ]

        (entry,) = self.ledger.transact(decide)
        return entry

    def missing_rollback_files(self) -> list[str]:
        """The keys of rollback files the registry lacks (a process stopped before them)."""
        return missing_rollback_files(self.registry, self.state())

    def write_missing_rollback_files(self) -> list[str]:
        """Write the files of any rollback the registry lacks (a process stopped before them)."""
        return write_missing_rollback_files(self.registry, self.state())


def _check_anchor(anchor: Anchor, state: VerifiedState) -> None:
    """A record's anchor must be a head of this ledger (the signer saw this chain)."""
    if state.hash_at(anchor.seq) != anchor.entry_hash:
        raise LedgerError(
            "the record was built against a ledger head that is not in this ledger",
            field="predicate.anchor",
            expected=f"an entry of this ledger (head #{state.head_seq})",
            found=f"#{anchor.seq} {anchor.entry_hash[:16]}…",
            hint="build the record again against the current ledger",
        )


def rollback_to_last_good_version(
    engine: DecisionEngine,
    *,
    trigger: BreachKind,
    reason: str,
    version: str | None = None,
    drift_summary: Mapping[str, Any] | None = None,
    sovereignty_conflict: Mapping[str, Any] | None = None,
) -> RollbackOutcome:
    """Roll the version in production (``version``, if given, must be it) back automatically.

    The version must have an open ``trigger`` breach (recorded by monitoring or re-screening).
    Writes ``climate/rollbacks/<seq>-<version>/`` (``drift_summary`` and
    ``sovereignty_conflict`` are the monitoring's own content; otherwise they are derived from
    the verified state) and appends a pipeline-signed rollback whose evidence is their
    digests, atomically with the check that the rollback is justified.
    """
    if not reason.strip():
        raise LedgerError("a rollback needs a reason", field="reason", expected="text", found="''")
    pipeline = engine._require_pipeline()
    now = engine.now()  # once: a retried transaction writes the same files
    outcome: dict[str, Any] = {}

    def decide(entries: Sequence[LedgerEntry]) -> list[Envelope | Mapping[str, Any]]:
        state = engine.verified.update(entries)
        current = state.production
        if current is None or (version is not None and version != current):
            raise LedgerError(
                "nothing to roll back: the version is not in production",
                field="version",
                expected=f"the production version ({current or 'none'})",
                found=version or "no production version",
            )
        target = state.last_good_version(excluding=current)
        refused = rollback_refusal(
            current, (trigger,), target, state=state, current=state.versions[current]
        )
        if refused is not None:
            raise refused
        seq = state.head_seq + 1
        last_run = state.versions[current].last_run
        planned = ChannelEvent(
            kind="rollback",
            version=current,
            seq=seq,
            recorded_at=format_time(now),
            cause="rollback",
            trigger=trigger,
            actor=pipeline.key_id,
            role="pipeline",
            reason=reason,
            derived=False,
            production_before=current,
            production_after=target,
            evidence=last_run.evidence if last_run is not None else (),
            last_run=last_run,
        )
        folder = rollback_id(seq, current)
        files = rollback_files(
            engine.registry,
            planned,
            state.facts[current],
            drift_summary=drift_summary,
            sovereignty_conflict=sovereignty_conflict,
        )
        keys = write_rollback_once(engine.registry, folder, files)
        outcome.update(rollback_id=folder, rolled_back=current, target=target, keys=keys)
        return [
            engine._pipeline_record(
                "rollback",
                current,
                f"{trigger}: {reason}",
                now,
                state.anchor,
                subject=state.subjects[current],
                target_version=target,
                breaches=(trigger,),
                evidence=tuple(evidence_of(folder, files)),
            )
        ]

    (entry,) = engine.ledger.transact(decide)
    return RollbackOutcome(
        rollback_id=outcome["rollback_id"],
        rolled_back=outcome["rolled_back"],
        target_version=outcome["target"],
        trigger=trigger,
        report_keys=tuple(outcome["keys"]),
        entry=entry,
    )
