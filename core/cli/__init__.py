"""The ``kfm`` command line.

Each command group lives in its own module of this package and exposes
``register(app: typer.Typer) -> None``; :data:`COMMAND_MODULES` lists them in help order.
:func:`main` is the console script: it catches :class:`core.errors.KfmError` once and prints its
diagnostics, so no user ever sees a raw traceback (set ``KFM_DEBUG=1`` to see one).
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from core.cli._output import err_console, styled
from core.errors import KfmError

app = typer.Typer(
    name="kfm",
    help="KFM climate model deployment: gates, signing, STAC + PROV, sovereignty, decisions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Command groups, one module each under core/cli/. Add a module name here to register it.
COMMAND_MODULES: list[str] = [
    "demo",
    "candidate",
    "schemas",
    "gates",
    "signing",
    "describe",
    "sovereignty",
    "workspace",
    "trust",
    "registry",
    "ledger",
    "decide",
    "deploy",
    "monitor",
    "ci",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"core.cli.{_name}").register(app)


def main() -> None:
    """Console script entry: run the app, turning engine errors into clear messages."""
    try:
        app()
    except KfmError as error:
        err_console.print(styled("[bold red]error:[/] {}", error.diagnostics()), soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print(styled("[bold red]interrupted[/]"))
        sys.exit(130)
    except Exception as error:  # last line of defence: never a raw traceback
        if os.environ.get("KFM_DEBUG"):
            raise
        err_console.print(
            styled(
                "[bold red]internal error:[/] {}: {}. "
                "This is a bug in kfm; rerun with KFM_DEBUG=1 for the traceback and report it.",
                type(error).__name__,
                error,
            ),
            soft_wrap=True,
        )
        sys.exit(3)
