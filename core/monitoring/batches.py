"""Production batches for monitoring, built from the real reanalysis data.

A batch is a netCDF file with the model's input variables on (time, lat, lon), like the
validation data (the observed target may be absent). The demo and the tests use three real
batches derived from the reference candidate's held-out times:

- ``in-distribution``: the held-out real time steps as they are;
- ``warming``: the same real fields under a uniform +3 K warming of the coarse input, the
  order of the end-of-century mean warming over North America in moderate scenarios (IPCC AR6
  WG1 Atlas, SSP2-4.5), i.e. a climate the model never saw;
- ``southern``: the same real fields south of 37.5 °N only, a different region than the
  continental domain the model was validated on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import xarray as xr

from core.errors import InferenceError

BatchKind = Literal["in-distribution", "warming", "southern"]
BATCH_KINDS: tuple[BatchKind, ...] = ("in-distribution", "warming", "southern")
WARMING_K = 3.0
SOUTHERN_LIMIT_DEG = 37.5


def make_batch(
    validation_path: Path, kind: BatchKind, out: Path, *, coarse_variable: str = "t_coarse"
) -> Path:
    """Write a monitoring batch of ``kind`` derived from a candidate's validation data."""
    with xr.open_dataset(validation_path, engine="netcdf4") as source:
        ds = source.load()
    if coarse_variable not in ds:
        raise InferenceError(
            "validation data lacks the coarse input",
            file=str(validation_path),
            field=coarse_variable,
            expected="a variable to shift",
            found=sorted(map(str, ds.data_vars)),
        )
    if kind == "warming":
        shifted = ds[coarse_variable] + WARMING_K
        ds = ds.assign({coarse_variable: shifted.assign_attrs(ds[coarse_variable].attrs)})
        ds.attrs["kfm_batch"] = (
            f"held-out reanalysis times with the coarse input warmed by {WARMING_K} K"
        )
    elif kind == "southern":
        ds = ds.sel(lat=ds.lat[ds.lat <= SOUTHERN_LIMIT_DEG])
        ds.attrs["kfm_batch"] = f"held-out reanalysis times south of {SOUTHERN_LIMIT_DEG} N only"
    else:
        ds.attrs["kfm_batch"] = "held-out reanalysis times, unchanged"
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    encoding = {str(name): {"zlib": False} for name in ds.data_vars}
    ds.to_netcdf(out, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return out
