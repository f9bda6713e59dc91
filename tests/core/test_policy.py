"""The policy file: shape, refusals, and a named source for every threshold."""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

import pytest

from core.errors import PolicyError
from core.gates import GATES, build_gates
from core.policy import DEFAULT_POLICY_PATH, load_policy, policy_from_dict


def default_raw() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def test_default_policy_names_all_nine_gates() -> None:
    """The shipped policy has a version and one table per gate, in the registry's ids."""
    policy = load_policy()
    assert policy.version
    assert sorted(policy.gates) == sorted(GATES)
    assert len(build_gates(policy)) == 9


def test_default_policy_screening_and_decisions() -> None:
    """[screening] and [decisions] hold the agreed values."""
    policy = load_policy()
    s, d = policy.screening, policy.decisions
    assert (s.resolution_internal, s.resolution_public_generalized, s.resolution_restricted) == (
        9,
        5,
        4,
    )
    assert (s.min_count, s.withheld_buffer_rings) == (11, 1)
    assert d.council_quorum == 2 and d.require_concerned_stewards and d.forbid_self_approval
    assert d.require_working_group_drift_signoff is False
    assert d.evidence == (
        "gates.json",
        "model.stac.json",
        "provenance.json",
        "sovereignty/report.json",
    )


@pytest.mark.parametrize(
    ("evidence", "says"),
    [
        ([], "at least 1"),
        (["gates.json", "gates.json"], "names a file twice"),
        (["../keys/root.key"], "inside a version"),
        (["/etc/passwd"], "inside a version"),
        (["xai//shap.json"], "inside a version"),
    ],
)
def test_decision_evidence_must_name_files_of_a_version(evidence: list[str], says: str) -> None:
    """[decisions] evidence is a non-empty list of distinct relative paths inside a version."""
    raw = copy.deepcopy(default_raw())
    raw["decisions"]["evidence"] = evidence
    with pytest.raises(PolicyError, match=says) as info:
        policy_from_dict(raw)
    assert info.value.field == "decisions.evidence"


def test_every_key_in_the_policy_file_names_its_source() -> None:
    """Each key line of the policy file carries a comment (its standard, paper or policy choice)."""
    for line in DEFAULT_POLICY_PATH.read_text(encoding="utf-8").splitlines():
        if re.match(r"^[a-z_0-9]+\s*=", line) and not line.startswith("version"):
            assert "#" in line and len(line.split("#", 1)[1].strip()) > 5, line


def test_threshold_keys_end_in_max_or_min() -> None:
    """Every gate's declared thresholds end in _max/_min; parameters never do."""
    for cls in GATES.values():
        assert all(k.endswith(("_max", "_min")) for k in cls.thresholds)
        assert not any(k.endswith(("_max", "_min")) for k in cls.parameters)


def test_policy_with_no_gates_is_refused() -> None:
    """Zero gates is an error, not a pass."""
    raw = default_raw()
    raw["gates"] = {}
    with pytest.raises(PolicyError, match="no gates"):
        policy_from_dict(raw)


def test_unknown_gate_id_is_refused() -> None:
    """An unknown gate id is refused, naming it."""
    raw = default_raw()
    raw["gates"]["accuracyy"] = {"rmse_max": 1.0}
    with pytest.raises(PolicyError) as info:
        build_gates(policy_from_dict(raw))
    assert info.value.found == "accuracyy" and "unknown gate id" in info.value.message


def test_unknown_key_is_refused_with_the_gate_name() -> None:
    """An unknown key is refused, naming the gate and the key."""
    raw = default_raw()
    raw["gates"]["extremes"]["q95_abs_bias_max"] = 1.0
    with pytest.raises(PolicyError) as info:
        build_gates(policy_from_dict(raw))
    assert "gate 'extremes'" in info.value.message
    assert info.value.field == "gates.extremes.q95_abs_bias_max"


def test_missing_threshold_is_refused() -> None:
    """Dropping a threshold is refused rather than silently skipping the check."""
    raw = default_raw()
    del raw["gates"]["accuracy"]["skill_min"]
    with pytest.raises(PolicyError, match="needs this key"):
        build_gates(policy_from_dict(raw))


@pytest.mark.parametrize(
    ("gate", "key", "value"),
    [
        ("accuracy", "rmse_max", "1.5"),
        ("sovereignty", "allow_no_regions", 1),
        ("drift", "psi_bins", 2.5),
    ],
)
def test_wrongly_typed_values_are_refused(gate: str, key: str, value: Any) -> None:
    """Thresholds must be numbers and parameters their declared type."""
    raw = copy.deepcopy(default_raw())
    raw["gates"][gate][key] = value
    with pytest.raises(PolicyError) as info:
        build_gates(policy_from_dict(raw))
    assert info.value.field == f"gates.{gate}.{key}"


def test_policy_without_version_is_refused() -> None:
    """The version is required."""
    raw = default_raw()
    del raw["version"]
    with pytest.raises(PolicyError, match="no version"):
        policy_from_dict(raw)
