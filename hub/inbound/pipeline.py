"""The inbound pipeline after the fetch: named stages run over stored messages, in one place.

:data:`STAGES` is the order, written down once: ``parse`` -> ``unprotect`` (decrypt, verify,
learn keys, with the hub's own keys) -> ``detect`` (on the decrypted message where the mail
was encrypted) -> ``reply_text`` (on the EFAIL-safe text) -> ``understood`` (persist). The
first four are CPU work on bytes (:class:`Stage`): :func:`run_stages` runs them in a worker
thread or a process pool, never on the event loop. The last one (:class:`PersistStage`) writes
the result in the caller's transaction: ``inbound_messages.analysis`` (no personal data),
``inbound_messages.understood`` (sealed), the learnt keys of known debtors, and the state
``processed``, which means "understood, waiting for routing" (the routing stage picks it up).

A stage that raises, or that reports the message unusable, sends it to the quarantine with the
stage name and the reason; the messages behind it go on. A decryption that failed or was
refused is not a failure: it is a verdict, recorded like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeGuard

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.crypto.at_rest import Keyring
from hub.domain.inbound import ParsedMail
from hub.domain.reply_text import ReplyText
from hub.inbound.detect import Detection, Kind, detect
from hub.inbound.parse import DEFAULT_MAX_ATTACHMENT_BYTES, parse_mail
from hub.inbound.readable import detect_view, readable_text
from hub.inbound.reply_text import extract_reply
from hub.inbound.store import quarantine
from hub.inbound.understand import record_understood
from hub.inbound.unprotect import InboundKeys, Unprotected, unprotect
from hub.storage.db import Database
from hub.storage.models import InboundMessage, utcnow

log = logging.getLogger(__name__)


class StageFailedError(Exception):
    """A stage cannot handle the message: ``reason`` is short, ``detail`` for a person."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class StageEnv:
    """What the CPU stages are given besides the message: the hub's keys and limits.

    Picklable, so that the stages can run in a process pool."""

    keys: InboundKeys = field(default_factory=InboundKeys)
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> StageEnv:
        """The hub's own decryption keys from ``[signing]``: its GnuPG home (with the OpenPGP
        passphrase) and its S/MIME key and certificate. There is no S/MIME CA bundle setting
        yet, so S/MIME signers are reported as untrusted (their signatures still verify)."""
        signing = settings.signing
        home: Path | None = signing.gnupg_home_in(settings.hub.data_dir)
        if home is not None and not home.is_dir():
            home = None
        return cls(
            keys=InboundKeys(
                gnupghome=home,
                pgp_passphrase=signing.pgp_passphrase,
                smime_key=signing.smime_key_file,
                smime_cert=signing.smime_cert_file,
                smime_key_password=signing.smime_key_passphrase,
            ),
            max_attachment_bytes=settings.imap.max_message_bytes,
        )


@dataclass
class InboundWork:
    """What the stages know about one stored message so far."""

    inbound_id: int
    raw: bytes
    parsed: ParsedMail | None = None
    unprotected: Unprotected | None = None
    #: the EFAIL-safe text (see :mod:`hub.inbound.readable`) and whether it came from HTML
    text: str = ""
    text_from_html: bool = False
    detection: Detection | None = None
    #: the split text of a person's reply; None for every other kind
    reply: ReplyText | None = None


class Stage(Protocol):
    """A CPU stage: bytes and values in, values out; no I/O but gpg/openssl subprocesses."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...

    def run(self, work: InboundWork, env: StageEnv) -> InboundWork: ...


class PersistStage(Protocol):
    """The stage that records the result, inside the caller's transaction."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...

    async def persist(
        self,
        session: AsyncSession,
        keyring: Keyring,
        row: InboundMessage,
        work: InboundWork,
        env: StageEnv,
    ) -> None: ...


@dataclass(frozen=True)
class ParseStage:
    name: str = "parse"
    description: str = "RFC 5322/MIME: headers, addresses, bodies, attachments, defects"

    def run(self, work: InboundWork, env: StageEnv) -> InboundWork:
        parsed = parse_mail(work.raw, max_attachment_bytes=env.max_attachment_bytes)
        if not parsed.readable:
            raise StageFailedError(
                "parse: not a mail message", "; ".join(parsed.defects) or "no header fields"
            )
        work.parsed = parsed
        work.text, work.text_from_html = parsed.text, parsed.text_from_html
        return work


@dataclass(frozen=True)
class UnprotectStage:
    name: str = "unprotect"
    description: str = "decrypt and verify PGP and S/MIME layers, EFAIL-safe text, learn keys"

    def run(self, work: InboundWork, env: StageEnv) -> InboundWork:
        assert work.parsed is not None
        work.unprotected = unprotect(work.raw, env.keys)
        work.text, work.text_from_html = readable_text(work.parsed, work.unprotected)
        return work


@dataclass(frozen=True)
class DetectStage:
    name: str = "detect"
    description: str = "reply, auto-reply, bounce, read receipt, feedback or delivery report"

    def run(self, work: InboundWork, env: StageEnv) -> InboundWork:
        work.detection = detect(detect_view(work.raw, work.unprotected))
        return work


@dataclass(frozen=True)
class ReplyTextStage:
    name: str = "reply_text"
    description: str = "a reply's own words without quoted history and signature"

    def run(self, work: InboundWork, env: StageEnv) -> InboundWork:
        if work.detection is None or work.detection.kind is Kind.REPLY:
            work.reply = extract_reply(work.text, html=work.text_from_html)
        return work


@dataclass(frozen=True)
class UnderstoodStage:
    name: str = "understood"
    description: str = "record the understanding (analysis + sealed personal part), learn keys"

    async def persist(
        self,
        session: AsyncSession,
        keyring: Keyring,
        row: InboundMessage,
        work: InboundWork,
        env: StageEnv,
    ) -> None:
        await record_understood(session, keyring, row, work, env.keys.gnupghome)
        row.state = "processed"
        row.processed_at = utcnow()


#: the order of the inbound stages: the one place it is written down
STAGES: tuple[Stage | PersistStage, ...] = (
    ParseStage(),
    UnprotectStage(),
    DetectStage(),
    ReplyTextStage(),
    UnderstoodStage(),
)


def _persists(stage: Stage | PersistStage) -> TypeGuard[PersistStage]:
    return hasattr(stage, "persist")


def _computes(stage: Stage | PersistStage) -> TypeGuard[Stage]:
    return not hasattr(stage, "persist")


def cpu_stages(stages: tuple[Stage | PersistStage, ...] = STAGES) -> tuple[Stage, ...]:
    return tuple(s for s in stages if _computes(s))


def persist_stages(stages: tuple[Stage | PersistStage, ...] = STAGES) -> tuple[PersistStage, ...]:
    return tuple(s for s in stages if _persists(s))


def run_stages(
    work: InboundWork, env: StageEnv, stages: tuple[Stage | PersistStage, ...] = STAGES
) -> InboundWork:
    """Run the CPU stages of ``stages`` in order (blocking: call through a thread or a pool)."""
    for stage in cpu_stages(stages):
        try:
            work = stage.run(work, env)
        except StageFailedError:
            raise
        except Exception as exc:
            raise StageFailedError(
                f"{stage.name}: {type(exc).__name__}", f"stage {stage.name} raised {exc!r}"[:2000]
            ) from exc
    return work


def _run_for_pool(
    work: InboundWork, env: StageEnv, stages: tuple[Stage | PersistStage, ...]
) -> InboundWork | StageFailedError:
    """:func:`run_stages` returning the failure instead of raising it (pickles cleanly)."""
    try:
        return run_stages(work, env, stages)
    except StageFailedError as failure:
        return StageFailedError(failure.reason, failure.detail)


@dataclass
class ProcessCounts:
    parsed: int = 0
    quarantined: int = 0


async def _cpu(
    works: list[InboundWork],
    env: StageEnv,
    stages: tuple[Stage | PersistStage, ...],
    executor: Executor | None,
) -> list[InboundWork | StageFailedError]:
    loop = asyncio.get_running_loop()
    if executor is None:
        return [await asyncio.to_thread(_run_for_pool, work, env, stages) for work in works]
    jobs = [loop.run_in_executor(executor, _run_for_pool, work, env, stages) for work in works]
    return list(await asyncio.gather(*jobs))


async def process_stored(
    database: Database,
    env: StageEnv | None = None,
    *,
    batch: int = 50,
    executor: Executor | None = None,
    stages: tuple[Stage | PersistStage, ...] = STAGES,
    on_batch: Callable[[], None] | None = None,
) -> ProcessCounts:
    """Run the stages over every ``stored`` message, oldest first, a batch per transaction.

    ``executor`` (a process pool) runs the CPU stages of a batch side by side; without one they
    run one after the other in a worker thread. A crash leaves the batch ``stored``: it is
    processed again on the next call, and nothing is recorded twice. ``on_batch`` is called
    after each batch's commit (it wakes the record step).
    """
    env = env or StageEnv()
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
                        # PostgreSQL: concurrent workers take disjoint batches (SQLite: one
                        # writer at a time, the clause is dropped)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                return counts
            last_id = rows[-1].id
            works = [InboundWork(row.id, row.raw) for row in rows]
            results = await _cpu(works, env, stages, executor)
            for row, result in zip(rows, results, strict=True):
                if isinstance(result, StageFailedError):
                    await quarantine(
                        session, row, f"imap:{row.account}/{row.mailbox}"[:400],
                        result.reason, result.detail, row.raw,
                    )  # fmt: skip
                    counts.quarantined += 1
                    continue
                try:
                    for stage in persist_stages(stages):
                        await stage.persist(session, database.keyring, row, result, env)
                except SQLAlchemyError:
                    raise  # the database's fault, not the message's: the batch is retried
                except Exception as exc:
                    await quarantine(
                        session, row, f"imap:{row.account}/{row.mailbox}"[:400],
                        f"understood: {type(exc).__name__}", f"{exc!r}"[:2000], row.raw,
                    )  # fmt: skip
                    counts.quarantined += 1
                    continue
                counts.parsed += 1
        if on_batch is not None:
            on_batch()  # the batch is committed
