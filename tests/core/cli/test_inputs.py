"""What users type is checked at the command line: ASCII versions, bounded reasons."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from core.cli import main
from core.decisions.trust import TrustStore
from core.workspace import init_workspace


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the console script (errors printed as diagnostics) and return its exit code."""
    monkeypatch.setattr(sys, "argv", ["kfm", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    return int(caught.value.code or 0)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, session_kfm_home: Path) -> Path:
    """An empty workspace (pipeline passphrase 'pipe-pw')."""
    root = tmp_path_factory.mktemp("inputs") / "ws"
    init_workspace(
        root,
        trust=TrustStore(session_kfm_home),
        root_passphrase="root-pw",
        pipeline_passphrase="pipe-pw",
    )
    return root


@pytest.fixture(autouse=True)
def _pinned(workspace: Path, pin_workspace: Callable[[Path], None]) -> None:
    """Each test's own KFM home pins the module's workspace, as its operator would."""
    pin_workspace(workspace)


@pytest.mark.parametrize("version", ["1.2.٥", "١.٢.٣", "１.2.3"])
@pytest.mark.parametrize("command", ["show", "verify"])
def test_unicode_digits_in_a_version_are_refused_by_the_cli(
    version: str,
    command: str,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """`kfm registry show|verify` with digits of another script exit 2 naming the version."""
    code = run_main(monkeypatch, "registry", command, version, "--workspace", str(workspace))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "invalid version" in err and "ASCII digits" in err and version in err


def test_decision_with_unicode_digits_is_refused(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`kfm approve 1.0.٥` is refused as an invalid version before any key is opened."""
    monkeypatch.setenv("KFM_PIPELINE_PASSPHRASE", "pipe-pw")
    key = workspace / "keys" / "pipeline.key"
    code = run_main(
        monkeypatch, "approve", "1.0.٥", "--as", "pipeline", "--role", "pipeline",
        "--key", str(key), "--reason", "fine", "--passphrase-env", "NOT_SET_ANYWHERE",
        "--workspace", str(workspace),
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "invalid version" in err and "1.0.٥" in err


def test_oversized_reason_is_refused_before_signing(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A 4,001-character --reason exits 2 naming --reason and the limit; nothing is appended."""
    monkeypatch.setenv("KFM_PIPELINE_PASSPHRASE", "pipe-pw")
    key = workspace / "keys" / "pipeline.key"
    code = run_main(
        monkeypatch, "approve", "1.0.0", "--as", "pipeline", "--role", "pipeline",
        "--key", str(key), "--reason", "r" * 4001, "--passphrase-env", "NOT_SET_ANYWHERE",
        "--workspace", str(workspace),
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "reason is too long" in err and "--reason" in err and "at most 4000 characters" in err
    assert "4001 characters" in err
