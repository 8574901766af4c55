"""Web authentication against a real server on both backends: TOTP enrolment and login,
recovery codes, CSRF, lock-out (stored, surviving a restart), session expiry and revocation,
password reset through the outbox, forwarded headers only from trusted proxies."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from email import message_from_bytes

import pyotp
from sqlalchemy import select, update
from web_support import (
    PASSWORD,
    add_account,
    client,
    csrf_of,
    forget_totp,
    get_csrf,
    login,
    seed,
    serve,
    web_settings,
)
from yarl import URL

from hub.config import Settings
from hub.security import audit
from hub.security.roles import Role
from hub.storage.db import Database
from hub.storage.models import AuditEntry, OutboxMessage, ThreadEntry, utcnow
from hub.storage.models_web import WebSession


async def test_first_login_enrols_totp_then_recovery_code_works_once(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    await seed(database, s)
    await add_account(database, "newbie", Role.COLLECTOR, None, totp=False)
    async with serve(s, database) as base, client(base) as http:
        token = await get_csrf(http, "/login")
        async with http.post(
            "/login", data={"username": "newbie", "password": PASSWORD, "csrf_token": token}
        ) as response:
            html = await response.text()
            assert str(response.url).endswith("/login/enrol")
        # everything else leads back to the enrolment until it is done
        async with http.get("/cases") as response:
            assert str(response.url).endswith("/login/enrol")
        assert 'src="data:image/svg+xml' in html
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html)
        assert secret
        async with http.post(
            "/login/enrol", data={"code": "000000", "csrf_token": csrf_of(html)}
        ) as response:
            assert response.status == 400
        async with http.post(
            "/login/enrol",
            data={"code": pyotp.TOTP(secret.group(1)).now(), "csrf_token": csrf_of(html)},
        ) as response:
            assert response.status == 200
            page = await response.text()
        codes = re.findall(r"<li>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</li>", page)
        assert len(codes) == 10
        async with http.get("/cases") as response:
            assert response.status == 200 and "A-1" in await response.text()
        async with http.post("/logout", data={"csrf_token": csrf_of(page)}) as response:
            assert str(response.url).endswith("/login?logged_out=1")

        # a recovery code replaces the TOTP code, once
        for attempt in range(2):
            token = await get_csrf(http, "/login")
            async with http.post(
                "/login", data={"username": "newbie", "password": PASSWORD, "csrf_token": token}
            ) as response:
                html = await response.text()
                assert str(response.url).endswith("/login/totp")
            async with http.post(
                "/login/totp", data={"code": codes[0].upper(), "csrf_token": csrf_of(html)}
            ) as response:
                assert response.status == (200 if attempt == 0 else 401)
            if attempt == 0:
                async with http.get("/") as response:
                    assert "newbie" in await response.text()
                http.cookie_jar.clear()


async def test_totp_login_and_wrong_code(settings: Settings, database: Database) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username, secret, _ = data.accounts["collector"]
    async with serve(s, database) as base, client(base) as http:
        token = await get_csrf(http, "/login")
        async with http.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
        ) as response:
            html = await response.text()
        # the half-logged-in session reaches nothing but the code page
        async with http.get("/cases", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/login/totp"
        async with http.post(
            "/login/totp", data={"code": "123456", "csrf_token": csrf_of(html)}
        ) as response:
            assert response.status == 401
        async with http.post(
            "/login/totp",
            data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(html)},
            allow_redirects=False,
        ) as response:
            assert response.status == 303 and response.headers["Location"] == "/"
            set_cookie = response.headers["Set-Cookie"]
        assert set_cookie.startswith("hub_session=")
        for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            assert attribute in set_cookie
        async with http.get("/") as response:
            assert response.status == 200 and username in await response.text()


async def test_csrf_missing_or_wrong_token_fails(settings: Settings, database: Database) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        url = f"/cases/{data.case_a}/notes"
        async with http.post(url, data={"text": "no token"}) as response:
            assert response.status == 403
        async with http.post(url, data={"text": "bad", "csrf_token": "x" * 43}) as response:
            assert response.status == 403
        async with http.post(
            f"/api/cases/{data.case_a}/close", json={"event": "withdrawn"}
        ) as response:
            assert response.status == 403
        good = await get_csrf(http, f"/cases/{data.case_a}")
        async with http.post(url, data={"text": "with token", "csrf_token": good}) as response:
            assert response.status == 200
    async with database.sessions() as session:
        bodies = (
            (await session.execute(select(ThreadEntry.body).where(ThreadEntry.kind == "note")))
            .scalars()
            .all()
        )
    assert bodies == ["with token"]
    # a login form posted without the anonymous CSRF token is refused too
    async with (
        serve(s, database) as base,
        client(base) as http,
        http.post("/login", data={"username": "carl", "password": PASSWORD}) as response,
    ):
        assert response.status == 403


async def test_brute_force_locks_account_survives_restart_and_unlocks(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings, lockout_user_threshold=3, lockout_minutes=0.03)
    data = await seed(database, s)
    username, secret, _ = data.accounts["collector"]
    async with serve(s, database) as base, client(base) as http:
        for _ in range(3):
            response = await login(http, username, secret, password="wrong password!")
            assert response.status == 401
        response = await login(http, username, secret)
        assert response.status == 429  # right password, but locked
    # a new server on the same database (a restart, another node) sees the lock
    async with serve(s, database) as base, client(base) as http:
        response = await login(http, username, secret)
        assert response.status == 429
        await asyncio.sleep(2.0)  # lockout_minutes=0.03 is 1.8 s
        response = await login(http, username, secret)
        assert response.status == 200 and str(response.url) == base + "/"
    async with database.sessions() as session:
        actions = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert actions.count("login.failed") == 3
    assert "login.locked_out" in actions


async def test_sessions_expire_and_are_revoked(settings: Settings, database: Database) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username, secret, user_id = data.accounts["collector"]
    admin = data.accounts["admin"]

    async def reaches_cases(http: object) -> bool:
        async with http.get("/cases", allow_redirects=False) as response:  # type: ignore[attr-defined]
            return bool(response.status == 200)

    async with serve(s, database) as base:
        # idle expiry
        async with client(base) as http:
            await login(http, username, secret)
            assert await reaches_cases(http)
            async with database.transaction() as session:
                await session.execute(
                    update(WebSession)
                    .where(WebSession.user_id == user_id)
                    .values(last_seen_at=utcnow() - timedelta(minutes=31))
                )
            assert not await reaches_cases(http)
        # absolute expiry
        async with client(base) as http:
            await forget_totp(database, user_id, secret)
            await login(http, username, secret)
            async with database.transaction() as session:
                await session.execute(
                    update(WebSession)
                    .where(WebSession.user_id == user_id)
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                )
            assert not await reaches_cases(http)
        # logout: the old cookie is worthless afterwards
        async with client(base) as http:
            await forget_totp(database, user_id, secret)
            await login(http, username, secret)
            old = http.cookie_jar.filter_cookies(URL(base))["hub_session"].value
            token = await get_csrf(http, "/")
            async with http.post("/logout", data={"csrf_token": token}):
                pass
        async with client(base) as http:
            http.cookie_jar.update_cookies({"hub_session": old})
            assert not await reaches_cases(http)
        # admin revocation
        async with client(base) as victim, client(base) as boss:
            await forget_totp(database, user_id, secret)
            await login(victim, username, secret)
            await login(boss, admin[0], admin[1])
            token = await get_csrf(boss, "/admin/users")
            async with boss.post(
                f"/admin/users/{user_id}/revoke", data={"csrf_token": token}
            ) as response:
                assert response.status == 200
            assert not await reaches_cases(victim)
        # password change ends the other sessions too
        async with client(base) as other, client(base) as http:
            await forget_totp(database, user_id, secret)
            await login(other, username, secret)
            await forget_totp(database, user_id, secret)
            await login(http, username, secret)
            token = await get_csrf(http, "/account/password")
            new = "a much better passphrase"
            async with http.post(
                "/account/password",
                data={"current": PASSWORD, "new_password": new, "repeat": new, "csrf_token": token},
            ) as response:
                assert response.status == 200
            assert not await reaches_cases(other)
            assert not await reaches_cases(http)
            await forget_totp(database, user_id, secret)
            response = await login(http, username, secret, password=new)
            assert str(response.url) == base + "/"


async def test_password_reset_by_mail_is_single_use(settings: Settings, database: Database) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    username, secret, _ = data.accounts["creditor"]
    async with serve(s, database) as base, client(base) as http:
        token = await get_csrf(http, "/password/forgot")
        async with http.post(
            "/password/forgot", data={"identifier": "cora@example.org", "csrf_token": token}
        ) as response:
            assert response.status == 200
        async with database.sessions() as session:
            row = (await session.execute(select(OutboxMessage))).scalar_one()
        assert "cora@example.org" in row.recipients
        body = message_from_bytes(row.message).get_payload(decode=True)
        assert isinstance(body, bytes)
        link = re.search(r"/password/reset/([A-Za-z0-9_-]+)", body.decode())
        assert link
        path = f"/password/reset/{link.group(1)}"
        new = "reset passphrase 123"
        token = await get_csrf(http, path)
        for expected in (200, 400):
            async with http.post(
                path, data={"new_password": new, "repeat": new, "csrf_token": token}
            ) as response:
                assert response.status == expected
        async with http.get(path) as response:
            assert "invalid, used or expired" in await response.text()
        response = await login(http, username, secret, password=new)
        assert str(response.url) == base + "/"


async def test_forwarded_headers_only_from_trusted_proxies(
    settings: Settings, database: Database
) -> None:
    data = await seed(database, settings)
    username, secret, user_id = data.accounts["collector"]
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    for proxies, expected in (((), "127.0.0.1"), (("127.0.0.1",), "203.0.113.9")):
        s = web_settings(settings, trusted_proxies=proxies)
        async with serve(s, database) as base, client(base) as http:
            http.headers.update(headers)
            await login(http, username, secret)
            async with http.get(f"/cases/{data.case_a}") as response:
                assert response.status == 200
                assert ("Strict-Transport-Security" in response.headers) == bool(proxies)
        async with database.sessions() as session:
            last = (
                await session.execute(
                    select(AuditEntry)
                    .where(AuditEntry.action == "case.read")
                    .order_by(AuditEntry.id.desc())
                    .limit(1)
                )
            ).scalar_one()
            assert last.remote_addr == expected
            assert last.actor == f"user:{user_id}"
            assert await audit.verify_chain(session) is None
