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
    fresh_totp,
    get_csrf,
    login,
    seed,
    serve,
    web_settings,
)
from yarl import URL

from hub.config import Settings
from hub.outbound.render import MailRenderer, TemplateRenderError
from hub.security import totp
from hub.security.roles import Role
from hub.services.portal_code_mail import PortalCodeMail, render_code_mail
from hub.services.users import RESET_MAILS_PER_HOUR
from hub.storage.db import Database
from hub.storage.models import AuditEntry, OutboxMessage
from hub.storage.models_web import UserSecurity, WebSession

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


# --- 3. sessions: a new id at each login step, logout and password change end them all ------


async def test_each_login_step_gives_a_new_session_id(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username, secret, _ = data.accounts["collector"]
    async with serve(s, database) as base, client(base) as http:
        # a planted cookie (session fixation) is never adopted
        http.cookie_jar.update_cookies({"hub_session": "planted-by-an-attacker"}, URL(base))
        csrf = await _password_step(http, username)
        partial = http.cookie_jar.filter_cookies(URL(base))["hub_session"].value
        assert partial != "planted-by-an-attacker"
        async with http.post(
            "/login/totp", data={"code": await fresh_totp(secret), "csrf_token": csrf}
        ) as response:
            assert response.status == 200
        full = http.cookie_jar.filter_cookies(URL(base))["hub_session"].value
        assert full not in (partial, "planted-by-an-attacker")
    async with serve(s, database) as base, client(base) as stale:
        stale.cookie_jar.update_cookies({"hub_session": partial}, URL(base))
        async with stale.get("/cases", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/login"


async def test_logout_ends_every_session_of_the_account(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username, secret, user_id = data.accounts["collector"]
    other_user = data.accounts["creditor"]
    async with (
        serve(s, database) as base,
        client(base) as laptop,
        client(base) as phone,
        client(base) as someone,
    ):
        await login(laptop, username, secret)
        await login(phone, username, secret)
        await login(someone, *other_user[:2])
        token = await get_csrf(phone, "/")
        async with phone.post("/logout", data={"csrf_token": token}) as response:
            assert str(response.url).endswith("/login?logged_out=1")
        for http, expected in ((laptop, 303), (phone, 303), (someone, 200)):
            async with http.get("/cases", allow_redirects=False) as response:
                assert response.status == expected
    async with database.sessions() as session:
        left = (await session.scalars(select(WebSession.user_id))).all()
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "logout").order_by(AuditEntry.id.desc())
        )
    assert user_id not in left and other_user[2] in left
    assert entry is not None and entry.details == {"sessions_ended": 2}


# --- 4. password reset: same answer, limited mails, old links die ---------------------------


async def _forgot(http: object, identifier: str) -> tuple[int, str]:
    token = await get_csrf(http, "/password/forgot")  # type: ignore[arg-type]
    async with http.post(  # type: ignore[attr-defined]
        "/password/forgot", data={"identifier": identifier, "csrf_token": token}
    ) as response:
        return response.status, await response.text()


def _without_csrf(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


async def _reset_mails(database: Database) -> list[OutboxMessage]:
    async with database.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.like("password-reset:%"))
            .order_by(OutboxMessage.id)
        )
        return list(rows.all())


def _reset_link(row: OutboxMessage) -> str:
    message = email.message_from_bytes(row.message, policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(r"(/password/reset/[A-Za-z0-9_-]+)", body.get_content())
    assert found
    return found.group(1)


async def test_password_reset_is_rate_limited_and_old_links_die(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username = data.accounts["creditor"][0]
    async with serve(s, database) as base, client(base) as http:
        known = [await _forgot(http, username) for _ in range(5)]
        unknown = await _forgot(http, "nobody-here")
        by_mail = await _forgot(http, "nobody@example.org")
        # the same page whatever the account, however often it is asked
        pages = {(status, _without_csrf(html)) for status, html in [*known, unknown, by_mail]}
        assert len(pages) == 1 and next(iter(pages))[0] == 200
        rows = await _reset_mails(database)
        assert len(rows) == RESET_MAILS_PER_HOUR == 3
        # setting the password with one link kills the others
        first, second = _reset_link(rows[0]), _reset_link(rows[1])
        token = await get_csrf(http, first)
        new = "an entirely new passphrase"
        async with http.post(
            first, data={"new_password": new, "repeat": new, "csrf_token": token}
        ) as response:
            assert response.status == 200 and "Password set" in await response.text()
        async with http.get(second) as response:
            assert 'name="new_password"' not in await response.text()
        token = await get_csrf(http, "/password/forgot")
        async with http.post(
            second, data={"new_password": "x" * 20, "repeat": "x" * 20, "csrf_token": token}
        ) as response:
            assert response.status == 400
    async with database.sessions() as session:
        withheld = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "password.reset_withheld")
            )
        ).all()
    assert len(withheld) == 2
    assert all("@" not in str(e.details) for e in withheld)


async def test_login_answers_alike_for_unknown_names_and_wrong_passwords(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username = data.accounts["collector"][0]
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    pages: set[tuple[int, str]] = set()
    async with serve(s, database) as base, client(base) as http:
        for index in range(3):
            for kind, name in (("known", username), ("unknown", f"ghost{index}")):
                token = await get_csrf(http, "/login")
                started = time.perf_counter()
                async with http.post(
                    "/login",
                    data={"username": name, "password": "wrong password!", "csrf_token": token},
                ) as response:
                    pages.add((response.status, _without_csrf(await response.text())))
                timings[kind].append(time.perf_counter() - started)
    assert len(pages) == 1 and next(iter(pages))[0] == 401
    known, unknown = sorted(timings["known"])[1], sorted(timings["unknown"])[1]
    # both run argon2 (a dummy hash for an unknown name): the medians are of one size
    assert 0.33 < known / unknown < 3.0, (known, unknown)
