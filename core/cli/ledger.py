"""``kfm ledger verify|show`` on the workspace's ledger."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import typer
from rich.table import Table

from core.cli._output import console, print_json, styled
from core.cli.workspace import open_workspace, workspace_option
from core.decisions.verify import verify_ledger
from core.errors import RegistryError
from core.signing.digests import ModelSubject


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The hash-chained decision ledger.", no_args_is_help=True)

    @group.command("verify")
    def verify(
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Check the chain, every signature and every role; print the first broken entry."""
        ws = open_workspace(workspace)
        registry = ws.registry()
        with closing(ws.ledger()) as ledger:
            entries = ledger.entries()
        subjects: dict[str, ModelSubject] = {}
        for version in sorted({e.version for e in entries}):
            try:
                subjects[version] = registry.show(version).subject
            except RegistryError:
                continue  # verify_decision still checks signature and role; replay flags it
        report = verify_ledger(entries, ws.roster(), subjects=subjects)
        if as_json:
            print_json(report.to_dict())
        elif report.broken is None:
            console.print(
                styled(
                    "[green]ledger verified[/]: {} entries, chain intact, "
                    "every signature and role valid",
                    report.entries,
                )
            )
        else:
            b = report.broken
            console.print(
                styled(
                    "[red]ledger broken at entry {}[/] (field {}): {}", b.seq, b.field, b.message
                )
            )
            console.print(f"{report.checked} entries before it verified")
        raise typer.Exit(0 if report.ok else 1)

    @group.command("show")
    def show(
        workspace: Path | None = workspace_option(),
        last: int = typer.Option(20, "--last", help="How many of the latest entries."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List the latest entries (unverified; use `kfm ledger verify`)."""
        with closing(open_workspace(workspace).ledger()) as ledger:
            entries = ledger.entries()[-last:] if last > 0 else ledger.entries()
        if as_json:
            print_json([e.to_dict() for e in entries])
            return
        table = Table()
        for column in ("seq", "recorded", "kind", "version", "actor", "role", "target"):
            table.add_column(column)
        for e in entries:
            table.add_row(
                str(e.seq),
                e.recorded_at,
                e.kind,
                e.version,
                e.actor,
                e.role,
                e.target_version or "",
            )
        console.print(table)

    app.add_typer(group, name="ledger")
