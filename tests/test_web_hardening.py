"""Security hardening of the web application, one finding per test, against a real server on
both backends: TOTP codes work once, a new session id at each login step, logout ends every
session, reset mails are rate-limited, downloads are sanitised, redirect targets, confirmations
and forwarded headers cannot be chosen by a client, objects answer only under their own case."""

from __future__ import annotations

import email
import email.policy
import re
import time
from pathlib import Path

import pyotp
import pytest
from portal_support import portal_path
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
from hub.security import totp
from hub.security.passwords import verify_password
from hub.security.roles import Role
from hub.services.users import RESET_MAILS_PER_HOUR
from hub.storage.db import Database
from hub.storage.models import Attachment, AuditEntry, OutboxMessage, ThreadEntry, User
from hub.storage.models_web import UserSecurity, WebSession
from hub.web.client import TrustedProxies
from hub.web.downloads import content_disposition
from hub.web.views_triage import back_query

# --- TOTP replay -------------------------------------------------------------------------


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


# --- sessions: a new id at each login step, logout and password change end them all ------


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


# --- password reset: same answer, limited mails, old links die ---------------------------


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


# --- downloads: attachment, nosniff, a harmless file name --------------------------------


@pytest.mark.parametrize(
    ("stored", "plain", "exact"),
    [
        ("../../etc/passwd", "passwd", "passwd"),
        ('a"\r\nSet-Cookie: x=1.html', "a_Set-Cookie__x_1.html", "a%22Set-Cookie%3A%20x%3D1.html"),
        ("Rechnung März.pdf", "Rechnung_Marz.pdf", "Rechnung%20M%C3%A4rz.pdf"),
        ("C:\\Users\\x\\..\\evil.exe", "evil.exe", "evil.exe"),
        ("\u202egpj.exe", "gpj.exe", "gpj.exe"),
        ("..", "attachment", "attachment"),
        ("", "attachment", "attachment"),
    ],
)
def test_download_names_are_sanitised(stored: str, plain: str, exact: str) -> None:
    value = content_disposition(stored)
    assert value == f"attachment; filename=\"{plain}\"; filename*=UTF-8''{exact}"
    assert "\r" not in value and "\n" not in value and "/" not in value


async def test_a_hostile_attachment_name_downloads_safely(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    async with database.transaction() as session:
        row = await session.get(Attachment, data.attachment_a)
        assert row is not None
        row.filename = "../../<script>évil\r\n.html"
        row.content_type = "text/html"
        row.content = b"<script>alert(1)</script>"
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        url = f"/cases/{data.case_a}/attachments/{data.attachment_a}"
        async with http.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            disposition = response.headers["Content-Disposition"]
            assert await response.read() == b"<script>alert(1)</script>"
        assert disposition.startswith('attachment; filename="script_evil.html";')
        assert "/" not in disposition and "<" not in disposition


# --- redirect targets and forwarded headers are not the client's to choose -------------


def test_the_triage_back_parameter_keeps_only_the_queue_filters() -> None:
    assert back_query("intent=dispute&age=7&page=2") == "intent=dispute&age=7&page=2"
    hostile = "intent=x%0d%0aSet-Cookie:%20a=b&next=//evil.example/&x=1#frag"
    kept = back_query(hostile)
    assert kept == "intent=x%0D%0ASet-Cookie%3A+a%3Db"
    assert "evil" not in kept and "next" not in kept and "\r" not in kept
    assert back_query("//evil.example/path") == ""


async def test_a_hostile_back_parameter_stays_on_the_queue(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        token = await get_csrf(http, "/triage")
        # an unknown task: 404 before any redirect; the route exists for the collector
        async with http.post(
            "/triage/tasks/999999/done",
            params={"back": "x=1%0d%0aLocation:%20https://evil.example/"},
            data={"csrf_token": token},
            allow_redirects=False,
        ) as response:
            assert response.status == 404
    location = "/triage?" + back_query("x=1\r\nLocation: https://evil.example/&intent=a")
    assert location == "/triage?intent=a"


def test_forwarded_for_is_read_from_the_right_through_trusted_proxies_only() -> None:
    proxies = TrustedProxies.parse(["10.0.0.0/8"])
    # the client puts a forged address first; the proxy appends the real peer
    assert proxies.resolve("10.0.0.2", "1.1.1.1, 203.0.113.9", "https") == (
        "203.0.113.9",
        "https",
    )
    # a chain of our own proxies is skipped
    assert proxies.resolve("10.0.0.2", "1.1.1.1, 203.0.113.9, 10.0.0.7", None) == (
        "203.0.113.9",
        None,
    )
    # an untrusted peer's headers are ignored altogether
    assert proxies.resolve("198.51.100.4", "10.0.0.1", "https") == ("198.51.100.4", None)
    # garbage in the header falls back to the peer; an odd scheme is ignored
    assert proxies.resolve("10.0.0.2", "not-an-ip", "gopher") == ("10.0.0.2", None)


async def test_every_answer_carries_a_strict_csp_and_hsts_only_when_https_is_known(
    settings: Settings, database: Database
) -> None:
    data = await seed(database, settings)
    case_path = portal_path(settings, data.case_a)
    spoof = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    for proxies, hsts in (((), False), (("127.0.0.1",), True)):
        s = web_settings(settings, trusted_proxies=proxies)
        async with serve(s, database) as base, client(base) as http:
            http.headers.update(spoof)
            for path in ("/login", "/password/forgot", case_path, "/portal/case", "/nowhere"):
                async with http.get(path) as response:
                    csp = response.headers["Content-Security-Policy"]
                    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
                    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
                    assert "script-src" not in csp  # no script at all (default-src 'none')
                    assert response.headers["X-Content-Type-Options"] == "nosniff"
                    assert ("Strict-Transport-Security" in response.headers) == hsts, path
                    for cookie in response.cookies.values():
                        assert cookie["secure"] and cookie["httponly"], cookie.key


def test_no_template_uses_inline_script_style_or_handlers() -> None:
    web_templates = Path(__file__).parent.parent / "templates" / "web"
    pattern = re.compile(r"<script|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE)
    offenders = [str(p) for p in web_templates.rglob("*.html") if pattern.search(p.read_text())]
    assert offenders == []


# --- CSRF on the cookie-borne API; bearer tokens need none -------------------------------


async def test_the_api_with_a_session_cookie_needs_the_csrf_header(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    url = f"/api/cases/{data.case_a}/comments"
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["creditor"][:2])
        async with http.post(url, json={"text": "forged"}) as response:
            assert response.status == 403
        async with http.post(
            url, data="text=forged", headers={"Content-Type": "text/plain"}
        ) as response:
            assert response.status == 403
        token = await get_csrf(http, "/")
        async with http.post(url, json={"text": "mine"}, headers={"X-CSRF-Token": token}) as r:
            assert r.status == 201


# --- no SQL text built from strings ----------------------------------------------------


def test_no_sql_is_built_from_formatted_strings() -> None:
    """Every SQL text is a constant with bound parameters: no f-string, %, format or + in a
    ``text()`` of SQLAlchemy, an ``.execute()`` or an ``.exec_driver_sql()``."""
    hub = Path(__file__).parent.parent / "hub"
    built = r"\(\s*(f[\"']|[\"'][^\"']*[\"']\s*(%|\.format|\+))"
    method = re.compile(r"\.(execute|exec_driver_sql)" + built)
    sql_text = re.compile(r"(?<![\w.])text" + built)
    imports_text = re.compile(r"^from sqlalchemy import .*\btext\b", re.MULTILINE)
    offenders = []
    checked = 0
    for path in hub.rglob("*.py"):
        source = path.read_text()
        uses_sql_text = bool(imports_text.search(source))
        checked += uses_sql_text
        for number, line in enumerate(source.splitlines(), 1):
            if method.search(line) or (uses_sql_text and sql_text.search(line)):
                offenders.append(f"{path}:{number}")
    assert offenders == []
    assert checked >= 1  # the audit log's advisory lock uses text(): the scan saw it
    assert sql_text.search('text(f"SELECT {x}")') and method.search('.execute("a" + b)')


# --- the password-change form is no password oracle ------------------------------------


async def test_guessing_the_current_password_locks_the_account(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings, lockout_user_threshold=3)
    data = await seed(database, s)
    username, secret, _ = data.accounts["collector"]
    new = "a much better passphrase"
    async with serve(s, database) as base, client(base) as http:
        await login(http, username, secret)
        for guess in ("guess number one", "guess number two", "guess number three", PASSWORD):
            token = await get_csrf(http, "/account/password")
            form = {"current": guess, "new_password": new, "repeat": new, "csrf_token": token}
            async with http.post("/account/password", data=form) as response:
                assert response.status == 400
                page = await response.text()
        assert "too many failed attempts" in page  # even the right one, while locked
    async with database.sessions() as session:
        user = await session.scalar(select(User).where(User.username == username))
        failed = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "password.change_failed")
            )
        ).all()
    assert user is not None and verify_password(user.password_hash, PASSWORD)
    assert [e.details["locked_account"] for e in failed] == [False, False, True]


# --- object-level checks: an object under another case's URL is not found --------------


async def test_objects_are_found_only_under_their_own_case(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    async with database.sessions() as session:
        entry_b = await session.scalar(
            select(ThreadEntry.id).where(ThreadEntry.case_id == data.case_b).limit(1)
        )
    assert entry_b is not None
    a, b = data.case_a, data.case_b
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        async with http.get(f"/cases/{a}/attachments/{data.attachment_b}") as response:
            assert response.status == 404
        async with http.get(f"/cases/{b}/attachments/{data.attachment_b}") as response:
            assert response.status == 200  # the same attachment under its own case
        token = await get_csrf(http, f"/cases/{a}")
        for path, form in (
            (f"/cases/{a}/revert/{entry_b}", {}),
            (f"/cases/{a}/address/{entry_b}", {}),
            (f"/cases/{a}/drafts/{entry_b}", {"decision": "discard"}),
            (f"/cases/{a}/plans/999999", {"decision": "reject"}),
            (f"/cases/{a}/attachments/x", None),
        ):
            if form is None:
                async with http.get(path) as response:
                    assert response.status == 404, path
                continue
            async with http.post(path, data={**form, "csrf_token": token}) as response:
                assert response.status == 404, path
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["creditor"][:2])
        for path in (f"/cases/{b}", f"/cases/{b}/attachments/{data.attachment_b}"):
            async with http.get(path) as response:
                assert response.status == 404, path
        async with http.get(f"/api/cases/{b}") as response:
            assert response.status == 404


# --- confirmations come from the hub's redirects only ----------------------------------


async def test_a_link_cannot_put_text_into_the_confirmation_box(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    spoof = "Your session expired: call +45 1234 5678"
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        for path in ("/triage", f"/cases/{data.case_a}"):
            for params in ({"done": spoof}, {"done": spoof, "ds": "AAAAAAAAAAAAAAAAAAAAAA"}):
                async with http.get(path, params=params) as response:
                    assert response.status == 200
                    html = await response.text()
                    assert "Your session expired" not in html and 'id="message"' not in html
    # (the hub's own signed confirmations still show: test_web_collector's triage test)
