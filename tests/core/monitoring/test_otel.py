"""OpenTelemetry export: spans and metrics land in the JSON-lines file and in an OTLP receiver."""

from __future__ import annotations

import json
from pathlib import Path

from core.monitoring.otel import Telemetry, TelemetryConfig


def _emit(telemetry: Telemetry) -> None:
    with telemetry.tracer.start_as_current_span("kfm.monitor.run") as run:
        run.set_attribute("kfm.model.version", "1.0.0")
        for i in range(3):
            with telemetry.tracer.start_as_current_span("kfm.monitor.inference.chunk") as chunk:
                chunk.set_attribute("kfm.chunk.index", i)
    telemetry.meter().create_counter("kfm.samples", unit="1").add(42)
    telemetry.shutdown()


def test_spans_and_metrics_go_to_jsonl(tmp_path: Path) -> None:
    """Every span (with its parent) and every metric is one JSON line in the file."""
    path = tmp_path / "spans.jsonl"
    _emit(Telemetry(TelemetryConfig(jsonl_path=path)))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    spans = [r for r in rows if r["kind"] == "span"]
    assert [s["name"] for s in spans].count("kfm.monitor.inference.chunk") == 3
    run = next(s for s in spans if s["name"] == "kfm.monitor.run")
    assert run["attributes"]["kfm.model.version"] == "1.0.0"
    assert all(s["parent_id"] == run["span_id"] for s in spans if s is not run)
    assert [r["value"] for r in rows if r["kind"] == "metric"] == [42]


def test_spans_and_metrics_reach_otlp_receiver(otlp_receiver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With an endpoint configured, spans and metrics arrive at a loopback OTLP receiver."""
    _emit(
        Telemetry(
            TelemetryConfig(jsonl_path=tmp_path / "s.jsonl", otlp_endpoint=otlp_receiver.endpoint)
        )
    )
    names = [s["name"] for s in otlp_receiver.spans]
    assert names.count("kfm.monitor.inference.chunk") == 3
    assert "kfm.monitor.run" in names
    assert "kfm.samples" in otlp_receiver.metric_names
