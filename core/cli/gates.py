"""``kfm gates run``: evaluate every promotion gate of the policy on a candidate."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from core.cli._output import console, err_console, print_json, styled

STATUS_STYLE = {
    "pass": styled("[green]pass[/]"),
    "fail": styled("[red]FAIL[/]"),
    "error": styled("[bold red]ERROR[/]"),
}


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Validation and promotion gates (thresholds from the policy file).",
        no_args_is_help=True,
    )

    @group.command("run")
    def run(
        directory: Path = typer.Argument(..., help="Candidate directory."),
        policy: Path | None = typer.Option(
            None, "--policy", help="Policy file (default: governance/policy.toml)."
        ),
        regions: Path | None = typer.Option(
            None, "--regions", help="Steward regions (GeoJSON or GeoPackage)."
        ),
        scheduler: str | None = typer.Option(
            None, "--scheduler", help="dask.distributed scheduler address (default: local threads)."
        ),
        out: Path | None = typer.Option(
            None, "--out", help="Where to write gates.json (default: DIR/gates.json)."
        ),
        chunk_times: int | None = typer.Option(
            None,
            "--chunk-times",
            min=1,
            help="Time steps per chunk (default: ~1M samples per chunk).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Run the gates; exit 0 when every gate passes, 1 when promotion is blocked."""
        from core.candidate.load import load_candidate
        from core.gates import run_gates, write_report
        from core.policy import load_policy

        loaded_policy = load_policy(policy)
        candidate = load_candidate(directory)
        region_set = None
        if regions is not None:
            from core.sovereignty.regions import load_regions

            region_set = load_regions(regions)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                key = "gates" if stage.startswith("gate") else stage
                if key not in tasks:
                    tasks[key] = bar.add_task(stage, total=total)
                bar.update(tasks[key], completed=done, total=total, description=stage)

            report = run_gates(
                candidate,
                loaded_policy,
                regions=region_set,
                scheduler=scheduler,
                chunk_times=chunk_times,
                progress=progress,
            )
        target = out or Path(directory) / "gates.json"
        write_report(report, target)
        if as_json:
            print_json(report.to_dict())
        else:
            table = Table(
                title=f"gates: {report.model} {report.version} (policy {report.policy_version})"
            )
            table.add_column("gate")
            table.add_column("status")
            table.add_column("measured", overflow="fold")
            table.add_column("against threshold", overflow="fold")
            for r in report.results:
                shown = dict.fromkeys(c.metric for c in r.checks)
                measured = ", ".join(f"{m}={_show(r.measured[m])}" for m in shown) or str(
                    (r.error or {}).get("message", "")
                )
                detail = (
                    "; ".join(r.failures) if not r.passed else ("; ".join(r.notes) or "all within")
                )
                table.add_row(r.id, STATUS_STYLE[r.status], measured, detail)
            console.print(table)
            if report.passed:
                console.print(
                    styled(
                        "[green]all {} gates pass: promotable[/] (report: {})",
                        len(report.results),
                        target,
                    )
                )
            else:
                console.print(
                    styled("[red]promotion blocked by {} gate(s):[/]", len(report.blocking))
                )
                for r in report.blocking:
                    for line in r.failures:
                        console.print(styled("  [red]{}[/] ({}): {}", r.id, r.status, line))
                console.print(f"report: {target}")
        raise typer.Exit(0 if report.passed else 1)

    app.add_typer(group, name="gates")


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
