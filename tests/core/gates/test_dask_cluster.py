"""Gate statistics on a dask.distributed cluster of worker processes equal the local run."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.candidate.load import load_candidate
from core.gates import run_gates
from core.policy import load_policy


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_local_cluster_gives_the_same_numbers(reference_candidate_dir: Path) -> None:
    """Two worker processes, one chunk per time step: gates.json content equals the threaded run."""
    from distributed import LocalCluster

    candidate = load_candidate(reference_candidate_dir)
    local = run_gates(candidate, load_policy(), chunk_times=1)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as cluster:
        stages: list[tuple[str, int, int]] = []
        distributed = run_gates(
            candidate,
            load_policy(),
            chunk_times=1,
            scheduler=cluster.scheduler_address,
            progress=lambda s, d, t: stages.append((s, d, t)),
        )
    assert ("validation chunks", 4, 4) in stages
    assert distributed.to_dict() == local.to_dict()
    assert distributed.passed
