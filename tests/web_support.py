"""Helpers for the web tests: a real aiohttp server on 127.0.0.1:0, seeded data, logins."""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pyotp
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import update

from hub.config import Settings
from hub.crypto.at_rest import generate_key
from hub.security.roles import Role
from hub.services import users
from hub.services.case_import import import_cases
from hub.services.csv_rows import RowDefaults, parse_case_file
from hub.storage.db import Database
from hub.storage.models import Attachment, Case, Creditor, ThreadEntry, User
from hub.storage.models_web import UserSecurity
from hub.web.app import init_app

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CSV_HEADER = "creditor,reference,debtor_ref,name,email,amount,currency,due_date\n"


def web_settings(settings: Settings, **web: Any) -> Settings:
    values: dict[str, Any] = {"session_secret": SecretStr(generate_key()), **web}
    return settings.model_copy(update={"web": settings.web.model_copy(update=values)})


@dataclass
class Seed:
    case_a: int
    case_b: int
    attachment_a: int
    attachment_b: int
    ref_a: str = "A-1"
    ref_b: str = "B-1"
    #: role name -> (username, totp secret, user id)
    accounts: dict[str, tuple[str, str, int]] = field(default_factory=dict)


async def add_account(
    database: Database, username: str, role: Role, creditor: str | None, totp: bool = True
) -> tuple[str, str, int]:
    user_id, _ = await users.add_user(
        database,
        username=username,
        email=f"{username}@example.org",
        role=role,
        creditor_code=creditor,
        password=PASSWORD,
    )
    secret = pyotp.random_base32() if totp else ""
    if totp:
        async with database.transaction() as session:
            await session.execute(update(User).where(User.id == user_id).values(totp_secret=secret))
    return username, secret, user_id


async def seed(database: Database, settings: Settings) -> Seed:
    async with database.transaction() as session:
        session.add_all(
            [Creditor(code="CRA", name="Creditor A"), Creditor(code="CRB", name="Creditor B")]
        )
    csv = (
        CSV_HEADER
        + "CRA,A-1,D1,Alice Example,alice@example.org,100.00,EUR,2026-01-15\n"
        + "CRB,B-1,D2,Bob Example,bob@example.net,250.00,EUR,2026-02-01\n"
    )
    parsed = parse_case_file(csv.encode(), RowDefaults(language="en", timezone="Europe/Berlin"))
    report = await import_cases(database, parsed, source="seed.csv", batch_size=100)
    assert report.imported == 2, report.errors
    from sqlalchemy import select

    async with database.transaction() as session:
        ids = dict((await session.execute(select(Case.reference, Case.id))).all())
        attachments = []
        for ref in ("A-1", "B-1"):
            entry = ThreadEntry(
                case_id=ids[ref],
                seq=2,
                kind="inbound",
                actor="debtor",
                subject="Re: invoice",
                body=f"reply on {ref}",
            )
            session.add(entry)
            await session.flush()
            attachment = Attachment(
                thread_entry_id=entry.id,
                filename=f"{ref}.pdf",
                content_type="application/pdf",
                size=4,
                sha256="0" * 64,
                content=b"%PDF",
            )
            session.add(attachment)
            await session.flush()
            attachments.append(attachment.id)
    result = Seed(ids["A-1"], ids["B-1"], attachments[0], attachments[1])
    result.accounts["admin"] = await add_account(database, "ada", Role.ADMIN, None)
    result.accounts["collector"] = await add_account(database, "carl", Role.COLLECTOR, None)
    result.accounts["creditor"] = await add_account(database, "cora", Role.CREDITOR, "CRA")
    result.accounts["creditor_b"] = await add_account(database, "bert", Role.CREDITOR, "CRB")
    result.accounts["auditor"] = await add_account(database, "aud", Role.AUDITOR, None)
    return result


@asynccontextmanager
async def serve(settings: Settings, database: Database) -> AsyncIterator[str]:
    app = init_app(settings, database)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def client(base: str, ssl_context: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """A client whose jar sends Secure cookies to the test server over http (like Chromium)."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=base)
    connector = aiohttp.TCPConnector(ssl=ssl_context) if ssl_context is not None else None
    return aiohttp.ClientSession(base_url=base, cookie_jar=jar, connector=connector)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def get_csrf(session: aiohttp.ClientSession, path: str) -> str:
    async with session.get(path) as response:
        return csrf_of(await response.text())


#: the last TOTP time step each test secret logged in with: the hub refuses a code of that
#: step or an earlier one (replay protection), so the next login must use a later step
_USED_STEPS: dict[str, int] = {}


async def fresh_totp(secret: str) -> str:
    """A code the hub has not seen for ``secret``: this step's, else the next one's (the hub
    accepts one step ahead), else wait for the clock to move on."""
    while True:
        current = int(time.time()) // 30
        step = max(current, _USED_STEPS.get(secret, current - 1) + 1)
        if step <= current + 1:
            _USED_STEPS[secret] = step
            return pyotp.TOTP(secret).at(step * 30)
        await asyncio.sleep(30 - time.time() % 30 + 0.05)


async def forget_totp(database: Database, user_id: int, secret: str) -> None:
    """Let the next login use the current step again (tests that log one user in often)."""
    async with database.transaction() as session:
        await session.execute(
            update(UserSecurity).where(UserSecurity.user_id == user_id).values(totp_last_step=None)
        )
    _USED_STEPS.pop(secret, None)


async def login(
    session: aiohttp.ClientSession, username: str, secret: str, password: str = PASSWORD
) -> aiohttp.ClientResponse:
    token = await get_csrf(session, "/login")
    async with session.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    ) as response:
        html = await response.text()
        if response.status != 200 or "/login/totp" not in str(response.url):
            return response
    async with session.post(
        "/login/totp", data={"code": await fresh_totp(secret), "csrf_token": csrf_of(html)}
    ) as response:
        await response.read()
        return response
