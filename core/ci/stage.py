"""Stage one unsigned deployment of a candidate, as ``kfm deploy`` lays it out, in a folder.

``kfm ci`` runs this module twice, each time in a fresh interpreter with a different
``PYTHONHASHSEED``, and compares the results: the registry layout's sign-independent manifest
digest (repeatable deployment hash) and the describe and screen outputs (rebuild
reproducibility). Nothing is signed, pushed or recorded.

Output folder::

    layout/    model.onnx, model.stac.json, provenance.json, gates.json, [model.sig],
               model_metadata.json, model_summary.json, xai/*, telemetry/*, data/*,
               sovereignty/{published.geojson, report.json, sovereignty_conflict.json, care.json}
    describe/  model.stac.json, provenance.json, provenance.provn, provenance.ttl

The sovereignty stage runs through :func:`core.sovereignty.screen.screen_candidate`, the function
``kfm deploy`` and ``kfm screen`` use, so what CI checks is what deploy would push.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from core.sovereignty.screen import DEFAULT_RESOLUTION_DEG

LAYOUT = "layout"
DESCRIBE = "describe"
SIGNATURE_FILE = "model.sig"
INTEGRITY_FILE = "integrity.json"


def stage_deployment(
    candidate_dir: Path,
    out: Path,
    *,
    policy_path: Path,
    regions_path: Path,
    resolution_deg: float = DEFAULT_RESOLUTION_DEG,
    signature: Path | None = None,
) -> Path:
    """Write the registry layout and the describe outputs of a candidate into ``out``.

    ``signature`` is a ``model.sig`` made for this candidate elsewhere (a registry version's):
    it is recorded in the lineage and laid out, as ``kfm deploy`` does after signing a copy.
    """
    from core.candidate.load import load_candidate
    from core.describe import describe_candidate
    from core.describe.stac import ITEM_FILE, PROVENANCE_FILE
    from core.describe.stages import deployment_stages
    from core.gates import run_gates
    from core.jsonio import dumps
    from core.policy import load_policy
    from core.sovereignty.regions import load_regions
    from core.sovereignty.screen import screen_candidate

    candidate = load_candidate(candidate_dir)
    policy = load_policy(policy_path)
    regions = load_regions(regions_path)
    layout = out / LAYOUT
    layout.mkdir(parents=True)
    report = run_gates(candidate, policy, regions=regions)
    gates_text = dumps(report.to_dict())
    (layout / "gates.json").write_text(gates_text, encoding="utf-8")
    screened = screen_candidate(candidate, regions, policy.screening, resolution_deg=resolution_deg)
    screened.write(layout / "sovereignty")
    own = candidate.root / SIGNATURE_FILE
    signed = signature if signature is not None else own if own.is_file() else None
    stages = deployment_stages(
        candidate,
        gates_json=gates_text.encode("utf-8"),
        signature=signed,
        screen_dir=layout / "sovereignty",
    )
    description = describe_candidate(candidate, stages=stages, care_extra=screened.care)
    description.write(out / DESCRIBE)
    for name in (ITEM_FILE, PROVENANCE_FILE):
        shutil.copyfile(out / DESCRIBE / name, layout / name)
    shutil.copyfile(candidate.onnx_path, layout / "model.onnx")
    if signed is not None:  # a signed candidate keeps its signature and integrity record
        shutil.copyfile(signed, layout / SIGNATURE_FILE)
        if (candidate.root / INTEGRITY_FILE).is_file():
            shutil.copyfile(candidate.root / INTEGRITY_FILE, layout / INTEGRITY_FILE)
    for name in ("model_metadata.json", "model_summary.json"):  # as core.pipeline lays it out
        shutil.copyfile(candidate.root / name, layout / name)
    for folder in ("xai", "telemetry", "data", "provenance"):
        if (candidate.root / folder).is_dir():
            shutil.copytree(candidate.root / folder, layout / folder)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m core.ci.stage CANDIDATE OUT --policy P --regions R``; exit 2 on an error."""
    from core.errors import KfmError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--regions", type=Path, required=True)
    parser.add_argument("--resolution-deg", type=float, default=DEFAULT_RESOLUTION_DEG)
    parser.add_argument("--signature", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        stage_deployment(
            args.candidate,
            args.out,
            policy_path=args.policy,
            regions_path=args.regions,
            resolution_deg=args.resolution_deg,
            signature=args.signature,
        )
    except KfmError as error:
        print(f"error: {error.diagnostics()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
