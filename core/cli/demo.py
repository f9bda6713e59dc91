"""``kfm demo``: the main job — build a complete demo workspace, then serve the dashboard on it.

The building is :func:`core.demo.build.build_demo`; this module shows its progress, prints who is who
(with the demo-only passphrases) and runs Streamlit on loopback unless ``--no-serve``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.cli._output import console, err_console, print_json, styled
from core.cli.workspace import trust_store
from core.demo.build import (
    APP_ENTRY,
    DEMO_STEPS,
    DemoError,
    DemoInfo,
    build_demo,
    check_target,
    dashboard_command,
    dashboard_env,
    load_demo,
    read_demo_marker,
)


def _build_with_progress(
    workspace: Path, fresh: bool, candidate: Path | None, quiet: bool
) -> DemoInfo:
    trust = trust_store()
    if quiet:
        return build_demo(workspace, trust=trust, fresh=fresh, candidate_source=candidate)
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("starting", total=len(DEMO_STEPS))
        started: list[str] = []

        def progress(message: str) -> None:
            if message in DEMO_STEPS:
                if started:
                    bar.advance(task)
                    err_console.print(styled("[green]✓[/] {}", started[-1]))
                started.append(message)
            bar.update(task, description=message)

        info = build_demo(
            workspace, trust=trust, progress=progress, fresh=fresh, candidate_source=candidate
        )
        bar.update(task, completed=len(DEMO_STEPS), description="done")
        err_console.print(styled("[green]✓[/] {}", started[-1]))
    return info


def _print_summary(info: DemoInfo) -> None:
    console.print(styled("[green]demo workspace ready:[/] {}", info.workspace))
    console.print(
        styled(
            "version {} is [bold]{}[/]: submitted by {}, approved by {}; "
            "{} ledger entries, verified",
            info.version,
            info.state.replace("_", " "),
            info.submitter,
            ", ".join(info.approved_by) or "-",
            info.ledger_entries,
        )
    )
    console.print("still needed: " + "; ".join(info.missing))
    table = Table(title="Keys: keys/<id>.key in the workspace; passphrases for this demo ONLY")
    for column in ("id", "roles", "passphrase"):
        table.add_column(column, no_wrap=True)
    for p in info.people:
        table.add_row(p.id, ", ".join(p.roles) or "root", p.passphrase)
    console.print(table)
    console.print(f"passphrases also in (DEMO ONLY): {info.passphrases_file}")
    console.print(
        f"approve from the CLI, e.g.: kfm approve {info.version} --workspace {info.workspace} "
        f"--as bruno --key {info.workspace / 'keys' / 'bruno.key'} --reason '...'"
    )


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        workspace: Path = typer.Option(
            Path("demo"), "--workspace", "-w", help="Folder for the demo workspace."
        ),
        no_serve: bool = typer.Option(
            False, "--no-serve", help="Build only; print the dashboard command instead."
        ),
        port: int = typer.Option(8501, "--port", help="Dashboard port (loopback only)."),
        fresh: bool = typer.Option(
            False, "--fresh", help="Rebuild an existing demo workspace from scratch."
        ),
        candidate: Path | None = typer.Option(
            None,
            "--candidate",
            help="Use this already-built candidate (copied) instead of building the reference.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print what was built as JSON."),
    ) -> None:
        """Build the reference candidate, a workspace, a signed roster, a deploy and a first
        approval; then serve the dashboard on it."""
        if not 0 < port < 65536:
            raise DemoError("invalid port", field="--port", expected="1-65535", found=port)
        target = Path(os.path.abspath(workspace))
        if not fresh and not no_serve and read_demo_marker(target) is not None:
            # Running the main job again serves the demo as it was left (decisions included).
            info = load_demo(target)
            console.print(
                f"a demo workspace exists at {target}; serving it as it is, with every decision "
                f"made since (`kfm demo --fresh` rebuilds it). Demo-only passphrases: "
                f"{info.passphrases_file}"
            )
        else:
            check_target(target, fresh=fresh)  # before any progress
            info = _build_with_progress(workspace, fresh, candidate, quiet=as_json)
            if as_json:
                print_json({**info.to_dict(), "workspace": str(info.workspace)})
            else:
                _print_summary(info)
        command = dashboard_command(port)
        project = APP_ENTRY.parent.parent
        if no_serve:
            if not as_json:
                console.print(
                    f"dashboard (not started): cd {project} && KFM_WORKSPACE={info.workspace} "
                    f"KFM_PIPELINE_PASSPHRASE={info.person('pipeline').passphrase} "
                    + " ".join(command)
                )
            return
        if not APP_ENTRY.is_file():
            raise DemoError(
                "the demo is built, but the dashboard is not installed",
                file=str(APP_ENTRY),
                expected="the Streamlit entry app/streamlit_app.py",
                found="missing",
                hint="rerun with --no-serve, or run the dashboard from a full checkout",
            )
        console.print(f"serving the dashboard on http://127.0.0.1:{port} (Ctrl+C to stop)")
        result = subprocess.run(command, cwd=project, env=dashboard_env(info, os.environ))
        raise typer.Exit(result.returncode)
