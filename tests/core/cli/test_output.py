"""CLI output: text from users and files is printed as it is, never interpreted as Rich markup."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from core.cli import main
from core.cli._output import console, err_console, styled
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
    """An empty workspace."""
    root = tmp_path_factory.mktemp("output") / "ws"
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


@pytest.mark.parametrize("version", ["1.0.0[/]", "reviewers[dana]", "[bold]1.0.0", "x\\"])
def test_user_text_in_an_error_is_printed_as_typed(
    version: str, workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A version that looks like markup is named in the error as typed, with no crash."""
    code = run_main(monkeypatch, "registry", "show", version, "--workspace", str(workspace))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error:" in err and "internal error" not in err and "MarkupError" not in err
    assert version in err


def test_shared_consoles_print_brackets_literally(capsys: pytest.CaptureFixture) -> None:
    """Plain strings given to the shared consoles keep every bracket and colon."""
    console.print("reviewers[dana] [red]x[/] :thumbs_up:")
    err_console.print("1.0.0[/]")
    out = capsys.readouterr()
    assert out.out.strip() == "reviewers[dana] [red]x[/] :thumbs_up:"
    assert out.err.strip() == "1.0.0[/]"


def test_styled_inserts_values_as_plain_text() -> None:
    """The template's markup styles the text; the values are inserted as they are."""
    text = styled("[red]FAIL[/] {} and {}", "[bold]x[/]", "trailing\\")
    assert text.plain == "FAIL [bold]x[/] and trailing\\"
    assert [(s.start, s.end, str(s.style)) for s in text.spans] == [(0, 4, "red")]
    capture = Console(record=True, width=120, color_system=None)
    capture.print(text)
    assert capture.export_text().strip() == "FAIL [bold]x[/] and trailing\\"


def test_styled_values_take_the_style_around_them() -> None:
    """A value inside a styled stretch is styled with it; adjacent values stay apart."""
    text = styled("[green]{}: {} files verified[/]{}{}", "1.0.0[/]", 3, "a", "b")
    assert text.plain == "1.0.0[/]: 3 files verified" + "ab"
    green = [(s.start, s.end) for s in text.spans if str(s.style) == "green"]
    assert min(s for s, _ in green) == 0 and max(e for _, e in green) == len(
        "1.0.0[/]: 3 files verified"
    )
