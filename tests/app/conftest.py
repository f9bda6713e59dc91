"""Dashboard fixtures: one demo workspace built per session, a private copy for tests that write."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st

from core.decisions.reviewer import submit_decision
from core.decisions.trust import TrustStore
from core.demo.build import DemoInfo, build_demo, demo_passphrase, load_demo
from core.signing.keys import load_signer
from core.workspace import Workspace

Approve = Callable[[DemoInfo, str, str], list[str]]


@pytest.fixture(scope="session")
def built_demo(
    reference_candidate_dir: Path, tmp_path_factory: pytest.TempPathFactory, session_kfm_home: Path
) -> DemoInfo:
    """The demo workspace (1.0.0 under review, amara approved), built once; never written to."""
    target = tmp_path_factory.mktemp("app-demo") / "demo"
    trust = TrustStore(session_kfm_home)
    return build_demo(target, trust=trust, candidate_source=reference_candidate_dir)


@pytest.fixture
def demo(built_demo: DemoInfo, pin_workspace: Callable[[Path], None]) -> DemoInfo:
    """The shared demo, its root key pinned for this test's client."""
    pin_workspace(built_demo.workspace)
    return built_demo


@pytest.fixture
def demo_copy(demo: DemoInfo, tmp_path: Path, pin_workspace: Callable[[Path], None]) -> DemoInfo:
    """A private, writable copy of the demo workspace (kfm.toml paths are relative), pinned."""
    target = tmp_path / "demo"
    shutil.copytree(demo.workspace, target)
    pin_workspace(target)
    return load_demo(target)


def clear_streamlit_caches() -> None:
    """Streamlit caches live per process: forget every workspace an earlier test opened."""
    st.cache_data.clear()
    st.cache_resource.clear()


def serve(monkeypatch: pytest.MonkeyPatch, info: DemoInfo) -> None:
    """Point the dashboard (AppTest runs it in this process) at ``info``'s workspace.

    The pipeline key's passphrase is *not* set: reviewers never need it.
    """
    monkeypatch.setenv("KFM_WORKSPACE", str(info.workspace))
    monkeypatch.delenv("KFM_PIPELINE_PASSPHRASE", raising=False)


@pytest.fixture
def on_demo(demo: DemoInfo, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoInfo]:
    """The dashboard's environment set to the shared demo (read-only tests)."""
    serve(monkeypatch, demo)
    clear_streamlit_caches()
    yield demo
    clear_streamlit_caches()


@pytest.fixture
def on_copy(demo_copy: DemoInfo, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoInfo]:
    """The dashboard's environment set to a private copy of the demo (tests that write)."""
    serve(monkeypatch, demo_copy)
    clear_streamlit_caches()
    yield demo_copy
    clear_streamlit_caches()


def approve_with_core(info: DemoInfo, actor: str, role: str) -> list[str]:
    """Sign and submit ``actor``'s approval of the demo version with the core API (no UI).

    Returns the kind of the entry appended and of the events it caused (``["approve",
    "promotion"]`` when it was the last approval needed). No pipeline key is used.
    """
    ws = Workspace.open(info.workspace, trust=TrustStore.from_environment(os.environ, None))
    signer = load_signer(ws.reviewer_key_path(actor), demo_passphrase(actor), key_id=actor)
    with ws.decision_engine() as engine:
        outcome = submit_decision(
            engine,
            "approve",
            info.version,
            signer,
            role=role,
            reason="test: reviewed outside the dashboard",
        )
    return [outcome.entry.kind, *(e.kind for e in outcome.events)]


@pytest.fixture
def approve() -> Approve:
    """:func:`approve_with_core`, for tests that set up approvals before the UI acts."""
    return approve_with_core
