"""``kfm monitor VERSION --batch FILE``, ``kfm monitor history VERSION``, ``kfm monitor batch``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from core.cli._output import console, print_json, styled
from core.cli.workspace import build_engine, open_workspace, workspace_option
from core.monitoring.otel import TelemetryConfig


class _RunByDefault(TyperGroup):
    """``kfm monitor VERSION ...`` means ``kfm monitor run VERSION ...``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


def print_run(row: dict[str, Any]) -> None:
    """One run: a header line, per-feature drift, and the verdict."""
    console.print(
        styled(
            "[bold]{}[/] on {}: {} predictions, {} kWh, {} g CO2e ({})",
            row["run_id"],
            row["batch"],
            row["n_predictions"],
            f"{row['energy_kwh']:.3g}",
            f"{row['emissions_kg_co2e'] * 1000:.3g}",
            row["telemetry_method"],
        )
    )
    table = Table(show_header=True, box=None, padding=(0, 2))
    for column in ("feature", "PSI", "KS", "Wasserstein / std"):
        table.add_column(column)
    for name, drift in row["drift"].items():
        table.add_row(
            name,
            f"{drift['psi']:.4f}",
            f"{drift['ks_statistic']:.4f}",
            f"{drift['wasserstein_std']:.4f}",
        )
    console.print(table)
    colour = "red" if row["breaches"] else "green"
    console.print(styled(f"[{colour}]{{}}[/]", "; ".join(row["breaches"]) or "within bounds"))


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        cls=_RunByDefault,
        help="Monitoring: run a deployed version on a batch (drift, energy, XAI, spans); history.",
        no_args_is_help=True,
    )

    @group.command("run")
    def run(
        version: str = typer.Argument(..., help="Registry version to monitor."),
        batch: Path = typer.Option(
            ..., "--batch", help="netCDF batch with the model's input variables."
        ),
        otlp_endpoint: str | None = typer.Option(
            None,
            "--otlp-endpoint",
            help="Also export spans and metrics by OTLP/HTTP, e.g. http://127.0.0.1:4318.",
        ),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    ) -> None:
        """Run VERSION on a batch; a drift or energy breach of the production version rolls it back."""
        from core.monitoring.record import monitor_version

        ws = open_workspace(workspace)
        with (
            build_engine(ws, with_pipeline=True) as engine,
            console.status(
                f"monitoring {version} on {batch.name} (inference, drift, XAI, energy)..."
            ),
        ):
            outcome = monitor_version(
                engine,
                version,
                batch,
                ws.policy().monitoring,
                telemetry_config=TelemetryConfig(otlp_endpoint=otlp_endpoint),
            )
        if as_json:
            print_json(outcome.to_dict())
            return
        print_run(outcome.run.summary())
        colour = "red" if outcome.rollback else "green"
        console.print(
            styled(f"[{colour}]{{}}[/] (ledger entry {{}})", outcome.note, outcome.ledger_seq)
        )

    @group.command("history")
    def history(
        version: str = typer.Argument(..., help="Registry version."),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
    ) -> None:
        """List VERSION's monitoring runs with drift per feature, energy and carbon."""
        from core.monitoring.record import run_history

        ws = open_workspace(workspace)
        with build_engine(ws, with_pipeline=False) as engine:
            rows = run_history(engine, version)
        if as_json:
            print_json(rows)
            return
        if not rows:
            console.print(f"no monitoring runs for {version}")
            return
        for row in rows:
            print_run(row)

    @group.command("batch")
    def batch(
        kind: str = typer.Argument(..., help="in-distribution, warming (+3 K) or southern."),
        out: Path = typer.Option(..., "--out", help="netCDF file to write."),
        candidate: Path = typer.Option(
            ..., "--candidate", help="Candidate whose validation data to use."
        ),
    ) -> None:
        """Write a real monitoring batch derived from a candidate's held-out reanalysis times."""
        from core.candidate.load import load_candidate
        from core.errors import InferenceError
        from core.monitoring.batches import BATCH_KINDS, make_batch

        if kind not in BATCH_KINDS:
            raise InferenceError(
                "unknown batch kind", field="KIND", expected=list(BATCH_KINDS), found=kind
            )
        path = make_batch(load_candidate(candidate).validation_path, kind, out)  # type: ignore[arg-type]
        console.print(f"wrote {kind} batch to {path}")

    app.add_typer(group, name="monitor")
