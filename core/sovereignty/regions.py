"""Steward-owned regions: the boundaries, tiers, Local Contexts labels and consent of each nation.

A regions file is a GeoJSON ``FeatureCollection`` (or a GeoPackage layer with the same columns)
whose features are Polygons or MultiPolygons in WGS 84 longitude/latitude, each with these
properties (schema: ``schemas/regions.schema.json``, exported by :func:`regions_json_schema`):

``region_id``   unique id, lower case (``[a-z0-9][a-z0-9_-]*``)
``nation``      the nation or community the land belongs to
``steward_id``  the roster id of the steward who speaks for the region
``tier``        ``internal`` | ``public-generalized`` | ``restricted`` | ``withheld``
``labels``      Local Contexts TK/BC Label ids (:data:`LOCAL_CONTEXTS`), e.g. ``tk_secret_sacred``
``notices``     Local Contexts Notice ids, e.g. ``tk_notice``
``consent``     ``{model_family: granted | pending | withdrawn | denied}``; a family absent from
                the table has no consent
``example``     ``true`` for the fictional demo regions shipped in ``governance/regions.geojson``

Every problem is a :class:`~core.errors.SovereigntyError` naming the file, the field (for instance
``features[2].properties.tier``), what was expected and what was found. Loading is the only I/O
here; :class:`RegionSet` is a frozen value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import shapely
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from shapely.errors import GEOSException
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from core.errors import SovereigntyError

Tier = Literal["internal", "public-generalized", "restricted", "withheld"]
ConsentState = Literal["granted", "pending", "withdrawn", "denied"]
LabelKind = Literal["tk_label", "bc_label", "notice"]

REGIONS_SCHEMA_ID = "https://kfm.example/schemas/regions.schema.json"


@dataclass(frozen=True)
class LocalContextsLabel:
    """One recognised Local Contexts Label or Notice and what the screen does with it."""

    id: str
    kind: LabelKind
    name: str
    withholds: bool = False  # publish nothing in the region (plus the withheld buffer)


def _table(*labels: LocalContextsLabel) -> dict[str, LocalContextsLabel]:
    return {label.id: label for label in labels}


# Local Contexts Labels and Notices (localcontexts.org/labels). Only TK Secret / Sacred changes
# what is published; every other label travels with the outputs into the report and STAC item.
LOCAL_CONTEXTS: dict[str, LocalContextsLabel] = _table(
    LocalContextsLabel("tk_attribution", "tk_label", "TK Attribution"),
    LocalContextsLabel("tk_clan", "tk_label", "TK Clan"),
    LocalContextsLabel("tk_family", "tk_label", "TK Family"),
    LocalContextsLabel("tk_multiple_communities", "tk_label", "TK Multiple Communities"),
    LocalContextsLabel("tk_community_voice", "tk_label", "TK Community Voice"),
    LocalContextsLabel("tk_creative", "tk_label", "TK Creative"),
    LocalContextsLabel("tk_verified", "tk_label", "TK Verified"),
    LocalContextsLabel("tk_non_verified", "tk_label", "TK Non-Verified"),
    LocalContextsLabel("tk_seasonal", "tk_label", "TK Seasonal"),
    LocalContextsLabel("tk_women_general", "tk_label", "TK Women General"),
    LocalContextsLabel("tk_men_general", "tk_label", "TK Men General"),
    LocalContextsLabel("tk_women_restricted", "tk_label", "TK Women Restricted"),
    LocalContextsLabel("tk_men_restricted", "tk_label", "TK Men Restricted"),
    LocalContextsLabel("tk_culturally_sensitive", "tk_label", "TK Culturally Sensitive"),
    LocalContextsLabel("tk_secret_sacred", "tk_label", "TK Secret / Sacred", withholds=True),
    LocalContextsLabel("tk_open_to_commercialization", "tk_label", "TK Open to Commercialization"),
    LocalContextsLabel("tk_non_commercial", "tk_label", "TK Non-Commercial"),
    LocalContextsLabel("tk_community_use_only", "tk_label", "TK Community Use Only"),
    LocalContextsLabel("tk_outreach", "tk_label", "TK Outreach"),
    LocalContextsLabel("bc_provenance", "bc_label", "BC Provenance"),
    LocalContextsLabel("bc_multiple_communities", "bc_label", "BC Multiple Communities"),
    LocalContextsLabel("bc_clan", "bc_label", "BC Clan"),
    LocalContextsLabel("bc_consent_verified", "bc_label", "BC Consent Verified"),
    LocalContextsLabel("bc_consent_non_verified", "bc_label", "BC Consent Non-Verified"),
    LocalContextsLabel("bc_research_use", "bc_label", "BC Research Use"),
    LocalContextsLabel("bc_non_commercial", "bc_label", "BC Non-Commercial"),
    LocalContextsLabel("bc_outreach", "bc_label", "BC Outreach"),
    LocalContextsLabel("tk_notice", "notice", "TK Notice"),
    LocalContextsLabel("bc_notice", "notice", "BC Notice"),
    LocalContextsLabel("attribution_incomplete_notice", "notice", "Attribution Incomplete Notice"),
    LocalContextsLabel("open_to_collaboration_notice", "notice", "Open to Collaboration Notice"),
)

_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class RegionProperties(BaseModel):
    """The properties of one region feature (what a steward declares about their land)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region_id: str = Field(pattern=_ID_PATTERN, description="Unique id of the region.")
    nation: str = Field(min_length=1, description="Nation or community whose land this is.")
    steward_id: str = Field(min_length=1, description="Roster id of the region's steward.")
    tier: Tier = Field(description="What may be published inside the region.")
    labels: tuple[str, ...] = Field(default=(), description="Local Contexts TK/BC Label ids.")
    notices: tuple[str, ...] = Field(default=(), description="Local Contexts Notice ids.")
    consent: dict[str, ConsentState] = Field(
        default_factory=dict, description="Consent state per model family."
    )
    example: bool = Field(False, description="True for fictional demo regions (not real lands).")
    note: str | None = Field(None, description="Free text shown to reviewers.")

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_label_ids(value, ("tk_label", "bc_label"))

    @field_validator("notices")
    @classmethod
    def _known_notices(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_label_ids(value, ("notice",))


def _check_label_ids(value: tuple[str, ...], kinds: tuple[str, ...]) -> tuple[str, ...]:
    allowed = sorted(k for k, label in LOCAL_CONTEXTS.items() if label.kind in kinds)
    for item in value:
        if item not in allowed:
            raise ValueError(f"unknown id {item!r}; recognised: {', '.join(allowed)}")
    return tuple(sorted(set(value)))


class PolygonGeometry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["Polygon"]
    coordinates: list[list[list[float]]] = Field(min_length=1)


class MultiPolygonGeometry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["MultiPolygon"]
    coordinates: list[list[list[list[float]]]] = Field(min_length=1)


class RegionFeature(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    properties: RegionProperties
    geometry: PolygonGeometry | MultiPolygonGeometry = Field(discriminator="type")


class RegionsDocument(BaseModel):
    """A regions file: a GeoJSON FeatureCollection of steward regions (lon/lat, WGS 84)."""

    model_config = ConfigDict(extra="allow", title="KFM steward regions")

    type: Literal["FeatureCollection"]
    features: list[RegionFeature] = Field(min_length=1)


def regions_json_schema() -> dict[str, Any]:
    """The JSON Schema of a regions file (written to ``schemas/regions.schema.json``)."""
    schema = RegionsDocument.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": REGIONS_SCHEMA_ID,
        **schema,
    }


@dataclass(frozen=True)
class Region:
    """One steward region: its declared properties and its geometry (lon/lat)."""

    properties: RegionProperties
    geometry: BaseGeometry

    @property
    def region_id(self) -> str:
        return self.properties.region_id

    @property
    def tier(self) -> Tier:
        return self.properties.tier

    @property
    def secret_sacred(self) -> bool:
        return any(LOCAL_CONTEXTS[label].withholds for label in self.properties.labels)

    def consent_for(self, model_family: str) -> ConsentState | None:
        """The consent state for a model family; ``None`` when the steward recorded none."""
        return self.properties.consent.get(model_family)

    def withheld_reason(self, model_family: str | None = None) -> str | None:
        """Why nothing is published in this region (``None`` when outputs may be published)."""
        if self.tier == "withheld":
            return "tier withheld"
        if self.secret_sacred:
            return "tk_secret_sacred label"
        if model_family is not None:
            state = self.consent_for(model_family)
            if state != "granted":
                return f"consent {state or 'not recorded'} for {model_family}"
        return None


@dataclass(frozen=True)
class RegionSet:
    """The regions of one regions file, sorted by ``region_id``; never empty."""

    regions: tuple[Region, ...]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if not self.regions:
            raise SovereigntyError(
                "a regions file with no regions protects nobody",
                file=self.source,
                field="features",
                expected="at least one region",
                found="none",
            )

    def __iter__(self) -> Iterator[Region]:
        return iter(self.regions)

    def __len__(self) -> int:
        return len(self.regions)

    def get(self, region_id: str) -> Region:
        for region in self.regions:
            if region.region_id == region_id:
                return region
        raise SovereigntyError(
            "no such region",
            file=self.source,
            field="region_id",
            expected=[r.region_id for r in self.regions],
            found=region_id,
        )

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat) over all regions."""
        b = shapely.bounds(shapely.union_all([r.geometry for r in self.regions]))
        return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def regions_from_geojson(document: Any, *, source: str = "<memory>") -> RegionSet:
    """Check a parsed GeoJSON FeatureCollection and build its :class:`RegionSet`."""
    try:
        parsed = RegionsDocument.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        raise SovereigntyError(
            first["msg"],
            file=source,
            field=_field_path(first["loc"]),
            expected=_expected_for(first["loc"]),
            found=first.get("input"),
        ) from error
    regions: list[Region] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(parsed.features):
        props = feature.properties
        if props.region_id in seen:
            raise SovereigntyError(
                "duplicate region_id",
                file=source,
                field=f"features[{index}].properties.region_id",
                expected=f"an id not already used by features[{seen[props.region_id]}]",
                found=props.region_id,
            )
        seen[props.region_id] = index
        geometry = _checked_geometry(feature.geometry.model_dump(), source, index)
        regions.append(Region(properties=props, geometry=geometry))
    regions.sort(key=lambda r: r.region_id)
    return RegionSet(regions=tuple(regions), source=source)


def load_regions(path: Path | str) -> RegionSet:
    """Read a regions file: GeoJSON (``.geojson``/``.json``) or GeoPackage (``.gpkg``)."""
    file = Path(path)
    if not file.is_file():
        raise SovereigntyError(
            "regions file not found",
            file=str(file),
            hint="Pass the steward's GeoJSON or GeoPackage with --regions",
        )
    if file.suffix.lower() == ".gpkg":
        return regions_from_geojson(_geopackage_document(file), source=str(file))
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SovereigntyError(
            f"not valid JSON: {error}",
            file=str(file),
            expected="a GeoJSON FeatureCollection",
            hint="GeoPackages must end in .gpkg",
        ) from error
    return regions_from_geojson(document, source=str(file))


def _geopackage_document(file: Path) -> dict[str, Any]:
    """A GeoPackage layer as a FeatureCollection dict (list columns may be JSON text)."""
    import geopandas  # heavy import, only for GeoPackages

    try:
        frame = geopandas.read_file(file)
    except Exception as error:  # pyogrio raises its own DataSourceError family
        raise SovereigntyError(
            f"cannot read GeoPackage: {error}", file=str(file), expected="a GeoPackage layer"
        ) from error
    if frame.crs is None:
        raise SovereigntyError(
            "GeoPackage layer has no CRS",
            file=str(file),
            field="crs",
            expected="a declared CRS (EPSG:4326 preferred)",
            found="none",
        )
    if frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    features: list[dict[str, Any]] = []
    for _, row in frame.iterrows():
        properties: dict[str, Any] = {}
        for column in frame.columns:
            if column == frame.geometry.name:
                continue
            value = row[column]
            if column in ("labels", "notices", "consent") and isinstance(value, str):
                value = _json_column(value, file, column, len(features))
            elif value is None or (isinstance(value, float) and value != value):
                continue
            elif hasattr(value, "item"):
                value = value.item()  # numpy scalar -> Python
            properties[column] = value
        geometry = row[frame.geometry.name]
        features.append(
            {
                "type": "Feature",
                "properties": properties,
                "geometry": None if geometry is None else mapping(geometry),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _json_column(text: str, file: Path, column: str, index: int) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError as error:
        raise SovereigntyError(
            "column must hold JSON text",
            file=str(file),
            field=f"features[{index}].properties.{column}",
            expected='JSON, e.g. ["tk_notice"] or {"downscaling": "granted"}',
            found=text,
        ) from error


def _checked_geometry(raw: Mapping[str, Any], source: str, index: int) -> BaseGeometry:
    field = f"features[{index}].geometry"
    try:
        geometry = shape(raw)
    except (ValueError, TypeError, GEOSException) as error:
        raise SovereigntyError(
            f"not a usable polygon: {error}",
            file=source,
            field=f"{field}.coordinates",
            expected="closed rings of [lon, lat] positions",
            found=_short(raw.get("coordinates")),
        ) from error
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    if not (min_lon >= -180 and max_lon <= 180 and min_lat >= -90 and max_lat <= 90):
        raise SovereigntyError(
            "coordinates out of range",
            file=source,
            field=f"{field}.coordinates",
            expected="[lon, lat] with lon in -180..180 and lat in -90..90 (GeoJSON order)",
            found=f"bounds {geometry.bounds}",
            hint="GeoJSON positions are [longitude, latitude]; check the order",
        )
    if not geometry.is_valid:
        raise SovereigntyError(
            f"invalid polygon: {shapely.is_valid_reason(geometry)}",
            file=source,
            field=f"{field}.coordinates",
            expected="a valid (non self-intersecting) polygon",
            found=_short(raw.get("coordinates")),
            hint="Repair it first, e.g. shapely.make_valid or QGIS 'Fix geometries'",
        )
    if geometry.is_empty or geometry.area == 0:
        raise SovereigntyError(
            "region has no area",
            file=source,
            field=f"{field}.coordinates",
            expected="a polygon with positive area",
            found=_short(raw.get("coordinates")),
        )
    return geometry


def _field_path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("Polygon", "MultiPolygon"):
            continue  # discriminator tag, not a field of the file
        else:
            text += f".{part}" if text else str(part)
    return text


def _expected_for(loc: Sequence[int | str]) -> str | None:
    last = str(loc[-1]) if loc else ""
    return {
        "tier": "one of internal, public-generalized, restricted, withheld",
        "region_id": f"an id matching {_ID_PATTERN}",
        "type": "the GeoJSON type (FeatureCollection, Feature, Polygon or MultiPolygon)",
        "features": "a non-empty list of Feature objects",
    }.get(last) or (
        "granted, pending, withdrawn or denied" if "consent" in [str(p) for p in loc] else None
    )


def _short(value: Any) -> str:
    text = json.dumps(value) if value is not None else "null"
    return text if len(text) <= 120 else text[:117] + "..."
