"""The inbound pipeline after the fetch: named stages run over stored messages, in one place.

Each stage is a small named object with one ``run`` method that takes what the previous
stages made and adds to it. Today the only stage is ``parse``; unprotect, detect and reply
extraction join :data:`STAGES` as they are built. A stage that raises, or that reports the
message unusable, sends it to the quarantine with the stage name and the reason; the messages
behind it go on. A message that passed every stage is marked ``processed``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select

from hub.domain.inbound import ParsedMail
from hub.inbound.parse import parse_mail
from hub.inbound.store import quarantine
from hub.storage.db import Database
from hub.storage.models import InboundMessage, utcnow

log = logging.getLogger(__name__)


class StageFailedError(Exception):
    """A stage cannot handle the message: ``reason`` is short, ``detail`` for a person."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass
class InboundWork:
    """What the stages know about one stored message so far."""

    inbound_id: int
    raw: bytes
    parsed: ParsedMail | None = None


class Stage(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...

    def run(self, work: InboundWork) -> InboundWork: ...


@dataclass(frozen=True)
class ParseStage:
    name: str = "parse"
    description: str = "RFC 5322/MIME: headers, addresses, bodies, attachments, defects"

    def run(self, work: InboundWork) -> InboundWork:
        parsed = parse_mail(work.raw)
        if not parsed.readable:
            raise StageFailedError(
                "parse: not a mail message", "; ".join(parsed.defects) or "no header fields"
            )
        work.parsed = parsed
        return work


#: the order of the inbound stages: the one place it is written down
STAGES: tuple[Stage, ...] = (ParseStage(),)


def run_stages(work: InboundWork, stages: tuple[Stage, ...] = STAGES) -> InboundWork:
    """Run ``stages`` in order (CPU only: call through a thread)."""
    for stage in stages:
        try:
            work = stage.run(work)
        except StageFailedError:
            raise
        except Exception as exc:
            raise StageFailedError(
                f"{stage.name}: {type(exc).__name__}", f"stage {stage.name} raised {exc!r}"[:2000]
            ) from exc
    return work


@dataclass
class ProcessCounts:
    parsed: int = 0
    quarantined: int = 0


async def process_stored(database: Database, batch: int = 100) -> ProcessCounts:
    """Run the stages over every ``stored`` message, oldest first."""
    counts = ProcessCounts()
    last_id = 0
    while True:
        async with database.transaction() as session:
            rows = (
                (
                    await session.execute(
                        select(InboundMessage)
                        .where(InboundMessage.state == "stored", InboundMessage.id > last_id)
                        .order_by(InboundMessage.id)
                        .limit(batch)
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                return counts
            for row in rows:
                last_id = row.id
                work = InboundWork(row.id, row.raw)
                try:
                    await asyncio.to_thread(run_stages, work)
                except StageFailedError as failure:
                    await quarantine(
                        session, row, f"imap:{row.account}/{row.mailbox}"[:400],
                        failure.reason, failure.detail, row.raw,
                    )  # fmt: skip
                    counts.quarantined += 1
                    continue
                row.state = "processed"
                row.processed_at = utcnow()
                counts.parsed += 1
