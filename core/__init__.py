"""KFM climate model deployment engine.

A candidate model goes through these stages, one subpackage each, in pipeline order:

1. **load** — :mod:`core.candidate`: the candidate directory parsed into typed records, and
   the model run on its inputs.
2. **gates** — :mod:`core.gates`: accuracy, spatial pattern, extremes, impact, drift, cultural
   safety, sovereignty, XAI and telemetry, on chunked validation statistics; thresholds from
   the policy (:mod:`core.policy`).
3. **sign** — :mod:`core.signing`: digests and manifest, keys, the OpenSSF model-signing bundle
   and the integrity block.
4. **describe** — :mod:`core.describe`: the STAC item (MLM extension) and the W3C PROV lineage.
5. **sovereignty** — :mod:`core.sovereignty`: steward regions, H3 generalization of the model's
   outputs, CARE metadata and conflicts.
6. **push** — :mod:`core.registry`: immutable versions in object storage.
7. **decisions** — :mod:`core.decisions`: signed, anchored records, the roster, the
   hash-chained ledger anchored by signed checkpoints and the client's witness, the root key
   pinned outside the workspace, the verified replay (promotions and person-triggered rollbacks
   derived from it) and the engine that appends decisions.
8. **monitoring** — :mod:`core.monitoring`: runs with OpenTelemetry spans, drift, energy and
   carbon, XAI and PROV; a breach rolls back.

:mod:`core.pipeline` stages a version once (load → gates → sign → sovereignty → describe) for
both ``kfm deploy`` (which pushes and registers it) and ``kfm ci`` (which compares stagings).
:mod:`core.ci` is the specification's CI gate, :mod:`core.cli` the ``kfm`` command line,
:mod:`core.demo` the demo and the reference candidate (apart from the engine, which never imports
them). Below every stage: :mod:`core.errors` (one base, :class:`core.errors.KfmError`),
:mod:`core.policy` (the versioned policy file), :mod:`core.jsonio` and :mod:`core.resources`
(packaged data). Above them: :mod:`core.workspace` builds the stages' objects from ``kfm.toml``;
:mod:`core.testing` holds in-memory fakes for tests. Core never imports Streamlit.
"""
