"""Shared output helpers for CLI commands: rich consoles and JSON printing."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Print data as stable, indented JSON on stdout (for ``--json``)."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
