"""Fixtures for the browser tests: the real server on a small generated library, and headless Chromium.

The server runs as `python app.py` in a subprocess, on a free port, with its library, var folder and
models folder in a temporary directory (no models: the page must cope without the classifier).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("MELODYMAKER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def why_no_browser() -> str | None:
    """None when the browser tests can run, else the reason they are skipped."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -r requirements.txt)"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MELODYMAKER_CHROMIUM)"
    return None


def _make_library(root: Path) -> Path:
    """tests/conftest.py's make_library, loaded by path (both files are named conftest)."""
    spec = importlib.util.spec_from_file_location("melodymaker_tests_conftest", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_library(root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, request) -> str:
    """Base URL of a real MelodyMaker server on a small library (rock, jazz, blues; no metal). A test
    module may name EXTRA_GENRES: each gets one clip (a copy of a rock clip) in the library."""
    reason = why_no_browser()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("e2e")
    library = _make_library(base / "genres")
    for genre in getattr(request.module, "EXTRA_GENRES", ()):
        (library / genre).mkdir()
        shutil.copy(library / "rock" / "rock.00001.wav", library / genre / f"{genre}.00000.wav")
    yield from serve(base, library, base / "models")


def serve(base: Path, library: Path, models: Path):
    """`python app.py` on a free port over `library` and `models` (var/ and its log in `base`):
    yields its base URL once /api/health answers, and stops it afterwards."""
    port = _free_port()
    env = {**os.environ, "MELODYMAKER_GENRES_DIR": str(library), "MELODYMAKER_VAR_DIR": str(base / "var"),
           "MELODYMAKER_MODELS_DIR": str(models), "MELODYMAKER_NO_BROWSER": "1", "MELODYMAKER_WORKERS": "2"}
    log_path = base / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--no-browser"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server did not start:\n" + log_path.read_text(errors="replace")[-3000:])
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    reason = why_no_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass
class Session:
    """A page and what it did: console errors, uncaught exceptions, dialogs, every request URL."""
    page: object
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        """Requests that would leave this machine (anything but localhost, blob: and data:)."""
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("blob", "data"):
                continue
            if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
                out.append(url)
        return out


def _session(browser, viewport) -> Session:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    s = Session(page)
    page.on("console", lambda m: s.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: s.page_errors.append(str(e)))
    page.on("request", lambda r: s.requests.append(r.url))

    def dialog(d):
        s.dialogs.append(d.message)
        d.dismiss()
    page.on("dialog", dialog)
    page.set_default_timeout(15_000)
    return s


@pytest.fixture()
def session(browser):
    s = _session(browser, {"width": 1280, "height": 900})
    yield s
    s.page.context.close()


@pytest.fixture()
def phone(browser):
    s = _session(browser, {"width": 375, "height": 812})
    yield s
    s.page.context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
