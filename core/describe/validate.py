"""Offline validation against the standard schemas shipped as package data.

- STAC: pystac's own validator (:class:`pystac.validation.JsonSchemaSTACValidator`) with its
  schema cache preloaded: STAC core v1.1.0 as pystac ships it, the extension schemas under
  ``core/resources/standards`` (or a folder laid out the same way: ``kfm ci --standards DIR``),
  and the project's ``kfm:`` extension generated in memory. Nothing is ever fetched: a schema URL
  without a preloaded schema is reported as a problem.
- PROV-JSON: the W3C PROV-JSON schema from the same folder.
- Any JSON Schema (the project's own, generated from the pydantic models): :func:`schema_problems`.

Every check returns :class:`SchemaProblem` values ([] = valid), which ``kfm describe`` and
``kfm ci`` report as they are; an unusable standards folder raises :class:`DescribeError`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from pystac import STACObjectType
from pystac.errors import STACValidationError
from pystac.validation import JsonSchemaSTACValidator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from core.describe.extension import KFM_EXTENSION_URI, kfm_extension_schema
from core.errors import DescribeError
from core.jsonio import read_json_file
from core.resources import STANDARDS_PATH

# Folder -> the URL prefix its files stand for (see core/resources/standards/README.md).
STAC_LAYOUT: tuple[tuple[str, str], ...] = (
    ("stac-mlm/json-schema", "https://stac-extensions.github.io/mlm/"),
    ("stac-core", "https://"),
)
PROV_JSON_SCHEMA_FILE = "prov/prov-json.schema.json"
PROV_JSON_SCHEMA_NAME = "W3C PROV-JSON schema"
STAC_TYPES = {
    "Feature": STACObjectType.ITEM,
    "Collection": STACObjectType.COLLECTION,
    "Catalog": STACObjectType.CATALOG,
}
MAX_TEXT = 200


@dataclass(frozen=True)
class SchemaProblem:
    """One violation: which schema, where in the document, what it wants, what is there."""

    schema: str
    field: str
    expected: str
    found: str
    message: str

    def __str__(self) -> str:
        return f"{self.schema}: {self.field}: {self.message}"


@dataclass(frozen=True)
class Standards:
    """The standard schemas of one folder: STAC extension schemas by URL, and PROV-JSON."""

    source: str
    stac: Mapping[str, dict[str, Any]]
    prov_json: Mapping[str, Any]


def load_standards(directory: Path | None = None) -> Standards:
    """The packaged standards (read once), or those of ``directory``, read at each call (a
    folder laid out like the packaged one: ``kfm ci --standards``)."""
    if directory is None:
        return _packaged()
    return _load(directory, str(directory))


@functools.cache
def _packaged() -> Standards:
    return _load(STANDARDS_PATH, "the packaged standards (core/resources/standards)")


def _load(root: Path, source: str) -> Standards:
    layout = "a folder laid out like core/resources/standards (prov/, stac-core/, stac-mlm/)"
    hint = "--standards overrides the packaged schemas; leave it out to use them"
    if not root.is_dir():
        raise DescribeError(
            "standards folder not found",
            file=source,
            expected=layout,
            found="missing",
            hint=hint,
        )
    stac: dict[str, dict[str, Any]] = {}
    for folder, prefix in STAC_LAYOUT:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.json")):
            url = prefix + path.relative_to(base).as_posix()
            if url not in stac:  # the more specific folder (listed first) wins
                stac[url] = _read_schema(path, source)
    if not stac:
        raise DescribeError(
            "no STAC extension schema in the standards folder",
            file=source,
            expected="schemas under stac-core/<host>/... or stac-mlm/json-schema/...",
            found="none",
            hint=hint,
        )
    prov = root / PROV_JSON_SCHEMA_FILE
    if not prov.is_file():
        raise DescribeError(
            "the PROV-JSON schema is missing from the standards folder",
            file=f"{source}/{PROV_JSON_SCHEMA_FILE}",
            expected=PROV_JSON_SCHEMA_NAME,
            found="missing",
            hint=hint,
        )
    return Standards(source=source, stac=stac, prov_json=_read_schema(prov, source))


def _read_schema(path: Path, source: str) -> dict[str, Any]:
    data = read_json_file(path, display=str(path), error=DescribeError)
    if not isinstance(data, dict):
        raise DescribeError(
            "a schema must be a JSON object",
            file=str(path),
            expected="a JSON Schema object",
            found=type(data).__name__,
        )
    return data


# --------------------------------------------------------------------------- STAC
class OfflineStacValidator(JsonSchemaSTACValidator):
    """pystac's JSON Schema validator with every schema preloaded; it never fetches one."""

    def __init__(self, standards: Standards) -> None:
        super().__init__()  # schema_cache starts with the STAC core schemas pystac ships
        self.source = standards.source
        self.schema_cache.update(standards.stac)
        self.schema_cache[KFM_EXTENSION_URI] = kfm_extension_schema()
        self._registry: Registry[Any] = Registry(retrieve=_refuse).with_resources(  # type: ignore[call-arg]
            (uri, Resource.from_contents(schema)) for uri, schema in self.schema_cache.items()
        )

    @property
    def registry(self) -> Any:
        """The preloaded schemas; a ``$ref`` to anything else is unresolvable (no download)."""
        return self._registry

    def problems(self, document: Mapping[str, Any]) -> list[SchemaProblem]:
        """Every violation of the STAC core schema and of each ``stac_extensions`` schema."""
        data = json.loads(json.dumps(dict(document)))  # as pystac does: tuples become lists
        kind = STAC_TYPES.get(data.get("type")) if isinstance(data.get("type"), str) else None
        version = data.get("stac_version")
        out: list[SchemaProblem] = []
        if kind is None:
            out.append(
                SchemaProblem(
                    "STAC core", "$.type", " or ".join(STAC_TYPES), _short(data.get("type")), ""
                )
            )
        if not isinstance(version, str):
            out.append(
                SchemaProblem("STAC core", "$.stac_version", "a string", _short(version), "")
            )
        if kind is not None and isinstance(version, str):
            uri = self.schema_uri_map.get_object_schema_uri(kind, version)
            if uri is None or uri not in self.schema_cache:
                out.append(
                    SchemaProblem(
                        uri or f"STAC {version} {kind}",
                        "$.stac_version",
                        "a STAC version whose core schema is packaged (pystac ships "
                        + ", ".join(sorted(self._core_versions()))
                        + ")",
                        version,
                        "no packaged core schema for this STAC version; nothing is fetched",
                    )
                )
            else:
                out += self._run(data, kind, version, uri, extension=False)
        extensions = data.get("stac_extensions", [])
        if not isinstance(extensions, list):
            out.append(SchemaProblem("STAC core", "$.stac_extensions", "a list", "", ""))
            extensions = []
        for index, url in enumerate(extensions):
            field = f"$.stac_extensions[{index}]"
            if not isinstance(url, str) or url not in self.schema_cache:
                out.append(
                    SchemaProblem(
                        str(url),
                        field,
                        f"an extension schema URL found in {self.source}",
                        _short(url),
                        "no packaged schema for this extension; nothing is fetched",
                    )
                )
                continue
            if kind is not None and isinstance(version, str):
                out += self._run(data, kind, version, url, extension=True)
        return out

    def _run(
        self, data: dict[str, Any], kind: STACObjectType, version: str, uri: str, *, extension: bool
    ) -> list[SchemaProblem]:
        # pystac logs a traceback before re-raising an unresolvable $ref: reported here instead.
        log = logging.getLogger(JsonSchemaSTACValidator.__module__)
        quiet, log.disabled = log.disabled, True
        try:
            if extension:
                self.validate_extension(data, kind, version, uri)
            else:
                self.validate_core(data, kind, version)
        except STACValidationError as error:
            return [_problem(uri, e) for e in _sorted(error.source or [])]
        except Unresolvable as error:
            return [
                SchemaProblem(
                    uri,
                    "$ref",
                    f"every $ref resolvable from {self.source}",
                    _short(str(error)),
                    "a schema refers to a schema that is not packaged; nothing is fetched",
                )
            ]
        finally:
            log.disabled = quiet
        return []

    def _core_versions(self) -> set[str]:
        prefix = "https://schemas.stacspec.org/v"
        return {u[len(prefix) :].split("/")[0] for u in self.schema_cache if u.startswith(prefix)}


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs class


@functools.cache
def _packaged_validator() -> OfflineStacValidator:
    return OfflineStacValidator(load_standards())


def stac_validator(directory: Path | None = None) -> OfflineStacValidator:
    """The offline validator over the packaged standards (built once), or over ``directory``."""
    if directory is None:
        return _packaged_validator()
    return OfflineStacValidator(load_standards(directory))


def stac_problems(
    document: Mapping[str, Any], directory: Path | None = None
) -> list[SchemaProblem]:
    """Every violation of STAC core and of every extension the document lists, offline."""
    return stac_validator(directory).problems(document)


# --------------------------------------------------------------------------- PROV-JSON, others
def prov_json_problems(data: Any, directory: Path | None = None) -> list[SchemaProblem]:
    """Every violation of the W3C PROV-JSON schema (packaged, or from ``directory``)."""
    schema = load_standards(directory).prov_json
    return schema_problems(data, schema, schema_name=PROV_JSON_SCHEMA_NAME)


def schema_problems(
    data: Any, schema: Mapping[str, Any], *, schema_name: str
) -> list[SchemaProblem]:
    """Every violation of one JSON Schema (its own draft; 2020-12 when it names none)."""
    cls = validator_for(dict(schema), default=Draft202012Validator)
    return [_problem(schema_name, e) for e in _sorted(cls(dict(schema)).iter_errors(data))]


def _sorted(errors: Any) -> list[ValidationError]:
    return sorted(errors, key=lambda e: ([str(p) for p in e.absolute_path], e.message))


def _problem(schema: str, error: ValidationError) -> SchemaProblem:
    message = _short(error.message, 300)
    if error.context:  # oneOf / anyOf: name the most relevant branch (a bare type clash rarely is)
        branches = [e for e in error.context if e.validator != "type"] or list(error.context)
        cause = best_match(branches)
        if cause is not None:
            message += f" (closest: {cause.json_path}: {_short(cause.message, 160)})"
    return SchemaProblem(
        schema=schema,
        field=error.json_path,
        expected=f"{error.validator}: {_short(error.validator_value, 120)}",
        found=_short(error.instance, 120),
        message=message,
    )


def _short(value: Any, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
