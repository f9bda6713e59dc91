"""``kfm trust pin|show``: which governance root key this client trusts for a workspace.

The pin lives outside the workspace (:mod:`core.decisions.trust`): in ``KFM_ROOT_FINGERPRINT``
for servers and CI, else in ``<kfm home>/trust.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from core.cli._output import console, print_json, styled
from core.cli.workspace import resolve, trust_store, workspace_option
from core.decisions.trust import ROOT_FINGERPRINT_ENV, check_fingerprint
from core.errors import KfmError
from core.workspace import CONFIG_NAME, Workspace


def _workspace_fingerprint(root: Path) -> str | None:
    """Fingerprint of the workspace's root public key, or ``None`` when there is no workspace."""
    if not (root / CONFIG_NAME).is_file():
        return None
    try:
        return Workspace.open(root).root_fingerprint()
    except KfmError:
        return None


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Pin the governance root key a workspace must have (kept outside the workspace).",
        no_args_is_help=True,
    )

    @group.command("pin")
    def pin(
        fingerprint: str = typer.Argument(
            ..., help="SHA-256 fingerprint of the root public key, from its holder."
        ),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Trust the root key with FINGERPRINT for the workspace (check it with its holder)."""
        fingerprint = check_fingerprint(fingerprint)
        root = resolve(workspace).resolve()
        trust = trust_store()
        previous = trust.pin(root, fingerprint)
        found = _workspace_fingerprint(root)
        if as_json:
            print_json(
                {
                    "workspace": str(root),
                    "fingerprint": fingerprint,
                    "pinned_in": str(trust.trust_file),
                    "replaced": previous,
                    "workspace_root_key": found,
                    "matches": found == fingerprint,
                }
            )
            return
        console.print(f"pinned root key {fingerprint} for {root}", markup=False)
        console.print(f"  in {trust.trust_file}", markup=False)
        if previous not in (None, fingerprint):
            console.print(f"  (replaces the earlier pin {previous})", markup=False)
        if found is not None and found != fingerprint:
            console.print(
                styled(
                    "[yellow]warning[/]: the workspace's keys/root.pub has fingerprint {}: "
                    "commands will refuse it until it is the pinned key",
                    found,
                )
            )
        if trust.env_fingerprint not in (None, fingerprint):
            console.print(
                styled("[yellow]note[/]: ${} is set and overrides this pin", ROOT_FINGERPRINT_ENV)
            )

    @group.command("show")
    def show(
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Where pins are read from, the workspace's pin and root key, and the witness."""
        root = resolve(workspace).resolve()
        trust = trust_store()
        pin = trust.pin_for(root)
        found = _workspace_fingerprint(root)
        witness = trust.witness(pin.fingerprint) if pin is not None else None
        data: dict[str, Any] = {
            "trust_home": str(trust.home),
            "trust_file": str(trust.trust_file),
            "environment_pin": trust.env_fingerprint,
            "workspace": str(root),
            "workspace_root_key": found,
            "pin": None if pin is None else pin.to_dict(),
            "matches": pin is not None and pin.fingerprint == found,
            "witness": None if witness is None else witness.model_dump(mode="json"),
        }
        if as_json:
            print_json(data)
            return
        console.print(f"trust home   {trust.home}", markup=False)
        console.print(f"workspace    {root}", markup=False)
        console.print(f"root key     {found or 'no workspace here'}", markup=False)
        if pin is None:
            hint = f"; pin it: kfm trust pin {found} --workspace {root}" if found else ""
            console.print(f"pin          none{hint}", markup=False)
        else:
            verdict = "matches" if pin.fingerprint == found else "DOES NOT MATCH the root key"
            console.print(f"pin          {pin.fingerprint} ({pin.source}): {verdict}", markup=False)
        if witness is not None:
            console.print(
                f"witness      ledger #{witness.seq} {witness.entry_hash[:16]}…, checkpoint "
                f"#{witness.checkpoint_seq}, roster serial {witness.roster_serial} "
                f"(updated {witness.updated_at.isoformat()})",
                markup=False,
            )

    app.add_typer(group, name="trust")
