"""The collector's two busiest pages under load: the triage queue and a case thread.

    .venv/bin/python bench/web_bench.py [--backend sqlite|postgres|both] [--cases 100000]
        [--entries 1000000] [--requests 200] [--postgres-url postgresql://postgres@127.0.0.1/postgres]

A fresh database (an SQLite file, or a PostgreSQL database created and dropped here) is filled
with ``--cases`` cases (one debtor each, 20 creditors) and ``--entries`` thread entries spread
evenly over them, each case with an inbound reply and its Classification, 5 % of the cases with
an open ``triage`` task (low confidence) and as many closed tasks, and 1,000 unmatched messages
in triage. The data goes in with Core bulk inserts; personal columns hold values sealed once with
the database's keyring and reused (the pages decrypt them as usual). Then a real aiohttp server
on 127.0.0.1 serves the hub's application, a collector logs in (password + TOTP), and
``--requests`` GETs of ``/triage`` (first page, and filtered by a random creditor) and of
``/cases/<random id>`` are timed one after another: p50 and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import secrets
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pyotp
from aiohttp import web
from sqlalchemy import JSON, BigInteger, Boolean, Date, Float, Integer, LargeBinary, String, update
from sqlalchemy import column as col
from sqlalchemy import table as tbl

from hub.config import Settings, load_settings
from hub.crypto.at_rest import generate_key
from hub.security.roles import Role
from hub.services import users
from hub.storage import migrate
from hub.storage.db import Database, open_database
from hub.storage.models import User
from hub.storage.types import Money, UTCDateTime
from hub.web.app import init_app

CREDITORS = 20
BATCH = 5000
PASSWORD = "bench password 1"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NOW = datetime.now(UTC)

creditors_t = tbl("creditors", col("id", BigInteger), col("code", String), col("name", String),
                  col("legal_identity", String), col("contact_email", String), col("iban", String),
                  col("bic", String), col("settings", JSON), col("created_at", UTCDateTime()),
)  # fmt: skip
debtors_t = tbl("debtors", col("id", BigInteger), col("creditor_id", BigInteger),
                col("external_ref", String), col("name", LargeBinary), col("name_hash", String),
                col("language", String), col("timezone", String), col("created_at", UTCDateTime()),
                col("updated_at", UTCDateTime()))  # fmt: skip
cases_t = tbl("cases", col("id", BigInteger), col("creditor_id", BigInteger),
              col("debtor_id", BigInteger), col("reference", String), col("claim_amount", Money()),
              col("currency", String), col("fees", Money()), col("paid_amount", Money()),
              col("due_date", Date), col("state", String), col("dunning_level", Integer),
              col("legal_hold", Boolean), col("created_at", UTCDateTime()),
              col("updated_at", UTCDateTime()))  # fmt: skip
entries_t = tbl("thread_entries", col("id", BigInteger), col("case_id", BigInteger),
                col("seq", Integer), col("kind", String), col("actor", String),
                col("occurred_at", UTCDateTime()), col("message_id", String),
                col("subject", LargeBinary), col("body", LargeBinary), col("meta", JSON),
                col("internal", Boolean))  # fmt: skip
classifications_t = tbl("classifications", col("id", BigInteger),
                        col("thread_entry_id", BigInteger), col("intent", String),
                        col("subtype", String), col("confidence", Float), col("language", String),
                        col("fields", JSON), col("model_version", String),
                        col("is_suggestion", Boolean), col("created_at", UTCDateTime()),
)  # fmt: skip
tasks_t = tbl("collector_tasks", col("id", BigInteger), col("case_id", BigInteger),
              col("kind", String), col("status", String), col("thread_entry_id", BigInteger),
              col("reason", String), col("created_at", UTCDateTime()), col("done_by", String),
              col("done_at", UTCDateTime()))  # fmt: skip
inbound_t = tbl("inbound_messages", col("id", BigInteger), col("account", String),
                col("mailbox", String), col("uidvalidity", BigInteger), col("uid", BigInteger),
                col("message_id", String), col("content_hash", String), col("size", BigInteger),
                col("raw", LargeBinary), col("state", String), col("received_at", UTCDateTime()),
                col("route", JSON))  # fmt: skip

ROUTE = {
    "rule": "reply_token",
    "sender_verified": True,
    "trust_reasons": ["the From address is a verified address of the debtor"],
    "outcomes": [
        {"rule": "reply_token", "outcome": "matched", "why": "the reply address names the case"},
        {"rule": "references", "outcome": "skipped", "why": "an earlier rule decided"},
    ],
}
TRIAGE_ROUTE = {
    "case_id": None,
    "to_triage": True,
    "triage_reason": "unmatched",
    "sender_verified": False,
    "outcomes": [{"rule": "reply_token", "outcome": "no_match", "why": "no token"}],
}
KINDS = ("outbound", "state_change", "inbound", "decision", "outbound", "note", "payment")


class Sealed:
    """A few values sealed once per purpose, handed out in turn."""

    def __init__(self, database: Database) -> None:
        self.keyring = database.keyring
        self.cache: dict[str, list[bytes]] = {}

    def __call__(self, purpose: str, n: int) -> bytes:
        values = self.cache.get(purpose)
        if values is None:
            values = [
                self.keyring.encrypt(f"{purpose} sample text number {i}. ".encode() * 8, purpose)
                for i in range(50)
            ]
            self.cache[purpose] = values
        return values[n % len(values)]


async def _insert(database: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(table.insert(), rows)


async def load(database: Database, n_cases: int, n_entries: int) -> None:
    seal = Sealed(database)
    started = time.perf_counter()
    await _insert(database, creditors_t, [
        {"id": i + 1, "code": f"CR{i:02d}", "name": f"Creditor {i}", "legal_identity": "",
         "contact_email": "", "iban": "", "bic": "", "settings": {}, "created_at": NOW}
        for i in range(CREDITORS)
    ])  # fmt: skip
    per_case = max(n_entries // n_cases, 3)
    entry_id = 0
    task_id = 0
    triage_every = 20  # 5 % of the cases
    for start in range(0, n_cases, BATCH):
        ids = range(start + 1, min(start + BATCH, n_cases) + 1)
        debtors, cases, entries, classes, tasks = [], [], [], [], []
        for i in ids:
            creditor = (i % CREDITORS) + 1
            created = NOW - timedelta(days=400) + timedelta(seconds=i * 60)
            debtors.append({
                "id": i, "creditor_id": creditor, "external_ref": f"D{i}",
                "name": seal("debtors.name", i), "name_hash": f"{i:064x}",
                "language": ("en", "de", "da")[i % 3], "timezone": "Europe/Berlin",
                "created_at": created, "updated_at": created,
            })  # fmt: skip
            cases.append({
                "id": i, "creditor_id": creditor, "debtor_id": i, "reference": f"R{i:07d}",
                "claim_amount": Decimal(100 + i % 900), "currency": "EUR", "fees": Decimal(5),
                "paid_amount": Decimal(0), "due_date": date(2025, 1, 1) + timedelta(days=i % 300),
                "state": ("reminded", "open", "promised", "disputed")[i % 4], "dunning_level": 1,
                "legal_hold": False, "created_at": created, "updated_at": created,
            })  # fmt: skip
            inbound_id = decision_id = 0
            for seq in range(1, per_case + 1):
                entry_id += 1
                kind = KINDS[(seq - 1) % len(KINDS)]
                meta: dict[str, Any] = {}
                if kind == "inbound":
                    inbound_id = entry_id
                    meta = {"route": ROUTE}
                elif kind == "decision":
                    decision_id = entry_id
                    meta = {"rule": "triage_low_confidence", "intent": "payment_promise",
                            "confidence": 0.42, "from_state": "reminded", "to_state": "reminded",
                            "why": "the classification is only a suggestion (low confidence)",
                            "source_entry_id": inbound_id, "sender_verified": True,
                            "suggestion": True}  # fmt: skip
                entries.append({
                    "id": entry_id, "case_id": i, "seq": seq, "kind": kind,
                    "actor": "debtor" if kind == "inbound" else "system:automation",
                    "occurred_at": created + timedelta(hours=seq),
                    "message_id": f"<e{entry_id}@bench>" if "bound" in kind else None,
                    "subject": seal("thread_entries.subject", entry_id),
                    "body": seal("thread_entries.body", entry_id), "meta": meta,
                    "internal": kind == "note",
                })  # fmt: skip
            if inbound_id:
                classes.append({
                    "id": i, "thread_entry_id": inbound_id, "intent": "payment_promise",
                    "subtype": None, "confidence": 0.42 if i % triage_every == 0 else 0.93,
                    "language": ("en", "de", "da")[i % 3], "fields": {"date": None},
                    "model_version": "bench", "is_suggestion": i % triage_every == 0,
                    "created_at": created,
                })  # fmt: skip
            for status in ("open", "done") if i % triage_every == 0 else ():
                task_id += 1
                tasks.append({
                    "id": task_id, "case_id": i, "kind": "triage", "status": status,
                    "thread_entry_id": decision_id or None,
                    "reason": "the classification is only a suggestion (low confidence)",
                    "created_at": created, "done_by": None if status == "open" else "user:1",
                    "done_at": None if status == "open" else created,
                })  # fmt: skip
        await _insert(database, debtors_t, debtors)
        await _insert(database, cases_t, cases)
        for chunk in range(0, len(entries), BATCH * 2):
            await _insert(database, entries_t, entries[chunk : chunk + BATCH * 2])
        if classes:
            await _insert(database, classifications_t, classes)
        if tasks:
            await _insert(database, tasks_t, tasks)
        done = ids[-1]
        if done % 20000 == 0 or done == n_cases:
            rate = entry_id / (time.perf_counter() - started)
            print(f"  {done:,} cases, {entry_id:,} entries ({rate:,.0f} entries/s)", flush=True)
    await _insert(database, inbound_t, [
        {"id": u, "account": "bench", "mailbox": "INBOX", "uidvalidity": 1, "uid": u,
         "message_id": f"<u{u}@stranger>", "content_hash": f"{u:064x}", "size": 100,
         "raw": seal("inbound_messages.raw", u), "state": "triage" if u <= 1000 else "routed",
         "received_at": NOW - timedelta(days=30) + timedelta(seconds=u), "route": TRIAGE_ROUTE}
        for u in range(1, 1000 + n_cases // 10 + 1)
    ])  # fmt: skip
    if database.is_postgres:
        async with database.engine.begin() as conn:
            for name in ("creditors", "debtors", "cases", "thread_entries", "classifications",
                         "collector_tasks", "inbound_messages"):  # fmt: skip
                sql = f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"  # noqa: E501, S608 (our own table names)
                await conn.exec_driver_sql(sql)
            await conn.exec_driver_sql("ANALYZE")
    else:
        async with database.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
    print(f"  loaded in {time.perf_counter() - started:,.0f} s", flush=True)


async def _login(http: aiohttp.ClientSession, username: str, secret: str) -> None:
    async with http.get("/login") as response:
        token = _CSRF.search(await response.text())
    assert token
    data = {"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    async with http.post("/login", data=data) as response:
        html = await response.text()
    token = _CSRF.search(html)
    assert token and "/login/totp" in str(response.url), "login failed"
    data = {"code": pyotp.TOTP(secret).now(), "csrf_token": token.group(1)}
    async with http.post("/login/totp", data=data) as response:
        assert response.status == 200 and str(response.url).endswith("/"), "TOTP failed"


def _percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"p50 {cuts[49]:7.1f} ms   p95 {cuts[94]:7.1f} ms   max {max(samples):7.1f} ms"


async def measure(settings: Settings, database: Database, n_cases: int, requests: int) -> None:
    user_id, _ = await users.add_user(
        database, username="bencher", email="bencher@example.org", role=Role.COLLECTOR,
        creditor_code=None, password=PASSWORD,
    )  # fmt: skip
    secret = pyotp.random_base32()
    async with database.transaction() as session:
        await session.execute(update(User).where(User.id == user_id).values(totp_secret=secret))
    runner = web.AppRunner(init_app(settings, database), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    rng = random.Random(7)
    try:
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=base)
        async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as http:
            await _login(http, "bencher", secret)
            pages = {
                "triage (first page)": lambda: "/triage",
                "triage (one creditor)": lambda: (
                    f"/triage?creditor=CR{rng.randrange(CREDITORS):02d}"
                ),
                "triage (page 10)": lambda: "/triage?page=10",
                "case thread": lambda: f"/cases/{rng.randrange(1, n_cases + 1)}",
            }
            for name, path in pages.items():
                samples = []
                for _ in range(3):  # warm up
                    async with http.get(path()) as response:
                        await response.read()
                for _ in range(requests):
                    url = path()
                    began = time.perf_counter()
                    async with http.get(url) as response:
                        body = await response.read()
                    samples.append((time.perf_counter() - began) * 1000)
                    assert response.status == 200, (url, response.status)
                    assert b"Not found" not in body
                print(f"  {name:24s} {_percentiles(samples)}", flush=True)
    finally:
        await runner.cleanup()


async def bench(backend: str, url: str, n_cases: int, n_entries: int, requests: int) -> None:
    env = {
        "HUB_SECURITY_AT_REST_KEYS": f"k1:{generate_key()}",
        "HUB_SECURITY_LOOKUP_KEY": generate_key(),
        "HUB_SECURITY_REPLY_TOKEN_KEY": generate_key(),
        "HUB_WEB_SESSION_SECRET": generate_key(),
        "HUB_DATABASE_URL": url,
    }
    settings = load_settings(None, env)
    database = open_database(settings)
    try:
        await migrate.upgrade(database.engine)
        print(f"{backend}: loading {n_cases:,} cases and {n_entries:,} thread entries", flush=True)
        await load(database, n_cases, n_entries)
        await measure(settings, database, n_cases, requests)
    finally:
        await database.close()


async def main_async(args: argparse.Namespace) -> None:
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'hub.db'}"
                await bench(backend, url, args.cases, args.entries, args.requests)
            continue
        name = f"hub_web_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(args.postgres_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            host = args.postgres_url.rsplit("/", 1)[0].replace("postgresql://", "")
            url = f"postgresql+asyncpg://{host}/{name}"
            await bench(backend, url, args.cases, args.entries, args.requests)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
