"""Reliability: pushes killed with SIGKILL never leave a listed partial version; concurrent
appenders never fork the ledger, and the verified replay promotes each version once (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
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
from typer.testing import CliRunner

from core.cli import app
from core.decisions.engine import DecisionEngine
from core.decisions.ledger import Ledger, PostgresLedger, SQLiteLedger
from core.decisions.reviewer import submit_decision
from core.decisions.trust import TrustStore
from core.decisions.verify import verify_ledger
from core.pipeline import DeployError, deploy_candidate
from core.policy import DecisionPolicy
from core.registry.stores import LocalStore
from core.registry.versions import Registry
from core.signing.keys import generate_key_pair, load_public_key
from core.testing import make_governance, register_test_version, write_version_dir
from core.workspace import init_workspace

PG_URL = os.environ.get("KFM_TEST_POSTGRES_URL")
REPO = Path(__file__).resolve().parents[2]

PUSH_LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from core.registry.versions import Registry
    from core.registry.stores import LocalStore
    from core.signing.keys import load_signer
    from core.testing import push_version
    signer = load_signer(Path(sys.argv[4]), "pw")
    registry = Registry(LocalStore(sys.argv[1]), pipeline_key=signer.public_key)
    source, base = Path(sys.argv[2]), int(sys.argv[3])
    registry.fsck()  # clear what the previous killed push left
    print("ready", flush=True)
    for i in range(base, base + 1000):
        push_version(registry, f"1.{i}.0", source, signer)
    """
)


@pytest.mark.slow
def test_sigkill_during_push_never_lists_a_partial_version(tmp_path: Path) -> None:
    """20 pushes killed at random points: every listed version verifies, no partial is listed."""
    source = write_version_dir(tmp_path / "src", size=64 * 1024)
    for i in range(40):  # many small files: many points at which to be killed
        (source / "xai" / f"attribution_{i:02d}.json").write_text(f'{{"i": {i}}}\n' * 50)
    store_dir = tmp_path / "registry"
    keys = generate_key_pair("pipeline", tmp_path / "keys", "pw")
    pipeline_key = load_public_key(keys.public_key)
    rng = random.Random(7)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    partial_seen = 0
    for trial in range(20):
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PUSH_LOOP,
                str(store_dir),
                str(source),
                str(trial * 1000),
                str(keys.private_key),
            ],
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait()
        registry = Registry(LocalStore(store_dir), pipeline_key=pipeline_key)
        listed = registry.list()
        for version in listed:
            report = registry.verify(version)
            assert report.ok, (trial, version, report.problems)
            folder = store_dir / "climate" / "models" / version
            assert not [p for p in folder.rglob("*") if ".tmp" in p.name], (trial, version)
        on_disk = (
            set(os.listdir(store_dir / "climate" / "models"))
            if (store_dir / "climate" / "models").exists()
            else set()
        )
        partial_seen += len(on_disk - set(listed))
        assert set(listed) <= on_disk
    report = Registry(LocalStore(store_dir), pipeline_key=pipeline_key).fsck()
    assert report.damaged == () and report.unverified == ()
    assert Registry(LocalStore(store_dir), pipeline_key=pipeline_key).list()  # pushes completed
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
        registry=Registry(LocalStore(registry_dir), pipeline_key=GOV["pipeline"].public_key),
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


DEPLOY_THEN_DIE = textwrap.dedent(
    """
    import os
    import signal
    import sys
    from pathlib import Path
    from core import pipeline
    from core.decisions.trust import TrustStore
    from core.workspace import Workspace

    def killed_before_the_ledger(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # the registry commit is written, the ledger not

    pipeline.register_version = killed_before_the_ledger
    ws = Workspace.open(Path(sys.argv[1]), trust=TrustStore(Path(os.environ["KFM_HOME"])))
    with ws.decision_engine("pipe-pw") as engine:
        pipeline.deploy_candidate(
            Path(sys.argv[2]), engine=engine, policy=ws.policy(),
            regions_path=ws.regions_path, submitter="pipeline",
        )
    """
)


@pytest.mark.slow
def test_deploy_killed_between_registry_and_ledger_is_found_and_healed(
    reference_candidate_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trust_store: TrustStore,
) -> None:
    """SIGKILL after the push, before the ledger records: fsck reports the version, a redeploy
    says how to heal, fsck --register appends the records from the signed registry record."""
    root = tmp_path / "ws"
    ws = init_workspace(
        root, trust=trust_store, root_passphrase="root-pw", pipeline_passphrase="pipe-pw"
    )
    process = subprocess.run(
        [sys.executable, "-c", DEPLOY_THEN_DIE, str(root), str(reference_candidate_dir)],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        cwd=REPO,
        capture_output=True,
        timeout=600,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()[-2000:]
    registry = ws.registry()
    assert registry.list() == ["1.0.0"] and registry.verify("1.0.0").ok
    ledger = ws.ledger()
    assert ledger.entries() == []
    ledger.close()

    runner = CliRunner()
    monkeypatch.setenv("KFM_PIPELINE_PASSPHRASE", "pipe-pw")
    found = runner.invoke(app, ["registry", "fsck", "--workspace", str(root), "--json"])
    assert found.exit_code == 1, found.output
    assert json.loads(found.stdout)["unregistered"] == ["1.0.0"]
    with ws.decision_engine("pipe-pw") as engine, pytest.raises(DeployError) as caught:
        deploy_candidate(
            reference_candidate_dir,
            engine=engine,
            policy=ws.policy(),
            regions_path=ws.regions_path,
            submitter="pipeline",
        )
    assert "fsck --register" in (caught.value.hint or "")

    healed = runner.invoke(
        app, ["registry", "fsck", "--register", "--workspace", str(root), "--json"]
    )
    assert healed.exit_code == 0, healed.output
    body = json.loads(healed.stdout)
    assert (body["registered_now"], body["unregistered"]) == (["1.0.0"], [])
    with ws.decision_engine() as engine:
        entries = engine.ledger.entries()
        assert [(e.kind, e.version) for e in entries] == [
            ("registered", "1.0.0"),
            ("gates-attested", "1.0.0"),
        ]
        assert verify_ledger(entries, engine.roster, engine.policy).ok
        assert engine.state().staging == "1.0.0"
        facts = engine.version_facts("1.0.0")
        assert facts.concerned_stewards == registry.show("1.0.0").concerned_stewards
        assert len(facts.concerned_stewards) == 4
    again = runner.invoke(app, ["registry", "fsck", "--workspace", str(root), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["unregistered"] == []
