"""Model input features derived from a gridded dataset.

A model's input columns are declared in its metadata (:class:`core.candidate.models.FeatureSpec`), each with
a ``source``: a dataset variable (``variable:t_coarse``), a coordinate (``coord:lat``) or a
time encoding (``time:hour_sin``). This module turns a dataset, or a dataset interpolated to a new
grid, into the ``(samples, features)`` matrix the model takes, in (time, lat, lon) order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from core.candidate.models import FeatureSpec
from core.errors import InferenceError

GRID_DIMS = ("time", "lat", "lon")


def feature_block(ds: xr.Dataset, features: Sequence[FeatureSpec], *, file: str = "") -> np.ndarray:
    """Stack the features of every (time, lat, lon) point of ``ds`` into a float32 matrix."""
    for dim in GRID_DIMS:
        if dim not in ds.dims:
            raise InferenceError(
                "dataset lacks a grid dimension",
                file=file,
                field=dim,
                expected=GRID_DIMS,
                found=tuple(ds.dims),
            )
    n_time, n_lat, n_lon = (ds.sizes[d] for d in GRID_DIMS)
    shape = (n_time, n_lat, n_lon)
    columns = [_column(ds, spec, shape, file) for spec in features]
    return np.stack([c.reshape(-1) for c in columns], axis=1).astype(np.float32, copy=False)


def _column(
    ds: xr.Dataset, spec: FeatureSpec, shape: tuple[int, int, int], file: str
) -> np.ndarray:
    kind, _, name = spec.source.partition(":")
    if kind == "variable":
        if name not in ds.data_vars:
            raise InferenceError(
                "dataset lacks a model input variable",
                file=file,
                field=name,
                expected=f"variable '{name}' (feature '{spec.name}')",
                found=sorted(map(str, ds.data_vars)),
            )
        return np.asarray(ds[name].transpose(*GRID_DIMS).values, dtype=np.float64)
    if kind == "coord":
        values = np.asarray(ds[name].values, dtype=np.float64)
        if name == "lat":
            return np.broadcast_to(values[None, :, None], shape)
        return np.broadcast_to(values[None, None, :], shape)
    hours = hour_of_day(ds["time"].values)
    angle = 2.0 * np.pi * hours / 24.0
    encoded = np.sin(angle) if name == "hour_sin" else np.cos(angle)
    return np.broadcast_to(encoded[:, None, None], shape)


def hour_of_day(times: np.ndarray) -> np.ndarray:
    """Fractional UTC hour of day of datetime64 values."""
    t = np.asarray(times).astype("datetime64[s]")
    day = t.astype("datetime64[D]")
    return (t - day).astype(np.int64) / 3600.0


def regrid_inputs(ds: xr.Dataset, lat: np.ndarray, lon: np.ndarray) -> xr.Dataset:
    """Bilinearly interpolate the dataset's variables to a new (lat, lon) grid.

    Downscaling predictors are smooth coarse fields; points outside the source grid take the
    nearest edge value rather than NaN, so a target grid may reach the domain's edge.
    """
    lat_sorted = ds.sortby("lat").sortby("lon")
    lat_c = np.clip(
        np.asarray(lat, dtype=np.float64), float(lat_sorted.lat.min()), float(lat_sorted.lat.max())
    )
    lon_c = np.clip(
        np.asarray(lon, dtype=np.float64), float(lat_sorted.lon.min()), float(lat_sorted.lon.max())
    )
    out = lat_sorted.interp(lat=lat_c, lon=lon_c, method="linear")
    return out.assign_coords(
        lat=np.asarray(lat, dtype=np.float64), lon=np.asarray(lon, dtype=np.float64)
    )
