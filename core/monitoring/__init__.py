"""Monitoring stage: runs of a deployed version, with spans, drift, energy, XAI and PROV.

- :mod:`core.monitoring.run` — :func:`run_monitoring`: inference on a batch, drift against the
  training reference, energy and carbon, SHAP on a sample, a PROV record (:class:`MonitoringRun`).
- :mod:`core.monitoring.record` — :func:`monitor_version`: a run on a registry version, stored
  with the version, recorded in the ledger, and a rollback when it breaches;
  :func:`run_history`.
- :mod:`core.monitoring.otel` — OpenTelemetry spans and metrics to a JSON-lines file or OTLP.
- :mod:`core.monitoring.energy` — the Green Algorithms estimate (:func:`estimate_run`).
- :mod:`core.monitoring.batches` — :func:`make_batch`: real monitoring batches from a
  candidate's held-out data (as is, or shifted).
"""
