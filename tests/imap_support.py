"""Test support for the IMAP fetcher: settings pointing at the test Dovecot, and messages."""

from __future__ import annotations

from typing import Any

from dovecot import Dovecot
from pydantic import SecretStr
from sqlalchemy import func, select

from hub.config import ImapSection, Settings
from hub.storage.db import Database
from hub.storage.models import InboundMessage


def imap_settings(settings: Settings, dovecot: Dovecot, **changes: Any) -> Settings:
    """``settings`` with an [imap] section for the test Dovecot (implicit TLS by default)."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": dovecot.imaps_port,
        "security": "tls",
        "username": dovecot.user,
        "password": SecretStr(dovecot.password),
        "cafile": dovecot.cafile,
        "timeout": 10.0,
        "reconnect_backoff_base_seconds": 0.05,
        "reconnect_backoff_cap_seconds": 0.5,
    }
    values.update(changes)
    return settings.model_copy(update={"imap": ImapSection(**values)})


def reply(n: int, *, body: str = "Ich zahle am Freitag.", size: int = 0) -> bytes:
    """A debtor's reply with a unique Message-ID; ``size`` pads the body to about that size."""
    text = body + ("\r\n" + "x" * 76) * (size // 78)
    return (
        f"From: Debtor {n} <debtor{n}@example.org>\r\n"
        "To: reply+case@hub.invalid\r\n"
        f"Subject: Re: Zahlungserinnerung {n}\r\n"
        f"Message-ID: <reply-{n}@example.org>\r\n"
        "Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{text}\r\n"
    ).encode()


async def rows(database: Database, state: str | None = None) -> list[InboundMessage]:
    async with database.transaction() as session:
        query = select(InboundMessage).order_by(InboundMessage.id)
        if state is not None:
            query = query.where(InboundMessage.state == state)
        return list((await session.execute(query)).scalars())


async def count_rows(database: Database) -> int:
    async with database.transaction() as session:
        return int((await session.execute(select(func.count(InboundMessage.id)))).scalar_one())
