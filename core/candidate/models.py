"""Domain types of a candidate: everything it holds, as frozen pydantic models.

A candidate directory holds ``model_metadata.json`` (:class:`ModelMetadata`),
``model_summary.json`` (:class:`ModelSummary`), ``xai/shap_summary.json`` (:class:`XaiSummary`),
``provenance/training.prov.json`` (:class:`ProvenanceBundle`) and ``telemetry/*.json``
(:class:`Telemetry`). ``kfm schemas export`` writes their JSON Schemas into ``schemas/``.
Models are strict (no silent string-to-number coercion), refuse unknown fields and NaN/inf.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Tier = Literal["internal", "public-generalized", "restricted", "withheld"]
SCHEMA_VERSION = "1.0"


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must carry a timezone (e.g. 2014-02-24T00:00:00Z)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Record(BaseModel):
    """Base of every domain record: immutable, strict, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


# --------------------------------------------------------------------------- metadata
class FeatureSpec(Record):
    """One column of an input tensor and how it is derived from a dataset.

    ``source`` is ``variable:<name>`` (a dataset variable), ``coord:lat`` / ``coord:lon``, or
    ``time:hour_sin`` / ``time:hour_cos`` (hour of day, UTC, on the unit circle).
    """

    name: str = Field(min_length=1)
    source: str = Field(
        pattern=r"^(variable:[A-Za-z_][A-Za-z0-9_]*|coord:(lat|lon)|time:hour_(sin|cos))$"
    )
    units: str
    description: str = ""


class TensorSpec(Record):
    """A named model input or output: shape (-1 = any size), element type, columns."""

    name: str = Field(min_length=1)
    shape: tuple[int, ...] = Field(min_length=1)
    dtype: Literal["float32", "float64", "int64", "int32"]
    units: str = ""
    description: str = ""
    features: tuple[FeatureSpec, ...] = ()


class Framework(Record):
    """The serialization format and the tools that produced it."""

    name: Literal["ONNX"]
    version: str = Field(
        pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$", description="ONNX package version, semver"
    )
    opset: int = Field(ge=1)
    producer: str
    producer_version: str
    source_library: str
    source_library_version: str


class TargetSpec(Record):
    """The observed variable the model predicts (CF-style)."""

    variable: str
    standard_name: str
    units: str


class Domain(Record):
    """Where and when the model was trained: bbox (west, south, east, north) and a time range."""

    bbox: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat]
    time_start: AwareDatetime
    time_end: AwareDatetime


class DataReference(Record):
    """A dataset the model was trained or validated on, with its origin and licence."""

    id: str
    title: str
    role: Literal["training", "validation", "reference"]
    source: str = Field(description="Where it comes from, e.g. 'PyPI hvsampledata 0.1.5'")
    path: str = Field(description="Path of the file inside its source package or archive")
    license: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    citation: str = ""


class CareMetadata(Record):
    """CARE principles metadata the candidate declares (sovereignty screening adds to it)."""

    authority_to_control: str
    scope: Tier
    labels: tuple[str, ...] = ()
    steward_contacts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    collective_benefit: str = ""
    responsibility: str = ""
    ethics: str = ""


class ModelMetadata(Record):
    """``model_metadata.json``: what the model is, how it was made, what it consumes."""

    schema_version: Literal["1.0"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str = Field(pattern=r"^v?[0-9]+\.[0-9]+\.[0-9]+([.-][0-9A-Za-z.-]+)?$")
    model_family: str
    title: str
    description: str
    task: Literal["downscaling", "regression", "anomaly-detection", "hazard", "hydrology"]
    architecture: str
    framework: Framework
    inputs: tuple[TensorSpec, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)
    target: TargetSpec
    baseline_variable: str | None = None
    validation_data: str = "data/validation.nc"
    reference_data: str = "data/reference.nc"
    training_data: tuple[DataReference, ...] = Field(min_length=1)
    hyperparameters: dict[str, int | float | str | bool | None]
    seed: int = Field(ge=0)
    total_parameters: int = Field(ge=0)
    training_domain: Domain
    created: AwareDatetime
    license: str
    care: CareMetadata
    pretrained: bool = False


# --------------------------------------------------------------------------- summary
class Metrics(Record):
    """Skill of the model and of the baseline on one split (area-weighted where gridded)."""

    rmse: NonNegative
    mae: NonNegative
    bias: FiniteFloat
    baseline_rmse: NonNegative
    baseline_mae: NonNegative
    n_samples: int = Field(ge=1)


class ModelSummary(Record):
    """``model_summary.json``: the training-time evaluation of the model."""

    schema_version: Literal["1.0"]
    name: str
    version: str
    metrics: dict[Literal["train", "validation"], Metrics]
    units: str
    training_period: tuple[AwareDatetime, AwareDatetime]
    validation_period: tuple[AwareDatetime, AwareDatetime]


# --------------------------------------------------------------------------- XAI
class XaiSample(Record):
    """One explained sample: inputs, per-feature attributions, the explained prediction."""

    index: int = Field(ge=0)
    inputs: tuple[FiniteFloat, ...]
    attributions: tuple[FiniteFloat, ...]
    prediction: FiniteFloat


class XaiSummary(Record):
    """``xai/shap_summary.json``: SHAP attributions of the model on validation samples."""

    schema_version: Literal["1.0"]
    method: Literal["shap"]
    explainer: str
    shap_version: str
    features: tuple[str, ...] = Field(min_length=1)
    base_value: FiniteFloat
    mean_abs_attribution: dict[str, NonNegative]
    seeds: tuple[int, ...] = Field(min_length=1)
    mean_abs_attribution_by_seed: dict[str, dict[str, NonNegative]]
    sample_size: int = Field(ge=1)
    samples: tuple[XaiSample, ...] = Field(min_length=1)


# --------------------------------------------------------------------------- provenance
class ProvenanceBundle(Record):
    """``provenance/training.prov.json``: a PROV-JSON document of the training run."""

    document: dict[str, Any]
    activities: tuple[str, ...] = Field(min_length=1)
    entities: tuple[str, ...] = Field(min_length=1)
    agents: tuple[str, ...] = Field(min_length=1)


# --------------------------------------------------------------------------- telemetry
class Hardware(Record):
    """The hardware a figure refers to (assumed, for estimates)."""

    cpu: str
    cores: int = Field(ge=1)
    memory_gb: NonNegative
    gpu: str | None = None


class Telemetry(Record):
    """``telemetry/*.json``: energy and carbon of one run, measured or estimated."""

    schema_version: Literal["1.0"]
    run_id: str
    kind: Literal["training", "inference", "monitoring"]
    method: Literal["measured", "estimated"]
    estimator: str
    energy_kwh: NonNegative
    emissions_kg_co2e: NonNegative
    duration_s: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    hardware: Hardware
    grid_intensity_g_per_kwh: NonNegative
    pue: Annotated[float, Field(ge=1, allow_inf_nan=False)]
    location: str
    notes: tuple[str, ...] = ()


DOMAIN_TYPES: dict[str, type[BaseModel]] = {
    "model_metadata": ModelMetadata,
    "model_summary": ModelSummary,
    "xai_summary": XaiSummary,
    "provenance_bundle": ProvenanceBundle,
    "telemetry": Telemetry,
    "care_metadata": CareMetadata,
}
