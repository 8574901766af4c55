"""The debtor portal in Debian's headless Chromium (Playwright), on both backends.

A debtor opens the link from a reminder, asks for a code (read back from the outbox row, as the
relay would send it), enters it, promises a date with the plain date picker, proposes a plan
and uploads an OpenPGP key made with gpg; a collector then sees each as the debtor's own entry
on the thread, and the next reminder is encrypted to that key. A stranger with the same link in
another browser sees nothing of the case. The strict CSP blocks nothing: no page needs script.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from dunning_support import (
    gpg_decrypt,
    hub_settings,
    kill_agent,
    make_hub_keys,
    new_world,
    pgp_payload,
    run,
)
from playwright.async_api import Browser, async_playwright
from portal_support import CREDITOR_NAME, DEBTOR_NAME, debtor_entries, latest_code, portal_case
from portal_support import portal_path as link_path
from sqlalchemy import update
from test_web_browser import ARGS, CHROMIUM, _login
from web_support import add_account, serve, web_settings

from hub.config import Settings
from hub.security.roles import Role
from hub.services.dunning import render_next_reminder
from hub.services.reminder_mail import open_mailer
from hub.storage.db import Database
from hub.storage.models import Case

ADDRESS = "erika@example.org"


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_debtor_acts_in_the_portal_and_the_collector_sees_it(
    settings: Settings, database: Database, chromium: Browser, tmp_path: Path
) -> None:
    hub_keys = make_hub_keys(tmp_path / "hub")
    world = new_world()
    try:
        s = hub_settings(web_settings(settings), hub_keys)
        case_id = await portal_case(
            database, s, "P-300", ADDRESS, plans={"auto_accept": True, "min_amount": "10"}
        )
        world.new_pgp_key(DEBTOR_NAME, ADDRESS)
        run("gpg", "--homedir", str(world.gpg_home), "--batch", "--import",
            stdin=hub_keys.public_key)  # fmt: skip
        key_file = tmp_path / "erika.asc"
        key_file.write_bytes(world.pgp_public[ADDRESS])
        collector, secret, _ = await add_account(database, "carl", Role.COLLECTOR, None)
        async with serve(s, database) as base:
            link = base + link_path(s, case_id)

            # a stranger holding a forwarded mail: the link alone shows nothing of the case
            stranger = await chromium.new_context()
            page = await stranger.new_page()
            await page.goto(link)
            await page.wait_for_selector("#postal-form")
            html = await page.content()
            for secret_text in (DEBTOR_NAME, "P-300", "310", CREDITOR_NAME):
                assert secret_text not in html
            await stranger.close()

            context = await chromium.new_context()
            page = await context.new_page()
            refused: list[str] = []
            page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
            await page.goto(link)
            await page.click("#code-submit")
            await page.wait_for_selector("#verify-form")
            await page.fill("#code", await latest_code(database))
            await page.click("#verify-submit")
            await page.wait_for_selector("#claim")
            assert DEBTOR_NAME in await page.inner_text("#claim-name")
            assert "€310.00" in await page.inner_text("#claim-balance")
            assert await page.locator("#epc-qr").count() == 1
            cookies = {c["name"]: c for c in await context.cookies()}
            portal_cookie = cookies["hub_portal"]
            assert portal_cookie["httpOnly"] and portal_cookie["sameSite"] == "Strict"
            assert "hub_session" not in cookies

            promised = date.today() + timedelta(days=10)
            await page.fill("#promise-date", promised.isoformat())
            await page.click("#promise-submit")
            await page.wait_for_selector("#message")
            assert "payment date" in await page.inner_text("#message")

            await page.click("#plan-proposal summary")
            await page.fill("#plan-count", "3")
            await page.fill("#plan-start", (date.today() + timedelta(days=5)).isoformat())
            await page.click("#plan-submit")
            await page.wait_for_selector("#plan-schedule")
            assert "agreed" in await page.inner_text("#plan-status")

            await page.click("#key summary")
            await page.set_input_files("#key-file", str(key_file))
            await page.click("#key-submit")
            await page.wait_for_selector("#message")
            assert "encrypted" in await page.inner_text("#message")
            await page.click("#lang-da")
            await page.wait_for_selector("html[lang=da]")
            assert "Din sag" in await page.inner_text("#case-title")
            assert refused == []
            await context.close()

            # the collector sees the debtor's own entries, classified, on the thread
            staff = await chromium.new_context()
            page = await staff.new_page()
            await _login(page, base, collector, secret)
            await page.goto(f"{base}/cases/{case_id}")
            await page.wait_for_selector("#thread")
            entries = await debtor_entries(database, case_id)
            assert [e.meta["action"] for e in entries] == ["promise", "plan", "key"]
            intents = ["payment_promise", "installment_request", "contact_change"]
            for entry, intent in zip(entries, intents, strict=True):
                shown = await page.locator(f"#entry-{entry.seq}").text_content() or ""
                assert "inbound by debtor" in shown and intent in shown
                assert '"model_version": "portal"' in shown
            assert "plan_active" in await page.inner_text("#case-state")
            await staff.close()

        # the next reminder, once dunning resumes, is encrypted to the uploaded key
        async with database.transaction() as session:
            await session.execute(
                update(Case).where(Case.id == case_id).values(state="reminded", paused_until=None)
            )
        mailer = await open_mailer(s)
        try:
            built = await render_next_reminder(
                database, s, mailer, "P-300", datetime.now(UTC) + timedelta(days=1)
            )
        finally:
            mailer.close()
        message = email.message_from_bytes(built.raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        status, plain = gpg_decrypt(world.gpg_home, pgp_payload(message))
        assert "DECRYPTION_OKAY" in status and "GOODSIG" in status and b"P-300" in plain
    finally:
        world.close()
        kill_agent(hub_keys.gnupg_home)
