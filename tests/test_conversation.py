"""The hub's answers and collectors' replies on SQLite and PostgreSQL, end to end.

Cases are imported through the real CSV importer, reminders queued by the real dunning pass,
a debtor's reply is put on the thread as an ``inbound`` entry, and the answers go through the
outbox and the relay to an aiosmtpd sink; what arrives is decrypted and verified with gpg.
"""

from __future__ import annotations

import email.policy
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from dunning_support import (
    DebtorWorld,
    HubKeys,
    add_creditor,
    csv_row,
    decoded_text,
    gpg_decrypt,
    hub_settings,
    import_csv,
    make_hub_keys,
    new_world,
    pgp_payload,
    run,
    signing_env,
    start_sink,
)
from relay_support import relay_settings
from sqlalchemy import func, select, update

from hub.config import ConversationSection, Settings
from hub.domain.answers import AnswerKind
from hub.errors import NotFoundError, UserError
from hub.outbound.relay import relay_once
from hub.routing.reply_token import parse_reply_address, reply_token_key
from hub.services.answer_send import ANSWER_KIND, DRAFT_KIND, WITHHELD_KIND, AnswerOutcome
from hub.services.conversation import (
    approve_answer,
    discard_answer,
    queue_answer,
    queue_collector_reply,
)
from hub.services.debtor_keys import add_debtor_key
from hub.services.dunning import queue_due_reminders
from hub.services.reminder_mail import ReminderMailer, open_mailer
from hub.services.thread import append_entry, lock_case
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, DebtorEmail, OutboxMessage, ThreadEntry

HUB = str(Path(sys.executable).parent / "hub")
PROMISE = {"amount": "250.00", "due": "2026-12-12"}


@pytest.fixture(scope="module")
def world() -> Iterator[DebtorWorld]:
    made = new_world()
    made.new_pgp_key("Alice Andersen", "alice@debtor.example")
    yield made
    made.close()


@pytest.fixture(scope="module")
def hub_keys(world: DebtorWorld) -> Iterator[HubKeys]:
    keys = make_hub_keys(world.root / "hub")
    run("gpg", "--homedir", str(world.gpg_home), "--batch", "--import", stdin=keys.public_key)
    yield keys
    subprocess.run(
        ["gpgconf", "--homedir", str(keys.gnupg_home), "--kill", "gpg-agent"], check=False
    )


@pytest.fixture
def hub(settings: Settings, hub_keys: HubKeys) -> Settings:
    return hub_settings(settings, hub_keys)


@pytest.fixture
async def mailer(hub: Settings) -> AsyncIterator[ReminderMailer]:
    made = await open_mailer(hub)
    yield made
    made.close()


def start() -> datetime:
    """A moment after the keys were made (their creation must lie before ``now``)."""
    return datetime.now(UTC) + timedelta(minutes=1)


async def case_id(database: Database, reference: str) -> int:
    async with database.sessions() as session:
        found = await session.scalar(select(Case.id).where(Case.reference == reference))
    assert found is not None
    return int(found)


async def debtor_writes(
    database: Database, case: int, message_id: str, now: datetime, subject: str = ""
) -> None:
    """The debtor's reply on the thread, as the inbound pipeline records it."""
    async with database.transaction() as session:
        await lock_case(session, case)
        entry = await append_entry(
            session, case, kind="inbound", actor="debtor", now=now, meta={}, body="my reply"
        )
        entry.message_id = message_id
        entry.subject = subject or None


async def thread(database: Database, case: int, *kinds: str) -> list[ThreadEntry]:
    async with database.sessions() as session:
        rows = await session.scalars(
            select(ThreadEntry)
            .where(ThreadEntry.case_id == case, ThreadEntry.kind.in_(kinds))
            .order_by(ThreadEntry.seq)
        )
        return list(rows.all())


async def outbox(database: Database) -> list[OutboxMessage]:
    async with database.sessions() as session:
        return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def answer(
    database: Database,
    settings: Settings,
    mailer: ReminderMailer,
    case: int,
    message_id: str | None,
    now: datetime,
    *,
    kind: AnswerKind = AnswerKind.CONFIRM_PROMISE,
    facts: dict[str, Any] | None = None,
    inbound_kind: str | None = "reply",
    sender_verified: bool = True,
    is_suggestion: bool = False,
    occasion: str | None = None,
) -> AnswerOutcome:
    return await queue_answer(
        database,
        settings,
        mailer,
        case_id=case,
        kind=kind,
        facts=PROMISE if facts is None else facts,
        in_reply_to=message_id,
        actor="system:automation",
        now=now,
        inbound_kind=inbound_kind,
        sender_verified=sender_verified,
        is_suggestion=is_suggestion,
        occasion=occasion,
    )


def parse(raw: bytes) -> EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_answer_to_a_pgp_debtor_decrypts_and_threads(
    database: Database,
    hub: Settings,
    mailer: ReminderMailer,
    world: DebtorWorld,
    hub_keys: HubKeys,
) -> None:
    await add_creditor(database, "NORD", "Nordlicht Energie GmbH")
    await import_csv(
        database, hub, csv_row("NORD", "PGP-1", "Alice Andersen", "alice@debtor.example")
    )
    await add_debtor_key(
        database,
        mailer.identity.keystore,
        ref="PGP-1",
        data=world.pgp_public["alice@debtor.example"],
    )
    now = start()
    summary = await queue_due_reminders(database, hub, now, mailer=mailer)
    assert dict(summary.queued) == {"pgp-mime": 1}
    case = await case_id(database, "PGP-1")
    [reminder] = await thread(database, case, "reminder")
    debtor_id = "<CAF=abc.123@mail.debtor.example>"
    await debtor_writes(
        database, case, debtor_id, now + timedelta(hours=1), "Re: First reminder: Nordlicht"
    )

    done = await answer(database, hub, mailer, case, debtor_id, now + timedelta(hours=2))
    assert (done.status, done.protection) == ("queued", "pgp-mime")
    # re-processing the same inbound message answers nothing more
    again = await answer(database, hub, mailer, case, debtor_id, now + timedelta(hours=3))
    assert (again.status, again.entry_id) == ("duplicate", done.entry_id)
    rows = await outbox(database)
    assert len(rows) == 2
    assert rows[1].idempotency_key == f"answer:{case}:{debtor_id}:confirm_promise"

    sink, controller = start_sink()
    try:
        counts = await relay_once(relay_settings(hub, controller.port), database, "w1")
    finally:
        controller.stop()
    assert counts.sent == 2
    [delivered] = [d for d in sink.received if d.message["Message-ID"] == done.message_id]
    message = delivered.message
    assert delivered.rcpt_tos == ["alice@debtor.example"]
    # threaded: In-Reply-To the debtor's message, References our reminder then it
    assert str(message["In-Reply-To"]) == debtor_id
    assert str(message["References"]).split() == [reminder.message_id, debtor_id]
    # the same signed per-case reply address (a fresh nonce each time, the same case)
    assert parse_reply_address(reply_token_key(hub.security), str(message["Reply-To"])) == case
    assert str(message["Auto-Submitted"]) == "auto-replied"
    assert "PGP-1" not in str(message["Subject"]) and b"250" not in delivered.raw
    status, plain = gpg_decrypt(world.gpg_home, pgp_payload(message))
    assert "DECRYPTION_OKAY" in status
    assert f"VALIDSIG {hub_keys.fingerprint}" in status and "GOODSIG" in status
    inner = parse(plain)
    assert str(inner["Subject"]) == "Re: First reminder: Nordlicht"
    assert str(inner["In-Reply-To"]) == debtor_id
    text = decoded_text(inner)
    assert "promise to pay €250.00 by 12 December 2026" in text

    [entry] = await thread(database, case, ANSWER_KIND)
    assert entry.meta["answer_kind"] == "confirm_promise"
    assert entry.meta["protection"] == "pgp-mime" and entry.meta["approval"] == "auto"
    assert entry.raw_message == rows[1].message and not entry.internal


async def test_guards_record_why_nothing_was_sent(
    database: Database, hub: Settings, mailer: ReminderMailer
) -> None:
    await add_creditor(database, "CALM", "Calm Corp")
    await add_creditor(
        database,
        "STRICT",
        "Strict Bank AG",
        {"quiet_hours": ["00:00", "00:00"], "encryption": "require-encryption"},
    )
    await import_csv(
        database,
        hub,
        csv_row("CALM", "G-1", "Gus Guard", "gus@debtor.example")
        + csv_row("CALM", "OPT-1", "Otto Optout", "otto@debtor.example")
        + csv_row("STRICT", "S-1", "Sven Strict", "sven@debtor.example"),
    )
    now = start()
    case = await case_id(database, "G-1")
    refused = [
        ("<ooo@x>", {"inbound_kind": "auto_reply"}, "auto_reply"),
        ("<dsn@x>", {"inbound_kind": "bounce"}, "bounce"),
        ("<mdn@x>", {"inbound_kind": "read_receipt"}, "read_receipt"),
        ("<odd@x>", {"inbound_kind": "something_new"}, "not_a_reply"),
        ("<forged@x>", {"sender_verified": False}, "unverified_sender"),
        ("<unsure@x>", {"is_suggestion": True}, "low_confidence"),
    ]
    for message_id, options, reason in refused:
        outcome = await answer(database, hub, mailer, case, message_id, now, **options)
        assert (outcome.status, outcome.reason) == ("withheld", reason)
    held = await thread(database, case, WITHHELD_KIND)
    assert [e.meta["reason"] for e in held] == [r for _, _, r in refused]
    assert all(e.internal and e.meta["answer_kind"] == "confirm_promise" for e in held)
    # a refused message stays refused when processed again (and is not recorded twice)
    repeat = await answer(database, hub, mailer, case, "<ooo@x>", now, inbound_kind="reply")
    assert repeat.status == "duplicate"
    assert len(await thread(database, case, WITHHELD_KIND)) == len(refused)
    assert await outbox(database) == []

    # a debtor without a key: the notice, which says nothing about the case
    plain = await answer(database, hub, mailer, case, "<ok@x>", now)
    assert (plain.status, plain.protection) == ("queued", "notice")
    [row] = await outbox(database)
    assert b"G-1" not in row.message and b"Gus" not in row.message
    assert b"250" not in row.message and row.message.count(b"In-Reply-To") == 0

    # require-encryption without a key: nothing sent, recorded
    strict = await case_id(database, "S-1")
    withheld = await answer(database, hub, mailer, strict, "<s@x>", now)
    assert (withheld.status, withheld.reason) == ("withheld", "no_key")

    # an opted-out address gets nothing, except the one confirmation that contact ends
    opt = await case_id(database, "OPT-1")
    async with database.transaction() as session:
        debtor = await session.scalar(select(Case.debtor_id).where(Case.id == opt))
        await session.execute(
            update(DebtorEmail).where(DebtorEmail.debtor_id == debtor).values(status="opted_out")
        )
    out = await answer(database, hub, mailer, opt, "<o1@x>", now)
    assert (out.status, out.reason) == ("withheld", "opted_out")
    stop = AnswerKind.ACKNOWLEDGE_CEASE_CONTACT
    last = await answer(database, hub, mailer, opt, "<o2@x>", now, kind=stop, facts={})
    assert (last.status, last.protection) == ("queued", "notice")
    more = await answer(database, hub, mailer, opt, "<o3@x>", now, kind=stop, facts={})
    assert (more.status, more.reason) == ("withheld", "already_acknowledged")
    assert len(await outbox(database)) == 2

    with pytest.raises(UserError, match="due is required"):
        await answer(database, hub, mailer, case, "<bad@x>", now, facts={"amount": "1"})
    with pytest.raises(UserError, match="unknown answer kind"):
        await answer(database, hub, mailer, case, "<bad@x>", now, kind="thanks")  # type: ignore[arg-type]


async def test_daily_cap_holds_and_resets_the_next_day(
    database: Database, hub: Settings, mailer: ReminderMailer
) -> None:
    assert hub.conversation.max_answers_per_case_per_day == 3
    await add_creditor(database, "CALM", "Calm Corp", {"quiet_hours": ["00:00", "00:00"]})
    await import_csv(database, hub, csv_row("CALM", "CAP-1", "Carl Cap", "carl@debtor.example"))
    case = await case_id(database, "CAP-1")
    now = start()
    outcomes = [
        await answer(database, hub, mailer, case, f"<m{i}@x>", now + timedelta(hours=i))
        for i in range(4)
    ]
    assert [o.status for o in outcomes] == ["queued", "queued", "queued", "withheld"]
    assert outcomes[3].reason == "daily_limit"
    # a collector's reply is a person, not a loop: neither capped nor counted
    reply = await queue_collector_reply(
        database, hub, mailer, case_id=case, text="Noted, thanks.", collector="cora", now=now
    )
    assert reply.status == "queued"
    # 24 hours after the first answer one more may go out, then the cap holds again
    later = now + timedelta(hours=24, minutes=1)
    assert (await answer(database, hub, mailer, case, "<m5@x>", later)).status == "queued"
    blocked = await answer(database, hub, mailer, case, "<m6@x>", later)
    assert (blocked.status, blocked.reason) == ("withheld", "daily_limit")
    next_day = now + timedelta(days=2)
    assert (await answer(database, hub, mailer, case, "<m7@x>", next_day)).status == "queued"
    assert len(await outbox(database)) == 6

    # a cap of zero: no automatic answers at all
    none = hub.model_copy(
        update={"conversation": ConversationSection(max_answers_per_case_per_day=0)}
    )
    zero = await answer(database, none, mailer, case, "<m8@x>", now + timedelta(days=5))
    assert zero.reason == "daily_limit"


async def test_approval_mode_drafts_then_sends_once(
    database: Database, hub: Settings, mailer: ReminderMailer
) -> None:
    await add_creditor(database, "CARE", "Careful GmbH")
    async with database.transaction() as session:
        await session.execute(
            update(Creditor)
            .where(Creditor.code == "CARE")
            .values(
                settings={
                    "dunning": {"quiet_hours": ["00:00", "00:00"], "encryption": "opportunistic"},
                    "conversation": {"approval": "collector"},
                }
            )
        )
    await import_csv(
        database,
        hub,
        csv_row("CARE", "AP-1", "Anna Approve", "anna@debtor.example", language="de"),
    )
    case = await case_id(database, "AP-1")
    now = start()
    await debtor_writes(database, case, "<anna-1@debtor.example>", now, "Ratenzahlung")
    plan = {"count": 3, "amount_per_installment": "103.33", "frequency": "monthly"}
    draft = await answer(
        database,
        hub,
        mailer,
        case,
        "<anna-1@debtor.example>",
        now,
        kind=AnswerKind.CONFIRM_PLAN_REQUEST,
        facts=plan,
    )
    assert draft.status == "draft" and draft.entry_id is not None
    assert await outbox(database) == []
    [stored] = await thread(database, case, DRAFT_KIND)
    assert stored.internal and stored.meta["state"] == "pending"
    assert stored.body is not None and "Anzahl der Raten: 3" in stored.body
    # the same inbound message again: the draft is the answer, nothing new
    again = await answer(
        database,
        hub,
        mailer,
        case,
        "<anna-1@debtor.example>",
        now,
        kind=AnswerKind.CONFIRM_PLAN_REQUEST,
        facts=plan,
    )
    assert (again.status, again.entry_id) == ("duplicate", draft.entry_id)

    sent = await approve_answer(database, hub, mailer, draft.entry_id, "cora", now)
    assert (sent.status, sent.protection) == ("queued", "plain")
    twice = await approve_answer(database, hub, mailer, draft.entry_id, "cora", now)
    assert twice.status == "duplicate"
    [row] = await outbox(database)
    message = parse(row.message)
    assert str(message["In-Reply-To"]) == "<anna-1@debtor.example>"
    assert str(message["Subject"]) == "Re: Ratenzahlung"
    assert "103,33\xa0€" in decoded_text(message)
    [sent_entry] = await thread(database, case, ANSWER_KIND)
    assert sent_entry.meta["approval"] == "collector:cora"
    assert sent_entry.meta["draft_id"] == draft.entry_id
    [decided] = await thread(database, case, DRAFT_KIND)
    assert decided.meta["state"] == "approved" and decided.meta["decided_by"] == "cora"

    # a discarded draft is never sent
    other = await answer(
        database,
        hub,
        mailer,
        case,
        None,
        now,
        kind=AnswerKind.PLAN_REJECTED,
        facts={},
        inbound_kind=None,
        occasion="plan:1",
    )
    assert other.status == "draft" and other.entry_id is not None
    assert await discard_answer(database, other.entry_id, "cora", now) is True
    assert await discard_answer(database, other.entry_id, "cora", now) is False
    with pytest.raises(UserError, match="discarded"):
        await approve_answer(database, hub, mailer, other.entry_id, "cora", now)
    with pytest.raises(NotFoundError, match="no answer draft"):
        await approve_answer(database, hub, mailer, sent.entry_id or 0, "cora", now)
    assert len(await outbox(database)) == 1


async def test_collector_reply_threads_on_the_latest_inbound_message(
    database: Database, hub: Settings, mailer: ReminderMailer
) -> None:
    await add_creditor(
        database,
        "OPEN",
        "Open Shop Ltd",
        {"quiet_hours": ["00:00", "00:00"], "encryption": "opportunistic"},
    )
    await import_csv(
        database, hub, csv_row("OPEN", "CR-1", "Dan Dansk", "dan@debtor.example", language="da")
    )
    case = await case_id(database, "CR-1")
    now = start()
    await queue_due_reminders(database, hub, now, mailer=mailer)
    [reminder] = await thread(database, case, "reminder")
    await debtor_writes(database, case, "<first@debtor.example>", now, "Spørgsmål")
    await debtor_writes(database, case, "<second@debtor.example>", now, "Re: Spørgsmål")
    done = await queue_collector_reply(
        database,
        hub,
        mailer,
        case_id=case,
        text="Hej Dan,\n<script>alert(1)</script> – vi har modtaget din betaling.",
        collector="cora",
        now=now + timedelta(minutes=5),
    )
    assert (done.status, done.protection) == ("queued", "plain")
    rows = await outbox(database)
    message = parse(rows[-1].message)
    assert str(message["In-Reply-To"]) == "<second@debtor.example>"
    assert str(message["References"]).split() == [
        reminder.message_id,
        "<first@debtor.example>",
        "<second@debtor.example>",
    ]
    assert message["Auto-Submitted"] is None  # a person wrote it (RFC 3834)
    assert str(message["Subject"]) == "Re: Spørgsmål"
    assert parse_reply_address(reply_token_key(hub.security), str(message["Reply-To"])) == case
    html = message.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "<script>" not in content and "&lt;script&gt;" in content
    assert "<script>alert(1)</script>" in decoded_text(message)
    [entry] = await thread(database, case, ANSWER_KIND)
    assert entry.actor == "collector:cora" and entry.meta["answer_kind"] == "collector_reply"
    with pytest.raises(UserError, match="empty"):
        await queue_collector_reply(
            database, hub, mailer, case_id=case, text=" ", collector="cora", now=now
        )


def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=120)


async def test_cli_approve_and_discard(
    database: Database,
    hub: Settings,
    mailer: ReminderMailer,
    hub_keys: HubKeys,
    hub_env: dict[str, str],
) -> None:
    await add_creditor(database, "CARE", "Careful GmbH")
    async with database.transaction() as session:
        await session.execute(
            update(Creditor)
            .where(Creditor.code == "CARE")
            .values(settings={"conversation": {"approval": "collector"}})
        )
    await import_csv(database, hub, csv_row("CARE", "CLI-9", "Cli Debtor", "cli@debtor.example"))
    case = await case_id(database, "CLI-9")
    now = start()
    first = await answer(database, hub, mailer, case, "<c1@x>", now)
    second = await answer(
        database, hub, mailer, case, "<c2@x>", now, kind=AnswerKind.ASK_PROMISE_DATE, facts={}
    )
    assert first.status == second.status == "draft"
    env = {**hub_env, **signing_env(hub_keys)}
    approved = _hub(env, "answer", "approve", str(first.entry_id), "--collector", "cora")
    assert approved.returncode == 0, approved.stderr
    assert f"draft {first.entry_id}: queued (notice" in approved.stdout
    repeat = _hub(env, "answer", "approve", str(first.entry_id))
    assert repeat.returncode == 0 and "already decided" in repeat.stdout
    dropped = _hub(env, "answer", "discard", str(second.entry_id), "--collector", "cora")
    assert dropped.returncode == 0 and "discarded" in dropped.stdout
    async with database.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert count == 1
