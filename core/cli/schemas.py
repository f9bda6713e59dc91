"""``kfm schemas``: export and check the JSON Schemas (``./schemas`` unless told otherwise)."""

from __future__ import annotations

from pathlib import Path

import typer

from core.candidate.schemas import EXPORT_DIR, export_schemas, stale_schemas
from core.cli._output import console, styled


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="JSON Schemas of the domain types.", no_args_is_help=True)

    @group.command("export")
    def export(
        out: Path = typer.Option(
            EXPORT_DIR,
            "--out",
            help="Folder to write into (default: ./schemas, in the current directory).",
        ),
    ) -> None:
        """Write the JSON Schema of every domain type (and regions, kfm: extension) into a folder."""
        for path in export_schemas(out):
            console.print(f"wrote {path}")

    @group.command("check")
    def check(
        directory: Path = typer.Option(
            EXPORT_DIR,
            "--dir",
            help="Folder to compare (default: ./schemas, in the current directory).",
        ),
    ) -> None:
        """Exit 1 when the folder differs from what export would write."""
        stale = stale_schemas(directory)
        if stale:
            console.print(
                styled("[red]stale schemas:[/] {} (run 'kfm schemas export')", ", ".join(stale))
            )
            raise typer.Exit(1)
        console.print("schemas are current")

    app.add_typer(group, name="schemas")
