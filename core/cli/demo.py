"""``kfm demo``: the main job — build the reference candidate and run the pipeline on it."""

from __future__ import annotations

from pathlib import Path

import typer

from core.candidate import check_candidate
from core.cli._output import console
from core.errors import CandidateError


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        workspace: Path = typer.Option(Path("demo"), "--workspace", help="Folder for the demo's state."),
    ) -> None:
        """Build the real reference candidate and run every pipeline stage on it."""
        from core.reference import build_reference_candidate

        candidate_dir = workspace / "candidate"
        with console.status("building the reference candidate (NCEP/NCAR reanalysis downscaler)..."):
            build_reference_candidate(candidate_dir)
        report = check_candidate(candidate_dir)
        if not report.ok:
            failed = next(c for c in report.checks if not c.ok)
            raise CandidateError(f"reference candidate failed its check: {failed.detail}")
        console.print(f"[green]reference candidate built and checked:[/] {candidate_dir}")
