"""Decisions in, promotions and rollbacks out: the engine that drives the channel.

:class:`DecisionEngine` joins the ledger, the registry, the verified roster, the policy's
``[decisions]`` rules and the pipeline key. Every change goes through :meth:`Ledger.transact`,
so the check "are the rules met now?" and the append of its consequence happen under one lock:

- :meth:`DecisionEngine.submit` takes a reviewer's signed approval, veto or rollback request,
  verifies it (signature, roster key, role at its time, subject = the registry version's
  digests), refuses what :func:`core.decisions.rules.refusal` refuses (the same rules
  :meth:`DecisionEngine.allowed_actions` offers from), appends it and — when the replay now
  shows the rules met — a promotion signed by the pipeline key; a veto or request against the
  version in production appends a rollback instead. Reviewers build and sign their record with
  :mod:`core.decisions.reviewer`.
- The engine holds the ledger open: use it as a context manager (``with ws.decision_engine()
  as engine:``), which closes the ledger on the way out.
- :meth:`DecisionEngine.register` appends the pipeline's ``gates-attested`` and ``registered``
  records for a freshly pushed version (``kfm deploy``).
- :func:`rollback_to_last_good_version` is the one entry point for automatic rollbacks (drift
  breach, sovereignty violation, telemetry anomaly, validation regression): it writes
  ``climate/rollbacks/<id>/{rollback_report.json, drift_summary.json,
  sovereignty_conflict.json}`` to the registry and appends the signed rollback.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from securesystemslib.dsse import Envelope

from core.decisions.ledger import Ledger, LedgerEntry, chain, format_time
from core.decisions.records import (
    DecisionRecord,
    EvidenceRef,
    envelope_digest,
    envelope_from_dict,
    envelope_to_dict,
    read_statement,
    sign_decision,
    verify_decision,
)
from core.decisions.replay import replay
from core.decisions.roster import TrustedRoster
from core.decisions.rules import allowed_actions, refusal
from core.decisions.state import PRODUCTION, ChannelState, VersionFacts
from core.decisions.verify import CLOCK_SKEW
from core.errors import AuthorizationError, LedgerError, RegistryError
from core.policy import DecisionPolicy
from core.registry.versions import Registry, VersionRecord
from core.signing.keys import KeySigner

RollbackTrigger = Literal["veto", "request", "drift", "sovereignty", "telemetry", "validation"]


@dataclass(frozen=True)
class RollbackOutcome:
    """What a rollback did: which version left production, which came back, where the report is."""

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
    """Verifies decisions, appends them, and appends the promotions and rollbacks they trigger."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        registry: Registry,
        roster: TrustedRoster,
        policy: DecisionPolicy,
        pipeline: KeySigner | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.registry = registry
        self.roster = roster
        self.policy = policy
        self.pipeline = pipeline
        self._clock = clock or (lambda: datetime.now(UTC))
        self._records: dict[str, VersionRecord] = {}

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
    def version_record(self, version: str) -> VersionRecord:
        """The registry record of ``version`` (cached: records are immutable)."""
        if version not in self._records:
            self._records[version] = self.registry.show(version)
        return self._records[version]

    def version_facts(self, version: str) -> VersionFacts:
        """Submitter and concerned stewards of ``version``, from its registry record."""
        record = self.version_record(version)
        return VersionFacts(record.submitter, record.concerned_stewards)

    def facts(self, entries: Sequence[LedgerEntry]) -> dict[str, VersionFacts]:
        """Submitter and concerned stewards of every version the entries register."""
        out: dict[str, VersionFacts] = {}
        for entry in entries:
            if entry.kind == "registered" and entry.version not in out:
                try:
                    out[entry.version] = self.version_facts(entry.version)
                except RegistryError:
                    continue  # replay then reports "a registry record for this version"
        return out

    def state(self, *, at: datetime | None = None) -> ChannelState:
        """The channel now, or as it was at ``at``."""
        entries = self.ledger.entries()
        return replay(entries, self.facts(entries), self.policy, at=at)

    def allowed_actions(self, actor: str, version: str) -> list[tuple[str, str]]:
        """The ``(action, role)`` pairs :meth:`submit` would accept from ``actor`` now."""
        return allowed_actions(
            actor,
            version,
            state=self.state(),
            facts=self.version_facts(version),
            roster=self.roster,
            policy=self.policy,
            at=self.now(),
        )

    # ----------------------------------------------------------------- reviewers
    def submit(self, envelope: Envelope | Mapping[str, Any]) -> list[LedgerEntry]:
        """Verify and append a reviewer's decision, plus the promotion or rollback it triggers.

        The signature, the roster key and role at the record's time and the subject (this
        version's digests) are verified first; then, under the ledger's lock, the rules of
        :func:`core.decisions.rules.refusal` on the state replayed from the ledger as it is.
        """
        data = envelope_to_dict(envelope) if isinstance(envelope, Envelope) else dict(envelope)
        parsed = envelope_from_dict(data)
        version = read_statement(parsed).version
        subject = self.version_record(version).subject
        record = verify_decision(parsed, self.roster, expected_subject=subject)
        facts = self.version_facts(version)
        now = self.now()
        if record.time > now + CLOCK_SKEW or record.time < now - timedelta(days=1):
            raise AuthorizationError(
                "decision time is not current",
                field="predicate.time",
                expected=f"within a day before {format_time(now)}",
                found=format_time(record.time),
            )
        digest = envelope_digest(data)

        def decide(entries: Sequence[LedgerEntry]) -> list[Envelope | Mapping[str, Any]]:
            _refuse_copy(entries, version, digest)
            before = replay(entries, self.facts(entries), self.policy)
            refused = refusal(
                record.kind,
                record.role,
                record.actor,
                version,
                state=before,
                facts=facts,
                policy=self.policy,
            )
            if refused is not None:
                raise refused
            out: list[Envelope | Mapping[str, Any]] = [data]
            provisional = [*entries, *chain(entries[-1] if entries else None, [data], now)]
            after = replay(provisional, self.facts(provisional), self.policy)
            state = after.versions[version]
            if record.kind == "approve" and state.state == "approved":
                out.append(self._promotion(state.version, after, now))
            elif record.kind in ("veto", "request-rollback") and after.production == version:
                trigger: RollbackTrigger = "veto" if record.kind == "veto" else "request"
                envelope_out, _ = self._rollback(
                    after,
                    version,
                    trigger,
                    f"{record.kind} by {record.actor}: {_quote(record.reason)}",
                    now,
                    {},
                    None,
                    None,
                )
                out.append(envelope_out)
            return out

        return self.ledger.transact(decide)

    # ----------------------------------------------------------------- pipeline
    def _require_pipeline(self) -> KeySigner:
        if self.pipeline is None:
            raise AuthorizationError(
                "the engine has no pipeline key to sign promotions and rollbacks",
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
        *,
        target: str | None = None,
        evidence: Sequence[EvidenceRef] = (),
    ) -> Envelope:
        signer = self._require_pipeline()
        record = DecisionRecord(
            kind=kind,  # type: ignore[arg-type]  # validated by pydantic
            actor=signer.key_id,
            role="pipeline",
            reason=reason,
            time=now,
            subject=self.version_record(version).subject,
            version=version,
            channel=PRODUCTION,
            target_version=target,
            evidence=tuple(evidence),
        )
        return sign_decision(record, signer)

    def _promotion(self, version: str, state: ChannelState, now: datetime) -> Envelope:
        approvals = state.versions[version].approvals
        who = ", ".join(f"{v.actor} ({v.role})" for v in approvals)
        return self._pipeline_record(
            "promote", version, f"decision rules met: approved by {who}", now
        )

    def register(
        self,
        record: VersionRecord,
        *,
        gates_json: bytes,
        reason: str = "pushed by kfm deploy",
        **facts: Any,
    ) -> list[LedgerEntry]:
        """Append the pipeline's ``gates-attested`` and ``registered`` records for ``record``.

        ``facts`` are the version's facts as :func:`core.pipeline.register_version` passes them
        (``submitter``, ``concerned_stewards``, ``model_family``, ``footprint``); they are the
        signed registry record's, and not yet written into the ledger record.
        """
        self._records[record.version] = record
        now = self._clock()
        gates = EvidenceRef(name="gates.json", sha256=hashlib.sha256(gates_json).hexdigest())
        registry_ref = EvidenceRef(name="registry/version.json", sha256=record.digest)

        def decide(entries: Sequence[LedgerEntry]) -> list[Envelope | Mapping[str, Any]]:
            if any(e.kind == "registered" and e.version == record.version for e in entries):
                raise LedgerError(
                    "version is already registered in the ledger",
                    field="version",
                    expected="a new version",
                    found=record.version,
                )
            return [
                self._pipeline_record(
                    "gates-attested", record.version, "every gate passed", now, evidence=[gates]
                ),
                self._pipeline_record(
                    "registered",
                    record.version,
                    f"{reason}; submitted by {record.submitter}",
                    now,
                    evidence=[gates, registry_ref],
                ),
            ]

        return self.ledger.transact(decide)

    def record_monitoring(
        self, version: str, reason: str, evidence: Sequence[EvidenceRef]
    ) -> LedgerEntry:
        """Append a pipeline-signed ``monitoring`` record about a run on ``version``."""
        now = self._clock()

        def decide(entries: Sequence[LedgerEntry]) -> list[Envelope | Mapping[str, Any]]:
            if not any(e.kind == "registered" and e.version == version for e in entries):
                raise LedgerError(
                    "cannot monitor a version the ledger never registered",
                    field="version",
                    expected="a registered version",
                    found=version,
                )
            return [self._pipeline_record("monitoring", version, reason, now, evidence=evidence)]

        (entry,) = self.ledger.transact(decide)
        return entry

    def _rollback(
        self,
        state: ChannelState,
        version: str,
        trigger: RollbackTrigger,
        reason: str,
        now: datetime,
        evidence_files: Mapping[str, Any],
        drift_summary: Mapping[str, Any] | None,
        sovereignty_conflict: Mapping[str, Any] | None,
    ) -> tuple[Envelope, tuple[str, str | None, tuple[str, ...]]]:
        target = state.last_good_version(excluding=version)
        rollback_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{version}-{uuid.uuid4().hex[:8]}"
        report = {
            "rollback_id": rollback_id,
            "rolled_back": version,
            "target_version": target,
            "trigger": trigger,
            "reason": reason,
            "time": format_time(now),
            "production_before": state.production,
            "production_after": target,
            "ledger_head_seq": state.head_seq,
            "evidence": dict(evidence_files),
        }
        files = {
            "rollback_report.json": _json_bytes(report),
            "drift_summary.json": _json_bytes(
                dict(drift_summary)
                if drift_summary is not None
                else {"status": "not applicable", "trigger": trigger}
            ),
            "sovereignty_conflict.json": _json_bytes(
                dict(sovereignty_conflict)
                if sovereignty_conflict is not None
                else {"status": "not applicable", "trigger": trigger}
            ),
        }
        keys = self.registry.write_rollback(rollback_id, files)
        evidence = [
            EvidenceRef(
                name=f"rollbacks/{rollback_id}/{name}", sha256=hashlib.sha256(data).hexdigest()
            )
            for name, data in files.items()
        ]
        envelope = self._pipeline_record(
            "rollback", version, f"{trigger}: {reason}", now, target=target, evidence=evidence
        )
        return envelope, (rollback_id, target, tuple(keys))


def rollback_to_last_good_version(
    engine: DecisionEngine,
    *,
    trigger: RollbackTrigger,
    reason: str,
    version: str | None = None,
    drift_summary: Mapping[str, Any] | None = None,
    sovereignty_conflict: Mapping[str, Any] | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> RollbackOutcome:
    """Roll the version in production (or ``version``, which must be it) back to the last good one.

    Writes ``climate/rollbacks/<id>/{rollback_report.json, drift_summary.json,
    sovereignty_conflict.json}`` and appends a rollback signed by the pipeline key, atomically
    with the check that ``version`` is still in production.
    """
    if not reason.strip():
        raise LedgerError("a rollback needs a reason", field="reason", expected="text", found="''")
    outcome: dict[str, Any] = {}

    def decide(entries: Sequence[LedgerEntry]) -> list[Envelope | Mapping[str, Any]]:
        state = replay(entries, engine.facts(entries), engine.policy)
        current = state.production
        if current is None or (version is not None and version != current):
            raise LedgerError(
                "nothing to roll back: the version is not in production",
                field="version",
                expected=f"the production version ({current or 'none'})",
                found=version or "no production version",
            )
        envelope, (rollback_id, target, keys) = engine._rollback(
            state,
            current,
            trigger,
            reason,
            engine.now(),
            evidence or {},
            drift_summary,
            sovereignty_conflict,
        )
        outcome.update(rollback_id=rollback_id, rolled_back=current, target=target, keys=keys)
        return [envelope]

    (entry,) = engine.ledger.transact(decide)
    return RollbackOutcome(
        rollback_id=outcome["rollback_id"],
        rolled_back=outcome["rolled_back"],
        target_version=outcome["target"],
        trigger=trigger,
        report_keys=outcome["keys"],
        entry=entry,
    )


def _refuse_copy(entries: Sequence[LedgerEntry], version: str, digest: str) -> None:
    """A signed record is appended once: a copy of one already in the ledger is refused."""
    for entry in entries:
        if entry.version == version and envelope_digest(entry.envelope_dict()) == digest:
            raise AuthorizationError(
                "this exact decision record is already in the ledger (replayed record)",
                field="envelope",
                expected="a new record",
                found=f"a copy of entry {entry.seq}",
            )


def _quote(reason: str, limit: int = 200) -> str:
    """A reviewer's reason quoted in a pipeline record: short, the full text is in its own record."""
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
