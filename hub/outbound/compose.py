"""Compose the MIME message of a reminder or a notice from rendered text and HTML.

The result is ``multipart/alternative`` (text, then HTML; RFC 2046, 5.1.4), UTF-8 in
quoted-printable so that the message is 7-bit clean and can be signed as it is (RFC 3156, 3;
RFC 8551, 3.1.2). Headers that matter here:

* ``Message-ID``: new and unique per message (``make_msgid`` with our domain, so no host name
  leaks), returned to the caller to record on the thread.
* ``In-Reply-To`` and ``References`` (RFC 5322, 3.6.4): the case's earlier Message-IDs, so the
  debtor's mail client keeps the whole case in one thread.
* ``Reply-To``: the case's signed reply address (:mod:`hub.routing.reply_token`).
* ``Auto-Submitted: auto-generated`` (RFC 3834, 5; ``auto-replied`` on the hub's answers) so
  that well-behaved auto-responders stay silent, plus Microsoft's ``X-Auto-Response-Suppress``
  for out-of-office replies.

The notice (sent when a debtor has no usable key) carries no personal data in its headers but
the ``To`` address: no references, nothing from the case. :func:`to_bytes` serialises with
CRLF line ends as SMTP wants them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from hub.domain.mail import RenderedMail

#: how many Message-IDs ``References`` keeps: the first (thread root) and the newest others
MAX_REFERENCES = 20
_MSG_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def new_message_id(domain: str) -> str:
    """A new ``<...@domain>`` Message-ID that names no host of ours."""
    if not _DOMAIN.match(domain) or "." not in domain:
        raise ValueError("message_id_domain must be a domain name like hub.example.org")
    return make_msgid(domain=domain.lower())


def normal_message_id(value: str) -> str:
    """``<id@domain>`` from a stored Message-ID, with or without brackets; ValueError if bad."""
    text = value.strip()
    if not text.startswith("<"):
        text = f"<{text}>"
    if not _MSG_ID.match(text):
        raise ValueError(f"not a Message-ID: {value!r}")
    return text


def reference_chain(references: Sequence[str], in_reply_to: str | None) -> list[str]:
    """The ``References`` list: earlier IDs oldest first, the parent last, no duplicates.

    Long threads keep the first ID (the thread root) and the newest ones (RFC 5322, 3.6.4,
    and what threading clients rely on).
    """
    chain: list[str] = []
    for value in [*references, *([in_reply_to] if in_reply_to else [])]:
        msg_id = normal_message_id(value)
        if msg_id in chain:
            chain.remove(msg_id)  # keep each ID once, at its latest position
        chain.append(msg_id)
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return chain


def _build(
    rendered: RenderedMail,
    *,
    from_addr: str,
    to_addr: str,
    message_id_domain: str,
    date: datetime,
    extra_headers: Sequence[tuple[str, str]] = (),
    auto_submitted: str | None = "auto-generated",
) -> tuple[EmailMessage, str]:
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("date must be timezone-aware")
    message = EmailMessage(policy=policy.SMTP)
    message_id = new_message_id(message_id_domain)
    # header values are checked by the policy: a CR or LF in any of them raises ValueError
    message["From"] = from_addr
    message["To"] = to_addr
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    for name, value in extra_headers:
        message[name] = value
    if auto_submitted:
        message["Auto-Submitted"] = auto_submitted
    message["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in message.iter_parts():
        del part["MIME-Version"]  # belongs to the top level only (RFC 2045, 4)
    # after the body: making the message multipart moves Content-* headers into its first part
    message["Content-Language"] = rendered.language
    return message, message_id


def compose_reminder(
    rendered: RenderedMail,
    *,
    from_addr: str,
    to_addr: str,
    reply_to: str,
    message_id_domain: str,
    references: Sequence[str],
    in_reply_to: str | None,
    date: datetime,
    list_unsubscribe: str | None = None,
    auto_submitted: str | None = "auto-generated",
) -> tuple[EmailMessage, str]:
    """The reminder (or an answer in the case's thread) as a MIME message, and its Message-ID.

    ``references`` are the case's earlier Message-IDs, oldest first; ``in_reply_to`` is the one
    this message follows (usually the newest, or the debtor's last reply). ``list_unsubscribe``
    is the opt-out URL, offered to mail clients as ``List-Unsubscribe`` (RFC 2369) when given.
    ``auto_submitted`` is ``auto-generated`` for reminders, ``auto-replied`` for the hub's
    answers to a debtor's message, None for a collector's own words (RFC 3834, 5).
    """
    headers = [("Reply-To", reply_to)]
    if in_reply_to:
        headers.append(("In-Reply-To", normal_message_id(in_reply_to)))
    chain = reference_chain(references, in_reply_to)
    if chain:
        headers.append(("References", " ".join(chain)))
    if list_unsubscribe:
        if not list_unsubscribe.startswith(("https://", "mailto:")):
            raise ValueError("list_unsubscribe must be an https: or mailto: URL")
        headers.append(("List-Unsubscribe", f"<{list_unsubscribe}>"))
    message, message_id = _build(
        rendered,
        from_addr=from_addr,
        to_addr=to_addr,
        message_id_domain=message_id_domain,
        date=date,
        extra_headers=headers,
        auto_submitted=auto_submitted,
    )
    return message, message_id


def compose_notice(
    rendered: RenderedMail,
    *,
    from_addr: str,
    to_addr: str,
    message_id_domain: str,
    date: datetime,
    reply_to: str | None = None,
) -> tuple[EmailMessage, str]:
    """The notice as a MIME message, and its new Message-ID.

    Nothing from the case goes into its headers: no ``References``, no ``In-Reply-To``. A
    ``reply_to`` (the signed reply address: an opaque token) is allowed so that an answer still
    reaches the case.
    """
    message, message_id = _build(
        rendered,
        from_addr=from_addr,
        to_addr=to_addr,
        message_id_domain=message_id_domain,
        date=date,
        extra_headers=[("Reply-To", reply_to)] if reply_to else [],
    )
    return message, message_id


def to_bytes(message: EmailMessage) -> bytes:
    """The message as SMTP sends it: CRLF line ends, folded headers (RFC 5322, 2.1.1)."""
    return message.as_bytes(policy=policy.SMTP)
