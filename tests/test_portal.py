"""The debtor portal over HTTP on both backends: the door (a stranger with the link sees
nothing, the second factor by mailed code or by reference and postal code, throttling and
lock-out), every action recorded as the debtor's own classified entry and passed through the
automation, the plan rules, and the next reminder encrypted to a key uploaded in the portal."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import pytest
from dunning_support import (
    FROM,
    gpg_decrypt,
    hub_settings,
    kill_agent,
    make_hub_keys,
    new_world,
    pgp_payload,
    run,
)
from portal_support import (
    CREDITOR_NAME,
    DEBTOR_NAME,
    POSTAL,
    classification_of,
    code_mails,
    code_of,
    debtor_entries,
    portal_case,
    portal_path,
)
from sqlalchemy import select, update
from web_support import client, csrf_of, login, seed, serve, web_settings

from hub.config import Settings
from hub.domain.portal_text import keys as text_keys
from hub.domain.portal_text import text
from hub.services.dunning import render_next_reminder
from hub.services.portal_access import (
    PortalPolicy,
    load_portal_session,
    purge_expired,
    verify_postal,
)
from hub.services.reminder_mail import open_mailer
from hub.storage.db import Database
from hub.storage.models import Attachment, Case, DebtorEmail, DebtorKey, ThreadEntry
from hub.storage.models_cases import InstallmentPlan
from hub.storage.models_web import LoginThrottle, PortalCode, PortalSession

SECRETS = (DEBTOR_NAME, "Erika", "310", "P-100", CREDITOR_NAME, "Nordlicht")


def _nothing_of_the_case(html: str) -> None:
    for secret in SECRETS:
        assert secret not in html, secret


async def _form_post(
    http: aiohttp.ClientSession, path: str, data: dict[str, str], csrf: str
) -> tuple[int, str, str]:
    async with http.post(path, data={**data, "csrf_token": csrf}, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


async def _gate(http: aiohttp.ClientSession, path: str) -> tuple[int, str]:
    async with http.get(path) as response:
        return response.status, await response.text()


async def test_a_stranger_with_the_link_sees_nothing_and_guessing_locks(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings, lockout_user_threshold=4)
    case_id = await portal_case(database, s, "P-100", "erika@example.org")
    path = portal_path(s, case_id)
    async with serve(s, database) as base, client(base) as http:
        status, html = await _gate(http, path)
        assert status == 200 and 'id="postal-form"' in html
        _nothing_of_the_case(html)
        async with http.get("/portal/case", allow_redirects=False) as response:
            assert response.status == 401
            _nothing_of_the_case(await response.text())
        status, invalid = await _gate(http, "/portal/c/" + "a" * 37)
        assert status == 404 and "not valid" in invalid
        # a code is mailed (in clear: it holds nothing of the case)
        status, location, _ = await _form_post(http, path + "/code", {}, csrf_of(html))
        assert status == 303 and location.endswith("?sent=1")
        status, html = await _gate(http, location)
        _nothing_of_the_case(html)
        [row] = await code_mails(database)
        assert row.case_id is None and b"P-100" not in row.message
        for secret in (b"Mustermann", b"Nordlicht", b"310.00", b"310,00"):
            assert secret not in row.message
        right = code_of(row)
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        # four wrong answers (code or reference+postal) lock the case's portal
        for index in range(4):
            if index % 2:
                data, target = {"code": wrong}, path + "/verify"
            else:
                data = {"reference": "P-100", "postal_code": "99999"}
                target = path + "/postal"
            status, _, html = await _form_post(http, target, data, csrf_of(html))
            assert status == 400, index
            assert text("gate.denied", "en") in html
            _nothing_of_the_case(html)
        status, _, html = await _form_post(http, path + "/verify", {"code": right}, csrf_of(html))
        assert status == 429 and text("gate.locked", "en") in html
        _nothing_of_the_case(html)
        status, _, html = await _form_post(
            http, path + "/postal", {"reference": "P-100", "postal_code": POSTAL}, csrf_of(html)
        )
        assert status == 429  # the right answers, refused while locked
        assert "hub_portal" not in {c.key for c in http.cookie_jar}
        # the lock ends: the right code (still unused and valid) opens the case, once
        async with database.transaction() as session:
            await session.execute(
                update(LoginThrottle).values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        status, location, _ = await _form_post(
            http, path + "/verify", {"code": right}, csrf_of(html)
        )
        assert (status, location) == (303, "/portal/case")
        async with http.get("/portal/case") as response:
            page = await response.text()
            assert response.status == 200 and DEBTOR_NAME in page and "P-100" in page
        async with database.sessions() as session:
            stored = (await session.scalars(select(PortalCode))).all()
        assert [r.used_at is not None for r in stored] == [True]
        assert all(right not in r.code_hash for r in stored)
    async with serve(s, database) as base, client(base) as other:
        status, html = await _gate(other, path)
        status, _, _ = await _form_post(other, path + "/verify", {"code": right}, csrf_of(html))
        assert status == 400  # single use


async def test_the_staff_login_does_not_open_the_portal(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username, secret, _ = data.accounts["collector"]
    async with serve(s, database) as base, client(base) as http:
        await login(http, username, secret)
        async with http.get("/portal/case", allow_redirects=False) as response:
            assert response.status == 401
            assert "Alice" not in await response.text()


async def _open_by_postal(http: aiohttp.ClientSession, path: str, reference: str) -> None:
    _, html = await _gate(http, path)
    status, location, _ = await _form_post(
        http, path + "/postal", {"reference": f" {reference.lower()} ", "postal_code": "DE-20457"},
        csrf_of(html),
    )  # fmt: skip
    assert (status, location) == (303, "/portal/case")


async def _case_csrf(http: aiohttp.ClientSession) -> str:
    async with http.get("/portal/case") as response:
        assert response.status == 200
        return csrf_of(await response.text())


async def _act(
    http: aiohttp.ClientSession, action: str, data: dict[str, str] | aiohttp.FormData
) -> str:
    csrf = await _case_csrf(http)
    if isinstance(data, aiohttp.FormData):
        data.add_field("csrf_token", csrf)
        payload: object = data
    else:
        payload = {**data, "csrf_token": csrf}
    async with http.post(f"/portal/case/{action}", data=payload, allow_redirects=False) as r:
        body = await r.text()
        assert r.status == 303, (action, r.status, body[-600:])
        return r.headers["Location"]


async def _case(database: Database, case_id: int) -> Case:
    async with database.sessions() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        return case


async def test_portal_actions_land_on_the_thread_classified_and_move_the_case(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    hub_keys = make_hub_keys(tmp_path / "hub")
    world = new_world()
    try:
        s = hub_settings(web_settings(settings), hub_keys)
        case_id = await portal_case(
            database, s, "P-100", "erika@example.org", language="de",
            plans={"auto_accept": True, "max_installments": 6, "min_amount": "20"},
        )  # fmt: skip
        world.new_pgp_key(DEBTOR_NAME, "erika@example.org")
        run("gpg", "--homedir", str(world.gpg_home), "--batch", "--import",
            stdin=hub_keys.public_key)  # fmt: skip
        path = portal_path(s, case_id)
        async with serve(s, database) as base, client(base) as http:
            await _open_by_postal(http, path, "P-100")
            async with http.get("/portal/case") as response:
                page = await response.text()
            # German, Babel's formats, bank details and the EPC QR code
            assert 'lang="de"' in page and "Ihre Forderung" in page
            assert "310,00\xa0€" in page and "DE89370400440532013000" in page
            assert 'src="data:image/svg+xml' in page and "<script" not in page

            promised = date.today() + timedelta(days=14)
            assert await _act(http, "promise", {"date": promised.isoformat(), "amount": ""}) == (
                "/portal/case?done=promise#message"
            )
            assert (await _case(database, case_id)).state == "promised"

            start = date.today() + timedelta(days=7)
            location = await _act(
                http, "plan", {"count": "3", "amount": "", "frequency": "monthly",
                               "start": start.isoformat()},
            )  # fmt: skip
            assert location.endswith("done=plan_accepted#message")
            assert (await _case(database, case_id)).state == "plan_active"

            form = aiohttp.FormData()
            form.add_field(
                "key", world.pgp_public["erika@example.org"], filename="erika.asc",
                content_type="application/pgp-keys",
            )  # fmt: skip
            assert (await _act(http, "key", form)).endswith("done=key#message")

            async with http.get("/portal/case") as response:
                page = await response.text()
            assert "Ich zahle den offenen Betrag bis zum" in page  # their own words, in German
            assert "vereinbart" in page and 'id="plan-schedule"' in page

        entries = await debtor_entries(database, case_id)
        assert [e.meta["action"] for e in entries] == ["promise", "plan", "key"]
        assert all(e.kind == "inbound" and not e.internal for e in entries)
        expected = [("payment_promise", None), ("installment_request", None),
                    ("other", "contact_change")]  # fmt: skip
        for entry, (intent, subtype) in zip(entries, expected, strict=True):
            found = await classification_of(database, entry.id)
            assert (found.intent, found.subtype) == (intent, subtype)
            assert found.confidence == 1.0 and not found.is_suggestion
            assert (found.model_version, found.language) == ("portal", "de")
        async with database.sessions() as session:
            plan = await session.scalar(
                select(InstallmentPlan).where(InstallmentPlan.case_id == case_id)
            )
            key = await session.scalar(select(DebtorKey))
            decisions = (
                await session.scalars(
                    select(ThreadEntry.meta).where(
                        ThreadEntry.case_id == case_id, ThreadEntry.actor != "debtor"
                    )
                )
            ).all()
        assert plan is not None and plan.status == "approved" and plan.count == 3
        assert key is not None and key.source == "portal"
        assert key.fingerprint == world.pgp_fpr["erika@example.org"]
        sources = {m.get("source_entry_id") for m in decisions if "rule" in m}
        assert {e.id for e in entries} <= sources  # each went through the automation

        # the next reminder (dunning resumed) is encrypted to the uploaded key
        async with database.transaction() as session:
            await session.execute(
                update(Case).where(Case.id == case_id).values(state="reminded", paused_until=None)
            )
        mailer = await open_mailer(s)
        try:
            built = await render_next_reminder(
                database, s, mailer, "P-100", datetime.now(UTC) + timedelta(days=1)
            )
        finally:
            mailer.close()
        assert built.protection.value == "pgp-mime"
        message = email.message_from_bytes(built.raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        status_lines, plain = gpg_decrypt(world.gpg_home, pgp_payload(message))
        assert "DECRYPTION_OKAY" in status_lines and "GOODSIG" in status_lines
        assert b"P-100" in plain
        assert FROM in built.raw.decode("utf-8", "replace")
    finally:
        world.close()
        kill_agent(hub_keys.gnupg_home)


async def test_dispute_contact_reply_and_opt_out(settings: Settings, database: Database) -> None:
    s = web_settings(settings)
    case_id = await portal_case(database, s, "P-200", "erika@example.org")
    path = portal_path(s, case_id)
    async with serve(s, database) as base, client(base) as http:
        await _open_by_postal(http, path, "P-200")
        assert (await _act(http, "reply", {"message": "Where do I find the invoice?"})).endswith(
            "done=reply#message"
        )
        form = aiohttp.FormData()
        form.add_field("reason", "already_paid")
        form.add_field("text", "Paid on 3 May.")
        form.add_field("file", b"%PDF-1.4 receipt", filename="receipt.pdf",
                       content_type="application/pdf")  # fmt: skip
        assert (await _act(http, "dispute", form)).endswith("done=dispute#message")
        assert (await _case(database, case_id)).state == "disputed"
        # a file that only claims to be a PDF is refused, and nothing is recorded
        bad = aiohttp.FormData()
        bad.add_field("reason", "other")
        bad.add_field("file", b"<html><script>", filename="x.pdf", content_type="application/pdf")
        bad.add_field("csrf_token", await _case_csrf(http))
        async with http.post("/portal/case/dispute", data=bad) as response:
            assert response.status == 400
            assert text("error.file_type", "en") in await response.text()
        new = {"email": "erika.new@example.net", "street": "Neuer Weg 1", "postal_code": "10115",
               "city": "Berlin", "phone": ""}  # fmt: skip
        assert (await _act(http, "contact", new)).endswith("done=contact#message")
        assert (await _act(http, "opt-out", {})).endswith("done=opt_out#message")
        async with http.get("/portal/case") as response:
            page = await response.text()
        assert 'id="opted-out"' in page and "Paid on 3 May." in page and "receipt.pdf" in page
        # the session is one case's only, and logging out ends it
        csrf = csrf_of(page)
        async with http.post("/portal/logout", data={"csrf_token": csrf}) as response:
            assert response.status == 200
        async with http.get("/portal/case", allow_redirects=False) as response:
            assert response.status == 401

    entries = await debtor_entries(database, case_id)
    assert [e.meta["action"] for e in entries] == ["reply", "dispute", "contact", "opt_out"]
    intents = [await classification_of(database, e.id) for e in entries]
    assert [(c.intent, c.subtype) for c in intents] == [
        ("other", "question"), ("dispute", None), ("other", "contact_change"),
        ("other", "cease_contact"),
    ]  # fmt: skip
    assert intents[1].fields == {"reason": "already_paid"}
    assert entries[2].meta["changed_fields"] == ["email", "street", "postal_code", "city"]
    assert "erika.new" not in str(entries[2].meta)  # meta names fields, never values
    async with database.sessions() as session:
        attachment = await session.scalar(select(Attachment))
        emails = (await session.scalars(select(DebtorEmail).order_by(DebtorEmail.id))).all()
    assert attachment is not None and attachment.content_type == "application/pdf"
    assert attachment.thread_entry_id == entries[1].id
    assert [(e.address, e.verified, e.status) for e in emails] == [
        ("erika@example.org", True, "opted_out"),
        ("erika.new@example.net", False, "opted_out"),
    ]


@pytest.mark.parametrize("language", ["en", "de", "da"])
def test_every_text_exists_in_every_language(language: str) -> None:
    for key in text_keys():
        assert text(key, language, minutes=10, size="5 MB", detail="x").strip()  # type: ignore[arg-type]
    assert text("portal.title", "de") != text("portal.title", "en")


async def test_expired_portal_sessions_are_refused_and_purged(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    case_id = await portal_case(database, s, "P-400", "erika@example.org")
    policy = PortalPolicy.from_settings(s.web)
    token = await verify_postal(database, policy, case_id, "P-400", POSTAL, None, "127.0.0.1")
    assert (await load_portal_session(database, token)) is not None
    async with database.transaction() as session:
        await session.execute(
            update(PortalSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await load_portal_session(database, token) is None
    assert await purge_expired(database) == 1
    async with database.sessions() as session:
        assert (await session.scalars(select(PortalSession))).all() == []
