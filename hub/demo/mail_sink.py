"""The demo's local SMTP server (aiosmtpd): the relay delivers here, debtors read from here.

It runs on the caller's event loop, stores every message under ``<root>/<recipient>/`` as an
``.eml`` file (the "debtors' mailboxes") and announces it on a queue, so the demo can show what
each debtor received the moment it arrives.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Delivered:
    recipient: str
    path: Path
    data: bytes


def _safe_dirname(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", address.lower())


class MailboxHandler:
    """aiosmtpd handler: accept everything, file it per recipient."""

    def __init__(self, root: Path, queue: asyncio.Queue[Delivered]) -> None:
        self.root = root
        self.queue = queue
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        data = envelope.content if isinstance(envelope.content, bytes) else b""
        for recipient in envelope.rcpt_tos:
            folder = self.root / _safe_dirname(recipient)
            folder.mkdir(parents=True, exist_ok=True)
            self.count += 1
            path = folder / f"{self.count:05d}.eml"
            path.write_bytes(data)
            self.queue.put_nowait(Delivered(recipient, path, data))
        return "250 OK delivered to the demo mailboxes"


async def start_sink(root: Path, queue: asyncio.Queue[Delivered]) -> tuple[asyncio.Server, int]:
    """Serve SMTP on 127.0.0.1 on a free port; returns the server and its port."""
    handler = MailboxHandler(root, queue)
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(handler, hostname="demo-sink.localhost", loop=loop)

    server = await loop.create_server(factory, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    return server, int(port)
