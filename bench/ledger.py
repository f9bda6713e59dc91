"""Benchmark: ledger verification vs raw signature checks, replay, registry listing.

The ledger holds decision records format 2: per version, the pipeline's ``registered`` (with its
signed facts) and ``gates-attested`` records and two council approvals, each anchored on the
entry before it; the promotion is derived by the verified replay.

Run: .venv/bin/python bench/ledger.py [--entries 10000] [--versions 10000]

Baseline beside each figure, in the same run: verifying the ledger is compared with verifying
the same number of DSSE signatures alone (securesystemslib, ECDSA P-256), the floor any
verifier pays. Targets: verify within 2x raw, replay under 0.5 s, list under 0.1 s. Every figure
is the best of ``--rounds`` runs (default 3); raw and verify alternate round by round, so a
burst of load from other jobs on a shared machine hits both sides alike.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.decisions.ledger import GENESIS, LedgerEntry, SQLiteLedger, chain  # noqa: E402
from core.decisions.records import (  # noqa: E402
    Anchor,
    PromotionRules,
    VersionFacts,
    envelope_from_dict,
)
from core.decisions.replay import replay  # noqa: E402
from core.decisions.verify import VerifiedLedger, verify_ledger  # noqa: E402
from core.policy import DecisionPolicy  # noqa: E402
from core.registry.layout import INDEX  # noqa: E402
from core.registry.stores import LocalStore  # noqa: E402
from core.registry.versions import Registry  # noqa: E402
from core.signing.digests import ModelSubject  # noqa: E402
from core.signing.keys import dsse_public_key  # noqa: E402
from core.testing import TEST_FOOTPRINT, make_governance, signed_decision  # noqa: E402

SUBJECT = ModelSubject(name="bench", root_digest="a" * 64, manifest_digest="b" * 64)
PATTERN = (
    ("registered", "pipeline", "pipeline"),
    ("gates-attested", "pipeline", "pipeline"),
    ("approve", "alice", "council"),
    ("approve", "bob", "council"),
)
POLICY = DecisionPolicy(require_concerned_stewards=False)
FACTS = VersionFacts(
    submitter="dev",
    concerned_stewards=(),
    model_family="bench",
    footprint=TEST_FOOTPRINT,
    record_sha256="c" * 64,
    rules=PromotionRules.from_policy(POLICY),
)


def timed(fn, *args, repeat: int = 1, **kwargs):  # type: ignore[no-untyped-def]
    """Result and the best wall time of ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return result, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gov = make_governance({"alice": ["council"], "bob": ["council"], "pipeline": ["pipeline"]})
    recorded = datetime(2026, 11, 1, tzinfo=UTC)
    envelopes = []
    head: LedgerEntry | None = None
    for i in range(args.entries):
        kind, actor, role = PATTERN[i % len(PATTERN)]
        anchor = Anchor(seq=head.seq, entry_hash=head.entry_hash) if head else None
        envelope = signed_decision(
            gov[actor],
            kind=kind,
            role=role,
            version=f"1.{i // len(PATTERN)}.0",
            subject=SUBJECT,
            time=recorded - timedelta(seconds=1),
            anchor=anchor or Anchor(seq=0, entry_hash=GENESIS),
            **({"facts": FACTS} if kind == "registered" else {}),
        )
        envelopes.append(envelope)
        (head,) = chain(head, [envelope], recorded)  # the hash the ledger will give it
    with tempfile.TemporaryDirectory() as tmp:
        ledger = SQLiteLedger(Path(tmp) / "ledger.sqlite", clock=lambda: recorded)
        _, append_s = timed(ledger.transact, lambda _entries: envelopes)
        entries, load_s = timed(ledger.entries)

        keys = {s.fingerprint: dsse_public_key(s.public_key) for s in gov.signers.values()}

        def raw() -> None:
            for data in envelopes:
                envelope = envelope_from_dict(data)
                (keyid,) = envelope.signatures
                envelope.verify([keys[keyid]], 1)

        raw_s = verify_s = float("inf")
        for _ in range(args.rounds):  # interleaved: raw, verify, raw, verify, ...
            raw_s = min(raw_s, timed(raw)[1])
            report, seconds = timed(verify_ledger, entries, gov.roster, POLICY)
            assert report.ok, report.to_dict()
            verify_s = min(verify_s, seconds)
        verified = VerifiedLedger(gov.roster, POLICY)
        verified.update(entries)
        state, replay_s = timed(replay, verified.verified_entries, repeat=args.rounds)
        assert state.production == f"1.{(args.entries - 1) // len(PATTERN)}.0"
        assert state == report.state
        _, extend_s = timed(verified.update, entries, repeat=args.rounds)
        ledger.close()

        store = LocalStore(Path(tmp) / "registry")
        index = Path(tmp) / "registry" / INDEX
        index.mkdir(parents=True)
        for i in range(args.versions):  # index entries only: listing never opens them
            (index / f"1.{i}.0.json").write_text("{}")
        registry = Registry(store, pipeline_key=gov["pipeline"].public_key)
        versions, list_s = timed(registry.list, repeat=args.rounds)
        assert len(versions) == args.versions

    n = args.entries
    print(f"entries {n}, registry versions {args.versions}, best of {args.rounds} rounds")
    print(f"append {n} (one transaction)      {append_s:8.3f} s")
    print(f"load {n} rows from SQLite          {load_s:8.3f} s")
    print(f"raw signature verification         {raw_s:8.3f} s   (baseline)")
    print(
        f"ledger verify (chain+sig+rules)    {verify_s:8.3f} s   {verify_s / raw_s:5.2f}x raw"
        f"   target <= 2x: {'met' if verify_s <= 2 * raw_s else 'MISSED'}"
    )
    print(f"re-read of a verified head          {extend_s:8.3f} s   (nothing new to verify)")
    print(
        f"replay {n} verified entries        {replay_s:8.3f} s   target < 0.5 s: "
        f"{'met' if replay_s < 0.5 else 'MISSED'}"
    )
    print(
        f"registry list {args.versions} versions       {list_s:8.3f} s   target < 0.1 s: "
        f"{'met' if list_s < 0.1 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
