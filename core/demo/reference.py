"""The reference candidate: statistical downscaling of real NCEP/NCAR reanalysis temperature.

Data: ``hvsampledata`` (PyPI, BSD-3) ships ``_data/air_temperature_small.nc``, 4x-daily NCEP/NCAR
reanalysis air temperature at sigma 995 (20 times x 25 lat x 53 lon, 2.5°, North America,
24-28 Feb 2014). Nothing is downloaded.

Task: recover the fine (2.5°) field from a coarse one. The coarse field is the 2x2 block mean
(5°) interpolated bilinearly back to the fine grid (``t_coarse``, also the skill baseline). A
scikit-learn gradient-boosting model with a fixed seed learns the fine field from ``t_coarse``,
latitude, longitude and the hour of day; the last 4 time steps are held out for validation. The
model is exported to ONNX with skl2onnx, explained with SHAP (TreeExplainer on the source model),
its training run recorded as PROV-JSON and its energy estimated with Green Algorithms.

Everything is deterministic: building twice gives byte-identical files, in one process or in
two with different hash seeds (skl2onnx's opset list is put in domain order before saving).
``python -m core.demo.reference OUT [--version V]`` builds it in a fresh interpreter; ``kfm ci``
regenerates the reference's ``model.onnx`` that way. The training PROV records this module as the
builder (``kfm:builder``: :data:`BUILDER`), so the reference is recognised by what it records,
not by where it lies.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from datetime import UTC, datetime
from importlib import metadata as pkg_metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from core.candidate.features import feature_block, regrid_inputs
from core.candidate.models import (
    CareMetadata,
    DataReference,
    Domain,
    FeatureSpec,
    Framework,
    Metrics,
    ModelMetadata,
    ModelSummary,
    TargetSpec,
    TensorSpec,
    XaiSample,
    XaiSummary,
)
from core.errors import CandidateError, KfmError
from core.jsonio import write_json
from core.monitoring.energy import EnergyAssumptions, estimate_run

BUILDER = "core.demo.reference"
"""The identity the training PROV records: this module's name, as ``python -m`` runs it."""
SEED = 42
N_VALIDATION_TIMES = 4
COARSEN = 2
HYPERPARAMETERS: dict[str, int | float | str | bool | None] = {
    "n_estimators": 120,
    "max_depth": 4,
    "learning_rate": 0.15,
    "subsample": 0.7,
    "loss": "squared_error",
}
SHAP_SAMPLE = 200
SHAP_SEEDS = (SEED, SEED + 1)
# Reproducible-build timestamp (like SOURCE_DATE_EPOCH, which overrides it): the build records
# this, not the wall clock, so rebuilding gives the same bytes.
DEFAULT_BUILD_TIME = datetime(2026, 1, 1, tzinfo=UTC)
# CPU seconds per (tree x sample x feature) for sklearn's gradient boosting, measured on the
# project's 2-core development machines; turns the training's operation count into a duration.
SECONDS_PER_TREE_SAMPLE_FEATURE = 4.0e-7

FEATURES = (
    FeatureSpec(
        name="t_coarse",
        source="variable:t_coarse",
        units="K",
        description="Coarse (5 degree block mean) air temperature interpolated to the point",
    ),
    FeatureSpec(name="lat", source="coord:lat", units="degrees_north", description="Latitude"),
    FeatureSpec(name="lon", source="coord:lon", units="degrees_east", description="Longitude"),
    FeatureSpec(
        name="hour_sin", source="time:hour_sin", units="1", description="sin(2 pi hour/24), UTC"
    ),
    FeatureSpec(
        name="hour_cos", source="time:hour_cos", units="1", description="cos(2 pi hour/24), UTC"
    ),
)


def source_data_path() -> Path:
    """The reanalysis file inside the installed hvsampledata package."""
    import hvsampledata

    return Path(hvsampledata.__file__).parent / "_data" / "air_temperature_small.nc"


def build_time() -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), tz=UTC) if epoch else DEFAULT_BUILD_TIME


def _iso(t: np.datetime64 | datetime) -> str:
    if isinstance(t, datetime):
        return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(np.datetime_as_string(np.asarray(t).astype("datetime64[s]"))) + "Z"


def prepare_fields() -> xr.Dataset:
    """Fine target ``air`` and coarse predictor ``t_coarse`` on (time, lat, lon), lon in -180..180."""
    path = source_data_path()
    if not path.exists():
        raise CandidateError("reference data not found; is hvsampledata installed?", file=str(path))
    with xr.open_dataset(path, engine="netcdf4") as raw:
        air = raw["air"].load().astype(np.float64)
    air = air.assign_coords(
        lon=(air.lon.astype(np.float64) - 360.0), lat=air.lat.astype(np.float64)
    )
    air = air.sortby("lat").sortby("lon")
    coarse = air.coarsen(lat=COARSEN, lon=COARSEN, boundary="trim").mean()
    # Edge points beyond the outermost coarse centres take the edge value (clipped coordinates).
    t_coarse = regrid_inputs(coarse.to_dataset(name="t"), air.lat.values, air.lon.values)["t"]
    ds = xr.Dataset(
        {
            "air": air.astype(np.float32).assign_attrs(
                standard_name="air_temperature",
                long_name="Air temperature at sigma 995 (observed)",
                units="K",
            ),
            "t_coarse": t_coarse.astype(np.float32).assign_attrs(
                long_name="Coarse air temperature (5 degree block mean, bilinear to the 2.5 degree grid)",
                units="K",
            ),
        }
    )
    ds["lat"].attrs.update(standard_name="latitude", units="degrees_north")
    ds["lon"].attrs.update(standard_name="longitude", units="degrees_east")
    ds.attrs.update(
        Conventions="CF-1.8",
        title="KFM reference downscaling data from NCEP/NCAR reanalysis (hvsampledata)",
        source="hvsampledata _data/air_temperature_small.nc (NCEP/NCAR reanalysis, BSD-3 package)",
    )
    return ds.transpose("time", "lat", "lon")


def area_weights(ds: xr.Dataset) -> np.ndarray:
    """cos(latitude) weights broadcast to (time, lat, lon), flattened like feature_block."""
    w = np.cos(np.deg2rad(ds["lat"].values))
    return np.broadcast_to(
        w[None, :, None], (ds.sizes["time"], ds.sizes["lat"], ds.sizes["lon"])
    ).reshape(-1)


def skill(pred: np.ndarray, obs: np.ndarray, base: np.ndarray, w: np.ndarray) -> Metrics:
    """Area-weighted RMSE, MAE and bias of the model and of the baseline."""

    def wmean(v: np.ndarray) -> float:
        return float(np.sum(v * w) / np.sum(w))

    err, berr = pred - obs, base - obs
    return Metrics(
        rmse=round(float(np.sqrt(wmean(err**2))), 6),
        mae=round(wmean(np.abs(err)), 6),
        bias=round(wmean(err), 6),
        baseline_rmse=round(float(np.sqrt(wmean(berr**2))), 6),
        baseline_mae=round(wmean(np.abs(berr)), 6),
        n_samples=int(obs.size),
    )


def _write_netcdf(ds: xr.Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    encoding: dict[str, dict[str, Any]] = {
        str(name): {"zlib": False, "dtype": "float32"} for name in ds.data_vars
    }
    encoding["time"] = {
        "units": "hours since 1800-01-01 00:00:00",
        "calendar": "standard",
        "dtype": "float64",
    }
    ds.to_netcdf(path, engine="netcdf4", format="NETCDF4", encoding=encoding)


def build_reference_candidate(out: Path | str, *, version: str = "1.0.0") -> Path:
    """Build the complete reference candidate into ``out`` (replaced if it exists)."""
    import shap
    import skl2onnx
    import sklearn
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import GradientBoostingRegressor

    from core.candidate.inference import make_session, run_matrix
    from core.demo.reference_prov import training_prov_document

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "data").mkdir(parents=True)
    when = build_time()

    ds = prepare_fields()
    train = ds.isel(time=slice(0, ds.sizes["time"] - N_VALIDATION_TIMES))
    valid = ds.isel(time=slice(ds.sizes["time"] - N_VALIDATION_TIMES, None))
    x_train = feature_block(train, FEATURES)
    y_train = train["air"].values.reshape(-1).astype(np.float64)
    model = GradientBoostingRegressor(random_state=SEED, **HYPERPARAMETERS)  # type: ignore[arg-type]
    model.fit(x_train, y_train)

    onnx_model = convert_sklearn(
        model,
        name="kfm_downscaler",
        initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
        final_types=[("air_temperature", FloatTensorType([None, 1]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onnx_model.doc_string = "KFM reference downscaler (gradient boosting), NCEP/NCAR reanalysis"
    sort_opset_imports(onnx_model)
    (out / "model.onnx").write_bytes(onnx_model.SerializeToString(deterministic=True))

    _write_netcdf(valid, out / "data" / "validation.nc")
    _write_netcdf(train, out / "data" / "reference.nc")

    metadata = _metadata(
        version, when, train, valid, model, onnx_model, skl2onnx.__version__, sklearn.__version__
    )
    write_json(out / "model_metadata.json", metadata.model_dump(mode="json"))

    session = make_session(out / "model.onnx")
    x_valid = feature_block(valid, FEATURES)
    pred_valid = run_matrix(session, metadata, x_valid)
    pred_train = run_matrix(session, metadata, x_train)
    summary = ModelSummary(
        schema_version="1.0",
        name=metadata.name,
        version=metadata.version,
        units="K",
        metrics={
            "train": skill(
                pred_train, y_train, train["t_coarse"].values.reshape(-1), area_weights(train)
            ),
            "validation": skill(
                pred_valid,
                valid["air"].values.reshape(-1).astype(np.float64),
                valid["t_coarse"].values.reshape(-1),
                area_weights(valid),
            ),
        },
        training_period=(metadata.training_domain.time_start, metadata.training_domain.time_end),
        validation_period=(_dt(valid.time.values[0]), _dt(valid.time.values[-1])),
    )
    write_json(out / "model_summary.json", summary.model_dump(mode="json"))

    explainer = shap.TreeExplainer(model)
    xai = _xai_summary(explainer, x_valid, pred_valid, shap.__version__)
    write_json(out / "xai" / "shap_summary.json", xai.model_dump(mode="json"))

    work = int(HYPERPARAMETERS["n_estimators"]) * x_train.shape[0] * x_train.shape[1]  # type: ignore[arg-type]
    duration = work * SECONDS_PER_TREE_SAMPLE_FEATURE
    telemetry = estimate_run(
        f"train-{metadata.name}-{metadata.version}",
        "training",
        duration,
        EnergyAssumptions(),
        notes=(
            f"duration estimated from the training's operation count ({work} tree x sample x feature "
            f"steps at {SECONDS_PER_TREE_SAMPLE_FEATURE} s each), not measured, so rebuilds are identical",
        ),
    )
    write_json(out / "telemetry" / "training.json", telemetry.model_dump(mode="json"))

    prov = training_prov_document(metadata, telemetry, when, duration, builder=BUILDER)
    (out / "provenance").mkdir(exist_ok=True)
    (out / "provenance" / "training.prov.json").write_text(prov, encoding="utf-8")
    return out


def sort_opset_imports(model: Any) -> None:
    """Put an ONNX model's ``opset_import`` in domain order, in place.

    skl2onnx builds the list from a set, so its order follows the interpreter's string-hash seed
    and the same model would be saved as different bytes in another process.
    """
    from onnx.helper import make_opsetid

    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    model.opset_import.extend(make_opsetid(domain, version) for domain, version in opsets)


def _dt(value: np.datetime64) -> datetime:
    return datetime.fromisoformat(_iso(value).replace("Z", "+00:00"))


def _metadata(
    version: str,
    when: datetime,
    train: xr.Dataset,
    valid: xr.Dataset,
    model: Any,
    onnx_model: Any,
    skl2onnx_version: str,
    sklearn_version: str,
) -> ModelMetadata:
    import onnx

    path = source_data_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    hv_version = pkg_metadata.version("hvsampledata")
    nodes = sum(int(t.tree_.node_count) for t in model.estimators_.ravel())
    lat, lon = train["lat"].values, train["lon"].values
    return ModelMetadata(
        schema_version="1.0",
        name="kfm-downscaler-ncep-air",
        version=version,
        model_family="kfm-climate-downscaling",
        title="KFM reference downscaler: NCEP/NCAR air temperature, 5 degree to 2.5 degree",
        description=(
            "Gradient-boosting statistical downscaling of near-surface air temperature. Inputs: the "
            "coarse (5 degree) field interpolated to the target point, latitude, longitude and hour of "
            "day. Trained on real NCEP/NCAR reanalysis (hvsampledata), last 4 time steps held out."
        ),
        task="downscaling",
        architecture="GradientBoostingRegressor",
        framework=Framework(
            name="ONNX",
            version=onnx.__version__,
            opset=next(
                int(o.version) for o in onnx_model.opset_import if o.domain in ("", "ai.onnx")
            ),
            producer="skl2onnx",
            producer_version=skl2onnx_version,
            source_library="scikit-learn",
            source_library_version=sklearn_version,
        ),
        inputs=(
            TensorSpec(
                name="features",
                shape=(-1, len(FEATURES)),
                dtype="float32",
                description="One row per (time, lat, lon) point",
                features=FEATURES,
            ),
        ),
        outputs=(
            TensorSpec(
                name="air_temperature",
                shape=(-1, 1),
                dtype="float32",
                units="K",
                description="Downscaled air temperature at sigma 995",
            ),
        ),
        target=TargetSpec(variable="air", standard_name="air_temperature", units="K"),
        baseline_variable="t_coarse",
        training_data=(
            DataReference(
                id="ncep-ncar-reanalysis-air-2014-02",
                title="NCEP/NCAR reanalysis 4x-daily air temperature",
                role="training",
                source=f"PyPI hvsampledata {hv_version}",
                path="_data/air_temperature_small.nc",
                license="BSD-3-Clause (hvsampledata); NOAA PSL data, public domain",
                sha256=digest,
                citation="Kalnay et al. (1996), The NCEP/NCAR 40-Year Reanalysis Project, BAMS 77, 437-471",
            ),
        ),
        hyperparameters=dict(HYPERPARAMETERS),
        seed=SEED,
        total_parameters=nodes,
        training_domain=Domain(
            bbox=(float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())),
            time_start=_dt(train.time.values[0]),
            time_end=_dt(train.time.values[-1]),
        ),
        created=when,
        license="MIT",
        care=CareMetadata(
            authority_to_control="Outputs over steward-owned regions are governed by the region's steward",
            scope="public-generalized",
            labels=("bc_provenance",),
            steward_contacts=(),
            notes=(
                "Reanalysis input; no Indigenous knowledge or community data was used in training",
            ),
            collective_benefit="Public hazard screening of temperature extremes",
            responsibility="KFM Climate AI Working Group",
            ethics="Screened by the FAIR+CARE Council before promotion",
        ),
    )


def _xai_summary(
    explainer: Any, x_valid: np.ndarray, predictions: np.ndarray, shap_version: str
) -> XaiSummary:
    """SHAP on two seeded validation samples; predictions are the ONNX model's, for additivity checks."""
    names = [f.name for f in FEATURES]
    by_seed: dict[str, dict[str, float]] = {}
    first: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    base = float(np.ravel(explainer.expected_value)[0])
    for seed in SHAP_SEEDS:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(x_valid.shape[0], size=SHAP_SAMPLE, replace=False))
        values = np.asarray(explainer.shap_values(x_valid[idx]), dtype=np.float64)
        by_seed[str(seed)] = {
            n: round(float(v), 8) for n, v in zip(names, np.abs(values).mean(axis=0), strict=True)
        }
        if first is None:
            first = (idx, x_valid[idx].astype(np.float64), values)
    assert first is not None
    idx, inputs, values = first
    samples = tuple(
        XaiSample(
            index=int(i),
            inputs=tuple(round(float(v), 6) for v in row),
            attributions=tuple(round(float(v), 8) for v in attr),
            prediction=round(float(predictions[i]), 6),
        )
        for i, row, attr in zip(idx, inputs, values, strict=True)
    )
    return XaiSummary(
        schema_version="1.0",
        method="shap",
        explainer="shap.TreeExplainer (scikit-learn source model)",
        shap_version=shap_version,
        features=tuple(names),
        base_value=round(base, 8),
        mean_abs_attribution=by_seed[str(SHAP_SEEDS[0])],
        seeds=SHAP_SEEDS,
        mean_abs_attribution_by_seed=by_seed,
        sample_size=SHAP_SAMPLE,
        samples=samples,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m core.demo.reference OUT [--version V]``; exit 2 on an error."""
    parser = argparse.ArgumentParser(
        prog="python -m core.demo.reference", description="Build the reference candidate."
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--version", default="1.0.0")
    args = parser.parse_args(argv)
    try:
        build_reference_candidate(args.out, version=args.version)
    except KfmError as error:
        print(f"error: {error.diagnostics()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
