"""``kfm schemas``: export and check the JSON Schemas in ``schemas/``."""

from __future__ import annotations

from pathlib import Path

import typer

from core.candidate.schemas import SCHEMA_DIR, export_schemas, stale_schemas
from core.cli._output import console


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="JSON Schemas of the domain types.", no_args_is_help=True)

    @group.command("export")
    def export(out: Path = typer.Option(SCHEMA_DIR, "--out", help="Folder to write into.")) -> None:
        """Write the JSON Schema of every domain type into schemas/."""
        for path in export_schemas(out):
            console.print(f"wrote {path}")

    @group.command("check")
    def check(
        directory: Path = typer.Option(SCHEMA_DIR, "--dir", help="Folder to compare."),
    ) -> None:
        """Exit 1 when schemas/ differs from what export would write."""
        stale = stale_schemas(directory)
        if stale:
            console.print(f"[red]stale schemas:[/] {', '.join(stale)} (run 'kfm schemas export')")
            raise typer.Exit(1)
        console.print("schemas are current")

    app.add_typer(group, name="schemas")
