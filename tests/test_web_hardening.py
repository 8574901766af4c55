"""Security hardening of the web application and the portal, one finding per test, against a
real server on both backends: TOTP codes work once, the portal code stays out of the subject,
logout ends every session, reset and code mails are rate-limited, downloads are sanitised,
redirect targets and forwarded headers cannot be chosen by a client, header injection fails."""

from __future__ import annotations

import email
import email.policy
import re
import time
from pathlib import Path

import pyotp
import pytest
from portal_support import code_mails, code_of, portal_case, portal_path
from sqlalchemy import select
from web_support import (
    PASSWORD,
    add_account,
    client,
    csrf_of,
    get_csrf,
    login,
    seed,
    serve,
    web_settings,
)

from hub.config import Settings
from hub.outbound.render import MailRenderer, TemplateRenderError
from hub.security import totp
from hub.security.roles import Role
from hub.services.portal_code_mail import PortalCodeMail, render_code_mail
from hub.storage.db import Database
from hub.storage.models import AuditEntry
from hub.storage.models_web import UserSecurity

# --- 1. TOTP replay -------------------------------------------------------------------------


def test_matching_step_names_the_step_of_a_code() -> None:
    secret = pyotp.random_base32()
    generator = pyotp.TOTP(secret)
    now = 1_800_000_015.0
    step = int(now) // 30
    for offset in (-1, 0, 1):
        code = generator.at((step + offset) * 30)
        assert totp.matching_step(secret, code, at=now) == step + offset
    assert totp.matching_step(secret, generator.at((step + 2) * 30), at=now) is None
    assert totp.matching_step(secret, "12345", at=now) is None
    assert totp.matching_step(secret, "abcdef", at=now) is None


async def _password_step(http: object, username: str) -> str:
    token = await get_csrf(http, "/login")  # type: ignore[arg-type]
    async with http.post(  # type: ignore[attr-defined]
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    ) as response:
        assert str(response.url).endswith("/login/totp")
        return csrf_of(await response.text())


async def test_a_totp_code_is_accepted_once(settings: Settings, database: Database) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username, secret, user_id = data.accounts["collector"]
    code = pyotp.TOTP(secret).now()
    async with serve(s, database) as base:
        async with client(base) as first:
            csrf = await _password_step(first, username)
            async with first.post(
                "/login/totp", data={"code": code, "csrf_token": csrf}, allow_redirects=False
            ) as response:
                assert response.status == 303 and response.headers["Location"] == "/"
        # someone who saw the code (shoulder, proxy log) replays it within its 90 s window
        async with client(base) as second:
            csrf = await _password_step(second, username)
            async with second.post(
                "/login/totp", data={"code": code, "csrf_token": csrf}, allow_redirects=False
            ) as response:
                assert response.status == 401
            async with second.get("/cases", allow_redirects=False) as response:
                assert response.status == 303  # still only half logged in
            # an older code (the previous step) is refused as well
            older = pyotp.TOTP(secret).at(time.time() - 30)
            async with second.post(
                "/login/totp", data={"code": older, "csrf_token": csrf}, allow_redirects=False
            ) as response:
                assert response.status == 401
            # the next step's code (allowed for clock drift) is new, so it works
            newer = pyotp.TOTP(secret).at(time.time() + 30)
            async with second.post(
                "/login/totp", data={"code": newer, "csrf_token": csrf}, allow_redirects=False
            ) as response:
                assert response.status == 303
    async with database.sessions() as session:
        stored = await session.get(UserSecurity, user_id)
        failures = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "login.failed", AuditEntry.object_id == str(user_id)
                )
            )
        ).all()
    assert stored is not None and stored.totp_last_step == int(time.time() + 30) // 30
    assert [f.details["step"] for f in failures] == ["second_factor", "second_factor"]


async def test_the_enrolment_code_cannot_log_in_again(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    await seed(database, s)
    await add_account(database, "newbie", Role.COLLECTOR, None, totp=False)
    async with serve(s, database) as base:
        async with client(base) as http:
            token = await get_csrf(http, "/login")
            async with http.post(
                "/login", data={"username": "newbie", "password": PASSWORD, "csrf_token": token}
            ) as response:
                html = await response.text()
            found = re.search(r'id="totp-secret">([A-Z2-7]+)<', html)
            assert found
            secret = found.group(1)
            code = pyotp.TOTP(secret).now()
            async with http.post(
                "/login/enrol", data={"code": code, "csrf_token": csrf_of(html)}
            ) as response:
                assert response.status == 200
        async with client(base) as other:
            csrf = await _password_step(other, "newbie")
            async with other.post(
                "/login/totp", data={"code": code, "csrf_token": csrf}, allow_redirects=False
            ) as response:
                assert response.status == 401


# --- 2. the portal code is not in the subject -----------------------------------------------


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
