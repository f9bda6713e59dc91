"""``kfm registry list|show|verify|fsck`` on the workspace's registry."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from core.cli._output import console, print_json, styled
from core.cli.workspace import open_workspace, workspace_option


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The model registry: immutable versions.", no_args_is_help=True)

    @group.command("list")
    def list_versions(
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List committed versions (half-written versions never appear)."""
        registry = open_workspace(workspace).registry()
        versions = registry.list()
        if as_json:
            print_json({"registry": registry.location, "versions": versions})
            return
        for version in versions:
            console.print(version)
        if not versions:
            console.print(f"no versions in {registry.location}")

    @group.command("show")
    def show(
        version: str = typer.Argument(..., help="Version."),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Show a version's record: submitter, stewards, files and digests."""
        record = open_workspace(workspace).registry().show(version)
        if as_json:
            data = record.model_dump(mode="json")
            data["subject"] = record.subject.model_dump()
            print_json(data)
            return
        console.print(f"version {record.version} of {record.name}, pushed {record.pushed_at}")
        console.print(
            f"submitter {record.submitter}; stewards {', '.join(record.concerned_stewards) or '-'}"
        )
        table = Table()
        for column in ("file", "bytes", "sha256"):
            table.add_column(column, overflow="fold")
        for f in record.manifest.files:
            table.add_row(f.name, str(f.size), f.sha256)
        console.print(table)

    @group.command("verify")
    def verify(
        version: str = typer.Argument(..., help="Version."),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Re-hash every stored file against the version record; exit 1 on any difference."""
        report = open_workspace(workspace).registry().verify(version)
        if as_json:
            print_json(
                {
                    "version": version,
                    "ok": report.ok,
                    "checked": report.checked,
                    "problems": list(report.problems),
                }
            )
        else:
            for problem in report.problems:
                console.print(styled("[red]FAIL[/] {}", problem))
            if report.ok:
                console.print(styled("[green]{}: {} files verified[/]", version, report.checked))
        raise typer.Exit(0 if report.ok else 1)

    @group.command("fsck")
    def fsck(
        workspace: Path | None = workspace_option(),
        dry_run: bool = typer.Option(False, "--dry-run", help="Report without removing."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Remove files of uncommitted (interrupted) pushes; report damaged versions."""
        report = open_workspace(workspace).registry().fsck(dry_run=dry_run)
        if as_json:
            print_json(report.model_dump(mode="json"))
        else:
            verb = "would remove" if dry_run else "removed"
            console.print(
                f"uncommitted leftovers: {', '.join(report.leftovers) or 'none'} "
                f"({verb} {report.removed_objects} objects)"
            )
            console.print(
                f"temporary files of cut-off writes: {len(report.temporary_files)} ({verb} them)"
            )
            for version in report.damaged:
                console.print(styled("[red]damaged[/] {}: files missing", version))
        raise typer.Exit(0 if not report.damaged else 1)

    app.add_typer(group, name="registry")
