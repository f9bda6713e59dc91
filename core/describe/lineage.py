"""W3C PROV lineage of a deployment, from the training data to the decisions.

The document starts from the candidate's own training PROV (``provenance/training.prov.json``:
training data → training → model) and each later stage appends one :class:`StageRecord`: an
activity with its start and end, the agent that ran it, the entities it used and generated::

    training data → training → model → evaluation → validation (gates) → signing → describe
    → screening → push → approval / veto / promotion / rollback → monitoring

:func:`lineage_document` assembles the document; :func:`candidate_stages` gives the stages a
candidate directory itself proves (its held-out evaluation, its signature when present, and the
describe stage that generates the STAC item). Every time comes from the candidate's metadata and
the stage records, never from the clock, and every relation has an explicit identifier, so the
serializations (:func:`prov_json`, :func:`prov_n`, :func:`prov_turtle`) are byte-identical on
rebuild. Usages are timed at their activity's start and generations at its end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from prov.model import PROV_LABEL, PROV_TYPE, ProvDocument, ProvRecord
from pydantic import Field, ValidationError, model_validator

from core.candidate.load import Candidate
from core.candidate.models import AwareDatetime, ModelMetadata, Record
from core.errors import DescribeError
from core.signing.digests import sha256_file

KFM_NS = "https://kfm.example/ns#"
"""The project's PROV namespace (prefix ``kfm``); training records must declare it."""

QNAME = r"^kfm:[A-Za-z0-9][A-Za-z0-9._/\-]*$"
Scalar = str | int | float | bool

STAGE_KINDS = (
    "evaluation",
    "validation",
    "signing",
    "describe",
    "screening",
    "push",
    "approval",
    "veto",
    "promotion",
    "rollback",
    "monitoring",
)
"""Stage kinds in pipeline order (training is the candidate's own PROV)."""
BEFORE_DESCRIBE = frozenset({"evaluation", "validation", "signing"})


class AgentRef(Record):
    """Who ran a stage: the pipeline, a reviewer, a steward, a key."""

    id: str = Field(pattern=QNAME)
    label: str = Field(min_length=1)
    kind: Literal["software", "person", "organization"] = "software"


class EntityRef(Record):
    """A thing a stage used or generated; ``attributes`` carry e.g. ``kfm:checksum``."""

    id: str = Field(pattern=QNAME)
    label: str = ""
    type: str = Field(default="", pattern=r"^(|kfm:[A-Za-z][A-Za-z0-9]*)$")
    attributes: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kfm_attributes(self) -> EntityRef:
        bad = [k for k in self.attributes if not k.startswith("kfm:")]
        if bad:
            raise ValueError(f"entity attributes must be kfm: names, got {bad}")
        return self


class StageRecord(Record):
    """One pipeline stage as a PROV activity.

    ``timing`` says whether the times were recorded when the stage ran or derived (placed at
    the earliest moment its inputs allow, when the stage keeps no time of its own).
    """

    kind: str = Field(pattern=r"^[a-z][a-z-]*$")
    id: str = Field(pattern=QNAME)
    label: str = Field(min_length=1)
    started: AwareDatetime
    ended: AwareDatetime
    agent: AgentRef
    used: tuple[EntityRef, ...] = ()
    generated: tuple[EntityRef, ...] = ()
    informed_by: tuple[str, ...] = ()
    timing: Literal["recorded", "derived"] = "recorded"
    attributes: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> StageRecord:
        if self.ended < self.started:
            raise ValueError(
                f"stage {self.id} ends ({self.ended}) before it starts ({self.started})"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; :meth:`from_dict` reads it back."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, file: str = "stages") -> StageRecord:
        """Validate a stage record from JSON data, translating the first error."""
        try:
            return cls.model_validate_json(json.dumps(dict(data)), strict=True)
        except ValidationError as error:
            first = error.errors()[0]
            raise DescribeError(
                str(first["msg"]),
                file=file,
                field=".".join(str(p) for p in first["loc"]),
                found=first.get("input"),
            ) from error


def read_stages(data: Any, *, file: str = "stages") -> list[StageRecord]:
    """Stage records from a JSON list (e.g. ``kfm describe --stages FILE``)."""
    if not isinstance(data, list):
        raise DescribeError(
            "stage records must be a JSON list",
            file=file,
            expected="list",
            found=type(data).__name__,
        )
    return [StageRecord.from_dict(d, file=f"{file}[{i}]") for i, d in enumerate(data)]


# --------------------------------------------------------------------------- identifiers
class LineageIds:
    """The qualified names the stages share for a model (one place, so stages agree)."""

    def __init__(self, metadata: ModelMetadata) -> None:
        self.tag = f"{metadata.name}-{metadata.version}"

    @classmethod
    def from_tag(cls, tag: str) -> LineageIds:
        """The ids of ``<name>-<version>`` when only the registry record is at hand."""
        ids = cls.__new__(cls)
        ids.tag = tag
        return ids

    @property
    def model(self) -> str:
        return f"kfm:model/{self.tag}"

    @property
    def pipeline(self) -> str:
        return "kfm:agent/pipeline"

    @property
    def metrics(self) -> str:
        return f"kfm:metrics/{self.tag}"

    @property
    def validation_data(self) -> str:
        return f"kfm:data/{self.tag}/validation"

    @property
    def gate_results(self) -> str:
        return f"kfm:gates/{self.tag}"

    @property
    def signature(self) -> str:
        return f"kfm:signature/{self.tag}"

    @property
    def stac_item(self) -> str:
        return f"kfm:stac/{self.tag}"

    @property
    def registry_version(self) -> str:
        return f"kfm:registry/{self.tag}"

    def activity(self, kind: str) -> str:
        return f"kfm:activity/{self.tag}/{kind}"


# --------------------------------------------------------------------------- the document
def read_prov_json(text: str, *, file: str, what: str) -> ProvDocument:
    """Parse PROV-JSON text with ``prov``, translating its many error kinds into one."""
    try:
        doc = ProvDocument.deserialize(content=text, format="json")
    except Exception as error:  # prov raises many kinds on bad input; translate at the edge
        raise DescribeError(
            f"{what} is not readable PROV-JSON",
            file=file,
            found=f"{type(error).__name__}: {str(error)[:160]}",
        ) from error
    if not isinstance(doc, ProvDocument):
        raise DescribeError(f"{what} is not a PROV document", file=file)
    return doc


def training_document(candidate: Candidate) -> ProvDocument:
    """The candidate's training PROV as a ``prov`` document."""
    doc = read_prov_json(
        json.dumps(candidate.provenance.document),
        file="provenance/training.prov.json",
        what="training provenance",
    )
    doc.add_namespace("kfm", KFM_NS)
    return doc


def model_entity_id(doc: ProvDocument, candidate: Candidate) -> str:
    """The model's entity in the training PROV: ``kfm:model/<name>-<version>``, or the one
    entity typed ``kfm:Model``."""
    wanted = LineageIds(candidate.metadata).model
    if _find(doc, wanted) is not None:
        return wanted
    typed = [
        str(r.identifier)
        for r in doc.get_records()
        if r.is_element() and any(str(v) == "kfm:Model" for v in r.get_attribute(PROV_TYPE))
    ]
    if len(typed) == 1:
        return typed[0]
    raise DescribeError(
        "the training PROV does not name the model",
        file="provenance/training.prov.json",
        field="entity",
        expected=f"entity '{wanted}' (or exactly one of prov:type kfm:Model)",
        found=typed or "none",
    )


def training_end(doc: ProvDocument, metadata: ModelMetadata) -> datetime:
    """When training finished: the latest activity end in the training PROV (else ``created``)."""
    ends = [a.get_endTime() or a.get_startTime() for a in _activities(doc)]
    times = [t for t in ends if isinstance(t, datetime)]
    return max([metadata.created, *times])


def lineage_document(candidate: Candidate, stages: Sequence[StageRecord]) -> ProvDocument:
    """The candidate's training PROV with every stage appended, in the given order."""
    doc = training_document(candidate)
    model_id = model_entity_id(doc, candidate)
    model = _find(doc, model_id)
    if model is not None and not model.get_attribute("kfm:checksum"):
        model.add_attributes({"kfm:checksum": sha256_file(candidate.onnx_path).multihash})
    for stage in stages:
        add_stage(doc, stage)
    return doc


def add_stage(doc: ProvDocument, stage: StageRecord) -> None:
    """Append one stage: activity, agent, used/generated entities, relations with ids."""
    if _find(doc, stage.id) is not None:
        raise DescribeError(
            "stage activity is already in the lineage",
            field="id",
            expected="a new activity identifier",
            found=stage.id,
        )
    attributes: dict[Any, Any] = {
        PROV_LABEL: stage.label,
        PROV_TYPE: doc.valid_qualified_name(f"kfm:{_camel(stage.kind)}"),
        "kfm:timing": stage.timing,
    }
    attributes.update(stage.attributes)
    activity = stage.id
    doc.activity(activity, stage.started, stage.ended, attributes)
    agent = _agent(doc, stage.agent)
    local = stage.id.removeprefix("kfm:").removeprefix("activity/")
    doc.wasAssociatedWith(activity, agent, identifier=f"kfm:rel/{local}/associated")
    for ref in stage.used:
        entity = _entity(doc, ref)
        doc.used(
            activity,
            entity,
            stage.started,
            identifier=f"kfm:rel/{local}/used/{ref.id.removeprefix('kfm:')}",
        )
    for ref in stage.generated:
        entity = _entity(doc, ref)
        name = ref.id.removeprefix("kfm:")
        doc.wasGeneratedBy(
            entity, activity, stage.ended, identifier=f"kfm:rel/{local}/generated/{name}"
        )
        doc.wasAttributedTo(entity, agent, identifier=f"kfm:rel/{local}/attributed/{name}")
    for informant in stage.informed_by:
        if _find(doc, informant) is None:
            raise DescribeError(
                "stage is informed by an unknown activity",
                field="informed_by",
                expected="an activity already in the lineage",
                found=informant,
            )
        doc.wasInformedBy(
            activity,
            informant,
            identifier=f"kfm:rel/{local}/informed-by/{informant.removeprefix('kfm:')}",
        )


def _camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("-"))


def _find(doc: ProvDocument, identifier: str) -> ProvRecord | None:
    records = doc.get_record(identifier)
    return records[0] if records else None


def _activities(doc: ProvDocument) -> Iterable[Any]:
    return [
        r for r in doc.get_records() if r.get_type() == doc.valid_qualified_name("prov:Activity")
    ]


def _agent(doc: ProvDocument, ref: AgentRef) -> str:
    if _find(doc, ref.id) is None:
        kind = {
            "software": "prov:SoftwareAgent",
            "person": "prov:Person",
            "organization": "prov:Organization",
        }[ref.kind]
        doc.agent(ref.id, {PROV_LABEL: ref.label, PROV_TYPE: doc.valid_qualified_name(kind)})
    return ref.id


def _entity(doc: ProvDocument, ref: EntityRef) -> str:
    existing = _find(doc, ref.id)
    if existing is None:
        attributes: dict[Any, Any] = dict(ref.attributes)
        if ref.label:
            attributes[PROV_LABEL] = ref.label
        if ref.type:
            attributes[PROV_TYPE] = doc.valid_qualified_name(ref.type)
        doc.entity(ref.id, attributes)
        return ref.id
    for key, value in ref.attributes.items():
        present = [str(v) for v in existing.get_attribute(key)]
        if present and str(value) not in present:
            raise DescribeError(
                "two stages disagree about an entity",
                field=f"{ref.id} {key}",
                expected=present[0],
                found=value,
            )
        if not present:
            existing.add_attributes({key: value})
    return ref.id


# --------------------------------------------------------------------------- candidate stages
def candidate_stages(candidate: Candidate, later: Sequence[StageRecord] = ()) -> list[StageRecord]:
    """The stages a candidate directory proves, merged with ``later`` ones in pipeline order.

    Evaluation (the held-out metrics of ``model_summary.json``) and, when ``model.sig`` is
    present, signing carry derived times (the candidate records none); the describe stage that
    generates the STAC item is placed after every stage that precedes it in the pipeline.
    """
    md = candidate.metadata
    ids = LineageIds(md)
    doc = training_document(candidate)
    model_id = model_entity_id(doc, candidate)
    pipeline = AgentRef(id=ids.pipeline, label="kfm pipeline")
    trained = training_end(doc, md)
    model_ref = EntityRef(id=model_id)
    evaluation = StageRecord(
        kind="evaluation",
        id=ids.activity("evaluation"),
        timing="derived",
        agent=pipeline,
        label="held-out evaluation of the trained model (model_summary.json)",
        started=trained,
        ended=trained,
        used=(
            model_ref,
            EntityRef(
                id=ids.validation_data,
                label="held-out validation data",
                type="kfm:Dataset",
                attributes={"kfm:checksum": sha256_file(candidate.validation_path).multihash},
            ),
        ),
        generated=(
            EntityRef(
                id=ids.metrics,
                label="training-time metrics",
                type="kfm:Metrics",
                attributes={
                    "kfm:checksum": sha256_file(candidate.root / "model_summary.json").multihash
                },
            ),
        ),
    )
    stages = [evaluation]
    signature = candidate.root / "model.sig"
    if signature.is_file() and not any(s.kind == "signing" for s in later):
        stages.append(
            StageRecord(
                kind="signing",
                id=ids.activity("signing"),
                timing="derived",
                agent=pipeline,
                label="model-signing bundle over every file of the model",
                started=trained,
                ended=trained,
                used=(model_ref,),
                generated=(
                    EntityRef(
                        id=ids.signature,
                        label="model.sig",
                        type="kfm:Signature",
                        attributes={"kfm:checksum": sha256_file(signature).multihash},
                    ),
                ),
            )
        )
    before = [*stages, *(s for s in later if s.kind in BEFORE_DESCRIBE)]
    after = [s for s in later if s.kind not in BEFORE_DESCRIBE]
    described = max(s.ended for s in before)
    used = [model_ref, EntityRef(id=ids.metrics)]
    used += [
        EntityRef(id=ref.id)
        for s in before
        if s.kind in {"signing", "validation"}
        for ref in s.generated
    ]
    describe = StageRecord(
        kind="describe",
        id=ids.activity("describe"),
        timing="derived",
        agent=pipeline,
        label="STAC item (MLM) and PROV lineage",
        started=described,
        ended=described,
        used=tuple(_unique(used)),
        generated=(EntityRef(id=ids.stac_item, label="model.stac.json", type="kfm:StacItem"),),
    )
    return [*before, describe, *after]


def _unique(refs: Iterable[EntityRef]) -> list[EntityRef]:
    seen: set[str] = set()
    out = []
    for ref in refs:
        if ref.id not in seen:
            seen.add(ref.id)
            out.append(ref)
    return out


# --------------------------------------------------------------------------- serializations
def prov_json(doc: ProvDocument) -> str:
    """PROV-JSON text (sorted keys, two-space indent, final newline)."""
    return str(doc.serialize(format="json", indent=2, sort_keys=True)) + "\n"


def prov_n(doc: ProvDocument) -> str:
    """PROV-N text."""
    return str(doc.get_provn()) + "\n"


def prov_turtle(doc: ProvDocument) -> str:
    """PROV-O as Turtle."""
    return str(doc.serialize(format="rdf", rdf_format="turtle"))
