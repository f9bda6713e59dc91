"""``kfm deploy DIR``: the whole pipeline into the workspace's registry and ledger."""

from __future__ import annotations

from pathlib import Path

import typer

from core.cli._output import console, err_console, print_json, styled
from core.cli.workspace import build_engine, open_workspace, workspace_option


def register(app: typer.Typer) -> None:
    @app.command("deploy")
    def deploy(
        directory: Path = typer.Argument(..., help="Candidate directory."),
        submitter: str = typer.Option(..., "--as", help="Roster id of the submitter."),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    ) -> None:
        """load → gates → sign → sovereignty → describe → push → signed gates-attested/registered.

        Exit 1 when a gate blocks (nothing is pushed or recorded)."""
        from core.pipeline import deploy_candidate

        ws = open_workspace(workspace)
        with build_engine(ws, with_pipeline=True) as engine:
            outcome = deploy_candidate(
                directory,
                engine=engine,
                policy=ws.policy(),
                regions_path=ws.regions_path,
                submitter=submitter,
                progress=None if as_json else (lambda stage: err_console.print(f"· {stage}")),
            )
        if as_json:
            print_json(outcome.to_dict())
        elif outcome.blocked:
            blocking = ", ".join(outcome.gates.get("blocking_gates", []))
            console.print(
                styled("[red]blocked by gates[/]: {}; nothing pushed or recorded", blocking)
            )
        else:
            console.print(
                styled(
                    "[green]deployed {}[/] to {}; ledger entries {}; awaiting decisions "
                    "from council and stewards {}",
                    outcome.version,
                    engine.registry.location,
                    [e.seq for e in outcome.entries],
                    ", ".join(outcome.concerned_stewards) or "-",
                )
            )
        raise typer.Exit(1 if outcome.blocked else 0)
