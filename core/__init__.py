"""KFM climate model deployment engine.

A candidate model goes through these stages, one module (or package) each, in this order:

1. **load** — ``core.candidate``: the candidate directory parsed into the typed records of
   ``core.models``; ``core.reference`` builds the real reference candidate.
2. **gates** — ``core.gates``: accuracy, spatial pattern, extremes, impact, drift, cultural
   safety, sovereignty, XAI and telemetry gates, thresholds from ``core.policy``; inference in
   ``core.inference`` / ``core.features``.
3. **sign** — ``core.digests`` (multihash + manifest), ``core.signing`` (OpenSSF model-signing),
   ``core.keys``, ``core.roster``, ``core.decisions`` (DSSE decision records).
4. **describe** — ``core.describe``: STAC item with the MLM extension and W3C PROV lineage.
5. **sovereignty** — ``core.regions`` and ``core.sovereignty``: steward regions, H3
   generalization, CARE metadata and conflicts.
6. **push** — ``core.registry``: the immutable registry over fsspec.
7. **decisions** — ``core.ledger`` (hash-chained log), ``core.replay`` (channel state),
   ``core.triggers`` (promotion and rollback).
8. **monitoring** — OpenTelemetry spans, drift, energy (``core.energy``) per run.

``core.errors`` holds the one error base, :class:`core.errors.KfmError`; ``core.cli`` is the
``kfm`` command line. Core never imports Streamlit.
"""
