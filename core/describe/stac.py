"""The model's STAC Item (``model.stac.json``): MLM v1.4.0 + file, processing, version,
scientific and the project's ``kfm:`` extension, built with pystac.

Asset hrefs are relative to the item as it sits in a registry version directory
(``model.onnx``, ``provenance.json``, ``model.sig``, ``xai/*``, ``telemetry/*``); checksums are
taken from the candidate's files, and from the bytes of ``provenance.json`` the describe stage
has just serialized. :func:`build_item` returns the item as a plain dict; :func:`item_json` gives
its canonical bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import onnx
import pystac
from pystac.extensions.file import FileExtension
from pystac.extensions.mlm import (
    AcceleratorType,
    AssetGeneralMLMExtension,
    Hyperparameters,
    InputStructure,
    MLMExtension,
    ModelInput,
    ModelOutput,
    ResultStructure,
    TaskType,
)
from pystac.extensions.scientific import ScientificExtension
from pystac.extensions.version import VersionExtension

from core.candidate.load import ONNX_DTYPES, Candidate
from core.candidate.models import ModelMetadata, TensorSpec
from core.describe.extension import KFM_EXTENSION_URI, kfm_field_errors
from core.errors import DescribeError
from core.jsonio import dumps
from core.signing.digests import multihash, sha256_file

MLM_VERSION = "1.4.0"
"""MLM schema version the item declares: the one pystac's MLM extension writes."""
MLM_EXTENSION_URI = f"https://stac-extensions.github.io/mlm/v{MLM_VERSION}/schema.json"
PROCESSING_EXTENSION_URI = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
ITEM_FILE = "model.stac.json"
PROVENANCE_FILE = "provenance.json"
SIGNATURE_FILE = "model.sig"
INTEGRITY_FILE = "integrity.json"
XAI_FILE = "xai/shap_summary.json"
ONNX_MEDIA_TYPE = "application/octet-stream; application=onnx"

# MLM has no 'downscaling': statistical downscaling is a regression that recovers fine detail,
# the nearest MLM tasks; the domain task itself is kept in kfm:task.
MLM_TASKS: dict[str, tuple[TaskType, ...]] = {
    "downscaling": (TaskType.REGRESSION, TaskType.SUPER_RESOLUTION),
    "regression": (TaskType.REGRESSION,),
    "anomaly-detection": (TaskType.REGRESSION,),
    "hazard": (TaskType.REGRESSION,),
    "hydrology": (TaskType.REGRESSION,),
}
# Dimension names by rank (MLM needs a name per dimension, pattern ^[a-z-_]+$).
DIM_ORDERS: dict[int, tuple[str, ...]] = {
    1: ("batch",),
    2: ("batch", "channel"),
    3: ("batch", "time", "channel"),
    4: ("batch", "channel", "height", "width"),
    5: ("batch", "time", "channel", "height", "width"),
}
_PYPI_SOURCE = re.compile(r"^PyPI ([A-Za-z0-9._-]+) ([A-Za-z0-9._+!-]+)$")


def build_item(
    candidate: Candidate,
    *,
    provenance_json: bytes,
    care_extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The STAC Item of a candidate, validated against the ``kfm:`` extension schema.

    ``provenance_json`` is the exact content of the ``provenance.json`` written beside the item
    (its checksum goes into the provenance asset). ``care_extra`` is ``{"kfm:care": {...}}``
    from the sovereignty stage: list fields (labels, steward contacts, notes) are added to the
    candidate's own CARE metadata, other fields replace it.
    """
    md = candidate.metadata
    item = pystac.Item(
        id=f"{md.name}-{md.version}",
        geometry=_geometry(candidate.footprint),  # from the validation grid, not declared
        bbox=list(candidate.footprint),
        datetime=None,
        start_datetime=md.training_domain.time_start,
        end_datetime=md.training_domain.time_end,
        properties={},
    )
    item.common_metadata.title = md.title
    item.common_metadata.description = md.description
    item.common_metadata.license = md.license
    item.common_metadata.created = md.created
    inputs, outputs = model_io(candidate.onnx_path, md)
    MLMExtension.ext(item, add_if_missing=True).apply(
        name=md.name,
        architecture=md.architecture,
        tasks=list(MLM_TASKS[md.task]),
        input=inputs,
        output=outputs,
        framework=md.framework.name,
        framework_version=md.framework.version,
        total_parameters=md.total_parameters,
        pretrained=md.pretrained,
        pretrained_source=None,
        accelerator=AcceleratorType.AMD64,
        accelerator_constrained=False,
        hyperparameters=Hyperparameters.create(**md.hyperparameters),
    )
    # MLM requires an explicit null source for a model trained from scratch.
    item.properties["mlm:pretrained_source"] = None
    VersionExtension.ext(item, add_if_missing=True).apply(version=md.version, deprecated=False)
    citations = [d.citation for d in md.training_data if d.citation]
    if citations:
        ScientificExtension.add_to(item)
        # written directly: pystac's Publication writes "doi": null, which the schema refuses
        item.properties["sci:publications"] = [{"citation": c} for c in citations]
    item.stac_extensions.append(PROCESSING_EXTENSION_URI)
    item.properties.update(_processing(md))
    for link in _derived_from_links(md):
        item.add_link(link)
    assets = _assets(candidate, provenance_json)
    for key, asset in assets.items():
        item.add_asset(key, asset)
    FileExtension.add_to(item)
    AssetGeneralMLMExtension.ext(item.assets["model"]).apply(artifact_type="onnx")
    bands = _bands(md.inputs)
    if bands:
        # STAC 1.1 band objects: MLM input bands must resolve to them (properties.bands), and
        # STAC 1.1 allows properties.bands only when an asset carries bands (the model's).
        item.properties["bands"] = bands
        item.assets["model"].extra_fields["bands"] = bands
    item.properties.update(_kfm_fields(candidate, assets, care_extra))
    item.stac_extensions.append(KFM_EXTENSION_URI)
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    data["stac_extensions"] = sorted(data["stac_extensions"])
    problems = kfm_field_errors(data)
    if problems:
        raise DescribeError(
            "the item breaks the kfm: STAC extension schema",
            file=ITEM_FILE,
            field=problems[0].split(":", 1)[0],
            expected=f"valid against {KFM_EXTENSION_URI}",
            found="; ".join(problems[:5]),
            hint="check the CARE fields injected by the sovereignty stage" if care_extra else None,
        )
    return data


def item_json(item: Mapping[str, Any]) -> str:
    """Canonical text of an item (sorted keys, two-space indent, final newline)."""
    return dumps(dict(item))


# --------------------------------------------------------------------------- MLM input/output
def model_io(
    onnx_path: Path, metadata: ModelMetadata
) -> tuple[list[ModelInput], list[ModelOutput]]:
    """``mlm:input`` / ``mlm:output`` read from the ONNX graph (names, shapes, dtypes, scaling).

    Band names and descriptions come from the metadata's tensor specs (the loader has already
    checked they agree with the graph).
    """
    try:
        model = onnx.load(str(onnx_path))
    except Exception as error:  # protobuf DecodeError and friends, translated at the edge
        raise DescribeError(
            "cannot read the ONNX model",
            file="model.onnx",
            expected="an ONNX ModelProto",
            found=f"{type(error).__name__}: {str(error)[:120]}",
        ) from error
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    specs_in = {s.name: s for s in metadata.inputs}
    specs_out = {s.name: s for s in metadata.outputs}
    inputs = []
    for value in graph.input:
        if value.name in initializers:
            continue
        shape, dtype = _tensor(value, "inputs")
        spec = specs_in.get(value.name)
        bands = [f.name for f in spec.features] if spec else []
        inputs.append(
            ModelInput.create(
                name=value.name,
                bands=bands,
                input=InputStructure.create(
                    shape=shape, dim_order=_dims(shape, value.name), data_type=dtype
                ),
                description=(spec.description or None) if spec else None,
                value_scaling=None,
            )
        )
        # MLM wants a list (one object per band) or null; pystac's setter takes a single object.
        inputs[-1].properties["value_scaling"] = _value_scaling(model, value.name, shape)
    tasks = list(MLM_TASKS[metadata.task])
    outputs = []
    for value in graph.output:
        shape, dtype = _tensor(value, "outputs")
        spec = specs_out.get(value.name)
        description = _output_description(spec)
        outputs.append(
            ModelOutput.create(
                name=value.name,
                tasks=tasks,
                result=ResultStructure.create(
                    shape=shape, dim_order=_dims(shape, value.name), data_type=dtype
                ),
                description=description,
            )
        )
    return inputs, outputs


def _tensor(value: Any, kind: str) -> tuple[list[int], Any]:
    tensor = value.type.tensor_type
    dtype = ONNX_DTYPES.get(tensor.elem_type)
    if dtype is None:
        raise DescribeError(
            f"ONNX {kind[:-1]} has an element type MLM cannot name",
            file="model.onnx",
            field=f"{kind}.{value.name}",
            expected=sorted(ONNX_DTYPES.values()),
            found=f"onnx type {tensor.elem_type}",
        )
    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    return shape, dtype


def _dims(shape: Sequence[int], name: str) -> list[str]:
    order = DIM_ORDERS.get(len(shape))
    if order is None:
        raise DescribeError(
            "tensor rank has no dimension names",
            file="model.onnx",
            field=name,
            expected=f"rank in {sorted(DIM_ORDERS)}",
            found=len(shape),
        )
    return list(order)


def _value_scaling(
    model: onnx.ModelProto, input_name: str, shape: Sequence[int]
) -> list[dict[str, Any]] | None:
    """Per-channel z-score when the input feeds straight into an ``ai.onnx.ml`` Scaler.

    A Scaler computes ``(x - offset) * scale``: a z-score with mean ``offset`` and standard
    deviation ``1 / scale``. Any other graph gets ``None`` (no scaling known).
    """
    consumers = [n for n in model.graph.node if input_name in n.input]
    if (
        len(consumers) != 1
        or consumers[0].op_type != "Scaler"
        or consumers[0].domain != "ai.onnx.ml"
    ):
        return None
    attrs = {a.name: list(a.floats) for a in consumers[0].attribute}
    offset, scale = attrs.get("offset", []), attrs.get("scale", [])
    width = shape[-1] if shape and shape[-1] > 0 else max(len(offset), len(scale), 1)
    offset = offset * width if len(offset) == 1 else offset
    scale = scale * width if len(scale) == 1 else scale
    if len(offset) != width or len(scale) != width or any(s == 0 for s in scale):
        return None
    return [
        {"type": "z-score", "mean": round(float(o), 9), "stddev": round(1.0 / float(s), 9)}
        for o, s in zip(offset, scale, strict=True)
    ]


def _output_description(spec: TensorSpec | None) -> str | None:
    if spec is None:
        return None
    text = spec.description
    if spec.units:
        text = f"{text} ({spec.units})" if text else f"units: {spec.units}"
    return text or None


def _bands(inputs: Sequence[TensorSpec]) -> list[dict[str, Any]]:
    """STAC 1.1 band objects for every named input feature (MLM input bands refer to them)."""
    bands = []
    for spec in inputs:
        for feature in spec.features:
            band: dict[str, Any] = {"name": feature.name, "data_type": spec.dtype}
            if feature.description:
                band["description"] = f"{feature.description} [{feature.source}]"
            if feature.units:
                band["unit"] = feature.units
            bands.append(band)
    return bands


# --------------------------------------------------------------------------- standard fields
def _geometry(bbox: Sequence[float]) -> dict[str, Any]:
    west, south, east, north = bbox

    def ring(w: float, e: float) -> list[list[float]]:
        return [[w, south], [e, south], [e, north], [w, north], [w, south]]

    if west <= east:
        return {"type": "Polygon", "coordinates": [ring(west, east)]}
    # crosses the antimeridian: two polygons, as RFC 7946 section 3.1.9 asks
    return {"type": "MultiPolygon", "coordinates": [[ring(west, 180.0)], [ring(-180.0, east)]]}


def _processing(md: ModelMetadata) -> dict[str, Any]:
    fw = md.framework
    lineage = (
        f"{md.architecture} trained with {fw.source_library} {fw.source_library_version} "
        f"(seed {md.seed}) on {', '.join(d.id for d in md.training_data)}; exported to ONNX "
        f"opset {fw.opset} by {fw.producer} {fw.producer_version}. Full W3C PROV lineage: "
        f"asset 'provenance'."
    )
    return {
        "processing:lineage": lineage,
        "processing:software": {
            fw.source_library: fw.source_library_version,
            fw.producer: fw.producer_version,
            "onnx": fw.version,
        },
        "processing:datetime": _utc(md.created),
    }


def _utc(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _derived_from_links(md: ModelMetadata) -> list[pystac.Link]:
    """``derived_from`` links for training data whose source has a public address."""
    links = []
    for data in md.training_data:
        href = _source_href(data.source)
        if href is not None:
            links.append(
                pystac.Link(
                    rel="derived_from",
                    target=href,
                    media_type="text/html",
                    title=f"{data.title} ({data.path})",
                )
            )
    return links


def _source_href(source: str) -> str | None:
    if source.startswith("https://"):
        return source
    match = _PYPI_SOURCE.match(source)
    if match:
        return f"https://pypi.org/project/{match.group(1)}/{match.group(2)}/"
    return None


# --------------------------------------------------------------------------- assets
def _file_asset(
    href: str, data: Path | bytes, *, media_type: str, roles: list[str], title: str
) -> pystac.Asset:
    if isinstance(data, bytes):
        size: int = len(data)
        checksum = multihash(hashlib.sha256(data).hexdigest())
    else:
        digest = sha256_file(data, name=href)
        size, checksum = digest.size or 0, digest.multihash
    asset = pystac.Asset(href=f"./{href}", title=title, media_type=media_type, roles=roles)
    FileExtension.ext(asset).apply(checksum=checksum, size=size)
    return asset


def telemetry_files(candidate: Candidate) -> list[str]:
    """Relative names of the candidate's telemetry records, in the loader's order."""
    return [f"telemetry/{p.name}" for p in sorted((candidate.root / "telemetry").glob("*.json"))]


def _telemetry_key(name: str) -> str:
    return "telemetry-" + Path(name).stem


def _assets(candidate: Candidate, provenance_json: bytes) -> dict[str, pystac.Asset]:
    root = candidate.root
    assets: dict[str, pystac.Asset] = {}
    model = _file_asset(
        "model.onnx",
        candidate.onnx_path,
        media_type=ONNX_MEDIA_TYPE,
        roles=["mlm:model", "mlm:weights"],
        title="ONNX model (graph and weights)",
    )
    assets["model"] = model
    assets["xai"] = _file_asset(
        XAI_FILE,
        root / XAI_FILE,
        media_type="application/json",
        roles=["metadata", "xai"],
        title="SHAP attributions on validation samples",
    )
    assets["provenance"] = _file_asset(
        PROVENANCE_FILE,
        provenance_json,
        media_type="application/json",
        roles=["metadata", "provenance"],
        title="W3C PROV lineage (PROV-JSON)",
    )
    for name in telemetry_files(candidate):
        assets[_telemetry_key(name)] = _file_asset(
            name,
            root / name,
            media_type="application/json",
            roles=["metadata", "telemetry"],
            title=f"Energy and carbon record {Path(name).stem}",
        )
    signature = root / SIGNATURE_FILE
    if signature.is_file():
        assets["signature"] = _file_asset(
            SIGNATURE_FILE,
            signature,
            media_type=_signature_media_type(signature),
            roles=["signature"],
            title="OpenSSF model-signing bundle",
        )
    return assets


def _signature_media_type(path: Path) -> str:
    try:
        media = json.loads(path.read_text(encoding="utf-8")).get("mediaType")
    except (OSError, ValueError, AttributeError):
        return "application/octet-stream"
    return media if isinstance(media, str) and media else "application/json"


# --------------------------------------------------------------------------- kfm fields
def _kfm_fields(
    candidate: Candidate, assets: Mapping[str, pystac.Asset], care_extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    md, summary, xai = candidate.metadata, candidate.summary, candidate.xai
    fields: dict[str, Any] = {
        "kfm:model_family": md.model_family,
        "kfm:task": md.task,
        "kfm:seed": md.seed,
        "kfm:target": md.target.model_dump(mode="json"),
        "kfm:onnx_opset": md.framework.opset,
        "kfm:training_data": [d.model_dump(mode="json") for d in md.training_data],
        "kfm:metrics": {
            "units": summary.units,
            "training_period": [_utc(t) for t in summary.training_period],
            "validation_period": [_utc(t) for t in summary.validation_period],
            "splits": {k: m.model_dump(mode="json") for k, m in sorted(summary.metrics.items())},
        },
        "kfm:explainability": {
            "method": xai.method,
            "explainer": xai.explainer,
            "library_version": xai.shap_version,
            "features": list(xai.features),
            "mean_abs_attribution": dict(sorted(xai.mean_abs_attribution.items())),
            "seeds": list(xai.seeds),
            "sample_size": xai.sample_size,
            "asset": "xai",
        },
        "kfm:care": merge_care(md.care.model_dump(mode="json"), care_extra),
        "kfm:energy": [
            {
                "run_id": t.run_id,
                "kind": t.kind,
                "method": t.method,
                "estimator": t.estimator,
                "energy_kwh": t.energy_kwh,
                "emissions_kg_co2e": t.emissions_kg_co2e,
                "duration_s": t.duration_s,
                "grid_intensity_g_per_kwh": t.grid_intensity_g_per_kwh,
                "pue": t.pue,
                "location": t.location,
                "asset": _telemetry_key(name),
            }
            for t, name in zip(candidate.telemetry, telemetry_files(candidate), strict=True)
        ],
    }
    integrity = _integrity_block(candidate.root)
    if integrity is not None and "signature" in assets:
        fields["kfm:integrity"] = integrity
    return fields


def _integrity_block(root: Path) -> dict[str, Any] | None:
    path = root / INTEGRITY_FILE
    if not path.is_file():
        return None
    try:
        block = json.loads(path.read_text(encoding="utf-8"))["integrity"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DescribeError(
            "integrity record is unreadable",
            file=INTEGRITY_FILE,
            field="integrity",
            expected='{"integrity": {"hash", "signature", "immutable"}}',
            found=f"{type(error).__name__}: {error}",
        ) from error
    return dict(block) if isinstance(block, dict) else None


CARE_LIST_FIELDS = ("labels", "notices", "steward_contacts", "notes")


def merge_care(base: Mapping[str, Any], care_extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The candidate's CARE metadata with the sovereignty stage's additions applied."""
    care = dict(base)
    if care_extra is None:
        return care
    unknown = sorted(set(care_extra) - {"kfm:care"})
    if unknown or not isinstance(care_extra.get("kfm:care"), Mapping):
        raise DescribeError(
            "CARE additions must be one 'kfm:care' object",
            field="care_extra",
            expected='{"kfm:care": {...}}',
            found=unknown or type(care_extra.get("kfm:care")).__name__,
        )
    for key, value in care_extra["kfm:care"].items():
        if key in CARE_LIST_FIELDS and isinstance(value, list):
            merged = list(care.get(key, []))
            merged += [v for v in value if v not in merged]
            care[key] = merged
        else:
            care[key] = value
    return care
