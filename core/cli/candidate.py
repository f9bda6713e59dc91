"""``kfm candidate``: build the reference candidate and check candidate directories."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from core.candidate.load import check_candidate
from core.cli._output import console, print_json, styled


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Candidate directories: build the reference one, check any.", no_args_is_help=True
    )

    @group.command("check")
    def check(
        directory: Path = typer.Argument(..., help="Candidate directory."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Check a candidate is complete and consistent; exit 0 if so, 1 otherwise."""
        report = check_candidate(directory)
        if as_json:
            print_json(report.to_dict())
        else:
            table = Table(title=f"candidate {directory}")
            table.add_column("part")
            table.add_column("state")
            table.add_column("detail", overflow="fold")
            for c in report.checks:
                table.add_row(
                    c.name, styled("[green]ok[/]") if c.ok else styled("[red]FAIL[/]"), c.detail
                )
            console.print(table)
            console.print(
                styled("[green]candidate is complete and consistent[/]")
                if report.ok
                else styled("[red]candidate is not valid[/]")
            )
        raise typer.Exit(0 if report.ok else 1)

    @group.command("reference")
    def reference(
        out: Path = typer.Argument(..., help="Folder to build into (replaced if it exists)."),
        version: str = typer.Option("1.0.0", help="Version to give the model."),
    ) -> None:
        """Build the reference candidate from real NCEP/NCAR reanalysis (hvsampledata)."""
        from core.demo.reference import build_reference_candidate

        with console.status("training the reference downscaler and exporting it to ONNX..."):
            path = build_reference_candidate(out, version=version)
        console.print(f"reference candidate written to {path}")

    app.add_typer(group, name="candidate")
