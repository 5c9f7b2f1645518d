"""Real Chromium with the unpacked extension, the real service as a subprocess, pages served
from loopback. Skips only when no Chromium (or Playwright) is installed.

The browser is shared by the whole session (launching costs about a second); every test gets
fresh tabs and points the extension at its own service through the options page.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import free_port
from tests.support.service_process import service_env, start_serve

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "extension"
OUTPUT = REPO / "test-output"
EXTENSION_ID = "plghbdjilgipchcgmoniejacopnikcgh"
TOKEN = "e2e-token-0123456789"
CHROMIUM_CANDIDATES = [
    os.environ.get("TIANGONG_CHROMIUM", ""),
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
]
CHROMIUM = next((p for p in CHROMIUM_CANDIDATES if p and Path(p).exists()), None)

HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
SKIP_REASON = (
    None
    if CHROMIUM and HAVE_PLAYWRIGHT
    else "end-to-end tests need Chromium (apt-get install chromium, or set TIANGONG_CHROMIUM) "
    "and Playwright for Python"
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Worker


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SKIP_REASON is None:
        return
    here = Path(__file__).parent
    for item in items:
        # The Firefox tests need Firefox, not Chromium (they skip on their own).
        if here in item.path.parents and item.path.name != "test_firefox.py":
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# Answers stream in well under this; a wait this long means something is broken.
WAIT_MS = 20_000


# -- the service -------------------------------------------------------------------------


@dataclass
class Service:
    port: int
    data_dir: Path
    engine: str
    fake_script: dict[str, Any] | None = None
    # More `tiangong serve` flags, e.g. ("--allow-origin", "moz-extension://…").
    flags: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data_dir / "serve.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> Service:
        env = service_env()
        engine = self.engine
        if engine == "fake":
            env["TIANGONG_ENGINE"] = "fake"
            env["TIANGONG_FAKE_SCRIPT"] = json.dumps(self.fake_script or {})
            engine = "extractive"  # the flag must name a real engine; the variable wins
        args = ("--engine", engine, "--data-dir", str(self.data_dir), "--token", TOKEN, *self.flags)
        with self.log.open("ab") as log:
            try:
                self.process = start_serve(self.port, *args, env=env, output=log)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}: {self.log.read_text()[-2000:]}") from None
        return self

    def pause(self) -> None:
        """Freezes the service (SIGSTOP): its socket stays open, nothing it would send comes."""
        assert self.process and self.process.poll() is None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


StartService = Callable[..., Service]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    started: list[Service] = []

    def start(engine: str = "extractive", *flags: str, **script: Any) -> Service:
        data = tmp_path / f"service-{len(started)}"
        data.mkdir()
        service = Service(free_port(), data, engine, script or None, flags).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


# -- pages -------------------------------------------------------------------------------


class Pages:
    """A loopback web server for test pages: path -> HTML (or bytes with their type)."""

    def __init__(self) -> None:
        self.routes: dict[str, str | tuple[bytes, str]] = {}
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.routes.get(self.path.split("?")[0].split("#")[0])
                if body is None:
                    self.send_error(404)
                    return
                if isinstance(body, str):
                    data, kind = body.encode("utf-8"), "text/html; charset=utf-8"
                else:
                    data, kind = body
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, html: str) -> str:
        self.routes[path] = html
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def add_file(self, path: str, data: bytes, content_type: str) -> str:
        self.routes[path] = (data, content_type)
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def pages() -> Iterator[Pages]:
    server = Pages()
    yield server
    server.close()


# -- the browser -------------------------------------------------------------------------


@dataclass
class Browser:
    context: BrowserContext
    # Another browser with the extension, e.g. in another UI language: (env, args) -> context;
    # `profile=DIR` starts it on that profile folder (else a fresh one).
    launch: Callable[..., BrowserContext] | None = None

    def worker(self) -> Worker:
        for worker in self.context.service_workers:
            if worker.url.startswith(f"chrome-extension://{EXTENSION_ID}/"):
                return worker
        return self.context.wait_for_event("serviceworker", timeout=WAIT_MS)

    def open_page(self, url: str) -> tuple[Page, int]:
        """A web page in a new tab, and its tab id (asked from an extension page)."""
        page = self.context.new_page()
        page.goto(url, wait_until="domcontentloaded")
        tab_id = self.worker().evaluate(
            "async (url) => (await chrome.tabs.query({})).find((t) => t.url === url)?.id ?? null",
            page.url,
        )
        assert tab_id is not None, f"no tab for {page.url}"
        return page, int(tab_id)

    def open_panel(self, tab_id: int) -> Page:
        panel = self.context.new_page()
        panel.goto(f"chrome-extension://{EXTENSION_ID}/sidepanel/panel.html?tabId={tab_id}")
        panel.wait_for_function("() => document.body.dataset.tabId !== undefined")
        return panel

    def configure(self, service: Service | None, *, url: str | None = None) -> None:
        """Server URL and token through the options page, as a user pairs."""
        options = self.context.new_page()
        options.goto(f"chrome-extension://{EXTENSION_ID}/options/options.html")
        options.get_by_test_id("server-url").fill(url or (service.url if service else ""))
        options.get_by_test_id("token").fill(TOKEN)
        options.get_by_test_id("save").click()
        # "Saved." in the UI's language.
        options.wait_for_function("() => document.getElementById('saved').textContent !== ''")
        options.close()


# Package scope: Playwright's sync API keeps an event loop running while it is open, which
# would stop the asyncio tests that run after these.
@pytest.fixture(scope="package")
def browser_session() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    profiles: list[str] = []
    with sync_playwright() as p:

        def launch(
            env: dict[str, str], args: tuple[str, ...], profile: Path | None = None
        ) -> BrowserContext:
            if profile is None:
                profiles.append(tempfile.mkdtemp(prefix="tiangong-e2e-"))
            context = p.chromium.launch_persistent_context(
                profile or profiles[-1],
                headless=True,
                executable_path=CHROMIUM,
                args=[
                    f"--disable-extensions-except={EXTENSION}",
                    f"--load-extension={EXTENSION}",
                    *CHROMIUM_FLAGS,
                    *args,
                ],
                env={**os.environ, **env},
                viewport={"width": 320, "height": 720},
            )
            # Test pages come from loopback; nothing else is reachable, so fail it fast.
            context.route(
                lambda url: (
                    not url.startswith(("http://127.0.0.1", "chrome-extension://", "data:"))
                ),
                lambda route: route.abort(),
            )
            return context

        browser = Browser(launch({}, ()), launch)
        browser.worker()
        yield browser
        browser.context.close()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(browser_session: Browser) -> Iterator[Browser]:
    yield browser_session
    for page in browser_session.context.pages[1:]:
        page.close()


# -- panel helpers -----------------------------------------------------------------------


def wait_connected(panel: Page) -> None:
    panel.wait_for_function(
        "() => document.body.dataset.connection === 'connected'", timeout=WAIT_MS
    )


def wait_request(panel: Page, state: str | tuple[str, ...], previous: str = "") -> str:
    """Waits for a request newer than `previous` to reach `state`; returns its id."""
    states = [state] if isinstance(state, str) else list(state)
    panel.wait_for_function(
        """([previous, states]) => {
            const b = document.body.dataset;
            return b.requestId && b.requestId !== previous && states.includes(b.requestState);
        }""",
        arg=[previous, states],
        timeout=WAIT_MS,
    )
    return str(panel.evaluate("() => document.body.dataset.requestId"))


def answer(panel: Page, request_id: str) -> Any:
    return panel.locator(f'[data-testid=answer][data-request-id="{request_id}"]')
