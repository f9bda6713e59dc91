"""``kfm screen``: run a candidate's model and screen its outputs against steward regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely
import typer
import xarray as xr
from rich.table import Table

from core.cli._output import console, print_json
from core.errors import SovereigntyError
from core.policy import DEFAULT_POLICY_PATH, ScreeningPolicy, load_policy
from core.regions import RegionSet, load_regions


def fine_grid(
    bounds: tuple[float, float, float, float], step: float
) -> tuple[np.ndarray, np.ndarray]:
    """1-D lat/lon axes on multiples of ``step`` degrees, covering a (w, s, e, n) box."""
    west, south, east, north = bounds
    lat = np.arange(np.floor(south / step), np.ceil(north / step) + 1) * step
    lon = np.arange(np.floor(west / step), np.ceil(east / step) + 1) * step
    return np.round(lat, 6), np.round(lon, 6)


def release_points(
    fine: list[xr.DataArray], native: xr.DataArray, regions: RegionSet
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine-grid points inside regions plus native-grid points outside them, as (lat, lon, values)."""
    union = shapely.union_all([r.geometry for r in regions])
    lats, lons, values = [], [], []
    seen: set[tuple[float, float]] = set()
    for field in fine:
        la, lo = np.meshgrid(field["lat"].values, field["lon"].values, indexing="ij")
        la, lo = la.ravel(), lo.ravel()
        inside = shapely.intersects_xy(union, lo, la)
        block = field.transpose("time", "lat", "lon").values.reshape(field.sizes["time"], -1)
        for i in np.flatnonzero(inside):
            if (la[i], lo[i]) not in seen:  # region boxes may overlap
                seen.add((la[i], lo[i]))
                lats.append(la[i])
                lons.append(lo[i])
                values.append(block[:, i])
    la, lo = np.meshgrid(native["lat"].values, native["lon"].values, indexing="ij")
    la, lo = la.ravel(), lo.ravel()
    outside = ~shapely.intersects_xy(union, lo, la)
    block = native.transpose("time", "lat", "lon").values.reshape(native.sizes["time"], -1)
    all_values = np.concatenate(
        [np.array(values).T.reshape(block.shape[0], -1), block[:, outside]], axis=1
    )
    return np.concatenate([lats, la[outside]]), np.concatenate([lons, lo[outside]]), all_values


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
            0.25, "--resolution-deg", help="Grid step inside regions."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Screen the model's outputs over its validation period: H3 inside regions, native outside."""
        from core.candidate import load_candidate
        from core.care import care_metadata, find_conflicts, write_conflict_report
        from core.inference import predict_grid
        from core.jsonio import write_json
        from core.sovereignty import screen_field, screen_report, write_screen_outputs

        if not 0 < resolution_deg <= 5:
            raise SovereigntyError(
                "grid step out of range",
                field="--resolution-deg",
                expected="0 < step <= 5 degrees",
                found=resolution_deg,
            )
        if policy_file is not None or DEFAULT_POLICY_PATH.exists():
            policy = load_policy(policy_file).screening
        else:
            policy = ScreeningPolicy()
        regions = load_regions(regions_file)
        candidate = load_candidate(directory)
        family = candidate.metadata.model_family
        with xr.open_dataset(candidate.validation_path, engine="netcdf4") as ds:
            native_lat, native_lon = ds["lat"].values, ds["lon"].values
        with console.status("running the model on the native grid and inside the regions..."):
            native = predict_grid(candidate, native_lat, native_lon)
            fine = [
                predict_grid(candidate, *fine_grid(r.geometry.bounds, resolution_deg))
                for r in regions
            ]
        lat, lon, values = release_points(fine, native, regions)
        result = screen_field(
            lat,
            lon,
            values,
            regions,
            policy,
            model_family=family,
            variable=str(native.name or "value"),
            units=str(native.attrs.get("units", "")),
        )
        write_screen_outputs(result, out)
        footprint = candidate.metadata.training_domain.bbox
        conflicts = find_conflicts(footprint, regions, family)
        conflict_path = write_conflict_report(conflicts, out, model_family=family)
        write_json(
            out / "care.json",
            care_metadata(regions, policy, model_family=family, footprint=footprint, result=result),
        )
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
                    f"[red]sovereignty conflicts:[/] {len(conflicts)}, see {conflict_path}"
                )
        raise typer.Exit(1 if conflicts else 0)
