"""The record step on both backends: understood messages routed onto their cases (or triage),
classified by the committed models in a real process pool, acted on, and recorded once.

Cases come through the real CSV importer; messages are stored as the fetcher stores them and
run through the real stages (:func:`process_stored`) before :func:`record_processed`.
"""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from dunning_support import add_creditor, csv_row, import_csv
from sqlalchemy import func, select

from hub.config import Settings
from hub.inbound.pipeline import StageEnv, process_stored
from hub.inbound.store import MailboxKey, store_raw
from hub.nlp.pool import ClassifierPool
from hub.services.record_inbound import record_processed
from hub.storage.db import Database
from hub.storage.models import (
    Case,
    Classification,
    InboundMessage,
    ThreadEntry,
)

KEY = MailboxKey("hub@127.0.0.1:993", "INBOX", 1)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pool() -> Iterator[ClassifierPool]:
    made = ClassifierPool(workers=1)
    yield made
    made.close()


def _mail(sender: str, subject: str, body: str, message_id: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "replies@hub.example"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Mon, 23 Nov 2026 08:00:00 +0000"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)


async def _store(database: Database, *messages: bytes) -> list[int]:
    async with database.transaction() as session:
        return [(await store_raw(session, KEY, uid, raw)).id for uid, raw in enumerate(messages, 1)]


async def _entries(database: Database, reference: str) -> tuple[Case, list[ThreadEntry]]:
    async with database.transaction() as session:
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        entries = (
            await session.scalars(
                select(ThreadEntry).where(ThreadEntry.case_id == case.id).order_by(ThreadEntry.seq)
            )
        ).all()
        return case, list(entries)


async def test_replies_are_routed_classified_acted_on_once(
    settings: Settings, database: Database, pool: ClassifierPool
) -> None:
    await add_creditor(database, "NORD", "Nordlicht Energie")
    await import_csv(
        database,
        settings,
        csv_row("NORD", "R-1001", "Dana Debtor", "dana@debtor.example")
        + csv_row("NORD", "R-1002", "Erik Example", "erik@debtor.example"),
    )
    ids = await _store(
        database,
        _mail(
            "Dana <dana@debtor.example>",
            "Invoice R-1001",
            "I do not owe this. I never received the goods and I dispute this invoice.",
            "<d-1@debtor.example>",
        ),
        # names Dana's case, but comes from a stranger: never attached to that case by itself
        _mail(
            "Mallory <mallory@evil.example>",
            "Invoice R-1002",
            "Could I pay in 3 monthly installments of 100 EUR?",
            "<m-1@evil.example>",
        ),
        _mail(
            "Erik <erik@debtor.example>",
            "Abwesenheitsnotiz: R-1002",
            "Ich bin bis zum 30. November nicht im Büro.",
            "<ooo-1@debtor.example>",
            Auto_Submitted="auto-replied",
            X_Autoreply="yes",
        ),
        _mail("Nobody <nobody@else.example>", "hello", "What is this?", "<n-1@else.example>"),
    )
    processed = await process_stored(database, StageEnv.from_settings(settings))
    assert (processed.parsed, processed.quarantined) == (4, 0)

    counts = await record_processed(database, settings, pool.classify, None, now=lambda: NOW)
    assert counts.failed == 0
    async with database.transaction() as session:
        rows = {r.id: r for r in (await session.scalars(select(InboundMessage))).all()}
    dispute, stranger, away, unknown = (rows[i] for i in ids)

    # the dispute: on Dana's case, classified, the case disputed, an answer owed
    assert dispute.state == "answering" and dispute.thread_entry_id is not None
    assert dispute.route is not None and dispute.route["answer"]["kind"] == "acknowledge_dispute"
    case, entries = await _entries(database, "R-1001")
    assert case.state == "disputed"
    kinds = [e.kind for e in entries]
    assert kinds[-3:] == ["inbound", "classification", "state_change"], kinds
    inbound = entries[-3]
    assert inbound.actor == "debtor" and inbound.message_id == "<d-1@debtor.example>"
    assert inbound.raw_message is not None and b"dispute this invoice" in inbound.raw_message
    assert inbound.body is not None and "never received the goods" in inbound.body
    assert inbound.meta["sender_verified"] is True and inbound.meta["route_rule"]
    assert "@" not in str(inbound.meta)
    assert entries[-1].meta["intent"] == "dispute" and entries[-1].meta["to_state"] == "disputed"

    # the stranger naming Erik's case: triage (an unverified reference), on no thread
    erik_case, erik_entries = await _entries(database, "R-1002")
    assert erik_case.state == "open"
    assert stranger.state == "triage" and stranger.thread_entry_id is None
    assert stranger.route is not None
    assert stranger.route["triage_reason"] == "unverified_reference"
    assert all(e.message_id != "<m-1@evil.example>" for e in erik_entries)

    # the out-of-office: kept on Erik's thread, never classified, nothing decided
    assert away.state == "routed" and away.thread_entry_id is not None
    async with database.transaction() as session:
        classified = set((await session.scalars(select(Classification.thread_entry_id))).all())
    assert away.thread_entry_id not in classified
    assert [e.kind for e in erik_entries if e.actor != "system:import"][-1:] == ["auto_reply"]

    # nothing names a case: triage, on no thread
    assert unknown.state == "triage" and unknown.thread_entry_id is None
    assert unknown.route is not None and unknown.route["triage_reason"] == "unmatched"

    # idempotent: a second pass records nothing more
    async with database.transaction() as session:
        before = await session.scalar(select(func.count()).select_from(ThreadEntry))
    again = await record_processed(database, settings, pool.classify, None, now=lambda: NOW)
    assert (again.routed, again.triage, again.classified) == (0, 0, 0)
    async with database.transaction() as session:
        after = await session.scalar(select(func.count()).select_from(ThreadEntry))
    assert after == before
