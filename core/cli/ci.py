"""``kfm ci DIR`` / ``kfm ci --version V``: every CI validation check of the specification."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from core.cli._output import console, err_console, print_json, styled
from core.cli.workspace import open_workspace, workspace_option


def register(app: typer.Typer) -> None:
    @app.command("ci")
    def ci(
        directory: Path | None = typer.Argument(
            None, help="Candidate directory (or --version for a registry version)."
        ),
        version: str | None = typer.Option(
            None,
            "--version",
            help="Check this registry version of the workspace instead of a candidate.",
        ),
        workspace: Path | None = workspace_option(),
        standards: Path | None = typer.Option(
            None,
            "--standards",
            help="Override the standard schemas shipped with the package (STAC extensions, "
            "MLM, PROV-JSON) with a folder laid out like core/resources/standards "
            "(default: the packaged ones).",
        ),
        policy_file: Path | None = typer.Option(
            None, "--policy", help="Policy file (default: governance/policy.toml)."
        ),
        regions_file: Path | None = typer.Option(
            None, "--regions", help="Steward regions (default: governance/regions.geojson)."
        ),
        tolerance: float = typer.Option(
            1e-4,
            "--inference-tolerance",
            min=0.0,
            help="Largest |difference| of outputs across thread counts (target units).",
        ),
        junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Run every CI check on a candidate or a registry version; exit 0 only when all hold."""
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from core.ci import CiOptions, run_ci_candidate
        from core.ci.report import CiError
        from core.ci.run import DEFAULT_REGIONS_PATH
        from core.ci.version import run_ci_version
        from core.policy import DEFAULT_POLICY_PATH

        if (directory is None) == (version is None):
            raise CiError(
                "give a candidate directory or --version, not both",
                field="DIRECTORY / --version",
                expected="exactly one",
                found="both" if directory is not None else "neither",
            )
        policy_default, regions_default = DEFAULT_POLICY_PATH, DEFAULT_REGIONS_PATH
        ws = None
        if version is not None:  # a version is checked against its workspace's policy, regions
            ws = open_workspace(workspace)
            policy_default = ws.path(ws.config.policy)
            regions_default = ws.regions_path
        options = CiOptions(
            policy_path=policy_file or policy_default,
            regions_path=regions_file or regions_default,
            standards=standards,
            inference_tolerance=tolerance,
        )
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as progress:
            task = progress.add_task("kfm ci", total=None)

            def say(step: str) -> None:
                progress.update(task, description=step)

            if ws is not None and version is not None:
                report = run_ci_version(ws.registry(), version, options, progress=say)
            else:
                assert directory is not None
                report = run_ci_candidate(directory, options, progress=say)
        if junit is not None:
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.write_text(report.junit_xml(), encoding="utf-8")
        if as_json:
            print_json(report.to_dict())
        else:
            table = Table(title=f"kfm ci {report.target}", show_lines=True)
            for column in ("check", "result", "measured", "why it failed"):
                table.add_column(column, overflow="fold")
            for check in report.checks:
                why = "\n".join(str(f) for f in check.failures[:8])
                if len(check.failures) > 8:
                    why += f"\n... and {len(check.failures) - 8} more"
                notes = "\n".join(f"note: {n}" for n in check.notes)
                table.add_row(
                    f"{check.id}\n{check.title}",
                    styled("[green]pass[/]") if check.passed else styled("[red]FAIL[/]"),
                    f"{check.measured} ({check.seconds:.1f} s)",
                    "\n".join(t for t in (why, notes) if t) or "-",
                )
            console.print(table)
            if report.passed:
                console.print(styled("[green]all {} checks passed[/]", len(report.checks)))
            else:
                failed = ", ".join(c.id for c in report.failed)
                console.print(
                    styled("[red]CI BLOCKED: {} check(s) failed[/]: {}", len(report.failed), failed)
                )
            if junit is not None:
                console.print(f"wrote {junit}")
        raise typer.Exit(0 if report.passed else 1)
