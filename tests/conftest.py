"""Shared fixtures: the reference candidate is built once per test session and copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def reference_candidate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference candidate, built once; tests must not modify it (use ``candidate``)."""
    from core.demo.reference import build_reference_candidate

    return build_reference_candidate(tmp_path_factory.mktemp("reference") / "candidate")


@pytest.fixture
def candidate(reference_candidate_dir: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the reference candidate."""
    target = tmp_path / "candidate"
    shutil.copytree(reference_candidate_dir, target)
    return target


class OtlpReceiver:
    """A minimal OTLP/HTTP receiver on loopback: decodes and keeps spans and metric names."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        self.spans: list[dict[str, object]] = []
        self.metric_names: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest.FromString(body)
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            for span in ss.spans:
                                attrs = {a.key: a.value.string_value for a in span.attributes}
                                receiver.spans.append({"name": span.name, "attributes": attrs})
                elif self.path == "/v1/metrics":
                    request = ExportMetricsServiceRequest.FromString(body)
                    for rm in request.resource_metrics:
                        for sm in rm.scope_metrics:
                            receiver.metric_names.extend(m.name for m in sm.metrics)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def otlp_receiver():  # type: ignore[no-untyped-def]
    """An OTLP/HTTP receiver started on a free loopback port for the test."""
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()
