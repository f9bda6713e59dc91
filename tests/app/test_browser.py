"""The dashboard in a real browser: every page renders, a signed approval promotes, all offline."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from core.decisions.trust import TrustStore
from core.demo.build import DemoInfo, demo_passphrase
from core.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-output" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium package; CI installs it
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}
LOCAL_SCHEMES = {"data", "blob", "about"}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PLOT = ".js-plotly-plot"
# Every wait is on a condition (a heading, a chart, a value), never a fixed sleep; this is how
# long a condition may take on a loaded machine before the test fails (Playwright's expect()
# defaults to 5 s, which a cold Streamlit start can exceed).
CONDITION_TIMEOUT_MS = 60_000
# (url path, heading, an element that appears once the page's data has rendered)
PAGES = [
    ("", "Model registry", PLOT),
    ("decisions", "Decisions", "text=chain intact"),
    ("review", "Gates and model card — 1.0.0", PLOT),
    ("explainability", "Explainability — 1.0.0", PLOT),
    ("sovereignty_map", "Sovereignty map — 1.0.0", PLOT),
    ("energy", "Energy and carbon — 1.0.0", PLOT),
    ("lineage", "Lineage — 1.0.0", '[data-testid="stGraphVizChart"] svg'),
    ("drift", "Drift — 1.0.0", PLOT),
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt chromium)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CONTENT_HEIGHT = (  # the block container's own height (stMain stretches to the viewport)
    "() => (document.querySelector('[data-testid=stMainBlockContainer]')"
    " || document.body).scrollHeight"
)


def screenshot_whole_page(page: Page, path: Path) -> None:
    """Screenshot all of the page: Streamlit scrolls inside its main block, not the document."""
    height = VIEWPORT["height"]
    for _ in range(4):  # grow the viewport until the content stops growing (late elements)
        page.wait_for_timeout(500)
        needed = min(int(page.evaluate(CONTENT_HEIGHT)), 8000)
        if needed <= height:
            break
        height = needed
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)


@pytest.fixture
def dashboard(demo_copy: DemoInfo, tmp_path: Path) -> Iterator[str]:
    """The dashboard served on a free loopback port for a copy of the demo; always stopped."""
    port = free_port()
    env = dict(
        os.environ,
        KFM_WORKSPACE=str(demo_copy.workspace),
        KFM_PIPELINE_PASSPHRASE=demo_passphrase("pipeline"),
    )
    command = [
        sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.serverPort", str(port),
    ]  # fmt: skip
    log_path = tmp_path / "streamlit.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as reply:
                    if reply.read() == b"ok":
                        break
            except (urllib.error.URLError, OSError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def test_pages_render_and_an_approval_promotes_offline(
    dashboard: str, demo_copy: DemoInfo, approve: Callable[[DemoInfo, str, str], list[str]]
) -> None:
    """Every page shows its heading and data; bruno's signed approval promotes 1.0.0; loopback only."""
    version = demo_copy.version
    for steward in demo_copy.concerned_stewards:  # bruno's council vote is then the last needed
        assert approve(demo_copy, steward, "steward") == ["approve"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    sockets: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.on("request", lambda request: requests.append(request.url))
            page.on("websocket", lambda socket_: sockets.append(socket_.url))
            page.set_default_timeout(CONDITION_TIMEOUT_MS)
            expect.set_options(timeout=CONDITION_TIMEOUT_MS)

            for path, heading, ready in PAGES:
                page.goto(f"{dashboard}/{path}")
                expect(page.get_by_role("heading", name=heading).first).to_be_visible()
                page.locator(ready).first.wait_for(state="visible")
                expect(page.locator('[data-testid="stException"]')).to_have_count(0)
                shot = SCREENSHOTS / f"{path or 'registry'}.png"
                screenshot_whole_page(page, shot)
                assert shot.stat().st_size > 10_000, shot

            page.goto(dashboard)
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_test_id("stMetricValue")).to_have_text("none")
            sidebar.get_by_test_id("stSelectbox").filter(has_text="Reviewing as").click()
            page.get_by_role("option", name=re.compile(r"^Bruno")).click()
            sidebar.get_by_role("link", name="Decisions").click()
            expect(page.get_by_role("heading", name="Decisions").first).to_be_visible()
            reason = page.get_by_label("Reason (recorded and signed)")
            reason.fill("gates pass; every steward approved; tails reviewed")
            reason.press("Control+Enter")
            sign = page.get_by_role("button", name="Sign…")
            expect(sign).to_be_enabled()
            sign.click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_label("Reviewer id")).to_have_value("bruno")
            passphrase = dialog.get_by_label("Passphrase of your key")
            passphrase.fill(demo_passphrase("bruno"))
            passphrase.press("Enter")
            dialog.get_by_role("button", name="Sign and submit").click()
            expect(page.get_by_text(re.compile(r"Signed and recorded: .*promote"))).to_be_visible()
            expect(sidebar.get_by_test_id("stMetricValue")).to_have_text(version)
            screenshot_whole_page(page, SCREENSHOTS / "decisions-promoted.png")
        finally:
            browser.close()

    trust = TrustStore.from_environment(os.environ, None)
    with Workspace.open(demo_copy.workspace, trust=trust).decision_engine(None) as engine:
        assert engine.state().production == version
    outside = [
        url
        for url in requests + sockets
        if urlparse(url).scheme not in LOCAL_SCHEMES and urlparse(url).hostname not in LOCAL_HOSTS
    ]
    assert requests and not outside, outside
