"""Composing the MIME message: headers, structure, threading, uniqueness, SMTP round trip."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from mail_support import LEGAL_IDENTITY, reminder_context, shipped_renderer

from hub.domain.dunning import LevelKind
from hub.domain.mail import NoticeContext, RenderedMail
from hub.outbound.compose import (
    MAX_REFERENCES,
    compose_notice,
    compose_reminder,
    reference_chain,
    to_bytes,
)
from hub.outbound.render import MailRenderer
from hub.routing.reply_token import make_bounce_address, make_reply_address, parse_bounce_address

MSGID_DOMAIN = "hub.example"
FROM = "Hub Collections <reminders@hub.example>"
TO = "Karoline Bjerregaard <karoline@debtor.example>"
WHEN = datetime(2025, 4, 14, 9, 30, tzinfo=timezone(timedelta(hours=2)))


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return shipped_renderer()


@pytest.fixture(scope="module")
def rendered(renderer: MailRenderer) -> RenderedMail:
    return renderer.render_reminder(reminder_context("de", LevelKind.SECOND))


def _compose(rendered: RenderedMail, **changes: Any) -> tuple[EmailMessage, str]:
    arguments: dict[str, Any] = {
        "from_addr": FROM,
        "to_addr": TO,
        "reply_to": "reply+abc@hub.example",
        "message_id_domain": MSGID_DOMAIN,
        "references": [],
        "in_reply_to": None,
        "date": WHEN,
    }
    arguments.update(changes)
    return compose_reminder(rendered, **arguments)


def _parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_reminder_headers_and_structure(rendered: RenderedMail) -> None:
    message, message_id = _compose(
        rendered, list_unsubscribe="https://portal.hub.example/opt-out/Zq9xT4"
    )
    raw = to_bytes(message)
    parsed = _parse(raw)

    assert parsed["Message-ID"] == message_id
    assert message_id.startswith("<") and message_id.endswith(f"@{MSGID_DOMAIN}>")
    assert parsed["From"] == FROM
    assert parsed["To"] == TO
    assert parsed["Reply-To"] == "reply+abc@hub.example"
    assert parsed["Subject"] == rendered.subject  # non-ASCII survives RFC 2047 encoding
    assert "2. Mahnung" in parsed["Subject"]
    assert parsedate_to_datetime(parsed["Date"]) == WHEN
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Content-Language"] == "de"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["List-Unsubscribe"] == "<https://portal.hub.example/opt-out/Zq9xT4>"
    assert parsed["In-Reply-To"] is None and parsed["References"] is None
    for name in ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "Reply-To"):
        assert len(parsed.get_all(name) or []) == 1, name

    assert parsed.get_content_type() == "multipart/alternative"
    text_part, html_part = parsed.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    for part, expected in ((text_part, rendered.text), (html_part, rendered.html)):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part["MIME-Version"] is None
        assert part.get_content().replace("\r\n", "\n") == expected
    # the body prefers the HTML part, as a mail client would
    assert parsed.get_body(("html", "plain")) is html_part


def test_wire_format_is_crlf_7bit_and_leaks_no_host_name(rendered: RenderedMail) -> None:
    raw = to_bytes(_compose(rendered)[0])
    assert b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")  # no bare LF
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78  # folded headers, QP soft line breaks
    assert raw.isascii()  # 7-bit clean: can be signed as it is
    for host in {socket.gethostname(), socket.getfqdn()}:
        if host and host not in MSGID_DOMAIN:
            assert host.encode() not in raw
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    for name in (b"X-Mailer", b"User-Agent", b"Received", b"Bcc"):
        assert name not in header_block


def test_message_ids_are_unique_over_a_thousand_messages(rendered: RenderedMail) -> None:
    ids = set()
    for number in range(1000):
        message, message_id = _compose(rendered)
        assert message["Message-ID"] == message_id
        if number % 10 == 0:  # the full parse costs ~3 ms: a tenth of them is enough
            assert _parse(to_bytes(message))["Message-ID"] == message_id
        ids.add(message_id)
    assert len(ids) == 1000
    assert all(i.endswith(f"@{MSGID_DOMAIN}>") for i in ids)


def test_references_keep_the_case_in_one_thread(renderer: MailRenderer) -> None:
    """Four mails of one case: each refers to all before it, the debtor's reply included."""
    thread: list[str] = []
    first, first_id = _compose(
        renderer.render_reminder(reminder_context("en", LevelKind.FRIENDLY)),
        references=thread,
        in_reply_to=None,
    )
    assert first["References"] is None
    thread.append(first_id)

    second, second_id = _compose(
        renderer.render_reminder(reminder_context("en", LevelKind.FIRST)),
        references=list(thread),
        in_reply_to=thread[-1],
    )
    parsed = _parse(to_bytes(second))
    assert parsed["In-Reply-To"] == first_id
    assert parsed["References"].split() == [first_id]
    thread.append(second_id)

    debtor_reply = "<CAFx9=reply.1@mail.debtor.example>"
    thread.append(debtor_reply)
    third, third_id = _compose(
        renderer.render_reminder(reminder_context("en", LevelKind.SECOND)),
        references=list(thread),
        in_reply_to=debtor_reply,
    )
    parsed = _parse(to_bytes(third))
    assert parsed["In-Reply-To"] == debtor_reply
    assert parsed["References"].split() == [first_id, second_id, debtor_reply]
    assert third_id not in parsed["References"]

    # IDs stored without angle brackets are accepted and normalised
    fourth, _ = _compose(
        renderer.render_reminder(reminder_context("en", LevelKind.FINAL)),
        references=[i.strip("<>") for i in [*thread, third_id]],
        in_reply_to=third_id.strip("<>"),
    )
    parsed = _parse(to_bytes(fourth))
    assert parsed["References"].split() == [first_id, second_id, debtor_reply, third_id]
    assert parsed["In-Reply-To"] == third_id


def test_reference_chain_rules() -> None:
    ids = [f"<m{i}@hub.example>" for i in range(50)]
    chain = reference_chain(ids, "<parent@debtor.example>")
    assert len(chain) == MAX_REFERENCES
    assert chain[0] == ids[0]  # the thread root stays
    assert chain[-1] == "<parent@debtor.example>"
    assert chain[1:-1] == ids[-(MAX_REFERENCES - 2) :]
    # the parent already in the list moves to the end, once
    assert reference_chain(["<a@x.example>", "<b@x.example>"], "<a@x.example>") == [
        "<b@x.example>",
        "<a@x.example>",
    ]
    for bad in ("", "<>", "no-at-sign", "<a@b> <c@d>", "<a b@c.example>"):
        with pytest.raises(ValueError):
            reference_chain([bad], None)


def test_header_injection_and_naive_dates_are_refused(rendered: RenderedMail) -> None:
    evil = RenderedMail("Hi\r\nBcc: all@example.org", "text\n", "<p>html</p>\n", "en")
    with pytest.raises(ValueError):
        _compose(evil)
    with pytest.raises(ValueError):
        _compose(rendered, to_addr="x@example.org\r\nBcc: all@example.org")
    with pytest.raises(ValueError):
        _compose(rendered, date=datetime(2025, 4, 14, 9, 30))
    with pytest.raises(ValueError):
        _compose(rendered, message_id_domain="not a domain")
    with pytest.raises(ValueError):
        _compose(rendered, list_unsubscribe="javascript:alert(1)")


def test_notice_headers_carry_no_personal_data_but_the_recipient(renderer: MailRenderer) -> None:
    context = reminder_context("de", LevelKind.FINAL)
    notice = renderer.render_notice(
        NoticeContext(language="de", portal_url="https://portal.hub.example/login")
    )
    key = os.urandom(32)
    reply_to = make_reply_address(key, 4711, "reply.hub.example")
    message, message_id = compose_notice(
        notice,
        from_addr="Hub Collections <reminders@hub.example>",
        to_addr="karoline@debtor.example",
        message_id_domain=MSGID_DOMAIN,
        date=WHEN,
        reply_to=reply_to,
    )
    raw = to_bytes(message)
    parsed = _parse(raw)
    assert parsed["Message-ID"] == message_id
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Subject"] == "Eine neue Nachricht wartet auf Sie"
    assert parsed["References"] is None and parsed["In-Reply-To"] is None
    assert parsed["Reply-To"] == reply_to
    headers = "\n".join(f"{k}: {v}" for k, v in parsed.items() if k != "To")
    whole = raw.decode("ascii")
    for value in (
        context.debtor_name,
        "Bjerregaard",
        "Karoline",
        "karoline",
        context.reference,
        context.creditor_name,
        "Nordlicht",
        context.iban,
        *LEGAL_IDENTITY.splitlines(),
        "1.250",
        "1162",
    ):
        assert value not in headers, value
    for value in (context.debtor_name, context.reference, context.creditor_name, context.iban):
        assert value not in whole, value
    assert parsed["To"] == "karoline@debtor.example"
    text = parsed.get_body(("plain",))
    assert text is not None and "https://portal.hub.example/login" in text.get_content()


class _Sink:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


async def test_the_composed_message_crosses_a_real_smtp_server_intact(
    rendered: RenderedMail,
) -> None:
    """Send through aiosmtpd with the VERP envelope sender: bytes and bounce route survive."""
    key = os.urandom(32)
    message, message_id = _compose(
        rendered,
        reply_to=make_reply_address(key, 4711, "reply.hub.example"),
        references=["<root@hub.example>"],
        in_reply_to="<root@hub.example>",
    )
    raw = to_bytes(message)
    bounce = make_bounce_address(key, 90210, "bounces.hub.example")
    sink = _Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        await aiosmtplib.send(
            raw,
            sender=bounce,
            recipients=["karoline@debtor.example"],
            hostname="127.0.0.1",
            port=port,
            start_tls=False,
            timeout=10,
        )
    finally:
        controller.stop()
    [(mail_from, rcpt_tos, content)] = sink.envelopes
    assert parse_bounce_address(key, mail_from) == 90210
    assert rcpt_tos == ["karoline@debtor.example"]
    received = _parse(content)
    assert received["Message-ID"] == message_id
    assert received["References"] == "<root@hub.example>"
    text = received.get_body(("plain",))
    assert text is not None
    assert text.get_content().replace("\r\n", "\n") == rendered.text


def test_date_header_is_rfc5322(rendered: RenderedMail) -> None:
    message, _ = _compose(rendered, date=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert message["Date"] == "Thu, 02 Jan 2025 03:04:05 +0000"
