"""Issue 6, "Done when": the whole conversation loop on real servers.

Cases imported through the CSV importer; reminders queued and relayed by the hub's relay to an
aiosmtpd sink; scripted debtors answer into a real Dovecot (LMTP) in English, German and Danish:
plain and PGP/MIME-encrypted to the hub's key (the one its reminders offer by Autocrypt), quoted
as Gmail, Outlook and Apple Mail quote, one with its subject changed, one forwarded, one from a
new address, one forging another case's reference, an out-of-office and a bounce. Then one
:func:`ingest_once` (fetch, stages, record: route, classify with the committed models, automate,
answer) and a second relay run. Every message must be on the right thread (or in triage), with
the right intent and state change, and the hub's answers must reach exactly the debtors who
should get one.
"""

from __future__ import annotations

import email.policy
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from dovecot import Dovecot
from dunning_support import (
    FROM,
    Delivered,
    HubKeys,
    add_creditor,
    csv_row,
    decoded_text,
    hub_settings,
    import_csv,
    make_hub_keys,
    start_sink,
)
from imap_support import imap_settings
from ingest_support import new_key
from relay_support import relay_settings
from sqlalchemy import select

from hub.cli.thread_cmd import format_thread
from hub.config import Settings
from hub.crypto.mime_parts import protect_message
from hub.crypto.pgp import PgpKeystore
from hub.inbound.ingest import ingest_once
from hub.outbound.relay import relay_once
from hub.routing.reply_token import parse_reply_address, reply_token_key
from hub.services.dunning import queue_due_reminders
from hub.services.promises import check_promises
from hub.services.reminder_mail import open_mailer
from hub.services.thread_listing import read_thread
from hub.storage.db import Database
from hub.storage.models import (
    Case,
    Classification,
    DebtorEmail,
    InboundMessage,
    ThreadEntry,
)

ALICE, BERND, DORTE = "alice@en.example", "bernd@de.example", "dorte@da.example"
ERIK, FIONA, CARL, GRETA = (
    "erik@en.example",
    "fiona@en.example",
    "carl@en.example",
    "greta@x.example",
)
FIONA_NEW = "fiona.private@other.example"
MALLORY = "mallory@evil.example"
CASES = {
    "EN-1001": ("Alice Archer", ALICE, "en"),
    "DE-1002": ("Bernd Bauer", BERND, "de"),
    "DA-1003": ("Dorte Dahl", DORTE, "da"),
    "EN-1004": ("Erik Evans", ERIK, "en"),
    "EN-1005": ("Fiona Fox", FIONA, "en"),
    "EN-1006": ("Carl Cole", CARL, "en"),
    "EN-1007": ("Greta Gray", GRETA, "en"),
}


@pytest.fixture(scope="module")
def hub_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubKeys]:
    keys = make_hub_keys(tmp_path_factory.mktemp("e2e-hub"))
    yield keys
    subprocess.run(["gpgconf", "--homedir", str(keys.gnupg_home), "--kill", "gpg-agent"])


@pytest.fixture(scope="module")
def bernd_store(
    tmp_path_factory: pytest.TempPathFactory, hub_keys: HubKeys
) -> Iterator[tuple[PgpKeystore, str]]:
    """Bernd's own GnuPG home with his key and the hub's public key (from the Autocrypt
    header of the reminder, checked in the test)."""
    store = PgpKeystore(tmp_path_factory.mktemp("e2e-bernd") / "gnupg")
    fpr = new_key(store.home, f"Bernd Bauer <{BERND}>")
    store.import_key(hub_keys.public_key)
    yield store, fpr
    store.close()


def _reply(
    reminder: Delivered,
    sender: str,
    body: str,
    message_id: str,
    *,
    subject: str | None = None,
    **headers: str,
) -> EmailMessage:
    """A reply to ``reminder`` as a mail program writes it: To the Reply-To, threaded."""
    original = reminder.message
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = str(original["Reply-To"] or original["From"])
    msg["Subject"] = subject if subject is not None else f"Re: {original['Subject']}"
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = str(original["Message-ID"])
    msg["References"] = str(original["Message-ID"])
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def _quoted(reminder: Delivered) -> list[str]:
    return decoded_text(reminder.message).strip().splitlines()[:12]


def gmail(reminder: Delivered, text: str) -> str:
    quote = "\n".join(f"> {line}" for line in _quoted(reminder))
    return f"{text}\n\nOn Mon, 23 Nov 2026 at 09:00, Nordlicht <{FROM}> wrote:\n\n{quote}\n"


def outlook_de(reminder: Delivered, text: str) -> str:
    quote = "\n".join(_quoted(reminder))
    return (
        f"{text}\n\nMit freundlichen Grüßen\nBernd Bauer\n\n"
        "________________________________\n"
        f"Von: Nordlicht <{FROM}>\nGesendet: Montag, 23. November 2026 09:00\n"
        f"An: {BERND}\nBetreff: {reminder.message['Subject']}\n\n{quote}\n"
    )


def apple_da(reminder: Delivered, text: str) -> str:
    quote = "\n".join(f"> {line}" for line in _quoted(reminder))
    return (
        f"{text}\n\nVenlig hilsen\nDorte\n\n"
        f"> Den 23. nov. 2026 kl. 09.00 skrev Nordlicht <{FROM}>:\n>\n{quote}\n"
    )


def _bounce(reminder: Delivered) -> bytes:
    """An RFC 3464 report about the reminder to Greta, sent to its VERP address."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.x.example>\r\n"
        f"To: {reminder.mail_from}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-e2e@mx.x.example>\r\n"
        "Date: Mon, 23 Nov 2026 09:01:00 +0000\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\n"
        "Your message could not be delivered to one or more recipients.\r\n\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.x.example\r\n\r\n"
        f"Final-Recipient: rfc822; {GRETA}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {FROM}\r\nTo: {GRETA}\r\nSubject: {reminder.message['Subject']}\r\n"
        f"Message-ID: {reminder.message['Message-ID']}\r\n\r\n"
        "--b1--\r\n"
    ).encode()


def _bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=email.policy.SMTP)


async def _thread(database: Database, reference: str) -> tuple[Case, list[ThreadEntry]]:
    async with database.transaction() as session:
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        entries = (
            await session.scalars(
                select(ThreadEntry).where(ThreadEntry.case_id == case.id).order_by(ThreadEntry.seq)
            )
        ).all()
        return case, list(entries)


async def _intent(database: Database, entry_id: int) -> Classification | None:
    async with database.transaction() as session:
        found: Classification | None = await session.scalar(
            select(Classification).where(Classification.thread_entry_id == entry_id)
        )
        return found


async def test_conversation_end_to_end(
    settings: Settings,
    database: Database,
    dovecot: Dovecot,
    hub_keys: HubKeys,
    bernd_store: tuple[PgpKeystore, str],
) -> None:
    hub = imap_settings(hub_settings(settings, hub_keys), dovecot)
    await add_creditor(database, "NORD", "Nordlicht Energie")
    await import_csv(
        database,
        hub,
        "".join(
            csv_row("NORD", ref, name, address, language=lang)
            for ref, (name, address, lang) in CASES.items()
        ),
    )

    # -- reminders, through the relay, to a sink -----------------------------------------------
    now = datetime.now(UTC) + timedelta(minutes=1)
    mailer = await open_mailer(hub)
    try:
        summary = await queue_due_reminders(database, hub, now, mailer=mailer)
    finally:
        mailer.close()
    assert sum(summary.queued.values()) == len(CASES), summary
    sink, controller = start_sink()
    try:
        sent = await relay_once(relay_settings(hub, controller.port), database, "e2e")
        assert sent.sent == len(CASES)
        reminders = {address: sink.to(address) for _, address, _ in CASES.values()}
        autocrypt = str(reminders[BERND].message["Autocrypt"])
        assert "addr=" + FROM in autocrypt.replace(" ", "")  # the key Bernd encrypts to
        for reference in CASES:
            case, _ = await _thread(database, reference)
            assert case.state == "reminded", (reference, case.state)

        # -- the debtors answer into the hub's Dovecot mailbox ---------------------------------
        store, bernd_fpr = bernd_store
        inner = _reply(
            reminders[BERND],
            f"Bernd Bauer <{BERND}>",
            outlook_de(
                reminders[BERND], "Ich bestreite die Forderung. Ich habe die Ware nie erhalten."
            ),
            "<bernd-1@de.example>",
        )
        encrypted = protect_message(
            inner, lambda m: store.protect_pgp_mime(m, hub_keys.fingerprint, bernd_fpr, None)
        )
        forwarded = _reply(
            reminders[ERIK],
            f"Erik Evans <{ERIK}>",
            "I'll pay the 310 EUR next week.\n\n---------- Forwarded message ---------\n"
            f"From: Nordlicht <{FROM}>\nSubject: {reminders[ERIK].message['Subject']}\n\n"
            + "\n".join(_quoted(reminders[ERIK]))
            + "\nCase reference: EN-1004\n",
            "<erik-1@en.example>",
            subject=f"Fwd: {reminders[ERIK].message['Subject']}",
        )
        del forwarded["In-Reply-To"], forwarded["References"]  # a forward starts a new thread
        # a stranger names Alice's case (reference, her name) without any mail of ours
        forgery = _reply(
            reminders[ALICE],
            f"Alice Archer <{MALLORY}>",
            "I do not owe this. I never received the goods and I dispute this invoice.",
            "<forged-1@evil.example>",
            subject="Invoice EN-1001",
        )
        del forgery["In-Reply-To"], forgery["References"], forgery["To"]
        forgery["To"] = FROM
        messages = [
            _bytes(
                _reply(
                    reminders[ALICE],
                    f"Alice Archer <{ALICE}>",
                    gmail(
                        reminders[ALICE],
                        "I promise to pay the full amount of 310.00 EUR by 15 December 2026.",
                    ),
                    "<alice-1@en.example>",
                )
            ),
            _bytes(encrypted),
            _bytes(
                _reply(
                    reminders[DORTE],
                    f"Dorte Dahl <{DORTE}>",
                    apple_da(reminders[DORTE], "Kan jeg betale i 3 månedlige rater på 100 kr?"),
                    "<dorte-1@da.example>",
                    subject="Betaling i rater",
                )
            ),
            _bytes(forwarded),
            _bytes(
                _reply(
                    reminders[FIONA],
                    f"Fiona Fox <{FIONA_NEW}>",
                    gmail(reminders[FIONA], "I will pay the full amount on 15 December 2026."),
                    "<fiona-1@other.example>",
                )
            ),
            _bytes(forgery),
            _bytes(
                _reply(
                    reminders[CARL],
                    f"Carl Cole <{CARL}>",
                    "I am out of the office until 30 November with no access to email.",
                    "<carl-ooo@en.example>",
                    subject=f"Automatic reply: {reminders[CARL].message['Subject']}",
                    Auto_Submitted="auto-replied",
                    X_Autoreply="yes",
                )
            ),
            _bounce(reminders[GRETA]),
        ]
        dovecot.deliver(*messages)

        counts = await ingest_once(hub, database, workers=1)
        assert counts.fetched.stored == len(messages), counts.summary()
        assert counts.processed.quarantined == 0 and counts.recorded.failed == 0
        sink.received.clear()
        answered = await relay_once(relay_settings(hub, controller.port), database, "e2e")
        answers = list(sink.received)
    finally:
        controller.stop()

    async with database.transaction() as session:
        rows = {r.message_id: r for r in (await session.scalars(select(InboundMessage))).all()}
    assert {r.state for r in rows.values()} <= {"routed", "triage"}, {
        k: r.state for k, r in rows.items()
    }

    async def on_case(reference: str, message_id: str) -> ThreadEntry:
        _, entries = await _thread(database, reference)
        found = [e for e in entries if e.message_id == message_id]
        assert len(found) == 1, (reference, message_id, [e.kind for e in entries])
        assert rows[message_id].thread_entry_id == found[0].id
        return found[0]

    # Alice (English, Gmail quote): promise with date -> promised, paused until date + grace
    entry = await on_case("EN-1001", "<alice-1@en.example>")
    assert entry.actor == "debtor" and entry.kind == "inbound"
    classified = await _intent(database, entry.id)
    assert classified is not None and classified.intent == "payment_promise"
    assert not classified.is_suggestion and classified.fields["date"] == "2026-12-15"
    case, _ = await _thread(database, "EN-1001")
    assert case.state == "promised" and case.paused_until is not None
    assert case.paused_until.date() > datetime(2026, 12, 15).date()

    # Bernd (German, Outlook quote, PGP/MIME to the hub's key): dispute -> disputed
    entry = await on_case("DE-1002", "<bernd-1@de.example>")
    assert entry.meta["crypto"]["encrypted"] and entry.meta["crypto"]["decrypted"]
    assert entry.body is not None and "bestreite" in entry.body
    classified = await _intent(database, entry.id)
    assert classified is not None and classified.intent == "dispute"
    assert classified.language == "de"
    assert (await _thread(database, "DE-1002"))[0].state == "disputed"
    # hub thread shows the reply text apart from the full text, the verdicts and the decision
    printed = format_thread(
        await read_thread(database, "DE-1002", creditor_code=None, actor="test")
    )
    reply_at, full_at = printed.index("reply text:"), printed.index("full text:")
    assert reply_at < full_at
    assert "> Ich bestreite die Forderung." in printed[reply_at:full_at]
    assert "Von: Nordlicht" not in printed[reply_at:full_at]  # the Outlook quote is not in it
    assert "Von: Nordlicht" in printed[full_at:]
    assert "signature_verdict=unknown_key" in printed and "sender_verified=True" in printed
    assert "intent=dispute" in printed and "reminded -> disputed" in printed
    assert "answer_kind=acknowledge_dispute" in printed

    # Dorte (Danish, Apple Mail quote, subject changed): plan request -> plan_requested
    entry = await on_case("DA-1003", "<dorte-1@da.example>")
    classified = await _intent(database, entry.id)
    assert classified is not None and classified.intent == "installment_request"
    assert (await _thread(database, "DA-1003"))[0].state == "plan_requested"

    # Erik (forwarded, new thread, reference in the body): promise -> promised
    entry = await on_case("EN-1004", "<erik-1@en.example>")
    classified = await _intent(database, entry.id)
    assert classified is not None and classified.intent == "payment_promise"
    assert (await _thread(database, "EN-1004"))[0].state == "promised"

    # Fiona from a new address: on her thread, unverified, nothing changes, a proposed address
    entry = await on_case("EN-1005", "<fiona-1@other.example>")
    assert entry.actor == "sender:unverified" and entry.meta["sender_verified"] is False
    assert entry.meta["proposed_address"] is not None
    assert (await _thread(database, "EN-1005"))[0].state == "reminded"

    # the forged reference to Alice's case: triage, never on Alice's (or any) thread
    forged_row = rows["<forged-1@evil.example>"]
    assert forged_row.state == "triage" and forged_row.thread_entry_id is None
    assert forged_row.route is not None
    assert forged_row.route["triage_reason"] == "unverified_reference"
    async with database.transaction() as session:
        anywhere = await session.scalar(
            select(ThreadEntry.id).where(ThreadEntry.message_id == "<forged-1@evil.example>")
        )
    assert anywhere is None
    assert (await _thread(database, "EN-1001"))[0].state == "promised"

    # Carl's out-of-office: on his thread, never classified, nothing changes
    entry = await on_case("EN-1006", "<carl-ooo@en.example>")
    assert entry.kind == "auto_reply"
    assert await _intent(database, entry.id) is None
    case, entries = await _thread(database, "EN-1006")
    assert case.state == "reminded"
    assert not [e for e in entries if e.seq > entry.seq]

    # Greta's bounce: address undeliverable, the case shows it, referencing the reminder
    entry = await on_case("EN-1007", "<bounce-e2e@mx.x.example>")
    assert entry.kind == "bounce" and entry.meta["marked_undeliverable_email_ids"]
    assert entry.meta["in_reply_to_entry"] is not None
    case, _ = await _thread(database, "EN-1007")
    async with database.transaction() as session:
        statuses = (
            await session.scalars(
                select(DebtorEmail.status).where(DebtorEmail.debtor_id == case.debtor_id)
            )
        ).all()
    assert list(statuses) == ["undeliverable"]

    # the hub's answers: to Alice, Bernd, Dorte and Erik, threaded; to nobody else
    assert answered.sent == len(answers)
    by_address = {rcpt: d for d in answers for rcpt in d.rcpt_tos}
    assert set(by_address) == {ALICE, BERND, DORTE, ERIK}, sorted(by_address)
    # answers to keyless debtors are notices (no case data, no threading headers by design):
    # their thread entry names the message answered; the reply address is the reminder's
    expected = {
        ALICE: ("EN-1001", "<alice-1@en.example>", "confirm_promise"),
        BERND: ("DE-1002", "<bernd-1@de.example>", "acknowledge_dispute"),
        DORTE: ("DA-1003", "<dorte-1@da.example>", "confirm_plan_request"),
        ERIK: ("EN-1004", "<erik-1@en.example>", "confirm_promise"),
    }
    token_key = reply_token_key(hub.security)
    for address, (reference, replied_to, kind) in expected.items():
        message = by_address[address].message
        # RFC 3834: marked automatic (a notice says auto-generated, a full answer auto-replied)
        assert str(message["Auto-Submitted"]) in ("auto-replied", "auto-generated")
        case, entries = await _thread(database, reference)
        assert parse_reply_address(token_key, str(message["Reply-To"])) == case.id
        sent = [e for e in entries if e.kind == "answer"]
        assert len(sent) == 1, (reference, [e.kind for e in entries])
        assert sent[0].message_id == str(message["Message-ID"])
        assert sent[0].meta["in_reply_to"] == replied_to
        assert sent[0].meta["answer_kind"] == kind
    for nobody in (FIONA, FIONA_NEW, CARL, GRETA, MALLORY):
        assert nobody not in by_address
    # Fiona's unverified reply: the answer was withheld, and the case says why
    _, entries = await _thread(database, "EN-1005")
    assert not [e for e in entries if e.kind == "answer"]

    # -- the broken promise, on a controllable clock --------------------------------------------
    # Alice promised 15 December; the clock moves past the date plus the grace days, nothing was
    # paid: the promise is broken on her thread, dunning resumes and the next reminder is queued
    case, _ = await _thread(database, "EN-1001")
    assert case.paused_until is not None
    # an hour before Alice's deadline only Erik's earlier promise ("next week") is settled
    before = await check_promises(database, case.paused_until - timedelta(hours=1))
    assert (before.broken, before.kept) == (1, 0)
    assert (await _thread(database, "EN-1004"))[0].state == "reminded"
    assert (await _thread(database, "EN-1001"))[0].state == "promised"
    later = case.paused_until + timedelta(hours=1)
    settled = await check_promises(database, later)
    assert (settled.broken, settled.kept) == (1, 0)
    case, entries = await _thread(database, "EN-1001")
    assert case.state == "reminded" and case.paused_until is None
    assert entries[-1].kind == "promise_broken"
    level = case.dunning_level
    mailer = await open_mailer(hub)
    try:
        again = await queue_due_reminders(
            database, hub, later + timedelta(days=30), mailer=mailer, case_refs=["EN-1001"]
        )
    finally:
        mailer.close()
    assert sum(again.queued.values()) == 1, again
    case, entries = await _thread(database, "EN-1001")
    assert case.dunning_level == level + 1
    assert entries[-1].kind == "reminder"
