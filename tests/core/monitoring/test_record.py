"""Monitoring a registry version: within bounds nothing changes; a shifted batch rolls back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.decisions.engine import DecisionEngine
from core.errors import LedgerError
from core.monitoring.batches import make_batch
from core.monitoring.record import monitor_version, run_history
from core.policy import DecisionPolicy, MonitoringPolicy
from core.registry.versions import Registry
from core.testing import (
    FixedClock,
    MemoryLedger,
    MemoryStore,
    default_reviewers,
    make_governance,
    push_version,
    signed_decision,
    write_version_dir,
)


def _version_dir(reference: Path, out: Path, seed: str) -> Path:
    """Registry layout with the reference's real model, metadata and drift reference."""
    root = write_version_dir(out, seed=seed)
    shutil.copyfile(reference / "model.onnx", root / "model.onnx")
    shutil.copyfile(reference / "model_metadata.json", root / "model_metadata.json")
    shutil.copytree(reference / "data", root / "data")
    return root


@pytest.fixture
def production(reference_candidate_dir: Path, tmp_path: Path) -> DecisionEngine:
    """1.0.0 promoted then superseded by 1.1.0, which is in production."""
    gov = make_governance(default_reviewers())
    clock = FixedClock()
    engine = DecisionEngine(
        ledger=MemoryLedger(clock=clock),
        registry=Registry(MemoryStore(), pipeline_key=gov["pipeline"].public_key),
        roster=gov.roster,
        policy=DecisionPolicy(),
        pipeline=gov["pipeline"],
        clock=clock,
    )
    for version in ("1.0.0", "1.1.0"):
        record = push_version(
            engine.registry,
            version,
            _version_dir(reference_candidate_dir, tmp_path / version, version),
            gov["pipeline"],
            name="kfm-downscaler-ncep-air",
        )
        engine.register(record, gates_json=b"{}")
        for reviewer in ("alice", "bob"):
            clock.advance(minutes=1)
            engine.submit(
                signed_decision(
                    gov[reviewer],
                    kind="approve",
                    role="council",
                    version=version,
                    subject=record.subject,
                    time=clock(),
                    anchor=engine.state().anchor,
                )
            )
    assert engine.state().production == "1.1.0"
    return engine


@pytest.fixture(scope="module")
def batches(
    reference_candidate_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("flow-batches")
    validation = reference_candidate_dir / "data" / "validation.nc"
    return {
        k: make_batch(validation, k, folder / f"{k}.nc") for k in ("in-distribution", "warming")
    }


def test_in_distribution_batch_changes_nothing(
    production: DecisionEngine, batches: dict[str, Path]
) -> None:
    """A batch within bounds adds a signed monitoring record and leaves production as it is."""
    before = production.state()
    outcome = monitor_version(production, "1.1.0", batches["in-distribution"], MonitoringPolicy())
    after = production.state()
    assert outcome.rollback is None and outcome.note.startswith("within bounds")
    assert after.production == before.production == "1.1.0"
    last = production.ledger.entries()[-1]
    assert (last.kind, last.actor, last.version) == ("monitoring", "pipeline", "1.1.0")
    assert production.registry.list_runs("1.1.0") == [outcome.run.run_id]


def test_shifted_batch_rolls_back_with_artifacts(
    production: DecisionEngine, batches: dict[str, Path]
) -> None:
    """A +3 K batch rolls 1.1.0 back to 1.0.0 and writes the three rollback artifacts."""
    outcome = monitor_version(production, "1.1.0", batches["warming"], MonitoringPolicy())
    assert outcome.rollback is not None
    assert (outcome.rollback.rolled_back, outcome.rollback.target_version) == ("1.1.0", "1.0.0")
    assert outcome.rollback.trigger == "drift"
    state = production.state()
    assert state.production == "1.0.0" and state.versions["1.1.0"].state == "rolled_back"
    rid = outcome.rollback.rollback_id
    report = json.loads(production.registry.read_rollback(rid, "rollback_report.json"))
    drift = json.loads(production.registry.read_rollback(rid, "drift_summary.json"))
    conflict = json.loads(production.registry.read_rollback(rid, "sovereignty_conflict.json"))
    assert report["trigger"] == "drift" and report["production_after"] == "1.0.0"
    assert any(b.startswith("t_coarse") for b in drift["breaches"])
    assert conflict["status"] == "none" and "not a steward's" in conflict["said"]
    entries = production.ledger.entries()
    assert [e.kind for e in entries[-2:]] == ["monitoring", "rollback"]
    assert rid == f"{entries[-1].seq:08d}-1.1.0"
    assert {e["name"].rsplit("/", 1)[1] for e in report["evidence"]} >= {"drift_summary.json"}


def test_breach_keeps_a_version_from_being_restored_until_an_in_bounds_run(
    production: DecisionEngine, batches: dict[str, Path]
) -> None:
    """A breach of a superseded version makes it no good to roll back to; an in-bounds run clears it."""
    outcome = monitor_version(production, "1.0.0", batches["warming"], MonitoringPolicy())
    assert outcome.rollback is None  # 1.0.0 is superseded, not in production
    state = production.state().versions["1.0.0"]
    assert [b.kind for b in state.breaches] == ["drift"]
    assert production.state().last_good_version(excluding="1.1.0") is None
    monitor_version(production, "1.0.0", batches["in-distribution"], MonitoringPolicy())
    assert production.state().versions["1.0.0"].breaches == ()
    assert production.state().last_good_version(excluding="1.1.0") == "1.0.0"


def test_history_lists_runs_with_drift_and_energy(
    production: DecisionEngine, batches: dict[str, Path]
) -> None:
    """`history` shows every run with per-feature drift, energy and carbon."""
    monitor_version(production, "1.1.0", batches["in-distribution"], MonitoringPolicy())
    rows = run_history(production, "1.1.0")
    assert len(rows) == 1
    assert set(rows[0]["drift"]) == {"t_coarse", "lat", "lon", "hour_sin", "hour_cos"}
    assert rows[0]["energy_kwh"] > 0 and rows[0]["emissions_kg_co2e"] > 0


def test_unregistered_version_cannot_be_monitored(
    production: DecisionEngine, batches: dict[str, Path]
) -> None:
    """Monitoring a version that is not in the registry is a clear error, and writes nothing."""
    from core.errors import RegistryError

    entries = len(production.ledger.entries())
    with pytest.raises((RegistryError, LedgerError), match="no such version"):
        monitor_version(production, "9.9.9", batches["in-distribution"], MonitoringPolicy())
    assert len(production.ledger.entries()) == entries


def test_swapped_model_with_a_rewritten_index_is_never_run(
    production: DecisionEngine, batches: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another model.onnx plus an index rewritten to match: refused before inference."""
    import base64
    import hashlib

    import rfc8785

    from core.errors import RegistryError
    from core.monitoring import record as monitoring_record

    store = production.registry.store
    swapped = store.read("climate/models/1.1.0/model.onnx") + b"\x00"  # another model file
    envelope = json.loads(store.read("climate/index/1.1.0.json"))
    record = json.loads(base64.b64decode(envelope["payload"]))
    for entry in record["manifest"]["files"]:
        if entry["name"] == "model.onnx":
            entry.update(sha256=hashlib.sha256(swapped).hexdigest(), size=len(swapped))
    envelope["payload"] = base64.b64encode(rfc8785.dumps(record)).decode()
    store.write("climate/models/1.1.0/model.onnx", swapped)
    store.write("climate/index/1.1.0.json", json.dumps(envelope).encode())

    def never(*_args: object, **_kw: object) -> None:
        raise AssertionError("the swapped model was run")

    monkeypatch.setattr(monitoring_record, "run_monitoring", never)
    entries = len(production.ledger.entries())
    with pytest.raises(RegistryError, match="does not verify") as caught:
        monitor_version(production, "1.1.0", batches["in-distribution"], MonitoringPolicy())
    assert "signature does not verify" in str(caught.value.found)
    assert len(production.ledger.entries()) == entries
