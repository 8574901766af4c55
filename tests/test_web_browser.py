"""Browser tests: Debian's headless Chromium through Playwright, against a real server.

Logging in with a TOTP code computed by pyotp, reading a case thread, and a creditor who
sees its own case but cannot reach another creditor's by URL or API. Waits are on selectors,
never on fixed sleeps. (Chromium treats http://127.0.0.1 as a secure origin, so the
``Secure`` session cookie works over plain http here.)
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pyotp
import pytest
from playwright.async_api import Browser, Page, async_playwright
from web_support import PASSWORD, seed, serve, web_settings

from hub.config import Settings
from hub.storage.db import Database

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def _login(page: Page, base: str, username: str, secret: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#totp-form")
    await page.fill("#code", pyotp.TOTP(secret).now())
    await page.click("#totp-submit")
    await page.wait_for_selector("#whoami")


async def test_collector_logs_in_with_totp_and_reads_a_thread(
    settings: Settings, database: Database, browser: Browser
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username, secret, _ = data.accounts["collector"]
    async with serve(s, database) as base:
        context = await browser.new_context()
        page = await context.new_page()
        blocked: list[str] = []
        page.on("console", lambda msg: blocked.append(msg.text) if "Refused" in msg.text else None)
        await _login(page, base, username, secret)
        assert username in await page.inner_text("#whoami")
        cookies = {c["name"]: c for c in await context.cookies()}
        assert cookies["hub_session"]["httpOnly"] and cookies["hub_session"]["secure"]
        await page.click("text=Cases")
        await page.wait_for_selector("#cases")
        await page.fill("#q", "alice@example.org")
        await page.click("#search")
        await page.wait_for_selector("a.case-link:text('A-1')")
        assert await page.locator("a.case-link").count() == 1
        await page.click("a.case-link")
        await page.wait_for_selector("#thread")
        assert "Case A-1" in await page.inner_text("#case-title")
        assert "reply on A-1" in await page.inner_text("#entry-2")
        await page.fill("#note-form textarea", "called the debtor")
        await page.click("#note-form button")
        await page.wait_for_selector("#entry-3")
        assert "called the debtor" in await page.inner_text("#entry-3")
        assert blocked == []  # the CSP blocked nothing: the pages need nothing it forbids
        await context.close()


async def test_creditor_sees_own_case_but_not_another_creditors(
    settings: Settings, database: Database, browser: Browser
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username, secret, _ = data.accounts["creditor"]
    async with serve(s, database) as base:
        context = await browser.new_context()
        page = await context.new_page()
        await _login(page, base, username, secret)
        await page.goto(base + "/cases")
        await page.wait_for_selector("#cases")
        refs = await page.locator("a.case-link").all_inner_texts()
        assert refs == ["A-1"]
        response = await page.goto(f"{base}/cases/{data.case_a}")
        assert response is not None and response.status == 200
        await page.wait_for_selector("#comment-form")
        response = await page.goto(f"{base}/cases/{data.case_b}")
        assert response is not None and response.status == 404
        assert "Not found" in await page.inner_text("main")
        response = await page.goto(f"{base}/api/cases/{data.case_b}")
        assert response is not None and response.status == 404
        assert "B-1" not in await page.content()
        await context.close()
