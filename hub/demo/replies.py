"""The demo debtors' scripted replies, written the way their own mail clients would send them.

Each reply answers the reminder the debtor received: ``In-Reply-To``/``References`` carry its
Message-ID, ``To`` is the per-case address from its ``Reply-To``, and the reminder is quoted
below the answer ("On ... wrote:" and ``> `` lines). A debtor with an OpenPGP key encrypts to the
hub's key (learnt from the reminder's Autocrypt header) and signs with their own, as PGP/MIME
(RFC 3156) made with the gpg command line in their own GnuPG home; the others send plain mail.
There is also an out-of-office auto-reply (RFC 3834) and a delivery status notification
(RFC 3464) for one reminder, sent to that outbox row's signed bounce address.

The texts are hand-written in each debtor's language and were checked with ``hub classify``.
"""

from __future__ import annotations

import email.policy
import email.utils
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.header import Header
from email.message import EmailMessage

from hub.demo.data import DemoDebtor
from hub.demo.debtors import DebtorMachine, encrypt_and_sign

MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}


@dataclass(frozen=True)
class Reminder:
    """What a debtor's client kept of the reminder they answer."""

    message_id: str
    reply_to: str
    subject: str
    text: str
    received: datetime


@dataclass(frozen=True)
class ScriptedReply:
    """One message the demo sends into the hub's inbox, and what it should cause."""

    debtor: DemoDebtor
    kind: str  # "reply", "auto_reply" or "bounce"
    what: str
    data: bytes


def _promise_date(today: date) -> str:
    due = today + timedelta(days=10)
    return f"{due.day} {MONTHS['en'][due.month - 1]}"


def reply_text(debtor: DemoDebtor, what: str, today: date) -> str:
    """The debtor's own words (checked with ``hub classify``)."""
    first = debtor.name.split()[0]
    texts = {
        "promise": (
            "Hello,\n\nsorry for the delay. I will transfer the full amount on "
            f"{_promise_date(today)}, when I get my salary.\n\nBest regards,\n{first}"
        ),
        "dispute": (
            "Hallo,\n\ndiese Rechnung habe ich bereits am 3. November bezahlt, per Überweisung. "
            f"Bitte prüfen Sie Ihren Zahlungseingang.\n\nMit freundlichen Grüßen\n{debtor.name}"
        ),
        "installments": (
            "Hej,\n\njeg kan ikke betale det hele på én gang. Kan jeg betale i tre rater á "
            f"500 kr. om måneden?\n\nVenlig hilsen\n{first}"
        ),
        "out_of_office": (
            "I am out of the office until "
            f"{_promise_date(today)} with no access to email. I will reply when I am back."
        ),
    }
    return texts[what]


ATTRIBUTION = {
    "en": "On {when}, {who} wrote:",
    "de": "Am {when} schrieb {who}:",
    "da": "Den {when} skrev {who}:",
}


def gist(text: str) -> str:
    """The first line that says something (not the greeting), as a mail list view shows it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if len(line.split()) > 4 or line.endswith((".", "?", "!"))]
    return (said or lines or [""])[0]


def _quoted(debtor: DemoDebtor, reminder: Reminder, sender: str) -> str:
    when = reminder.received.strftime("%d.%m.%Y %H:%M")
    head = ATTRIBUTION.get(debtor.language, ATTRIBUTION["en"]).format(when=when, who=sender)
    lines = [f"> {line}".rstrip() for line in reminder.text.strip().splitlines()]
    return head + "\n" + "\n".join(lines) + "\n"


def _reply_subject(subject: str, language: str) -> str:
    prefix = {"de": "AW: "}.get(language, "Re: ")
    return subject if subject.lower().startswith(("re:", "aw:")) else prefix + subject


def _headers(
    message: EmailMessage,
    debtor: DemoDebtor,
    reminder: Reminder,
    now: datetime,
    message_id: str | None = None,
) -> None:
    message["From"] = email.utils.formataddr((debtor.name, debtor.email))
    message["To"] = reminder.reply_to
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = message_id or email.utils.make_msgid(
        domain=debtor.email.split("@", 1)[1]
    )
    message["In-Reply-To"] = reminder.message_id
    message["References"] = reminder.message_id


def compose_reply(
    machine: DebtorMachine,
    reminder: Reminder,
    what: str,
    hub_address: str,
    hub_name: str,
    now: datetime,
) -> ScriptedReply:
    """A reply in the debtor's words with the reminder quoted; PGP/MIME if they have a key."""
    debtor = machine.debtor
    body = reply_text(debtor, what, now.date()) + "\n\n" + _quoted(debtor, reminder, hub_name)
    inner = EmailMessage()
    subject = _reply_subject(reminder.subject, debtor.language)
    inner["Subject"] = subject
    inner.set_content(body)
    if debtor.key != "pgp":
        _headers(inner, debtor, reminder, now)
        return ScriptedReply(debtor, "reply", what, inner.as_bytes(policy=email.policy.SMTP))
    # protected headers ("v1"), as Thunderbird sends them: the real Subject travels inside
    message_id = email.utils.make_msgid(domain=debtor.email.split("@", 1)[1])
    _headers(inner, debtor, reminder, now, message_id)
    inner.set_param("protected-headers", "v1")
    # RFC 3156: the signed and encrypted entity in canonical CRLF form
    armored = encrypt_and_sign(machine, inner.as_bytes(policy=email.policy.SMTP), hub_address)
    outer = EmailMessage()
    _headers(outer, debtor, reminder, now, message_id)
    outer["Subject"] = "..."
    outer.set_type("multipart/encrypted")
    outer.set_param("protocol", "application/pgp-encrypted")
    control = EmailMessage()
    control.set_content(b"Version: 1\r\n", "application", "pgp-encrypted", cte="7bit")
    payload = EmailMessage()
    payload.set_content(armored, "application", "octet-stream", cte="7bit")
    payload.replace_header("Content-Type", 'application/octet-stream; name="encrypted.asc"')
    for part in (control, payload):
        del part["MIME-Version"]
        outer.attach(part)
    return ScriptedReply(debtor, "reply", what, outer.as_bytes(policy=email.policy.SMTP))


def compose_auto_reply(debtor: DemoDebtor, reminder: Reminder, now: datetime) -> ScriptedReply:
    """An out-of-office notice, marked the way RFC 3834 asks (``Auto-Submitted``)."""
    message = EmailMessage()
    _headers(message, debtor, reminder, now)
    message["Subject"] = "Automatic reply: " + reminder.subject
    message["Auto-Submitted"] = "auto-replied"
    message["X-Autoreply"] = "yes"
    message.set_content(reply_text(debtor, "out_of_office", now.date()) + "\n")
    return ScriptedReply(
        debtor, "auto_reply", "out_of_office", message.as_bytes(policy=email.policy.SMTP)
    )


def compose_bounce(
    debtor: DemoDebtor, reminder: Reminder, bounce_address: str, now: datetime
) -> ScriptedReply:
    """A DSN (RFC 3464) from the debtor's mail server: the mailbox does not exist."""
    domain = debtor.email.split("@", 1)[1]
    mta = f"mx1.{domain}"
    boundary = "dsn-" + email.utils.make_msgid(domain=mta)[1:-1].replace("@", "-").replace(".", "-")
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{mta}>",
        f"To: {bounce_address}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {email.utils.format_datetime(now)}",
        f"Message-ID: {email.utils.make_msgid(domain=mta)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"This is the mail system at host {mta}.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients.",
        "",
        f"<{debtor.email}>: host {mta} said: 550 5.1.1 User unknown",
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {mta}",
        f"Arrival-Date: {email.utils.format_datetime(reminder.received)}",
        "",
        f"Final-Recipient: rfc822; {debtor.email}",
        f"Original-Recipient: rfc822; {debtor.email}",
        "Action: failed",
        "Status: 5.1.1",
        f"Remote-MTA: dns; {mta}",
        "Diagnostic-Code: smtp; 550 5.1.1 <" + debtor.email + ">: User unknown",
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        f"To: {debtor.email}",
        f"Message-ID: {reminder.message_id}",
        f"Subject: {Header(reminder.subject, 'utf-8').encode()}",
        "",
        f"--{boundary}--",
        "",
    ]
    data = "\r\n".join(lines).encode("utf-8")
    return ScriptedReply(debtor, "bounce", "bounce", data)
