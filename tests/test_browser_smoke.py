"""The browser harness itself: Chromium reaches the app, axe-core runs, screenshots are written."""

from __future__ import annotations

from typing import Any

from tests.browser_support import LiveServer, axe_violations, screenshot


def test_login_page_in_chromium_is_accessible(live_server: LiveServer, page: Any) -> None:
    page.goto(f"{live_server.url}/gobo/login")
    assert page.title().endswith("Madoguchi")
    assert page.get_by_label("ログインID").is_visible()
    assert screenshot(page, "login-gobo").stat().st_size > 1000
    assert axe_violations(page) == []
