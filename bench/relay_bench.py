"""Benchmark of the outbox relay: messages/s through ``Relay`` vs aiosmtplib alone.

A sink SMTP server (aiosmtpd's ``Sink`` handler) runs in a process of its own on 127.0.0.1.
The bare baseline sends N messages over one aiosmtplib connection with no database. The relay
run queues the same N messages in a fresh SQLite database (or ``--database-url``), then runs
relay passes until the outbox is drained: claim, decrypt, send, and one commit per message.
Prints both rates and their ratio. Usage::

    .venv/bin/python bench/relay_bench.py [-n 2000] [--size 4096] [--batch-size 50]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

from hub.config import Settings, load_settings
from hub.crypto.at_rest import generate_key
from hub.outbound.outbox import enqueue
from hub.outbound.relay import Relay, RelayCounts
from hub.storage import migrate
from hub.storage.db import open_database


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _message(n: int, size: int) -> tuple[str, str, bytes]:
    mid, to = f"<bench-{n}@hub.test>", f"debtor{n}@dom{n % 10}.test"
    line = "Please pay invoice 4711 by the end of the month. " * 2
    body = (line.strip() + "\r\n") * max(1, size // (len(line) + 2))
    head = (
        f"From: reminders@hub.test\r\nTo: {to}\r\nSubject: Reminder\r\nMessage-ID: {mid}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    return mid, to, (head + body).encode("ascii")


def _wait_listening(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the sink did not start")


async def bare(port: int, count: int, size: int) -> float:
    messages = [_message(n, size) for n in range(count)]
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    started = time.perf_counter()
    await client.connect()
    for _mid, to, data in messages:
        await client.sendmail("bounces@hub.test", [to], data)
    await client.quit()
    return time.perf_counter() - started


async def relay(settings: Settings, count: int, size: int) -> tuple[float, float, RelayCounts]:
    database = open_database(settings)
    await migrate.upgrade(database.engine)
    try:
        started = time.perf_counter()
        async with database.transaction() as session:
            for n in range(count):
                mid, to, data = _message(n, size)
                await enqueue(
                    session,
                    idempotency_key=f"bench:{n}",
                    case_id=None,
                    thread_entry_id=None,
                    envelope_from="bounces@hub.test",
                    recipients=[to],
                    message_id=mid,
                    message=data,
                )
        queued = time.perf_counter() - started
        worker = Relay(settings, database, "bench")
        total = RelayCounts()
        started = time.perf_counter()
        while (counts := await worker.run_once()).claimed:
            total.add(counts)
        return queued, time.perf_counter() - started, total
    finally:
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="messages (default 2000)")
    parser.add_argument("--size", type=int, default=4096, help="approximate message bytes")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()

    port = _free_port()
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port)
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                "HUB_SECURITY_AT_REST_KEYS": f"k1:{generate_key()}",
                "HUB_SECURITY_LOOKUP_KEY": generate_key(),
                "HUB_DATABASE_URL": args.database_url
                or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
                "HUB_SMTP_HOST": "127.0.0.1",
                "HUB_SMTP_PORT": str(port),
                "HUB_SMTP_SECURITY": "none",
                "HUB_SMTP_RELAY_BATCH_SIZE": str(args.batch_size),
                "HUB_SMTP_RELAY_DOMAIN_RATE_PER_MINUTE": "0",
            }
            settings = load_settings(None, env)
            bare_s = asyncio.run(bare(port, args.n, args.size))
            queued_s, relay_s, counts = asyncio.run(relay(settings, args.n, args.size))
    finally:
        sink.terminate()
        sink.wait(10)
    if counts.sent != args.n:
        raise SystemExit(f"relay sent {counts.sent} of {args.n}: {counts}")
    bare_rate, relay_rate = args.n / bare_s, args.n / relay_s
    backend = "sqlite" if args.database_url is None else args.database_url.split(":", 1)[0]
    print(f"messages: {args.n} of ~{args.size} bytes, batch {args.batch_size}, {backend}")
    print(f"bare aiosmtplib, one connection: {bare_s:7.2f} s  {bare_rate:8.0f} msg/s")
    print(f"relay (claim+decrypt+send+commit):{relay_s:7.2f} s  {relay_rate:8.0f} msg/s")
    print(f"enqueue (one transaction):       {queued_s:7.2f} s  {args.n / queued_s:8.0f} msg/s")
    print(f"ratio relay / bare: {relay_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
