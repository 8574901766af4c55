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
from collector_support import debtor_reply
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy import select
from web_support import PASSWORD, seed, serve, web_settings

from hub.config import Settings
from hub.storage.db import Database
from hub.storage.models import Classification

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


async def test_collector_triages_a_reply_and_corrects_an_intent(
    settings: Settings, database: Database, browser: Browser
) -> None:
    """Issue 7's Done-when: login with TOTP, triage of a reply, correction of an intent."""
    s = web_settings(settings)
    data = await seed(database, s)
    _, task_a = await debtor_reply(
        database,
        data.case_a,
        text="Dispute: I never got the goods.",
        intent="dispute",
        fields={"reason": "not_received"},
        confidence=0.38,
        is_suggestion=True,
        sender_verified=True,
    )
    _, task_b = await debtor_reply(
        database,
        data.case_b,
        text="Please stop writing to me.",
        intent="other",
        fields={"subtype": "question"},
        confidence=0.44,
        is_suggestion=True,
        sender_verified=True,
        message_id="<reply-b@debtor.example>",
    )
    username, secret, _ = data.accounts["collector"]
    async with serve(s, database) as base:
        context = await browser.new_context()
        page = await context.new_page()
        blocked: list[str] = []
        page.on("console", lambda msg: blocked.append(msg.text) if "Refused" in msg.text else None)
        await _login(page, base, username, secret)
        await page.click("#nav-triage")
        await page.wait_for_selector(f"#task-{task_a}")
        item = await page.inner_text(f"#task-{task_a}")
        assert "Dispute: I never got the goods." in item and "only a suggestion" in item
        # the first item's buttons carry the access keys: one key confirms it
        assert await page.get_attribute(f"#label-{task_a}-dispute", "accesskey") == "d"
        await page.click(f"#label-{task_a}-dispute")
        await page.wait_for_selector("#message")
        assert "confirmed (dispute)" in await page.inner_text("#message")
        assert await page.locator(f"#task-{task_a}").count() == 0
        # the second reply was misread: correct it to cease_contact
        await page.click(f"#label-{task_b}-other-cease_contact")
        await page.wait_for_selector("#message")
        assert "corrected (cease_contact)" in await page.inner_text("#message")
        await page.goto(f"{base}/cases/{data.case_b}")
        await page.wait_for_selector("#thread")
        assert "cease_contact" in await page.inner_text("#thread")
        assert blocked == []
        await context.close()
    async with database.sessions() as session:
        rows = (await session.scalars(select(Classification).order_by(Classification.id))).all()
    assert [r.corrected_intent for r in rows] == [None, "other"]
    assert rows[1].fields["corrected_subtype"] == "cease_contact"
