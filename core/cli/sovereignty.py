"""``kfm screen``: run a candidate's model and screen its outputs against steward regions."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from core.cli._output import console, print_json, styled
from core.policy import DEFAULT_POLICY_PATH, ScreeningPolicy, load_policy
from core.sovereignty.regions import load_regions
from core.sovereignty.screen import DEFAULT_RESOLUTION_DEG


def register(app: typer.Typer) -> None:
    @app.command("screen")
    def screen(
        directory: Path = typer.Argument(..., help="Candidate directory."),
        regions_file: Path = typer.Option(..., "--regions", help="Regions GeoJSON or GeoPackage."),
        out: Path = typer.Option(..., "--out", help="Folder for published.geojson, report.json..."),
        policy_file: Path | None = typer.Option(
            None, "--policy", help="Policy file ([screening])."
        ),
        resolution_deg: float = typer.Option(
            DEFAULT_RESOLUTION_DEG,
            "--resolution-deg",
            help="Target grid step inside regions, degrees (0.05 is about 5 km).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Screen the model's outputs over its validation period: H3 inside regions, native outside."""
        from core.candidate.load import load_candidate
        from core.sovereignty.generalize import screen_report
        from core.sovereignty.screen import screen_candidate

        if policy_file is not None or DEFAULT_POLICY_PATH.exists():
            policy = load_policy(policy_file).screening
        else:
            policy = ScreeningPolicy()
        regions = load_regions(regions_file)
        candidate = load_candidate(directory)
        family = candidate.metadata.model_family
        with console.status("running the model on the native grid and inside the regions..."):
            screened = screen_candidate(candidate, regions, policy, resolution_deg=resolution_deg)
        screened.write(out)
        result, conflicts = screened.result, screened.conflicts
        conflict_path = out / "sovereignty_conflict.json" if conflicts else None
        report = screen_report(result)
        report["conflicts"] = [c.model_dump(mode="json") for c in conflicts]
        if as_json:
            print_json(report)
        else:
            table = Table(title=f"sovereignty screen of {family} ({result.time_steps} time steps)")
            for column in (
                "region",
                "steward",
                "tier",
                "res",
                "published",
                "suppressed",
                "withheld samples",
            ):
                table.add_column(column, overflow="fold")
            for r in report["regions"]:
                table.add_row(
                    r["region_id"],
                    r["steward_id"],
                    r["tier"],
                    str(r["resolution"] or "-"),
                    str(r["cells_published"]),
                    str(r["cells_suppressed"]),
                    str(r["samples_withheld"]),
                )
            console.print(table)
            outside = report["outside_regions"]
            console.print(f"outside regions: {outside['points_published']} native points published")
            console.print(
                f"wrote {out / 'published.geojson'}, {out / 'report.json'}, {out / 'care.json'}"
            )
            if conflict_path is not None:
                console.print(
                    styled(
                        "[red]sovereignty conflicts:[/] {}, see {}", len(conflicts), conflict_path
                    )
                )
        raise typer.Exit(1 if conflicts else 0)
