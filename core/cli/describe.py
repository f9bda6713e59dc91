"""``kfm describe`` (STAC item + PROV lineage) and ``kfm rebuild-check`` (byte-identical rebuild)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer

from core.cli._output import console, err_console, print_json, styled
from core.errors import DescribeError

# Runs the kfm console entry point in a fresh interpreter (same as the installed `kfm` script).
_KFM = "import sys; from core.cli import main; sys.argv[0] = 'kfm'; main()"


def _read_json(path: Path | None) -> Any:
    from core.jsonio import read_json_file

    return None if path is None else read_json_file(path, display=str(path), error=DescribeError)


def register(app: typer.Typer) -> None:
    @app.command("describe")
    def describe(
        directory: Path = typer.Argument(..., help="Candidate directory."),
        out: Path = typer.Option(..., "--out", help="Folder for model.stac.json and provenance.*"),
        stages: Path | None = typer.Option(
            None, "--stages", help="JSON list of later stage records (gates, signing, push...)."
        ),
        care: Path | None = typer.Option(
            None, "--care", help='JSON {"kfm:care": {...}} from the sovereignty screen.'
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    ) -> None:
        """Write the STAC item (MLM) and the PROV lineage (JSON, PROV-N, Turtle); exit 1 when a
        check fails (STAC and PROV-JSON schemas, asset checksums, time order, PROV consistency)."""
        from core.candidate.load import load_candidate
        from core.describe import describe_candidate, read_stages

        candidate = load_candidate(directory)
        records = read_stages(_read_json(stages), file=str(stages)) if stages else []
        care_extra = _read_json(care)
        if care is not None and not isinstance(care_extra, dict):
            raise DescribeError(
                "CARE additions must be a JSON object",
                file=str(care),
                expected='{"kfm:care": {...}}',
                found=type(care_extra).__name__,
            )
        description = describe_candidate(candidate, stages=records, care_extra=care_extra)
        paths = description.write(out)
        findings = description.findings([out, directory])
        if as_json:
            print_json(
                {
                    "written": [p.name for p in paths],
                    "ok": not findings,
                    "findings": [f.to_dict() for f in findings],
                }
            )
        else:
            for path in paths:
                console.print(f"wrote {path}")
            for finding in findings:
                console.print(styled("[red]FAIL[/] {}", finding))
            console.print(
                styled("[green]describe checks passed[/]")
                if not findings
                else styled("[red]{} describe check(s) failed[/]", len(findings))
            )
        raise typer.Exit(0 if not findings else 1)

    @app.command("rebuild-check")
    def rebuild_check(
        directory: Path = typer.Argument(..., help="Candidate directory."),
        stages: Path | None = typer.Option(None, "--stages", help="As for describe."),
        care: Path | None = typer.Option(None, "--care", help="As for describe."),
    ) -> None:
        """Run describe twice in fresh processes; exit 1 unless the outputs are byte-identical."""
        extra: list[str] = []
        if stages is not None:
            extra += ["--stages", str(stages)]
        if care is not None:
            extra += ["--care", str(care)]
        with tempfile.TemporaryDirectory(prefix="kfm-rebuild-") as tmp:
            outs = [Path(tmp) / "first", Path(tmp) / "second"]
            for seed, out in enumerate(outs, start=1):
                _describe_in_fresh_process(directory, out, extra, hash_seed=seed)
            differing = compare_trees(outs[0], outs[1])
            for name in differing:
                console.print(styled("[red]differs:[/] {}", name))
            if differing:
                console.print(
                    styled("[red]rebuild is not byte-identical ({} file(s))[/]", len(differing))
                )
                raise typer.Exit(1)
            count = len([p for p in outs[0].rglob("*") if p.is_file()])
            console.print(styled("[green]rebuild is byte-identical[/] ({} files)", count))


def _describe_in_fresh_process(
    directory: Path, out: Path, extra: list[str], *, hash_seed: int
) -> None:
    # A different hash seed per run exposes output that depends on set or dict-of-hash order.
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    command = [sys.executable, "-c", _KFM, "describe", str(directory), "--out", str(out), *extra]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        err_console.print(result.stdout + result.stderr, highlight=False)
        raise DescribeError(
            "describe failed in a fresh process",
            file=str(directory),
            expected="exit status 0",
            found=f"exit status {result.returncode}",
        )


def compare_trees(first: Path, second: Path) -> list[str]:
    """Relative names of files that differ between two folders (or exist in only one)."""

    def files(root: Path) -> dict[str, Path]:
        return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}

    a, b = files(first), files(second)
    return sorted(
        name
        for name in set(a) | set(b)
        if name not in a or name not in b or a[name].read_bytes() != b[name].read_bytes()
    )
