"""A person's decisions and the channel: ``kfm approve | veto | request-rollback | waive |
resolve`` and ``kfm status [--at TIME]``.

Decisions need only the reviewer's own key: the promotion or rollback a decision causes is
derived by the verified replay, never signed by the reviewer's process. Each command verifies
the ledger once and checks the verified state against the newest checkpoint and this client's
witness (:func:`core.cli.ledger.anchored_state`) before it shows or signs anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from core.cli._output import console, print_json
from core.cli.ledger import anchored_state, anchors_to_dict, print_anchors
from core.cli.workspace import (
    PASSPHRASE_ENV_HELP,
    build_engine,
    open_workspace,
    read_passphrase,
    workspace_option,
)
from core.decisions.reviewer import check_reason, submit_decision
from core.errors import LedgerError
from core.registry.versions import check_version
from core.signing.keys import load_signer


def parse_at(value: str | None) -> datetime | None:
    """``--at`` as an aware datetime (naive input is taken as UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise LedgerError(
            "invalid time",
            field="--at",
            expected="ISO 8601, e.g. 2026-11-01T12:00:00Z",
            found=value,
        ) from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _decide(
    kind: str,
    version: str,
    actor: str,
    key: Path,
    reason: str,
    role: str | None,
    passphrase_env: str | None,
    workspace: Path | None,
    as_json: bool,
    gate: str | None = None,
) -> None:
    ws = open_workspace(workspace)
    with build_engine(ws, with_pipeline=False) as engine:
        anchored_state(ws, engine)  # never sign onto a ledger cut back behind its anchors
        entry = engine.roster.entry(actor)
        if entry is None:
            engine.roster.authorize(actor, role or "council", engine.now())  # raises, names ids
            return
        chosen = role or next((r for r in entry.roles if r != "pipeline"), entry.roles[0])
        check_version(version, source="VERSION")
        check_reason(reason, field="--reason")
        passphrase = read_passphrase(passphrase_env, f"passphrase of {key}")
        signer = load_signer(key, passphrase, key_id=actor)
        outcome = submit_decision(
            engine, kind, version, signer, role=chosen, reason=reason, gate=gate
        )
    if as_json:
        print_json(outcome.to_dict())
        return
    for line in outcome.lines():
        console.print(line, markup=False)


def _decision_command(kind: str, help_text: str, *, with_gate: bool = False) -> Callable[..., None]:
    def command(
        version: str = typer.Argument(..., help="Registry version."),
        actor: str = typer.Option(..., "--as", help="Your roster id."),
        key: Path = typer.Option(..., "--key", help="Your private key (PEM)."),
        reason: str = typer.Option(..., "--reason", help="Why (kept in the signed record)."),
        role: str | None = typer.Option(
            None, "--role", help="Role to act in (default: your first)."
        ),
        passphrase_env: str | None = typer.Option(
            None, "--passphrase-env", help=PASSPHRASE_ENV_HELP
        ),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        _decide(kind, version, actor, key, reason, role, passphrase_env, workspace, as_json)

    def waive(
        version: str = typer.Argument(..., help="Registry version."),
        gate: str = typer.Option(..., "--gate", help="The failing gate to waive (e.g. impact)."),
        actor: str = typer.Option(..., "--as", help="Your roster id."),
        key: Path = typer.Option(..., "--key", help="Your private key (PEM)."),
        reason: str = typer.Option(..., "--reason", help="Why (kept in the signed record)."),
        passphrase_env: str | None = typer.Option(
            None, "--passphrase-env", help=PASSPHRASE_ENV_HELP
        ),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        _decide(
            kind, version, actor, key, reason, "council", passphrase_env, workspace, as_json, gate
        )

    chosen = waive if with_gate else command
    chosen.__doc__ = help_text
    return chosen


def register(app: typer.Typer) -> None:
    for kind, help_text in (
        ("approve", "Append your signed approval; the version is promoted once the rules are met."),
        ("veto", "Append your signed veto; blocks a pending version or rolls back production."),
        ("request-rollback", "Ask for a rollback of the production version (signed)."),
        (
            "resolve",
            "Close a version's open monitoring breaches (working group, signed; reason required).",
        ),
    ):
        app.command(kind)(_decision_command(kind, help_text))
    app.command("waive")(
        _decision_command(
            "waive",
            "Waive a failing gate of a version (council, signed); a quorum of waivers lets it "
            "be promoted.",
            with_gate=True,
        )
    )

    @app.command("status")
    def status(
        at: str | None = typer.Option(
            None, "--at", help="Show the channel as it was then (ISO time)."
        ),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """The channel (production, staging, every version's state) from the verified ledger."""
        ws = open_workspace(workspace)
        when = parse_at(at)
        with build_engine(ws, with_pipeline=False) as engine:
            state, anchors = anchored_state(ws, engine)  # the one verification
            if when is not None:
                state = engine.verified.at(when)
        if as_json:
            print_json({**state.to_dict(), "anchors": anchors_to_dict(ws, anchors)})
            return
        said_at = f" at {state.at}" if state.at else ""
        console.print(
            f"production {state.production or '-'}   staging {state.staging or '-'}"
            f"   (verified to ledger entry #{state.head_seq}{said_at})",
            markup=False,
        )
        print_anchors(ws, anchors)
        table = Table()
        for column in ("version", "state", "approvals", "vetoes", "waivers", "still needed"):
            table.add_column(column, overflow="fold")
        for version, s in state.versions.items():
            table.add_row(
                *(
                    escape(text)
                    for text in (
                        version,
                        s.state.replace("_", " "),
                        ", ".join(f"{v.actor} ({v.role})" for v in s.approvals),
                        ", ".join(f"{v.actor} ({v.role})" for v in s.vetoes),
                        ", ".join(f"{w.actor} ({w.gate})" for w in s.waivers),
                        "; ".join(s.missing),
                    )
                )
            )
        console.print(table)
        if state.events:
            console.print("channel history (derived from the verified ledger):")
            for event in state.events[-10:]:
                console.print(f"  #{event.seq} {event.recorded_at}: {event.said}", markup=False)
