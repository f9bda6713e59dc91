"""PROV-JSON record of the reference candidate's training run (W3C PROV, ``prov`` package).

Every relation gets an explicit identifier so the serialization is byte-stable.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prov.model import ProvDocument

from core.candidate.models import ModelMetadata, Telemetry
from core.describe.lineage import KFM_NS


def training_prov_document(
    metadata: ModelMetadata,
    telemetry: Telemetry,
    start: datetime,
    duration_s: float,
    *,
    builder: str,
) -> str:
    """PROV-JSON text: training data -> preprocessing -> training -> model, by the pipeline.

    The training activity records ``builder`` (``kfm:builder``), the module that builds the
    candidate, so the candidate is recognised by what it records.
    """
    doc = ProvDocument()
    doc.add_namespace("kfm", KFM_NS)
    m = f"{metadata.name}-{metadata.version}"
    end = start + timedelta(seconds=round(duration_s, 3))
    data = metadata.training_data[0]
    source = doc.entity(
        f"kfm:data/{data.id}",
        {
            "prov:type": "kfm:Dataset",
            "prov:label": data.title,
            "kfm:sha256": data.sha256,
            "kfm:source": data.source,
            "kfm:license": data.license,
        },
    )
    coarse = doc.entity(
        f"kfm:data/{data.id}/coarse-5deg",
        {
            "prov:type": "kfm:Dataset",
            "prov:label": "5 degree block mean, bilinear back to 2.5 degrees",
        },
    )
    model = doc.entity(
        f"kfm:model/{m}",
        {
            "prov:type": "kfm:Model",
            "prov:label": metadata.title,
            "kfm:architecture": metadata.architecture,
            "kfm:seed": metadata.seed,
        },
    )
    energy = doc.entity(
        f"kfm:telemetry/{telemetry.run_id}",
        {
            "prov:type": "kfm:Telemetry",
            "kfm:energy_kwh": telemetry.energy_kwh,
            "kfm:emissions_kg_co2e": telemetry.emissions_kg_co2e,
            "kfm:method": telemetry.method,
        },
    )
    pipeline = doc.agent(
        "kfm:agent/pipeline",
        {"prov:type": "prov:SoftwareAgent", "prov:label": "KFM pipeline"},
    )
    prep = doc.activity(
        f"kfm:activity/{m}/coarsen", start, start, {"prov:label": "coarsen and interpolate"}
    )
    train = doc.activity(
        f"kfm:activity/{m}/training",
        start,
        end,
        {
            "prov:label": "train gradient boosting",
            "kfm:hyperparameters": str(sorted(metadata.hyperparameters.items())),
            "kfm:builder": builder,
        },
    )
    doc.used(prep, source, identifier=f"kfm:rel/{m}/coarsen-used-data")
    doc.wasGeneratedBy(coarse, prep, identifier=f"kfm:rel/{m}/coarse-generated")
    doc.used(train, coarse, identifier=f"kfm:rel/{m}/training-used-coarse")
    doc.used(train, source, identifier=f"kfm:rel/{m}/training-used-target")
    doc.wasGeneratedBy(model, train, identifier=f"kfm:rel/{m}/model-generated")
    doc.wasGeneratedBy(energy, train, identifier=f"kfm:rel/{m}/telemetry-generated")
    doc.wasDerivedFrom(model, source, identifier=f"kfm:rel/{m}/model-derived")
    doc.wasAssociatedWith(prep, pipeline, identifier=f"kfm:rel/{m}/coarsen-assoc")
    doc.wasAssociatedWith(train, pipeline, identifier=f"kfm:rel/{m}/training-assoc")
    doc.wasAttributedTo(model, pipeline, identifier=f"kfm:rel/{m}/model-attributed")
    return str(doc.serialize(format="json", indent=2, sort_keys=True)) + "\n"
