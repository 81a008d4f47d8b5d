"""Helpers for the browser tests: staff sign-in through the real login page, and screens checked by axe."""

from __future__ import annotations

import uuid
from typing import Any

from tests.browser_support import LiveServer, axe_violations, screenshot
from tests.conftest import PASSWORD, TOTP_SECRETS, make_staff, totp_code


def sign_in(
    page: Any, server: LiveServer, tenant: str, groups: tuple[str, ...], name: str = "窓口 太郎"
) -> str:
    """A new staff account in ``groups``, signed in through the login page; its login id."""
    login_id = f"b{uuid.uuid4().hex[:8]}"
    make_staff(tenant, login_id, name=name, groups=groups)
    page.goto(f"{server.url}/{tenant}/login")
    page.get_by_label("ログインID").fill(login_id)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_load_state()
    if page.url.endswith("/login/totp"):  # privileged roles enrol a second factor at the first sign-in
        secret = page.locator("code.secret")
        if secret.count():
            TOTP_SECRETS[(tenant, login_id)] = secret.first.inner_text().strip()
        page.locator("input[name=code]").fill(totp_code((tenant, login_id)))
        page.locator("form button[type=submit]").last.click()
    page.wait_for_url(f"{server.url}/{tenant}/")
    return login_id


def check_screen(page: Any, name: str, violations: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """Screenshot the screen (a test artifact) and run axe on it; collect or assert no violations."""
    screenshot(page, name)
    found = axe_violations(page)
    if violations is None:
        assert found == [], f"{name}: {found}"
    elif found:
        violations[name] = found
