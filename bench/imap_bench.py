"""IMAP ingestion speed: fetch + store (+ parse) against the bare UID FETCH of the same mailbox.

Starts a private Dovecot (tests/dovecot.py), puts N replies of about 4 KB into INBOX, then
measures on a fresh SQLite database (or ``--db-url``):

* bare: aioimaplib only, ``UID FETCH`` of every message in sets of 100 with BODY.PEEK[];
* hub: :func:`hub.inbound.fetch.fetch_once` (sizes, bodies, encrypted storage, checkpoint,
  flagging after the commit, the parse stage).

It also times the parser with ``email.policy.default`` against ``compat32`` on the same mail.
Prints messages per second and the ratio. Run: ``.venv/bin/python bench/imap_bench.py -n 2000``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dovecot import Dovecot
from imap_support import imap_settings, reply

from hub.config import load_settings
from hub.crypto.at_rest import generate_key
from hub.inbound.fetch import fetch_once
from hub.inbound.imap_session import ImapSession
from hub.inbound.parse import parse_mail
from hub.storage import migrate
from hub.storage.db import open_database


async def bare_fetch(dovecot: Dovecot, n: int) -> float:
    config = imap_settings(load_settings(None, {}), dovecot)
    session = await ImapSession.open(config.imap)
    try:
        await session.select("INBOX")
        uids = await session.uid_search("ALL")
        start = time.perf_counter()
        fetched = 0
        for i in range(0, len(uids), 100):
            fetched += len(await session.fetch_bodies(uids[i : i + 100]))
        elapsed = time.perf_counter() - start
    finally:
        await session.close()
    assert fetched == n, (fetched, n)
    return elapsed


async def hub_fetch(dovecot: Dovecot, n: int, db_url: str | None, tmp: Path) -> float:
    env = {
        "HUB_SECURITY_AT_REST_KEYS": f"k1:{generate_key()}",
        "HUB_SECURITY_LOOKUP_KEY": generate_key(),
        "HUB_DATABASE_URL": db_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
    }
    settings = imap_settings(load_settings(None, env), dovecot)
    database = open_database(settings)
    await migrate.upgrade(database.engine)
    try:
        start = time.perf_counter()
        counts = await fetch_once(settings, database)
        elapsed = time.perf_counter() - start
    finally:
        await database.close()
    assert counts.stored == n and counts.parsed == n, counts.summary()
    return elapsed


def parse_rates(raw: bytes, rounds: int = 2000) -> tuple[float, float, float]:
    start = time.perf_counter()
    for _ in range(rounds):
        msg = message_from_bytes(raw, policy=policy.compat32)
        for part in msg.walk():
            part.get_payload(decode=True)
    compat = rounds / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(rounds):
        msg = message_from_bytes(raw, policy=policy.default)
        body = msg.get_body()  # type: ignore[attr-defined]
        if body is not None:
            body.get_content()
    default = rounds / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(rounds):
        parse_mail(raw)
    ours = rounds / (time.perf_counter() - start)
    return compat, default, ours


def sample_multipart() -> bytes:
    attachment = base64.encodebytes(b"%PDF-1.4\n" + b"x" * 1500).decode().replace("\n", "\r\n")
    return (
        "From: =?utf-8?q?J=C3=B8rgen?= <j@example.dk>\r\nTo: reply+x@hub.invalid\r\n"
        "Subject: =?utf-8?q?Re:_M=C3=A4rz?=\r\nMessage-ID: <b@example.dk>\r\n"
        "Date: Tue, 03 Mar 2026 09:15:00 +0100\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + "Ich zahle bald. " * 100 + "\r\n"
        "--b\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="q.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + attachment + "--b--\r\n"
    ).encode()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="messages (default 2000)")
    parser.add_argument("--db-url", default=None, help="database URL (default: SQLite file)")
    args = parser.parse_args()
    dovecot = Dovecot.create()
    try:
        batch = [reply(i, size=4000) for i in range(args.n)]
        for i in range(0, len(batch), 500):
            dovecot.deliver(*batch[i : i + 500])
        bare = await bare_fetch(dovecot, args.n)
        with tempfile.TemporaryDirectory() as tmp:
            hub = await hub_fetch(dovecot, args.n, args.db_url, Path(tmp))
    finally:
        dovecot.destroy()
    print(f"messages:                 {args.n} (about 4 KB each)")
    print(f"bare UID FETCH:           {args.n / bare:8.0f} msg/s")
    print(f"hub fetch+store+parse:    {args.n / hub:8.0f} msg/s")
    print(f"ratio hub/bare:           {bare / hub:8.3f}")
    compat, default, ours = parse_rates(sample_multipart())
    print(f"parse compat32:           {compat:8.0f} msg/s")
    print(f"parse default policy:     {default:8.0f} msg/s (get_body + get_content)")
    print(f"parse_mail (default):     {ours:8.0f} msg/s (all headers, parts, attachments)")


if __name__ == "__main__":
    asyncio.run(main())
