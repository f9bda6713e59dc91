"""Shared fixtures: the reference candidate is built once per test session and copied per test.

Every test runs with ``KFM_HOME`` (where a client keeps its root key pins and its witness) in a
temporary folder of its own, and without ``KFM_ROOT_FINGERPRINT``: nothing reads or writes the
real user's trust settings, and subprocesses inherit the same folder. Session fixtures get a
session folder. ``init_workspace`` and ``build_demo`` pin what they create there
(the ``trust_store`` fixture); a copy of a workspace is pinned with ``pin_workspace``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.decisions.trust import HOME_ENV, ROOT_FINGERPRINT_ENV, TrustStore
from core.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def session_kfm_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A KFM home for session-scoped fixtures (built before any per-test home exists)."""
    home = tmp_path_factory.mktemp("kfm-home-session")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HOME_ENV, str(home))
        patch.delenv(ROOT_FINGERPRINT_ENV, raising=False)
        yield home


@pytest.fixture(autouse=True)
def kfm_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own KFM home (pins and witness), also for the subprocesses it starts."""
    home = tmp_path_factory.mktemp("kfm-home")
    monkeypatch.setenv(HOME_ENV, str(home))
    monkeypatch.delenv(ROOT_FINGERPRINT_ENV, raising=False)
    return home


@pytest.fixture
def trust_store(kfm_home: Path) -> TrustStore:
    """The trust store the CLI and the dashboard build in this test."""
    return TrustStore(kfm_home)


@pytest.fixture
def pin_workspace(trust_store: TrustStore) -> Callable[[Path], None]:
    """Pin the root key of a copied workspace, as its operator would with `kfm trust pin`."""

    def pin(workspace: Path) -> None:
        trust_store.pin(workspace, Workspace.open(workspace).root_fingerprint())

    return pin


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
