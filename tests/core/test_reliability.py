"""Reliability: pushes killed with SIGKILL never leave a listed partial version; concurrent
appenders never fork the ledger, and the verified replay promotes each version once (SQLite and
PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from core.decisions.engine import DecisionEngine
from core.decisions.ledger import Ledger, PostgresLedger, SQLiteLedger
from core.decisions.reviewer import submit_decision
from core.decisions.verify import verify_ledger
from core.policy import DecisionPolicy
from core.registry.stores import LocalStore
from core.registry.versions import Registry
from core.testing import make_governance, register_test_version, write_version_dir

PG_URL = os.environ.get("KFM_TEST_POSTGRES_URL")
REPO = Path(__file__).resolve().parents[2]

PUSH_LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from core.registry.versions import Registry
    from core.registry.stores import LocalStore
    registry = Registry(LocalStore(sys.argv[1]))
    source, base = Path(sys.argv[2]), int(sys.argv[3])
    registry.fsck()  # clear what the previous killed push left
    print("ready", flush=True)
    for i in range(base, base + 1000):
        registry.push(f"1.{i}.0", source, name="m", submitter="dev")
    """
)


@pytest.mark.slow
def test_sigkill_during_push_never_lists_a_partial_version(tmp_path: Path) -> None:
    """20 pushes killed at random points: every listed version verifies, no partial is listed."""
    source = write_version_dir(tmp_path / "src", size=64 * 1024)
    for i in range(40):  # many small files: many points at which to be killed
        (source / "xai" / f"attribution_{i:02d}.json").write_text(f'{{"i": {i}}}\n' * 50)
    store_dir = tmp_path / "registry"
    rng = random.Random(7)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    partial_seen = 0
    for trial in range(20):
        process = subprocess.Popen(
            [sys.executable, "-c", PUSH_LOOP, str(store_dir), str(source), str(trial * 1000)],
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait()
        registry = Registry(LocalStore(store_dir))
        listed = registry.list()
        for version in listed:
            report = registry.verify(version)
            assert report.ok, (trial, version, report.problems)
        on_disk = (
            set(os.listdir(store_dir / "climate" / "models"))
            if (store_dir / "climate" / "models").exists()
            else set()
        )
        partial_seen += len(on_disk - set(listed))
        assert set(listed) <= on_disk
    report = Registry(LocalStore(store_dir)).fsck()
    assert report.damaged == ()
    assert Registry(LocalStore(store_dir)).list()  # some pushes completed
    assert partial_seen > 0  # the kills did land mid-push


COUNCIL = [f"c{i}" for i in range(8)]
GOV = make_governance(
    {**{c: ["council"] for c in COUNCIL}, "dev": ["council"], "pipeline": ["pipeline"]}
)
VERSIONS = [f"2.{i}.0" for i in range(25)]


def _open(kind: str, location: str, schema: str) -> Ledger:
    if kind == "sqlite":
        return SQLiteLedger(location)
    return PostgresLedger(location, schema=schema)


def _engine(
    kind: str, location: str, schema: str, registry_dir: str, *, pipeline: bool = False
) -> DecisionEngine:
    return DecisionEngine(
        ledger=_open(kind, location, schema),
        registry=Registry(LocalStore(registry_dir)),
        roster=GOV.roster,
        policy=DecisionPolicy(council_quorum=8),
        pipeline=GOV["pipeline"] if pipeline else None,
    )


def _worker(kind: str, location: str, schema: str, registry_dir: str, actor: str) -> None:
    order = VERSIONS[:]
    random.Random(actor).shuffle(order)
    with _engine(kind, location, schema, registry_dir) as engine:  # a reviewer: no pipeline key
        for version in order:
            submit_decision(
                engine, "approve", version, GOV[actor], role="council", reason="concurrent test"
            )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_concurrent_appenders_keep_one_chain(kind: str, tmp_path: Path) -> None:
    """8 processes × 25 approvals (quorum 8): 200 approvals, chain intact, no duplicate, and
    one derived promotion per version, at whichever approval landed last."""
    if kind == "postgres" and not PG_URL:
        pytest.skip("KFM_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    location = str(tmp_path / "ledger.sqlite") if kind == "sqlite" else str(PG_URL)
    schema = f"kfm_test_{uuid.uuid4().hex[:10]}"
    registry_dir = str(tmp_path / "registry")
    with _engine(kind, location, schema, registry_dir, pipeline=True) as engine:
        try:
            for version in VERSIONS:
                source = write_version_dir(tmp_path / version, seed=version)
                register_test_version(engine, source, version, name="m", concerned_stewards=())
            context = multiprocessing.get_context("fork")
            workers = [
                context.Process(target=_worker, args=(kind, location, schema, registry_dir, actor))
                for actor in COUNCIL
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join(timeout=120)
            assert [w.exitcode for w in workers] == [0] * 8
            entries = engine.ledger.entries()
            kinds = Counter(e.kind for e in entries)
            assert kinds["approve"] == 200 and len(entries) == 250
            assert len({e.envelope for e in entries}) == len(entries)
            assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
            report = verify_ledger(entries, GOV.roster, engine.policy)
            assert report.ok, report.broken
            state = engine.state()
            promotions = [e for e in state.events if e.kind == "promotion"]
            assert Counter(e.version for e in promotions) == Counter(VERSIONS)
            last_approval = {e.version: e.seq for e in entries if e.kind == "approve"}
            assert all(e.seq == last_approval[e.version] for e in promotions)
            assert state.production == state.promotions[-1]
        finally:
            if isinstance(engine.ledger, PostgresLedger):
                engine.ledger.drop()
