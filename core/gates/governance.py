"""Governance gates: FAIR+CARE cultural safety of the declared metadata, and sovereignty of the
model's spatial footprint against the steward regions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import GateError
from core.gates.base import Gate, GateContext, Measurement
from core.sovereignty.regions import LOCAL_CONTEXTS

CARE_TEXT_FIELDS = ("authority_to_control", "collective_benefit", "responsibility", "ethics")
PUBLIC_SCOPES = ("public-generalized",)


class CulturalSafetyGate(Gate):
    """CARE metadata complete and consistent; Local Contexts labels recognised and respected."""

    id = "cultural_safety"
    title = "FAIR+CARE cultural safety"
    thresholds = {
        "missing_care_fields_max": "empty CARE fields among " + ", ".join(CARE_TEXT_FIELDS),
        "unrecognised_labels_max": "labels that are not Local Contexts TK/BC Label or Notice ids",
        "secret_sacred_public_max": "secret/sacred labels on a candidate scoped for public release",
        "tk_labels_without_steward_max": "TK labels declared with no steward contact to answer for them",
    }

    def measure(self, ctx: GateContext) -> Measurement:
        care = ctx.candidate.metadata.care
        missing = [name for name in CARE_TEXT_FIELDS if not str(getattr(care, name)).strip()]
        unknown = [label for label in care.labels if label not in LOCAL_CONTEXTS]
        sacred = [
            label
            for label in care.labels
            if label in LOCAL_CONTEXTS and LOCAL_CONTEXTS[label].withholds
        ]
        public = care.scope in PUBLIC_SCOPES
        tk = [
            label
            for label in care.labels
            if label in LOCAL_CONTEXTS and LOCAL_CONTEXTS[label].kind == "tk_label"
        ]
        return Measurement(
            values={
                "missing_care_fields": len(missing),
                "unrecognised_labels": len(unknown),
                "secret_sacred_public": len(sacred) if public else 0,
                "tk_labels_without_steward": len(tk) if not care.steward_contacts else 0,
            },
            evidence={
                "scope": care.scope,
                "labels": list(care.labels),
                "missing_care_fields": missing,
                "unrecognised_labels": unknown,
                "secret_sacred_labels": sacred,
                "steward_contacts": len(care.steward_contacts),
                "label_names": {
                    label: LOCAL_CONTEXTS[label].name
                    for label in care.labels
                    if label in LOCAL_CONTEXTS
                },
            },
        )


class SovereigntyGate(Gate):
    """The model's footprint must not touch a steward region without that steward's consent.

    The footprint is the one computed from the validation grid (never the declared bbox), and a
    region is touched when the footprint overlaps its land or its withheld buffer
    (:func:`core.sovereignty.care.touched_regions`).
    """

    id = "sovereignty"
    title = "Indigenous data sovereignty constraints"
    thresholds = {"conflicts_max": "steward regions touched by the footprint without consent"}
    parameters = {"allow_no_regions": bool}

    def measure(self, ctx: GateContext) -> Measurement:
        from shapely.geometry import box

        meta = ctx.candidate.metadata
        west, south, east, north = ctx.candidate.footprint
        footprint = box(west, south, east, north)
        evidence: dict[str, Any] = {
            "footprint_bbox": [west, south, east, north],
            "footprint_source": f"cell bounds of {meta.validation_data}",
            "model_family": meta.model_family,
        }
        if ctx.regions is None:
            if not self.param("allow_no_regions"):
                raise GateError(
                    "no regions file was given and the policy requires one",
                    field="gates.sovereignty.allow_no_regions",
                    expected="a regions file (--regions)",
                    found="none",
                    hint="Pass the stewards' regions with --regions",
                )
            return Measurement(
                values={"conflicts": 0, "regions_given": False},
                evidence=evidence,
                notes=(
                    "no regions given: footprint not screened "
                    "(allowed by gates.sovereignty.allow_no_regions = true)",
                ),
            )
        from core.sovereignty.care import find_conflicts, touched_regions

        screening = ctx.policy.screening
        conflicts = find_conflicts(footprint, ctx.regions, meta.model_family, screening=screening)
        touched = sorted(r.region_id for r in touched_regions(footprint, ctx.regions, screening))
        evidence |= {
            "regions": len(ctx.regions),
            "regions_file": Path(ctx.regions.source).name,
            "regions_touched": touched,
            "conflicts": [c.model_dump(mode="json") for c in conflicts],
        }
        return Measurement(
            values={"conflicts": len(conflicts), "regions_given": True}, evidence=evidence
        )
