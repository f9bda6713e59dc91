"""Load stage: a candidate directory parsed into typed records, or a clear error.

Layout (the specification's section 1, plus data for the gates)::

    model.onnx  model_metadata.json  model_summary.json
    xai/shap_summary.json  provenance/training.prov.json  telemetry/*.json
    data/validation.nc  data/reference.nc  [stac/model-item.json]

:func:`check_candidate` runs every check and reports each file's state; :func:`load_candidate`
returns a :class:`Candidate` or raises the first :class:`core.errors.CandidateError`. Every error
names the file, the field, what was expected and what was found. Nothing here writes anything.

The candidate's footprint (:attr:`Candidate.footprint`) is computed here from the validation
grid, and the declared ``training_domain.bbox`` is checked against it
(:mod:`core.candidate.footprint`): every later stage uses the computed one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnx
from pydantic import BaseModel, ValidationError

from core.candidate.footprint import BBox, GridFootprint, check_declared_bbox, grid_footprint
from core.candidate.models import (
    ModelMetadata,
    ModelSummary,
    ProvenanceBundle,
    Telemetry,
    XaiSummary,
)
from core.errors import CandidateError
from core.jsonio import read_json_file

MAX_ONNX_BYTES = 2 * 1024**3
ONNX_DTYPES = {1: "float32", 11: "float64", 7: "int64", 6: "int32"}
REQUIRED = (
    "model.onnx",
    "model_metadata.json",
    "model_summary.json",
    "xai/shap_summary.json",
    "provenance/training.prov.json",
)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Candidate:
    """A loaded, consistent candidate: typed records plus the paths of its binary files."""

    root: Path
    metadata: ModelMetadata
    summary: ModelSummary
    xai: XaiSummary
    provenance: ProvenanceBundle
    telemetry: tuple[Telemetry, ...]
    footprint: BBox
    """(west, south, east, north) of the validation grid's cells: what the model publishes."""
    stac_item: dict[str, Any] | None = None

    @property
    def onnx_path(self) -> Path:
        return self.root / "model.onnx"

    @property
    def validation_path(self) -> Path:
        return self.root / self.metadata.validation_data

    @property
    def reference_path(self) -> Path:
        return self.root / self.metadata.reference_data


@dataclass(frozen=True)
class FileCheck:
    """The outcome of checking one part of a candidate."""

    name: str
    ok: bool
    detail: str = ""
    error: dict[str, Any] | None = None


@dataclass
class CheckReport:
    """Every check run on a candidate, in order; ``ok`` when all passed."""

    root: str
    checks: list[FileCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and bool(self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.root,
            "ok": self.ok,
            "checks": [
                {"name": c.name, "ok": c.ok, "detail": c.detail, "error": c.error}
                for c in self.checks
            ],
        }


# --------------------------------------------------------------------------- paths
def safe_path(root: Path, relative: str, *, field_name: str, file: str) -> Path:
    """Resolve ``relative`` inside ``root``, refusing absolute paths, ``..``, and symlinks."""
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise CandidateError(
            "path escapes the candidate directory",
            file=file,
            field=field_name,
            expected="a relative path inside the candidate",
            found=relative,
        )
    current = root
    for part in rel.parts:
        current = current / part
        if current.is_symlink():
            raise CandidateError(
                "symbolic links are not allowed in a candidate",
                file=str(current.relative_to(root)),
                field=field_name,
                expected="a regular file",
                found=f"symlink to {current.readlink()}",
            )
    resolved = (root / rel).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise CandidateError(
            "path escapes the candidate directory", file=file, field=field_name, found=relative
        )
    return root / rel


def _require_file(root: Path, relative: str, *, field_name: str = "", file: str = "") -> Path:
    path = safe_path(root, relative, field_name=field_name or relative, file=file or relative)
    if not path.exists():
        raise CandidateError(
            "required file is missing", file=relative, expected="a file", found="nothing"
        )
    if not path.is_file():
        raise CandidateError(
            "not a regular file", file=relative, expected="a file", found="a directory"
        )
    return path


def _parse(model: type[M], root: Path, relative: str) -> M:
    path = _require_file(root, relative)
    data = read_json_file(path, display=relative)
    return validate_record(model, data, file=relative)


def validate_record(model: type[M], data: Any, *, file: str) -> M:
    """Validate parsed JSON strictly against a domain type, translating the first error."""
    if not isinstance(data, dict):
        raise CandidateError(
            "top level must be a JSON object",
            file=file,
            expected="object",
            found=type(data).__name__,
        )
    try:
        return model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise CandidateError(
            _message(first),
            file=file,
            field=location,
            expected=_expected(first),
            found=first.get("input") if first["type"] != "missing" else "nothing",
        ) from error


def _message(err: Any) -> str:
    kinds = {
        "missing": "required field is missing",
        "extra_forbidden": "unknown field",
        "finite_number": "number must be finite",
    }
    return kinds.get(err["type"], str(err["msg"]))


def _expected(err: Any) -> str | None:
    kind = str(err["type"])
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "the field"
    if kind == "extra_forbidden":
        return "only the fields the schema defines"
    if kind == "finite_number":
        return "a finite number"
    if "expected" in ctx:
        return str(ctx["expected"])
    if kind.endswith("_type"):
        return kind[: -len("_type")].replace("_", " ")
    if "pattern" in ctx:
        return f"text matching {ctx['pattern']}"
    for key in ("ge", "gt", "le", "lt", "min_length"):
        if key in ctx:
            return f"{key} {ctx[key]}"
    return str(err["msg"])


# --------------------------------------------------------------------------- checks
def _check_onnx(root: Path, metadata: ModelMetadata) -> str:
    path = _require_file(root, "model.onnx")
    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise CandidateError(
            "model is too large",
            file="model.onnx",
            expected=f"<= {MAX_ONNX_BYTES} bytes",
            found=f"{size} bytes",
        )
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # onnx raises protobuf DecodeError, ValidationError, ...
        raise CandidateError(
            "not a valid ONNX model",
            file="model.onnx",
            expected="an ONNX ModelProto",
            found=f"{type(error).__name__}: {str(error)[:120] or 'unparseable bytes'}",
        ) from error
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    graph_inputs = [i for i in graph.input if i.name not in initializers]
    _compare_tensors("inputs", graph_inputs, metadata.inputs)
    _compare_tensors("outputs", list(graph.output), metadata.outputs)
    for spec in metadata.inputs:
        if spec.features and spec.shape[-1] != len(spec.features):
            raise CandidateError(
                "input width disagrees with its feature list",
                file="model_metadata.json",
                field=f"inputs.{spec.name}.shape",
                expected=len(spec.features),
                found=spec.shape[-1],
            )
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    return f"opset {opsets}, {len(graph.node)} nodes, {size} bytes"


def _compare_tensors(kind: str, graph_values: list[Any], specs: tuple[Any, ...]) -> None:
    graph_names = [v.name for v in graph_values]
    meta_names = [s.name for s in specs]
    if graph_names != meta_names:
        raise CandidateError(
            f"ONNX {kind} disagree with the metadata",
            file="model_metadata.json",
            field=kind,
            expected=f"{graph_names} (from model.onnx)",
            found=meta_names,
        )
    for value, spec in zip(graph_values, specs, strict=True):
        tensor = value.type.tensor_type
        dtype = ONNX_DTYPES.get(tensor.elem_type, f"onnx type {tensor.elem_type}")
        if dtype != spec.dtype:
            raise CandidateError(
                f"ONNX {kind[:-1]} dtype disagrees with the metadata",
                file="model_metadata.json",
                field=f"{kind}.{spec.name}.dtype",
                expected=f"{dtype} (from model.onnx)",
                found=spec.dtype,
            )
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        if len(dims) != len(spec.shape) or any(
            a != b and a != -1 for a, b in zip(dims, spec.shape, strict=False)
        ):
            raise CandidateError(
                f"ONNX {kind[:-1]} shape disagrees with the metadata",
                file="model_metadata.json",
                field=f"{kind}.{spec.name}.shape",
                expected=f"{list(dims)} (from model.onnx)",
                found=list(spec.shape),
            )


def _check_dataset(
    root: Path, relative: str, metadata: ModelMetadata, field_name: str, need_target: bool
) -> str:
    import xarray as xr

    path = _require_file(root, relative, field_name=field_name, file="model_metadata.json")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            for dim in ("time", "lat", "lon"):
                if dim not in ds.dims:
                    raise CandidateError(
                        "dataset lacks a grid dimension",
                        file=relative,
                        field=dim,
                        expected=["time", "lat", "lon"],
                        found=sorted(map(str, ds.dims)),
                    )
            names = sorted(map(str, ds.data_vars))
            wanted = [
                f.source.split(":", 1)[1]
                for t in metadata.inputs
                for f in t.features
                if f.source.startswith("variable:")
            ]
            if need_target:
                wanted.append(metadata.target.variable)
            for var in wanted:
                if var not in ds.data_vars:
                    what = "target" if var == metadata.target.variable else "input"
                    raise CandidateError(
                        f"dataset lacks the {what} variable",
                        file=relative,
                        field=var,
                        expected=f"variable '{var}'",
                        found=names,
                    )
                values = ds[var].values
                if not np.isfinite(values).all():
                    raise CandidateError(
                        "variable holds NaN or infinite values",
                        file=relative,
                        field=var,
                        expected="finite values",
                        found=f"{int((~np.isfinite(values)).sum())} non-finite",
                    )
            if ds.sizes["time"] == 0:
                raise CandidateError(
                    "dataset is empty", file=relative, field="time", expected=">= 1 step", found=0
                )
            return (
                f"{ds.sizes['time']} x {ds.sizes['lat']} x {ds.sizes['lon']} ({', '.join(names)})"
            )
    except CandidateError:
        raise
    except Exception as error:
        raise CandidateError(
            "not a readable netCDF file",
            file=relative,
            expected="netCDF4/HDF5 data",
            found=f"{type(error).__name__}: {str(error)[:120]}",
        ) from error


def _check_footprint(root: Path, metadata: ModelMetadata) -> GridFootprint:
    """The validation grid's footprint; the declared training domain must agree with it."""
    import xarray as xr

    relative = metadata.validation_data
    path = _require_file(root, relative, field_name="validation_data", file="model_metadata.json")
    with xr.open_dataset(path, engine="netcdf4") as ds:
        lat, lon = ds["lat"].values, ds["lon"].values
    footprint = grid_footprint(lat, lon, file=relative)
    check_declared_bbox(
        metadata.training_domain.bbox,
        footprint,
        file="model_metadata.json",
        field="training_domain.bbox",
        data_file=relative,
    )
    return footprint


def _footprint_detail(footprint: GridFootprint) -> str:
    west, south, east, north = footprint.bbox
    return f"[{west:g}, {south:g}, {east:g}, {north:g}] from the validation grid's cells"


def _check_provenance(root: Path) -> ProvenanceBundle:
    relative = "provenance/training.prov.json"
    path = _require_file(root, relative)
    document = read_json_file(path, display=relative)
    if not isinstance(document, dict):
        raise CandidateError(
            "PROV-JSON must be an object",
            file=relative,
            expected="object",
            found=type(document).__name__,
        )
    groups = {}
    for key in ("activity", "entity", "agent"):
        value = document.get(key)
        if not isinstance(value, dict) or not value:
            raise CandidateError(
                "PROV-JSON lacks records",
                file=relative,
                field=key,
                expected=f"at least one {key}",
                found=value,
            )
        groups[key] = tuple(sorted(value))
    for activity_id, activity in document["activity"].items():
        start, end = activity.get("prov:startTime"), activity.get("prov:endTime")
        if start and end and str(end) < str(start):
            raise CandidateError(
                "activity ends before it starts",
                file=relative,
                field=f"activity.{activity_id}",
                expected=f"endTime >= {start}",
                found=end,
            )
    return ProvenanceBundle(
        document=document,
        activities=groups["activity"],
        entities=groups["entity"],
        agents=groups["agent"],
    )


def _check_telemetry(root: Path) -> tuple[Telemetry, ...]:
    folder = safe_path(root, "telemetry", field_name="telemetry", file="telemetry/")
    if not folder.is_dir():
        raise CandidateError(
            "required folder is missing",
            file="telemetry/",
            expected="a folder with *.json",
            found="nothing",
        )
    files = sorted(folder.glob("*.json"))
    if not files:
        raise CandidateError(
            "no telemetry record",
            file="telemetry/",
            expected="at least one *.json",
            found="empty folder",
        )
    records = []
    for path in files:
        relative = f"telemetry/{path.name}"
        safe_path(root, relative, field_name="telemetry", file=relative)
        records.append(
            validate_record(Telemetry, read_json_file(path, display=relative), file=relative)
        )
    if not any(r.kind == "training" for r in records):
        raise CandidateError(
            "no training run in telemetry",
            file="telemetry/",
            field="kind",
            expected="a record with kind 'training'",
            found=[r.kind for r in records],
        )
    return tuple(records)


def _check_xai(root: Path, metadata: ModelMetadata) -> XaiSummary:
    xai = _parse(XaiSummary, root, "xai/shap_summary.json")
    declared = [f.name for t in metadata.inputs for f in t.features]
    if list(xai.features) != declared:
        raise CandidateError(
            "XAI features disagree with the model inputs",
            file="xai/shap_summary.json",
            field="features",
            expected=declared,
            found=list(xai.features),
        )
    for sample in xai.samples:
        if len(sample.attributions) != len(declared) or len(sample.inputs) != len(declared):
            raise CandidateError(
                "sample width disagrees with the features",
                file="xai/shap_summary.json",
                field=f"samples[{sample.index}]",
                expected=len(declared),
                found=len(sample.attributions),
            )
    return xai


def _check_summary(root: Path, metadata: ModelMetadata) -> ModelSummary:
    summary = _parse(ModelSummary, root, "model_summary.json")
    if (summary.name, summary.version) != (metadata.name, metadata.version):
        raise CandidateError(
            "summary describes another model",
            file="model_summary.json",
            field="name/version",
            expected=f"{metadata.name} {metadata.version}",
            found=f"{summary.name} {summary.version}",
        )
    if "validation" not in summary.metrics:
        raise CandidateError(
            "no validation metrics",
            file="model_summary.json",
            field="metrics.validation",
            expected="metrics on the validation split",
            found=sorted(summary.metrics),
        )
    return summary


def _check_stac(root: Path) -> dict[str, Any] | None:
    path = root / "stac" / "model-item.json"
    if not path.exists() and not path.is_symlink():
        return None
    safe_path(root, "stac/model-item.json", field_name="stac", file="stac/model-item.json")
    data = read_json_file(path, display="stac/model-item.json")
    if not isinstance(data, dict) or data.get("type") != "Feature":
        raise CandidateError(
            "not a STAC Item",
            file="stac/model-item.json",
            field="type",
            expected="Feature",
            found=data.get("type") if isinstance(data, dict) else type(data).__name__,
        )
    return data


# --------------------------------------------------------------------------- entry points
def check_candidate(path: Path | str) -> CheckReport:
    """Run every check on a candidate directory and report each one (never raises)."""
    root = Path(path)
    report = CheckReport(root=str(root))

    def run(name: str, fn: Callable[[], str]) -> bool:
        try:
            detail = fn()
        except CandidateError as error:
            report.checks.append(FileCheck(name, False, error.diagnostics(), error.to_dict()))
            return False
        report.checks.append(FileCheck(name, True, detail))
        return True

    if not root.is_dir():
        report.checks.append(
            FileCheck(
                "directory",
                False,
                f"{root}: not a directory",
                CandidateError("not a directory", file=str(root)).to_dict(),
            )
        )
        return report
    holder: dict[str, Any] = {}

    def metadata() -> str:
        holder["metadata"] = _parse(ModelMetadata, root, "model_metadata.json")
        m = holder["metadata"]
        return f"{m.name} {m.version} ({m.task}, {m.architecture})"

    if not run("model_metadata.json", metadata):
        for name in REQUIRED[:1] + REQUIRED[2:]:
            run(name, _presence_check(root, name))
        return report
    meta: ModelMetadata = holder["metadata"]
    run("model.onnx", lambda: _check_onnx(root, meta))
    run("model_summary.json", lambda: _summary_detail(_check_summary(root, meta)))
    run("xai/shap_summary.json", lambda: f"{len(_check_xai(root, meta).samples)} explained samples")
    run(
        "provenance/training.prov.json",
        lambda: f"{len(_check_provenance(root).activities)} activities",
    )
    run(
        "telemetry/",
        lambda: ", ".join(
            f"{t.kind}: {t.energy_kwh:.4g} kWh ({t.method})" for t in _check_telemetry(root)
        ),
    )
    if run(
        meta.validation_data,
        lambda: _check_dataset(root, meta.validation_data, meta, "validation_data", True),
    ):
        run("footprint", lambda: _footprint_detail(_check_footprint(root, meta)))
    run(
        meta.reference_data,
        lambda: _check_dataset(root, meta.reference_data, meta, "reference_data", False),
    )
    run("stac/model-item.json", lambda: "present" if _check_stac(root) else "absent (optional)")
    return report


def _presence_check(root: Path, name: str) -> Callable[[], str]:
    def check() -> str:
        _require_file(root, name)
        return "present (not checked: metadata invalid)"

    return check


def _summary_detail(summary: ModelSummary) -> str:
    m = summary.metrics["validation"]
    return f"validation RMSE {m.rmse:.3f} {summary.units} (baseline {m.baseline_rmse:.3f})"


def load_candidate(path: Path | str) -> Candidate:
    """Load a candidate directory, raising the first :class:`CandidateError` found."""
    root = Path(path)
    if not root.is_dir():
        raise CandidateError(
            "candidate directory not found",
            file=str(root),
            expected="a directory",
            found="nothing" if not root.exists() else "a file",
        )
    metadata = _parse(ModelMetadata, root, "model_metadata.json")
    _check_onnx(root, metadata)
    summary = _check_summary(root, metadata)
    xai = _check_xai(root, metadata)
    provenance = _check_provenance(root)
    telemetry = _check_telemetry(root)
    _check_dataset(root, metadata.validation_data, metadata, "validation_data", True)
    footprint = _check_footprint(root, metadata)
    _check_dataset(root, metadata.reference_data, metadata, "reference_data", False)
    stac = _check_stac(root)
    return Candidate(
        root=root,
        metadata=metadata,
        summary=summary,
        xai=xai,
        provenance=provenance,
        telemetry=telemetry,
        footprint=footprint.bbox,
        stac_item=stac,
    )
