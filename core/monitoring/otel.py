"""OpenTelemetry for inference and monitoring runs: spans and metrics, exported locally or by OTLP.

:class:`Telemetry` owns a tracer provider and a meter provider built from a
:class:`TelemetryConfig`. The embedded default writes spans and metrics as JSON lines to a file
(one object per line, ``{"kind": "span" | "metric", ...}``); with an OTLP endpoint configured they
also go to a collector over OTLP/HTTP. Providers are per run (never the global provider), so tests
and concurrent runs do not see each other's spans.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Tracer

SERVICE_NAME = "kfm-climate-model"


@dataclass(frozen=True)
class TelemetryConfig:
    """Where spans and metrics go: a JSON-lines file, and an OTLP/HTTP endpoint when set."""

    jsonl_path: Path | None = None
    otlp_endpoint: str | None = None  # e.g. http://127.0.0.1:4318
    otlp_timeout_s: float = 5.0


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(_span_record(s), sort_keys=True) for s in spans]
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class JsonLinesMetricExporter(MetricExporter):
    """Appends each metric data point as one JSON object per line."""

    def __init__(self, path: Path) -> None:
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self.path = path
        self._lock = threading.Lock()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **_: Any
    ) -> MetricExportResult:
        rows = []
        for rm in metrics_data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        rows.append(
                            {
                                "kind": "metric",
                                "name": metric.name,
                                "unit": metric.unit,
                                "attributes": dict(point.attributes or {}),
                                "value": getattr(point, "value", getattr(point, "sum", None)),
                                "count": getattr(point, "count", None),
                            }
                        )
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
        return None


def _span_record(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "kind": "span",
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
        "span_id": f"{ctx.span_id:016x}" if ctx else None,
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


class Telemetry:
    """A run's tracer and meter, wired to the configured exporters; call :meth:`shutdown` at the end."""

    def __init__(
        self, config: TelemetryConfig, *, attributes: dict[str, str] | None = None
    ) -> None:
        resource = Resource.create({"service.name": SERVICE_NAME, **(attributes or {})})
        self.tracer_provider = TracerProvider(resource=resource)
        readers: list[Any] = []
        if config.jsonl_path is not None:
            self.tracer_provider.add_span_processor(
                SimpleSpanProcessor(JsonLinesSpanExporter(config.jsonl_path))
            )
            readers.append(
                PeriodicExportingMetricReader(
                    JsonLinesMetricExporter(config.jsonl_path), export_interval_millis=3_600_000
                )
            )
        if config.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            base = config.otlp_endpoint.rstrip("/")
            self.tracer_provider.add_span_processor(
                SimpleSpanProcessor(
                    OTLPSpanExporter(
                        endpoint=f"{base}/v1/traces", timeout=int(config.otlp_timeout_s)
                    )
                )
            )
            readers.append(
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(
                        endpoint=f"{base}/v1/metrics",
                        timeout=int(config.otlp_timeout_s),
                        preferred_temporality={},
                    ),
                    export_interval_millis=3_600_000,
                )
            )
        self.meter_provider = MeterProvider(resource=resource, metric_readers=readers)

    @property
    def tracer(self) -> Tracer:
        return self.tracer_provider.get_tracer("kfm.monitoring")

    def meter(self) -> Any:
        return self.meter_provider.get_meter("kfm.monitoring")

    def shutdown(self) -> None:
        """Flush and close every exporter (metrics are exported once, here)."""
        self.tracer_provider.force_flush()
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()
