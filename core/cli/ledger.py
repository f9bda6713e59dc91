"""``kfm ledger verify|show|checkpoint`` on the workspace's ledger.

``verify`` checks every entry once, then the anchors of the verified state
(:mod:`core.decisions.anchors`): the newest signed checkpoint, this client's witness, the roster
serial and the registry cross-check; when all hold it records the head in the witness.
``checkpoint`` does the same checks, then signs the verified head with the pipeline key.
:func:`anchored_state` and :func:`print_anchors` are what ``kfm status`` and the decision
commands use.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from core.cli._output import console, print_json, styled
from core.cli.workspace import build_engine, open_workspace, workspace_option
from core.decisions.anchors import (
    AnchorReport,
    check_anchors,
    read_anchors,
    remember_verified,
    verified_and_anchored,
)
from core.decisions.checkpoints import write_checkpoint
from core.decisions.engine import DecisionEngine
from core.decisions.state import VerifiedState
from core.decisions.verify import verify_ledger
from core.errors import KfmError
from core.workspace import Workspace


def anchored_state(ws: Workspace, engine: DecisionEngine) -> tuple[VerifiedState, AnchorReport]:
    """The engine's verified state, refused when behind its newest checkpoint or this client's
    witness, or verified with an older roster; the head is then recorded in the witness.

    One verification (the engine's, incremental): the anchors are read first, then the ledger.
    """
    return verified_and_anchored(
        engine.verified, engine.ledger, registry=engine.registry, trust=ws.trust_store()
    )


def anchors_to_dict(ws: Workspace, report: AnchorReport) -> dict[str, Any]:
    """The anchors with the root pin, for ``--json``."""
    return {**report.to_dict(), "root_pin": ws.root_pin().to_dict()}


def print_anchors(ws: Workspace, report: AnchorReport) -> None:
    """One line on the trust anchor and checkpoint, then any warning."""
    pin = ws.root_pin()
    checkpoint = "none" if report.checkpoint is None else f"#{report.checkpoint.seq}"
    console.print(
        f"root key {pin.fingerprint} (pinned by {pin.source}); newest checkpoint {checkpoint}; "
        f"roster serial {report.roster_serial}",
        markup=False,
    )
    for warning in report.warnings:
        console.print(styled("[yellow]warning[/]: {}", warning))


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The hash-chained decision ledger.", no_args_is_help=True)

    @group.command("verify")
    def verify(
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Check the chain, every signature and role, the newest checkpoint and this client's
        witness; print the first problem."""
        ws = open_workspace(workspace)
        roster = ws.roster()
        registry = ws.registry(roster=roster)
        anchors = read_anchors(registry=registry, roster=roster, trust=ws.trust_store())
        with closing(ws.ledger()) as ledger:  # read after the anchors: see core.decisions.anchors
            entries = ledger.entries()
        report = verify_ledger(entries, roster, ws.policy().decisions)
        anchored: AnchorReport | None = None
        refusal: KfmError | None = None
        if report.ok:
            try:
                anchored = check_anchors(report.state, anchors, roster=roster)
            except KfmError as error:
                refusal = error
            else:
                remember_verified(ws.trust_store(), anchored)
        ok = report.ok and anchored is not None and anchored.ok
        if as_json:
            print_json(
                {
                    **report.to_dict(),
                    "ok": ok,
                    "anchors": None if anchored is None else anchors_to_dict(ws, anchored),
                    "refused": None if refusal is None else refusal.to_dict(),
                }
            )
        elif report.broken is not None:
            b = report.broken
            console.print(
                styled(
                    "[red]ledger broken at entry {}[/] (field {}): {}", b.seq, b.field, b.message
                )
            )
            console.print(f"{report.checked} entries before it verified")
        elif refusal is not None:
            console.print(styled("[red]ledger refused[/]: {}", refusal.diagnostics()))
        elif anchored is not None:
            console.print(
                styled(
                    "[green]ledger verified[/]: {} entries, chain intact, every signature, role, "
                    "anchor and decision rule valid (head #{} {}…), consistent with the newest "
                    "checkpoint and with what this client saw before",
                    report.entries,
                    report.state.head_seq,
                    report.state.head_hash[:16],
                )
            )
            print_anchors(ws, anchored)
        raise typer.Exit(0 if ok else 1)

    @group.command("checkpoint")
    def checkpoint(
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Verify the ledger, then sign its head with the pipeline key into the registry.

        Run it after decisions by people when no service holding the pipeline key does.
        """
        ws = open_workspace(workspace)
        with build_engine(ws, with_pipeline=True) as engine:
            state, anchored = anchored_state(ws, engine)
            written = write_checkpoint(
                state,
                engine.registry,
                engine._require_pipeline(),
                engine.roster,
                newest=anchored.checkpoint,
            )
        remember_verified(ws.trust_store(), anchored, checkpoint=written)
        if as_json:
            print_json({"checkpoint": written.to_dict(), "warnings": list(anchored.warnings)})
            return
        console.print(
            f"checkpoint #{written.seq} ({written.checkpoint.entry_hash[:16]}…) signed by "
            f"{written.signer}: {written.source}",
            markup=False,
        )
        for warning in anchored.warnings:
            console.print(styled("[yellow]warning[/]: {}", warning))

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
