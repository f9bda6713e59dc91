"""core/gates/drift_stats.py: PSI, KS statistic and Wasserstein effect sizes per feature."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import GateError
from core.gates.drift_stats import drift_report, psi


def test_identical_samples_show_no_drift() -> None:
    """A batch drawn from the reference itself has zero PSI, KS and Wasserstein."""
    ref = np.random.default_rng(1).normal(size=(5000, 2))
    report = drift_report(ref, ref.copy(), ["a", "b"])
    assert report.max_of("psi") == 0 and report.max_of("ks_statistic") == 0
    assert report.max_of("wasserstein_std") == 0


def test_shift_is_measured_on_the_shifted_feature_only() -> None:
    """Shifting one feature by one standard deviation drifts it (PSI > 0.25) and not the other."""
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(20000, 2))
    batch = rng.normal(size=(20000, 2))
    batch[:, 1] += 1.0
    report = drift_report(ref, batch, ["steady", "shifted"])
    steady, shifted = report.features
    assert steady.psi < 0.01 and steady.ks_statistic < 0.03
    assert shifted.psi > 0.25
    # KS statistic of N(0,1) against N(1,1) is 2*Phi(0.5)-1 = 0.383; Wasserstein is the shift.
    assert shifted.ks_statistic == pytest.approx(0.383, abs=0.02)
    assert shifted.wasserstein_std == pytest.approx(1.0, abs=0.05)
    assert report.worst("psi") == "shifted"
    assert report.breaches({"psi": 0.25}) == [f"shifted: psi {shifted.psi:.4g} > 0.25"]


def test_psi_of_a_discrete_feature_uses_its_categories() -> None:
    """A feature with four values is binned on four categories, and a changed mix is seen."""
    ref = np.repeat([0.0, 1.0, 2.0, 3.0], 250)
    batch = np.repeat([0.0, 1.0, 2.0, 3.0], [400, 200, 200, 200])
    value, bins = psi(ref, batch)
    assert bins == 4
    expected = sum(
        (b - r) * np.log(b / r) for r, b in zip([0.25] * 4, [0.4, 0.2, 0.2, 0.2], strict=True)
    )
    assert value == pytest.approx(expected)


def test_large_inputs_are_subsampled_reproducibly() -> None:
    """Rows beyond max_rows are subsampled with the seed: same seed, same report."""
    rng = np.random.default_rng(3)
    ref, batch = rng.normal(size=(30000, 1)), rng.normal(0.1, 1, size=(30000, 1))
    a = drift_report(ref, batch, ["x"], max_rows=5000, seed=7)
    b = drift_report(ref, batch, ["x"], max_rows=5000, seed=7)
    assert a == b and a.n_reference_used == 5000 and a.n_reference == 30000
    assert a.to_dict()["features"][0]["name"] == "x"


@pytest.mark.parametrize(
    ("ref", "batch", "field"),
    [
        (np.zeros((10, 2)), np.zeros((10, 3)), "batch"),
        (np.zeros((0, 2)), np.zeros((10, 2)), "reference"),
        (np.zeros((10, 2)), np.full((10, 2), np.nan), "batch"),
    ],
)
def test_malformed_matrices_are_refused(ref: np.ndarray, batch: np.ndarray, field: str) -> None:
    """Width mismatch, empty input and NaN are errors naming the side."""
    with pytest.raises(GateError) as info:
        drift_report(ref, batch, ["a", "b"])
    assert info.value.field == field
