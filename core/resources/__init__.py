"""Data shipped inside the package, found the same way in a checkout, an editable install and a wheel.

- ``governance/policy.toml`` — the default policy (:data:`DEFAULT_POLICY_PATH`);
- ``governance/regions.geojson`` — the fictional example steward regions of the demo
  (:data:`EXAMPLE_REGIONS_PATH`);
- ``standards/`` — the official schemas the offline checks validate against (the STAC extensions
  the items use, MLM v1.4.0, PROV-JSON), each folder with its licence and source
  (:data:`STANDARDS_PATH`, read by :mod:`core.describe.validate`; STAC core ships with pystac).

Everything is read through :mod:`importlib.resources`; nothing here looks outside the package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """The file-system path of a packaged data file (packages are installed unzipped)."""
    return Path(str(files(__name__).joinpath(*parts)))


DEFAULT_POLICY_PATH = resource_path("governance", "policy.toml")
EXAMPLE_REGIONS_PATH = resource_path("governance", "regions.geojson")
STANDARDS_PATH = resource_path("standards")
