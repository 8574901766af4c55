"""Test support for the outbox relay: real aiosmtpd servers with scripted faults, and cases.

The servers run in aiosmtpd's own thread (``Controller``) on 127.0.0.1 and a free port each.
``FaultyHandler`` decides per recipient local part: ``temp451-N`` answers 451 to RCPT the first
N times, ``perm550`` always answers 550, ``drop-N`` drops the connection in the middle of DATA
the first N times; everything else is accepted. ``Greeting421Server`` answers 421 on connect.
"""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

from hub.config import Settings, SmtpSection
from hub.outbound.outbox import enqueue
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, Debtor, ThreadEntry


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made by the openssl command line."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


@dataclass
class Received:
    message_id: str
    rcpt_tos: list[str]
    mail_from: str


@dataclass
class FaultyHandler:
    """Accepts mail, except for the recipients whose local part scripts a fault."""

    received: list[Received] = field(default_factory=list)
    rcpt_seen: Counter[str] = field(default_factory=Counter)
    data_seen: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        local = address.split("@", 1)[0]
        with self.lock:
            self.rcpt_seen[address] += 1
            seen = self.rcpt_seen[address]
        if local == "perm550":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("temp451-") and seen <= int(local.split("-")[1]):
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.content)
        with self.lock:
            self.received.append(
                Received(str(parsed["Message-ID"]), list(envelope.rcpt_tos), envelope.mail_from)
            )
        return "250 2.0.0 Ok: queued"

    def should_drop(self, envelope: Any) -> bool:
        for address in envelope.rcpt_tos:
            local = address.split("@", 1)[0]
            if local.startswith("drop-"):
                with self.lock:
                    self.data_seen[address] += 1
                    if self.data_seen[address] <= int(local.split("-")[1]):
                        return True
        return False

    def message_ids(self) -> list[str]:
        with self.lock:
            return [r.message_id for r in self.received]


class DroppingSMTP(SMTP):
    """aiosmtpd's SMTP that can hang up after the first line of DATA (a crashed server)."""

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        handler = self.event_handler
        if (
            isinstance(handler, FaultyHandler)
            and self.envelope is not None
            and self.envelope.rcpt_tos
            and handler.should_drop(self.envelope)
        ):
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")  # one line of the message, then hang up
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_DATA(arg)


class FaultyController(Controller):
    def factory(self) -> SMTP:
        return DroppingSMTP(self.handler, **self.SMTP_kwargs)


def start_server(handler: FaultyHandler, **kwargs: Any) -> FaultyController:
    controller = FaultyController(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


class PasswordAuthenticator:
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username.encode(), password.encode()
        self.attempts: list[tuple[str, bool]] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = auth_data.login == self.username and auth_data.password == self.password
        self.attempts.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)


class Greeting421Server:
    """A server that answers every connection with 421 and hangs up (RFC 5321 §3.1)."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = free_port()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Greeting421Server:
        async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.write(b"421 4.3.2 mx.test Service not available, closing channel\r\n")
            await writer.drain()
            writer.close()

        self._server = await asyncio.start_server(greet, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def relay_settings(settings: Settings, port: int, **smtp: Any) -> Settings:
    """``settings`` pointed at a test server, with fast retries unless told otherwise."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "timeout": 5.0,
        "relay_backoff_base_seconds": 0.001,
        "relay_backoff_cap_seconds": 0.002,
        "relay_domain_rate_per_minute": 0.0,
        "relay_poll_interval_seconds": 0.05,
    }
    values.update(smtp)
    smtp_section = SmtpSection.model_validate({**settings.smtp.model_dump(), **values})
    return settings.model_copy(update={"smtp": smtp_section})


def make_message(message_id: str, to: str) -> bytes:
    return (
        f"From: Reminders <reminders@hub.test>\r\nTo: {to}\r\nSubject: Reminder\r\n"
        f"Message-ID: {message_id}\r\nAuto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "Please pay invoice 4711.\r\n"
    ).encode("ascii")


async def make_case(database: Database, reference: str = "R1") -> int:
    async with database.transaction() as s:
        creditor = Creditor(code=f"C-{reference}", name="Acme")
        s.add(creditor)
        await s.flush()
        debtor = Debtor(creditor_id=creditor.id, external_ref=reference, name="J", name_hash="h")
        s.add(debtor)
        await s.flush()
        case = Case(
            creditor_id=creditor.id,
            debtor_id=debtor.id,
            reference=reference,
            claim_amount=Decimal("100.00"),
            currency="EUR",
            due_date=date(2026, 1, 1),
        )
        s.add(case)
        await s.flush()
        return case.id


async def queue_reminder(database: Database, case_id: int, key: str, to: str) -> str:
    """A reminder as the dunning service would write it: thread entry and outbox row, one tx."""
    message_id = f"<{key}@hub.test>"
    async with database.transaction() as s:
        entry = ThreadEntry(
            case_id=case_id,
            seq=await _next_seq(s, case_id),
            kind="outbound",
            actor="system:test",
            message_id=message_id,
        )
        s.add(entry)
        await s.flush()
        await enqueue(
            s,
            idempotency_key=key,
            case_id=case_id,
            thread_entry_id=entry.id,
            envelope_from="bounces+x@hub.test",
            recipients=[to],
            message_id=message_id,
            message=make_message(message_id, to),
        )
    return message_id


async def _next_seq(session: Any, case_id: int) -> int:
    from hub.services.thread import lock_case, next_seq

    await lock_case(session, case_id)
    return await next_seq(session, case_id)
