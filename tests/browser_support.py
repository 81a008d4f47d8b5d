"""Real-browser tests: the app on a loopback port in this process, Debian's Chromium driven by Playwright.

Never ``playwright install``: it downloads a browser (no network for that here); we drive the Debian
build. Screenshots of the screens go to ``var/test-artifacts/screenshots`` (kept by CI as artifacts);
``axe_violations`` runs axe-core (fetched by scripts/setup.sh) in the page.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = next(iter(sorted((ROOT / "var" / "vendor").glob("axe-core-*/axe.min.js"))), None)
SCREENSHOTS = ROOT / "var" / "test-artifacts" / "screenshots"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--lang=ja-JP"]  # fmt: skip


class LiveServer:
    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


@pytest.fixture(scope="session")
def live_server(provisioned: object) -> Iterator[LiveServer]:
    from app import create_app

    app = create_app()
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: scripts/setup.sh installs it (scripts/apt-packages.txt)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context at the staff PC's size (1366×768), Japanese locale."""
    context = browser.new_context(
        viewport={"width": 1366, "height": 768},
        locale="ja-JP",
        timezone_id="Asia/Tokyo",
        bypass_csp=True,  # only so axe-core can be injected; the app's own pages never need it
    )
    tab = context.new_page()
    tab.set_default_timeout(15000)
    yield tab
    context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the current page (WCAG 2.1 A/AA rules), as compact dicts."""
    if AXE is None:
        pytest.fail("axe-core is missing: run scripts/setup.sh")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => JSON.stringify((await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations)"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in json.loads(result)
    ]
