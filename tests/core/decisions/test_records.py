"""Decision records: DSSE envelopes over canonical in-toto statements, checked against the roster."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from pydantic import ValidationError
from securesystemslib.dsse import Envelope

from core.decisions.records import (
    DECISION_KINDS,
    DECISION_PREDICATE_TYPE,
    FORMAT_1_PREDICATE_TYPE,
    IN_TOTO_PAYLOAD_TYPE,
    Anchor,
    DecisionRecord,
    EvidenceRef,
    ModelSubject,
    PromotionRules,
    VersionFacts,
    envelope_digest,
    envelope_from_dict,
    envelope_to_dict,
    read_statement,
    sign_decision,
    verify_decision,
)
from core.decisions.roster import RosterEntry, TrustedRoster, add_reviewer, load_roster, sign_roster
from core.errors import AuthorizationError, VerificationError
from core.policy import DecisionPolicy
from core.signing.keys import KeySigner, generate_key_pair, load_signer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AT = T0 + timedelta(days=1)  # when the ledger records the default record
ANCHOR = Anchor(seq=3, entry_hash=hashlib.sha256(b"head").hexdigest())
SUBJECT = ModelSubject(
    name="downscaler", root_digest=hashlib.sha256(b"r").hexdigest(),
    manifest_digest=hashlib.sha256(b"m").hexdigest(),
)  # fmt: skip


def _key(tmp_path: Path, key_id: str) -> KeySigner:
    paths = generate_key_pair(key_id, tmp_path / "keys", "pw")
    return load_signer(paths.private_key, "pw")


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeySigner]:
    base = tmp_path_factory.mktemp("decision-keys")
    return {n: _key(base, n) for n in ("root", "alice", "bob", "carol", "pipeline", "mallory")}


@pytest.fixture(scope="module")
def roster(people: dict[str, KeySigner], tmp_path_factory: pytest.TempPathFactory) -> TrustedRoster:
    path = tmp_path_factory.mktemp("decision-roster") / "roster.json"
    rows = [
        ("alice", ("council",), {"valid_until": T0 + timedelta(days=30)}),
        ("bob", ("steward",), {"revoked": True, "revoked_at": T0 + timedelta(days=10)}),
        ("carol", ("working_group",), {}),
        ("pipeline", ("pipeline",), {}),
    ]
    for key_id, roles, extra in rows:
        signer = people[key_id]
        entry = RosterEntry.model_validate(
            {"id": key_id, "name": key_id.title(), "roles": roles,
             "public_key": signer.public_key_pem(), "valid_from": T0, **extra}
        )  # fmt: skip
        add_reviewer(path, entry)
    sign_roster(path, people["root"])
    return load_roster(path, people["root"].public_key)


def _record(**changes: object) -> DecisionRecord:
    base: dict[str, object] = {
        "kind": "approve",
        "actor": "alice",
        "role": "council",
        "reason": "all gates pass; attribution reviewed",
        "time": T0 + timedelta(days=1),
        "subject": SUBJECT,
        "version": "1.2.0",
        "channel": "production",
        "anchor": ANCHOR,
        "evidence": (
            EvidenceRef(name="gates.json", sha256=hashlib.sha256(b"g").hexdigest()),
            EvidenceRef(name="model.stac.json", sha256=hashlib.sha256(b"s").hexdigest()),
        ),
    }
    base.update(changes)
    return DecisionRecord.model_validate(base)


def test_sign_and_verify_round_trip(people: dict[str, KeySigner], roster: TrustedRoster) -> None:
    """A record signed by its actor verifies to an equal record, also after a dict round trip."""
    record = _record()
    envelope = sign_decision(record, people["alice"])
    assert verify_decision(envelope, roster, at=AT, expected_subject=SUBJECT) == record
    as_dict = json.loads(json.dumps(envelope_to_dict(envelope)))
    assert verify_decision(as_dict, roster, at=AT) == record
    assert envelope_from_dict(as_dict) == envelope


def test_statement_shape_and_canonical_payload(people: dict[str, KeySigner]) -> None:
    """The payload is a canonical in-toto Statement v1 with both model digests as subject."""
    record = _record()
    envelope = sign_decision(record, people["alice"])
    assert envelope.payload_type == IN_TOTO_PAYLOAD_TYPE
    statement = json.loads(envelope.payload)
    assert rfc8785.dumps(statement) == envelope.payload
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == DECISION_PREDICATE_TYPE
    assert [s["digest"]["sha256"] for s in statement["subject"]] == [
        SUBJECT.root_digest,
        SUBJECT.manifest_digest,
    ]
    predicate = statement["predicate"]
    assert (predicate["decision"], predicate["actor"], predicate["role"]) == (
        "approve",
        "alice",
        "council",
    )
    assert predicate["time"] == "2026-01-02T00:00:00Z"
    assert [e["name"] for e in predicate["evidence"]] == ["gates.json", "model.stac.json"]
    assert list(envelope.signatures) == [people["alice"].fingerprint]
    # Same record, same bytes; evidence order does not matter.
    reordered = _record(evidence=tuple(reversed(record.evidence)))
    assert sign_decision(reordered, people["alice"]).payload == envelope.payload
    assert read_statement(envelope) == record


FACTS = VersionFacts(
    submitter="carol",
    concerned_stewards=("sam", "bob"),
    model_family="downscaling",
    footprint=(-110.5, 30, -90, 50.25),
    record_sha256=hashlib.sha256(b"record").hexdigest(),
    rules=PromotionRules.from_policy(DecisionPolicy()),
)
KIND_FIELDS: dict[str, dict[str, Any]] = {
    "registered": {"facts": FACTS},
    "gates-attested": {"gates_failed": ("impact", "accuracy")},
    "monitoring": {"breaches": ("telemetry", "drift")},
    "rollback": {"breaches": ("drift",), "target_version": "1.1.0"},
    "waive": {"gate": "impact"},
}


@pytest.mark.parametrize("kind", DECISION_KINDS)
def test_every_decision_kind_round_trips(
    kind: str, people: dict[str, KeySigner], roster: TrustedRoster
) -> None:
    """Every decision kind signs, verifies and reads back equal, with the fields it carries."""
    record = _record(kind=kind, actor="pipeline", role="pipeline", **KIND_FIELDS.get(kind, {}))
    envelope = sign_decision(record, people["pipeline"])
    assert verify_decision(envelope, roster, at=AT) == record
    assert read_statement(envelope_to_dict(envelope)) == record


def test_format_2_fields_are_always_in_the_statement() -> None:
    """Anchor, roster serial, facts, failed gates, breaches and gate are always signed."""
    predicate = _record().to_statement()["predicate"]
    assert predicate["anchor"] == {"seq": 3, "entry_hash": ANCHOR.entry_hash}
    assert (predicate["roster_serial"], predicate["facts"], predicate["gate"]) == (None,) * 3
    assert (predicate["gates_failed"], predicate["breaches"]) == ([], [])
    registered = _record(kind="registered", actor="pipeline", role="pipeline", facts=FACTS)
    facts = registered.to_statement()["predicate"]["facts"]
    assert facts["concerned_stewards"] == ["bob", "sam"] and facts["rules"]["council_quorum"] == 2
    sorted_ = _record(kind="monitoring", breaches=("telemetry", "drift"))
    assert sorted_.breaches == ("drift", "telemetry")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"kind": "registered"}, "needs 'facts'"),
        ({"kind": "waive"}, "needs 'gate'"),
        ({"kind": "rollback"}, "needs 'breaches'"),
        ({"facts": FACTS}, "'facts' is for"),
        ({"gates_failed": ("impact",)}, "'gates_failed' is for"),
        ({"breaches": ("drift",)}, "'breaches' is for"),
        ({"gate": "impact"}, "'gate' is for"),
        ({"target_version": "1.0.0"}, "'target_version' is for"),
        ({"kind": "monitoring", "breaches": ("drift", "drift")}, "distinct"),
        ({"kind": "monitoring", "breaches": ("heat",)}, "breaches"),
        ({"anchor": {"seq": 0, "entry_hash": ANCHOR.entry_hash}}, "GENESIS"),
        ({"anchor": {"seq": -1, "entry_hash": ANCHOR.entry_hash}}, "greater than"),
    ],
)
def test_fields_a_kind_does_not_carry_are_refused(changes: dict[str, Any], says: str) -> None:
    """Each kind carries exactly its own fields: a misplaced or missing one is refused."""
    with pytest.raises(ValidationError, match=says):
        _record(**changes)


def test_format_1_record_is_refused_with_advice(people: dict[str, KeySigner]) -> None:
    """A format-1 statement (no anchor, signed promotions) says the workspace predates format 2."""
    statement = _record().to_statement()
    statement["predicateType"] = FORMAT_1_PREDICATE_TYPE
    for name in ("anchor", "roster_serial", "facts", "gates_failed", "breaches", "gate"):
        del statement["predicate"][name]
    envelope = Envelope(rfc8785.dumps(statement), IN_TOTO_PAYLOAD_TYPE, {})
    envelope.sign(people["alice"].dsse_signer())
    with pytest.raises(VerificationError, match="predates decision records format 2") as caught:
        read_statement(envelope)
    assert caught.value.hint is not None and "kfm demo --fresh" in caught.value.hint


def test_key_not_on_roster_is_refused(people: dict[str, KeySigner], roster: TrustedRoster) -> None:
    """A record claiming alice but signed with another key is refused, naming the keyid."""
    envelope = sign_decision(_record(), people["mallory"])
    with pytest.raises(VerificationError, match="not the roster key of 'alice'") as caught:
        verify_decision(envelope, roster, at=AT)
    assert caught.value.field == "signatures[0].keyid"
    assert caught.value.found == people["mallory"].fingerprint


def test_unknown_actor_is_refused(people: dict[str, KeySigner], roster: TrustedRoster) -> None:
    """An actor absent from the roster is refused."""
    envelope = sign_decision(_record(actor="mallory"), people["mallory"])
    with pytest.raises(AuthorizationError, match="not on the roster"):
        verify_decision(envelope, roster, at=AT)


def test_role_not_granted_is_refused(people: dict[str, KeySigner], roster: TrustedRoster) -> None:
    """A council member signing as steward is refused: the roster does not grant that role."""
    envelope = sign_decision(_record(role="steward", kind="veto"), people["alice"])
    with pytest.raises(AuthorizationError) as caught:
        verify_decision(envelope, roster, at=AT)
    assert caught.value.field == "reviewers[alice].roles"


def test_expired_and_revoked_keys_when_recorded(
    people: dict[str, KeySigner], roster: TrustedRoster
) -> None:
    """Expiry and revocation are judged when the record is recorded, not at its claimed time."""
    record = sign_decision(_record(), people["alice"])
    with pytest.raises(AuthorizationError, match="expired"):
        verify_decision(record, roster, at=T0 + timedelta(days=31))
    steward = {"actor": "bob", "role": "steward", "kind": "veto"}
    backdated = sign_decision(_record(time=T0 + timedelta(days=9), **steward), people["bob"])
    assert verify_decision(backdated, roster, at=T0 + timedelta(days=9)).kind == "veto"
    with pytest.raises(AuthorizationError, match="revoked"):
        verify_decision(backdated, roster, at=T0 + timedelta(days=11))


def test_edited_envelope_is_refused(people: dict[str, KeySigner], roster: TrustedRoster) -> None:
    """Changing the reason inside a signed envelope breaks the signature."""
    data = envelope_to_dict(sign_decision(_record(), people["alice"]))
    statement = json.loads(base64.b64decode(data["payload"]))
    statement["predicate"]["reason"] = "rubber-stamped"
    data["payload"] = base64.b64encode(rfc8785.dumps(statement)).decode()
    with pytest.raises(VerificationError, match="does not verify") as caught:
        verify_decision(data, roster, at=AT)
    assert caught.value.field == "signatures[0].sig"


def test_non_canonical_payload_is_refused(
    people: dict[str, KeySigner], roster: TrustedRoster
) -> None:
    """A validly signed but non-canonical payload is refused (one record, one byte form)."""
    statement = _record().to_statement()
    envelope = Envelope(json.dumps(statement, indent=1).encode(), IN_TOTO_PAYLOAD_TYPE, {})
    envelope.sign(people["alice"].dsse_signer())
    with pytest.raises(VerificationError, match="canonical"):
        verify_decision(envelope, roster, at=AT)


def test_record_about_another_model_is_refused(
    people: dict[str, KeySigner], roster: TrustedRoster
) -> None:
    """With expected_subject, a record about other digests is refused, naming the subject field."""
    envelope = sign_decision(_record(), people["alice"])
    other = SUBJECT.model_copy(update={"manifest_digest": hashlib.sha256(b"x").hexdigest()})
    with pytest.raises(VerificationError, match="another model") as caught:
        verify_decision(envelope, roster, at=AT, expected_subject=other)
    assert caught.value.field == "subject[1].digest.sha256"


def test_two_signatures_are_refused(people: dict[str, KeySigner], roster: TrustedRoster) -> None:
    """A decision envelope carries exactly one signature."""
    envelope = sign_decision(_record(), people["alice"])
    envelope.sign(people["carol"].dsse_signer())
    with pytest.raises(VerificationError, match="exactly one signature"):
        verify_decision(envelope, roster, at=AT)


def test_envelope_digest_is_stable(people: dict[str, KeySigner]) -> None:
    """envelope_digest is the same for an envelope and its dict form, and differs per signing."""
    first = sign_decision(_record(), people["alice"])
    assert envelope_digest(first) == envelope_digest(json.loads(json.dumps(first.to_dict())))
    assert envelope_digest(first) != envelope_digest(sign_decision(_record(), people["alice"]))


def test_record_validation() -> None:
    """Naive times, unknown kinds and malformed digests are refused; records are frozen."""
    with pytest.raises(ValidationError, match="timezone"):
        _record(time=datetime(2026, 1, 2))
    with pytest.raises(ValidationError):
        _record(kind="bless")
    with pytest.raises(ValidationError, match="hex"):
        EvidenceRef(name="gates.json", sha256="abc")
    record = _record()
    with pytest.raises(ValidationError):
        record.reason = "changed"  # type: ignore[misc]
    assert _record(time=datetime(2026, 1, 2, 1, tzinfo=UTC) - timedelta(hours=1)) == record


def _add_note(statement: dict[str, Any]) -> None:
    statement["predicate"]["note"] = "a field the record does not have"


def _add_subject(statement: dict[str, Any]) -> None:
    statement["subject"].append({"name": "other", "digest": {"sha256": "0" * 64}})


def _reverse_evidence(statement: dict[str, Any]) -> None:
    statement["predicate"]["evidence"].reverse()


@pytest.mark.parametrize(
    ("edit", "message"),
    [(_add_note, "canonical"), (_add_subject, "malformed"), (_reverse_evidence, "canonical")],
)
def test_canonical_payload_of_another_statement_is_refused(
    edit: Callable[[dict[str, Any]], None],
    message: str,
    people: dict[str, KeySigner],
    roster: TrustedRoster,
) -> None:
    """A signed, RFC 8785 canonical payload that is not exactly its record's statement fails."""
    statement = _record().to_statement()
    edit(statement)
    envelope = Envelope(rfc8785.dumps(statement), IN_TOTO_PAYLOAD_TYPE, {})
    envelope.sign(people["alice"].dsse_signer())
    with pytest.raises(VerificationError, match=message):
        verify_decision(envelope, roster, at=AT)


def test_parsed_keys_are_cached_per_roster(
    people: dict[str, KeySigner], roster: TrustedRoster, tmp_path: Path
) -> None:
    """dsse_key parses a key once per roster; another roster with alice's id keeps its own key."""
    entry = roster.entry("alice")
    assert entry is not None
    key = roster.dsse_key(entry)
    assert roster.dsse_key(entry) is key and key.keyid == people["alice"].fingerprint
    envelope = sign_decision(_record(), people["alice"])
    assert verify_decision(envelope, roster, at=AT).actor == "alice"
    path = tmp_path / "roster.json"
    add_reviewer(
        path,
        RosterEntry(id="alice", name="Alice", roles=("council",),
                    public_key=people["mallory"].public_key_pem(), valid_from=T0),
    )  # fmt: skip
    sign_roster(path, people["root"])
    other = load_roster(path, people["root"].public_key)
    with pytest.raises(VerificationError, match="not the roster key of 'alice'"):
        verify_decision(envelope, other, at=AT)
    assert (
        verify_decision(sign_decision(_record(), people["mallory"]), other, at=AT).actor == "alice"
    )
