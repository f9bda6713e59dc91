"""Shared fixtures: the reference candidate is built once per test session and copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
STANDARDS = REPO_ROOT.parent / "shared" / "standards"


@pytest.fixture(scope="session")
def reference_candidate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference candidate, built once; tests must not modify it (use ``candidate``)."""
    from core.reference import build_reference_candidate

    return build_reference_candidate(tmp_path_factory.mktemp("reference") / "candidate")


@pytest.fixture
def candidate(reference_candidate_dir: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the reference candidate."""
    target = tmp_path / "candidate"
    shutil.copytree(reference_candidate_dir, target)
    return target
