"""Security hardening of the debtor portal and its mail, against a real server on both
backends: the one-time code stays out of the subject, code mails are limited, the postal-code
factor closes for a day after a few wrong answers, no header injection from what debtors write,
uploads keep no path and must be what they claim."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from portal_support import POSTAL, code_mails, code_of, portal_case, portal_path
from sqlalchemy import select
from web_support import client, csrf_of, serve, web_settings

from hub.config import Settings
from hub.domain.answers import reply_subject
from hub.domain.mail import RenderedMail
from hub.outbound.compose import compose_notice
from hub.outbound.render import MailRenderer, TemplateRenderError
from hub.services.portal_access import (
    PortalDeniedError,
    PortalLockedError,
    PortalPolicy,
    request_code,
    verify_code,
    verify_postal,
)
from hub.services.portal_actions import PortalInputError, checked_upload
from hub.services.portal_code_mail import PortalCodeMail, render_code_mail
from hub.storage.db import Database
from hub.storage.models import DebtorEmail

# --- the portal code is not in the subject -----------------------------------------------


@pytest.mark.parametrize("language", ["en", "de", "da"])
def test_portal_code_is_in_the_body_not_the_subject(settings: Settings, language: str) -> None:
    renderer = MailRenderer.from_settings(settings.outbound)
    mail = PortalCodeMail(code="407193", minutes=10, language=language, to_addr="e@example.org")  # type: ignore[arg-type]
    rendered = render_code_mail(renderer, mail, "Hub")
    assert "407193" not in rendered.subject and rendered.subject.startswith("Hub: ")
    assert "407193" in rendered.text and "407193" in rendered.html


def test_an_override_with_the_code_in_the_subject_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    shipped = settings.outbound.default_template_dir / "mail" / "en"
    override = tmp_path / "templates" / "mail" / "en"
    override.mkdir(parents=True)
    for part in ("txt", "html"):
        name = f"portal_code.{part}.j2"
        (override / name).write_text((shipped / name).read_text())
    (override / "portal_code.subject.j2").write_text("Your code: {{ code }}\n")
    outbound = settings.outbound.model_copy(update={"template_dir": tmp_path / "templates"})
    renderer = MailRenderer.from_settings(outbound)
    mail = PortalCodeMail(code="407193", minutes=10, language="en", to_addr="e@example.org")
    with pytest.raises(TemplateRenderError, match="must not be in the subject"):
        render_code_mail(renderer, mail, "Hub")


async def test_the_queued_code_mail_has_no_code_in_its_subject(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    case_id = await portal_case(database, s, "P-7", "erika@example.org", language="de")
    path = portal_path(s, case_id)
    async with serve(s, database) as base, client(base) as http:
        async with http.get(path) as response:
            html = await response.text()
        async with http.post(
            path + "/code", data={"csrf_token": csrf_of(html)}, allow_redirects=False
        ) as response:
            assert response.status == 303
    [row] = await code_mails(database)
    code = code_of(row)
    message = email.message_from_bytes(row.message, policy=email.policy.default)
    assert code not in str(message["Subject"]) and "Portal" in str(message["Subject"])


# --- portal code mails are limited; the gate answers alike -------------------------------


async def test_portal_code_mails_are_limited_per_case(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    case_id = await portal_case(database, s, "P-8", "erika@example.org")
    path = portal_path(s, case_id)
    answers = set()
    async with serve(s, database) as base, client(base) as http:
        for _ in range(5):
            async with http.get(path) as response:
                html = await response.text()
            async with http.post(
                path + "/code", data={"csrf_token": csrf_of(html)}, allow_redirects=False
            ) as response:
                answers.add((response.status, response.headers["Location"]))
    assert len(answers) == 1 and next(iter(answers))[0] == 303
    assert len(await code_mails(database)) == PortalPolicy().codes_per_window == 3


# --- no header injection from what debtors write -----------------------------------------


def test_a_debtor_subject_cannot_add_headers_to_our_reply() -> None:
    subject = reply_subject("Invoice\r\nBcc: everyone@example.org\r\n\r\nbody")
    assert subject is not None and "\r" not in subject and "\n" not in subject
    rendered = RenderedMail(subject="ok", text="t\n", html="<p>t</p>\n", language="en")
    with pytest.raises(ValueError, match=r"linefeed|carriage"):
        compose_notice(
            rendered,
            from_addr="hub@example.org",
            to_addr="erika@example.org\r\nBcc: everyone@example.org",
            message_id_domain="example.org",
            date=datetime.now(UTC),
        )


async def test_portal_contact_refuses_an_address_with_a_line_break(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    case_id = await portal_case(database, s, "P-9", "erika@example.org")
    path = portal_path(s, case_id)
    async with serve(s, database) as base, client(base) as http:
        async with http.get(path) as response:
            html = await response.text()
        async with http.post(
            path + "/postal",
            data={"reference": "P-9", "postal_code": POSTAL, "csrf_token": csrf_of(html)},
        ) as response:
            page = await response.text()
            assert response.status == 200 and "P-9" in page
        async with http.post(
            "/portal/case/contact",
            data={"email": "new@example.org\r\nBcc: x@example.org", "csrf_token": csrf_of(page)},
        ) as response:
            assert response.status == 400
    async with database.sessions() as session:
        addresses = (await session.scalars(select(DebtorEmail.address))).all()
    assert all("\n" not in a and "Bcc" not in a for a in addresses)


# --- the postal-code factor closes for a day after a few wrong answers -----------------


async def test_postal_guessing_closes_that_factor_for_a_day_but_not_the_code(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    case_id = await portal_case(database, s, "P-10", "erika@example.org")
    policy = PortalPolicy(case_threshold=100, ip_threshold=100, postal_per_day=3)
    for guess in ("10000", "10001", "10002"):
        with pytest.raises(PortalDeniedError):
            await verify_postal(database, policy, case_id, "P-10", guess, None, "192.0.2.1")
    # the right postal code, from a fresh address, is refused now ...
    with pytest.raises(PortalLockedError) as locked:
        await verify_postal(database, policy, case_id, "P-10", POSTAL, None, "192.0.2.2")
    assert locked.value.until - datetime.now(UTC) > timedelta(hours=23)
    # ... while the debtor's mailed code still opens the portal
    secret = b"k" * 32
    assert await request_code(database, s, secret, policy, case_id, "192.0.2.3")
    code = code_of((await code_mails(database))[-1])
    token = await verify_code(database, secret, policy, case_id, code, None, "192.0.2.3")
    assert token


def test_portal_uploads_keep_no_path_and_must_be_what_they_claim() -> None:
    upload = checked_upload("../../etc/x\r\n\u202e.pdf", "application/pdf", b"%PDF-1.7\n")
    assert "/" not in upload.filename and "\r" not in upload.filename
    assert "\u202e" not in upload.filename and upload.filename.endswith(".pdf")
    for kind, content in (
        ("text/html", b"<script>alert(1)</script>"),
        ("application/pdf", b"<html><script>alert(1)</script>"),
        ("image/png", b"GIF89a"),
        ("text/plain", b"\x00\x01binary"),
    ):
        with pytest.raises(PortalInputError):
            checked_upload("x", kind, content)
