"""``kfm ledger verify|show`` on the workspace's ledger."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from core.cli._output import console, print_json
from core.cli.decide import build_engine
from core.cli.workspace import open_workspace, workspace_option
from core.decisions.verify import verify_ledger


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The hash-chained decision ledger.", no_args_is_help=True)

    @group.command("verify")
    def verify(
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Check every entry: chain, signature, role when recorded, anchor, rules; name the first broken one."""
        ws = open_workspace(workspace)
        with closing(ws.ledger()) as ledger:
            entries = ledger.entries()
        report = verify_ledger(entries, ws.roster(), ws.policy().decisions)
        if as_json:
            print_json(report.to_dict())
        elif report.broken is None:
            console.print(
                f"[green]ledger verified[/]: {report.entries} entries, chain intact, every "
                "signature, role, anchor and decision rule valid "
                f"(head #{report.state.head_seq} {report.state.head_hash[:16]}…)"
            )
        else:
            b = report.broken
            console.print(f"[red]ledger broken at entry {b.seq}[/] (field {b.field}):")
            console.print(b.message, markup=False)
            console.print(f"{report.checked} entries before it verified")
        raise typer.Exit(0 if report.ok else 1)

    @group.command("show")
    def show(
        workspace: Path | None = workspace_option(),
        last: int = typer.Option(20, "--last", help="How many of the latest entries."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List the latest entries of the verified ledger, with the promotions and rollbacks they caused."""
        ws = open_workspace(workspace)
        with build_engine(ws, with_pipeline=False) as engine:
            state = engine.state()
            verified = engine.verified.entries  # as verified: an edited column never shows
        entries = verified[-last:] if last > 0 else verified
        if as_json:
            print_json(
                [
                    {**e.to_dict(), "events": [ev.to_dict() for ev in state.events_at(e.seq)]}
                    for e in entries
                ]
            )
            return
        table = Table()
        for column in ("seq", "recorded", "kind", "version", "actor", "role", "target"):
            table.add_column(column)
        for e in entries:
            cells = (e.recorded_at, e.kind, e.version, e.actor, e.role, e.target_version or "")
            table.add_row(str(e.seq), *(Text(c) for c in cells))
            for event in state.events_at(e.seq):
                derived = "(derived)" if event.derived else "(pipeline)"
                marks = (
                    f"→ {event.kind}",
                    event.version,
                    derived,
                    "",
                    event.production_after or "",
                )
                table.add_row("", "", *(Text(c) for c in marks))
        console.print(table)

    app.add_typer(group, name="ledger")
