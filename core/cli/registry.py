"""``kfm registry list|show|verify|fsck`` on the workspace's registry.

Every record shown or checked is verified against the pipeline key of the workspace's trusted
roster first (:class:`core.registry.versions.Registry`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from core.cli._output import console, print_json, styled
from core.cli.ledger import anchored_state
from core.cli.workspace import build_engine, open_workspace, workspace_option
from core.errors import RegistryError


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
        """Show a version's signed record: submitter, stewards, footprint, files and digests."""
        record = open_workspace(workspace).registry().show(version)
        if as_json:
            data = record.model_dump(mode="json")
            data["subject"] = record.subject.model_dump()
            print_json(data)
            return
        console.print(
            f"version {record.version} of {record.name} ({record.model_family}), "
            f"pushed {record.pushed_at}; record signed by the pipeline key"
        )
        console.print(
            f"submitter {record.submitter}; stewards {', '.join(record.concerned_stewards) or '-'}"
        )
        west, south, east, north = record.footprint
        console.print(f"footprint [{west:g}, {south:g}, {east:g}, {north:g}] (validation grid)")
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
        """Verify the record's signature and re-hash every stored file; exit 1 on any problem."""
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
        register_missing: bool = typer.Option(
            False,
            "--register",
            help="Append the ledger records of versions a cut-off deploy left unregistered "
            "(needs the pipeline key's passphrase).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Remove files of uncommitted (interrupted) pushes; report damaged or unsigned versions
        and versions no ledger record registers; write the files of rollbacks that lack them.

        Exit 1 when a committed version is damaged, its record does not verify, or it is not
        registered in the ledger (after --register: not registered still)."""
        # lazy: the pipeline loads the gates and describe stages (CLI start-up time)
        from core.pipeline import complete_registration, unregistered_versions

        if dry_run and register_missing:
            raise RegistryError(
                "--dry-run changes nothing; --register appends ledger records",
                field="--dry-run/--register",
                expected="one of them",
                found="both",
            )
        ws = open_workspace(workspace)
        with build_engine(ws, with_pipeline=False) as engine:
            report = engine.registry.fsck(dry_run=dry_run)
            anchored_state(ws, engine)  # the verified ledger, consistent with its anchors
            unregistered = unregistered_versions(engine)
            rollback_files = (
                engine.missing_rollback_files()
                if dry_run
                else engine.write_missing_rollback_files()
            )
        healed: list[str] = []
        if register_missing and unregistered:
            with build_engine(ws, with_pipeline=True) as engine:
                for version in unregistered:
                    complete_registration(engine, version)
                    healed.append(version)
        still = [v for v in unregistered if v not in healed]
        if as_json:
            print_json(
                {
                    **report.model_dump(mode="json"),
                    "unregistered": still,
                    "registered_now": healed,
                    "rollback_files": rollback_files,
                }
            )
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
            for problem in report.unverified:
                console.print(styled("[red]record does not verify[/] {}", problem))
            verb_files = "would write" if dry_run else "wrote"
            for key in rollback_files:
                console.print(f"rollback file missing: {verb_files} {key}", markup=False)
            for version in healed:
                console.print(
                    styled("[green]registered[/] {}: ledger records of its cut-off deploy", version)
                )
            for version in still:
                console.print(
                    styled(
                        "[red]not registered in the ledger[/] {}: a deploy cut off after its push, "
                        "or a truncated ledger; `kfm registry fsck --register` completes a cut-off "
                        "deploy",
                        version,
                    )
                )
        raise typer.Exit(0 if not (report.damaged or report.unverified or still) else 1)

    app.add_typer(group, name="registry")
