"""``kfm approve``, ``kfm veto``, ``kfm request-rollback`` and ``kfm status [--at TIME]``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from core.cli._output import console, print_json
from core.cli.ledger import anchors_to_dict, check_ledger_anchors, print_anchors
from core.cli.workspace import (
    PASSPHRASE_ENV_HELP,
    open_workspace,
    pipeline_passphrase,
    read_passphrase,
    workspace_option,
)
from core.decisions.engine import DecisionEngine
from core.decisions.reviewer import check_reason, submit_decision
from core.errors import LedgerError
from core.registry.versions import check_version
from core.signing.keys import load_signer
from core.workspace import Workspace


def build_engine(ws: Workspace, *, with_pipeline: bool) -> DecisionEngine:
    """The decision engine over the workspace's ledger, registry, roster and policy."""
    return ws.decision_engine(pipeline_passphrase(ws) if with_pipeline else None)


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
) -> None:
    ws = open_workspace(workspace)
    with build_engine(ws, with_pipeline=True) as engine:
        entry = engine.roster.entry(actor)
        if entry is None:
            engine.roster.authorize(actor, role or "council", engine.now())  # raises, names ids
            return
        chosen = role or next((r for r in entry.roles if r != "pipeline"), entry.roles[0])
        check_version(version, source="VERSION")
        check_reason(reason, field="--reason")
        passphrase = read_passphrase(passphrase_env, f"passphrase of {key}")
        signer = load_signer(key, passphrase, key_id=actor)
        appended = submit_decision(engine, kind, version, signer, role=chosen, reason=reason)
    if as_json:
        print_json({"appended": [e.to_dict() for e in appended]})
        return
    for e in appended:
        console.print(
            f"appended #{e.seq}: {e.kind} {e.version} by {e.actor} ({e.role})"
            + (f" → {e.target_version}" if e.target_version else "")
        )


def _decision_command(kind: str, help_text: str) -> Callable[..., None]:
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

    command.__doc__ = help_text
    return command


def register(app: typer.Typer) -> None:
    for kind, help_text in (
        ("approve", "Append your signed approval; promotes at once when the rules are met."),
        ("veto", "Append your signed veto; blocks a pending version or rolls back production."),
        ("request-rollback", "Ask for a rollback of the production version (signed)."),
    ):
        app.command(kind)(_decision_command(kind, help_text))

    @app.command("status")
    def status(
        at: str | None = typer.Option(
            None, "--at", help="Show the channel as it was then (ISO time)."
        ),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """The channel (production, staging, every version's state), replayed from the ledger."""
        ws = open_workspace(workspace)
        with build_engine(ws, with_pipeline=False) as engine:
            anchors = check_ledger_anchors(ws, engine.roster, engine.ledger)
            state = engine.state(at=parse_at(at))
        if as_json:
            print_json({**state.to_dict(), "anchors": anchors_to_dict(ws, anchors)})
            return
        when = f" at {state.at}" if state.at else ""
        console.print(
            f"production {state.production or '-'}   staging {state.staging or '-'}"
            f"   (ledger entry {state.head_seq}{when})"
        )
        print_anchors(ws, anchors)
        table = Table()
        for column in ("version", "state", "approvals", "vetoes", "still needed"):
            table.add_column(column, overflow="fold")
        for version, s in state.versions.items():
            table.add_row(
                version,
                s.state.replace("_", " "),
                ", ".join(f"{v.actor} ({v.role})" for v in s.approvals),
                ", ".join(f"{v.actor} ({v.role})" for v in s.vetoes),
                "; ".join(s.missing),
            )
        console.print(table)
