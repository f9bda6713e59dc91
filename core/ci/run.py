"""``kfm ci`` on a candidate directory: every check of the specification in one pass.

The two deployment stagings (``python -m core.pipeline``, :func:`core.pipeline.stage_version`
unsigned) run in fresh interpreters in parallel while the in-process checks run, and so does the
reference builder when the candidate is the reference (:mod:`core.ci.regenerate`); the STAC,
sovereignty, deployment-hash and rebuild checks then read what they produced.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.ci.boundary import boundary_check, read_published
from core.ci.checks import (
    compare_builds,
    deployment_hash_check,
    error_failure,
    fair_failures,
    gate_check,
    inference_check,
    metadata_schema_check,
    short,
    stac_item_check,
    stored_comparisons,
    tree_digests,
)
from core.ci.regenerate import (
    reference_build_version,
    regeneration_failure,
    start_regeneration,
    with_regeneration,
)
from core.ci.report import CHECK_TITLES, CiCheck, CiFailure, CiReport
from core.errors import KfmError
from core.pipeline import DESCRIBE, LAYOUT
from core.policy import DEFAULT_POLICY_PATH
from core.registry.layout import ITEM_FILE, SOVEREIGNTY_DIR
from core.sovereignty.screen import DEFAULT_RESOLUTION_DEG

# Where the ``core`` package is imported from (a checkout, or site-packages): the staging
# interpreter starts there so that ``-m core.ci.stage`` imports this same package. Nothing is read.
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_REGIONS_PATH = DEFAULT_POLICY_PATH.parent / "regions.geojson"
DEFAULT_TOLERANCE = 1e-4
"""Target units (K for the reference): ~3 float32 ulps at 300 K. Tree ensembles summed by
onnxruntime on several threads add in another order (measured: 3.05e-5 K = 1 ulp)."""
DEFAULT_THREADS = (1, 2, 4)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CiOptions:
    """What ``kfm ci`` checks against: policy, regions, standards, tolerances.

    ``standards`` overrides the packaged standard schemas with a folder laid out the same way
    (``core/resources/standards``); None uses the packaged ones.
    """

    policy_path: Path = DEFAULT_POLICY_PATH
    regions_path: Path = DEFAULT_REGIONS_PATH
    standards: Path | None = None
    inference_tolerance: float = DEFAULT_TOLERANCE
    threads: tuple[int, ...] = DEFAULT_THREADS
    resolution_deg: float = DEFAULT_RESOLUTION_DEG


def failed_check(check_id: str, failure: CiFailure, measured: str = "nothing") -> CiCheck:
    """A check that could not run, with the reason."""
    return CiCheck(check_id, CHECK_TITLES[check_id], measured, (failure,))


def timed(check_id: str, fn: Callable[[], CiCheck], progress: Progress, file: str) -> CiCheck:
    """Run one check, timing it; an unexpected exception fails the check, never passes it."""
    progress(CHECK_TITLES[check_id])
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as error:
        if os.environ.get("KFM_DEBUG"):
            raise
        result = failed_check(check_id, error_failure(error, file=file))
    return replace(result, seconds=time.perf_counter() - start)


def start_staging(
    candidate_dir: Path,
    out: Path,
    options: CiOptions,
    seed: int,
    signature: Path | None = None,
) -> subprocess.Popen[str]:
    """Stage a deployment in a fresh interpreter; a hash seed per run exposes set-order output."""
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "core.pipeline",
        str(candidate_dir.resolve()),
        str(out.resolve()),
        "--policy",
        str(options.policy_path.resolve()),
        "--regions",
        str(options.regions_path.resolve()),
        "--resolution-deg",
        repr(options.resolution_deg),
    ]
    if signature is not None:
        command += ["--signature", str(signature.resolve())]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO_ROOT),
    )


def run_ci_candidate(
    directory: Path, options: CiOptions | None = None, progress: Progress | None = None
) -> CiReport:
    """Every CI check on a candidate directory."""
    opts = options or CiOptions()
    say = progress or (lambda _step: None)
    with tempfile.TemporaryDirectory(prefix="kfm-ci-") as tmp:
        return run_checks(
            Path(directory), opts, say, stagings=[Path(tmp) / "first", Path(tmp) / "second"]
        )


def run_checks(
    root: Path,
    opts: CiOptions,
    say: Progress,
    *,
    stagings: Sequence[Path],
    signature: Path | None = None,
    stored: Path | None = None,
) -> CiReport:
    """The nine checks on the candidate directory ``root``.

    Without ``stored``: two stagings, compared with each other. With ``stored`` (a registry
    version's files, :mod:`core.ci.version`): one staging with the stored ``signature``,
    compared with the stored files; the STAC and sovereignty checks read the stored outputs.
    When ``root`` is the reference candidate, the reference builder regenerates its
    ``model.onnx`` beside the stagings (:mod:`core.ci.regenerate`) for the rebuild check.
    """
    from core.candidate.load import load_candidate
    from core.policy import load_policy
    from core.sovereignty.regions import load_regions

    checks: list[CiCheck] = []
    say("staging the deployment in fresh processes")
    procs = [
        start_staging(root, out, opts, seed, signature) for seed, out in enumerate(stagings, 1)
    ]
    reference_version = reference_build_version(root)
    regenerated = stagings[0].parent / "regenerated"
    regeneration = (
        None
        if reference_version is None
        else start_regeneration(reference_version, regenerated, cwd=REPO_ROOT)
    )
    children = [*procs, *([regeneration] if regeneration is not None else [])]
    regeneration_error: CiFailure | None = None
    try:
        checks.append(
            timed(
                "metadata-schema",
                lambda: metadata_schema_check(root, opts.standards),
                say,
                str(root),
            )
        )
        setup: dict[str, Any] = {}
        try:
            setup["candidate"] = load_candidate(root)
            setup["policy"] = load_policy(opts.policy_path)
            setup["regions"] = load_regions(opts.regions_path)
        except KfmError as error:
            setup["error"] = error_failure(error, file=str(root), message="cannot load")
        checks += _gate_checks(setup, say)
        checks.append(timed("inference", lambda: _inference(setup, opts), say, str(root)))
        say("waiting for the staging")
        outcomes = [_finish(proc) for proc in procs]
        if regeneration is not None:
            say("waiting for the reference builder")
            stdout, stderr = regeneration.communicate()
            if regeneration.returncode != 0:
                regeneration_error = regeneration_failure(regeneration.returncode, stderr or stdout)
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    staging_error = next((o for o in outcomes if o is not None), None)
    outputs = stored if stored is not None else stagings[0] / LAYOUT
    checks.append(
        timed(
            "stac-item",
            lambda: _stac(root, setup, outputs, opts, staging_error, stored is not None),
            say,
            str(root),
        )
    )
    checks.append(
        timed(
            "sovereignty",
            lambda: _sovereignty(setup, outputs, None if stored else staging_error),
            say,
            str(root),
        )
    )
    if stored is not None:
        if staging_error is not None:
            checks += [failed_check(c, staging_error) for c in ("deployment-hash", "rebuild")]
        else:
            checks += stored_comparisons(stored, stagings[0], LAYOUT, DESCRIBE)
    else:
        checks.append(
            timed(
                "deployment-hash",
                lambda: _needs_staging(
                    "deployment-hash",
                    staging_error,
                    lambda: deployment_hash_check(stagings[0] / LAYOUT, stagings[1] / LAYOUT),
                ),
                say,
                str(root),
            )
        )
        checks.append(
            timed(
                "rebuild",
                lambda: _needs_staging("rebuild", staging_error, lambda: _rebuild(stagings)),
                say,
                str(root),
            )
        )
    if reference_version is not None:
        checks = [
            with_regeneration(c, root, regenerated, regeneration_error) if c.id == "rebuild" else c
            for c in checks
        ]
    order = list(CHECK_TITLES)
    return CiReport(target=str(root), checks=tuple(sorted(checks, key=lambda c: order.index(c.id))))


def _finish(proc: subprocess.Popen[str]) -> CiFailure | None:
    stdout, stderr = proc.communicate()
    if proc.returncode == 0:
        return None
    text = (stderr or stdout).strip().splitlines()
    return CiFailure(
        "core.pipeline",
        "exit status",
        "0",
        str(proc.returncode),
        "staging the deployment failed: " + short(text[-1] if text else "no output", 300),
    )


def _needs_staging(check_id: str, error: CiFailure | None, fn: Callable[[], CiCheck]) -> CiCheck:
    return failed_check(check_id, error) if error is not None else fn()


def _gate_checks(setup: dict[str, Any], say: Progress) -> list[CiCheck]:
    specs: Sequence[tuple[str, tuple[str, ...], dict[str, str]]] = (
        ("xai", ("xai",), {"xai": "xai/shap_summary.json"}),
        ("telemetry", ("telemetry",), {"telemetry": "telemetry/"}),
        (
            "fair-care",
            ("cultural_safety", "sovereignty"),
            {"cultural_safety": "model_metadata.json", "sovereignty": "model_metadata.json"},
        ),
    )
    out = []
    for check_id, gates, files in specs:
        if "error" in setup:
            out.append(failed_check(check_id, setup["error"]))
            continue
        out.append(
            timed(
                check_id,
                functools.partial(_gate_check, check_id, gates, files, setup),
                say,
                "-",
            )
        )
    return out


def _gate_check(
    check_id: str, gates: tuple[str, ...], files: dict[str, str], setup: dict[str, Any]
) -> CiCheck:
    candidate = setup["candidate"]

    def fair() -> list[CiFailure]:
        return fair_failures(candidate, metadata_file="model_metadata.json")

    return gate_check(
        check_id,
        CHECK_TITLES[check_id],
        gates,
        candidate,
        setup["policy"],
        setup["regions"],
        files=files,
        extra=fair if check_id == "fair-care" else None,
    )


def _inference(setup: dict[str, Any], opts: CiOptions) -> CiCheck:
    import xarray as xr

    from core.candidate.inference import make_session, predict_dataset

    if "error" in setup:
        return failed_check("inference", setup["error"])
    candidate = setup["candidate"]
    with xr.open_dataset(candidate.validation_path, engine="netcdf4") as ds:
        data = ds.load()

    def run(threads: int) -> np.ndarray:
        session = make_session(candidate.onnx_path, threads=threads)
        return np.asarray(predict_dataset(session, candidate.metadata, data).values)

    return inference_check(
        run,
        threads=opts.threads,
        tolerance=opts.inference_tolerance,
        units=candidate.metadata.target.units,
        file=f"model.onnx on {candidate.metadata.validation_data}",
    )


def _stac(
    root: Path,
    setup: dict[str, Any],
    outputs: Path,
    opts: CiOptions,
    error: CiFailure | None,
    stored: bool = False,
) -> CiCheck:
    candidate = setup.get("candidate")
    if not stored and candidate is not None and candidate.stac_item is not None:
        return stac_item_check(
            candidate.stac_item,
            item_file="stac/model-item.json",
            roots=[root / "stac", root],
            standards=opts.standards,
        )
    if error is not None and not stored:
        return failed_check("stac-item", error)
    from core.jsonio import read_json_file

    item = read_json_file(outputs / ITEM_FILE, display=ITEM_FILE)
    return stac_item_check(
        item,
        item_file="model.stac.json (stored)" if stored else "model.stac.json (built by describe)",
        roots=[outputs],
        built=True,
        standards=opts.standards,
    )


def _sovereignty(setup: dict[str, Any], outputs: Path, error: CiFailure | None) -> CiCheck:
    if "error" in setup:
        return failed_check("sovereignty", setup["error"])
    if error is not None:
        return failed_check("sovereignty", error)
    path = outputs / SOVEREIGNTY_DIR / "published.geojson"
    return boundary_check(
        read_published(path),
        file="sovereignty/published.geojson",
        regions=setup["regions"],
        policy=setup["policy"].screening,
        model_family=setup["candidate"].metadata.model_family,
    )


def _rebuild(stagings: Sequence[Path]) -> CiCheck:
    first, second = stagings
    failures = compare_builds(
        tree_digests(first / DESCRIBE), tree_digests(second / DESCRIBE), prefix="describe/"
    ) + compare_builds(
        tree_digests(first / LAYOUT / SOVEREIGNTY_DIR),
        tree_digests(second / LAYOUT / SOVEREIGNTY_DIR),
        prefix="sovereignty/",
    )
    screen = tree_digests(first / LAYOUT / SOVEREIGNTY_DIR)
    count = len(tree_digests(first / DESCRIBE)) + len(screen)
    return CiCheck(
        "rebuild",
        CHECK_TITLES["rebuild"],
        f"{count} describe and screen files built twice in fresh processes "
        "(PYTHONHASHSEED 1 and 2), compared byte for byte",
        tuple(failures),
    )
