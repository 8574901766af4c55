"""Bounces in the non-standard forms of common mail servers.

Postfix without a DSN, Exim ("This message was created automatically by mail delivery
software"), qmail ("Hi. This is the qmail-send program"), Sendmail, Courier, Exchange and
Office 365 NDRs, Gmail, Lotus Notes and many providers write the failure for people. A message
is taken for such a bounce only on two independent signals (a daemon sender, a bounce subject, an
empty return path, a known report text, ``Auto-Submitted``), or on ``X-Failed-Recipients``
alone, so that a person who forwards a bounce is not taken for one.

The failed recipients are the addresses the report's own words name (before the returned copy),
without the sender's, the reporter's and the message's own addresses; when the returned copy's
``To``/``Cc`` are known, the addresses among them are preferred.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from hub.inbound.detect.bounce import make_recipient, permanent_hint
from hub.inbound.detect.mime import (
    ADDRESS,
    Headers,
    addresses,
    delivered_to,
    original_message_id,
    returned_headers,
    texts,
)
from hub.inbound.detect.result import Bounce, BouncedRecipient

_DAEMON_FROM = re.compile(
    r"mailer-?daemon|mail-?daemon|post_?master|\bno-?reply@|mail delivery (?:subsystem|system|"
    r"service)|"
    r"\bmdaemon\b|\bbounces?@|\bnobody@|mail administrator|system administrator|"
    r"deliverystatus|no-?reply-?dsn|mail ?delivery|\bmta\b|smtp gateway|notification",
    re.I,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|returned mail|return(?:ed)? to sender|delivery (?:status|failure|"
    r"failed|problem|report|notification|has failed|error)|failure notice|mail delivery failed|"
    r"non[- ]?delivery|could not be delivered|not delivered|nondeliverable|non remis|"
    r"unzustellbar|nicht zustellbar|warning: could not send|delayed mail|mail system error|"
    r"unable to deliver|delivery (?:to .{1,80})?failed|message (?:status|delivery)|"
    r"\bbounced?\b|returned message|\bdsn\b|mail could not|rejected|failed delivery|"
    r"kunne ikke leveres|ikke leveret|nicht zugestellt|fehlgeschlagen|undelivered mail|"
    r"permanent (?:error|failure)|delivery notice|notice of delivery|mail failure|"
    r"error sending message|message you sent|unknown recipient|fallo en la entrega|"
    r"envoi impossible|mail not delivered|could not send message|failed to deliver|"
    r"error sending your (?:mail|message)|error sending mail",
    re.I,
)

# The report texts of known servers, each with the name of its format.
_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.I | re.M))
    for name, pattern in (
        (
            "postfix",
            r"This is the mail system at host|The Postfix program|"
            r"I'm sorry to have to inform you that your message could not",
        ),
        (
            "exim",
            r"This message was created automatically by mail delivery software|"
            r"following address(?:\(es\))? failed|could not be delivered to one or more of its",
        ),
        (
            "qmail",
            r"This is the qmail-send program|I'm afraid I wasn't able to deliver|"
            r"couldn't deliver your message to the following",
        ),
        (
            "sendmail",
            r"The original message was received at|Transcript of session follows|"
            r"following addresses had (?:permanent fatal|transient non-fatal) errors",
        ),
        (
            "exchange",
            r"did not reach (?:some or all of the|the following) (?:intended )?recipient|"
            r"Delivery has failed to these recipients|couldn't be delivered|"
            r"following recipient\(s\) (?:cannot|could not) be reached|"
            r"Diagnostic information for administrators|Die Nachricht konnte nicht zugestellt",
        ),
        (
            "gmail",
            r"Delivery to the following recipients? failed|wasn't delivered to|"
            r"Message not delivered|Address not found|There was a temporary problem delivering",
        ),
        ("courier", r"Courier mail server at|This is a delivery status notification from"),
        ("notes", r"was not delivered to:|Your message\s+Subject:|Lotus Domino"),
        (
            "generic",
            r"undeliverable|could not be delivered|couldn't be delivered|delivery (?:has )?"
            r"failed|permanent (?:error|failure)|unable to deliver|not be delivered|returned mail|"
            r"delivery to the following|message could not be sent|was not delivered|"
            r"nicht zugestellt|unzustellbar|kunne ikke leveres|ikke leveret|non remis|"
            r"has been rejected|was rejected|rejected your message|failed to deliver|"
            r"following recipients? (?:was|were|has|have|failed|could)|delivery failure|"
            r"mail delivery failed|message was not accepted|could not deliver|delivery error|"
            r"trouble delivering|invalid user address|requested action not taken|"
            r"(?:sent|>>>|<<<) ?<*\s*RCPT TO\s*:",
        ),
    )
)

#: where the returned copy starts in a report's text
_COPY_START = re.compile(
    r"^[ \t>-]*(?:-{2,}|={2,}|_{2,}|\*{2,})?\s*(?:original message|copy of (?:the|your) "
    r"message|below this line is a copy|this is a copy of|the (?:original )?message headers? "
    r"(?:follow|was)|returned message|undelivered message|start of returned|original "
    r"(?:message )?headers|unsent message below|headers of the original|your message reads|"
    r"message text follows|the header of the original)|^Received:\s+from\s|^Return-Path:\s*<",
    re.I | re.M,
)
_SKIP_LINE = re.compile(
    r"^\s*(?:message-id|in-reply-to|references|received|x-[\w-]+|dkim-signature|return-path|"
    r"reply-to|from|sender|date)\s*:",
    re.I,
)
_ROLE_LOCAL = re.compile(
    r"^(?:mailer-?daemon|mail-?daemon|postmaster|root|bounces?|nobody|noreply|no-reply|"
    r"abuse|hostmaster|mdaemon|daemon)(?:[+-].*)?$",
    re.I,
)


@dataclass(frozen=True)
class Signals:
    """The independent hints that a message is a non-standard bounce."""

    daemon_from: bool
    subject: bool
    null_return_path: bool
    auto_submitted: bool
    failed_header: tuple[str, ...]
    format: str | None

    def count(self) -> int:
        return sum(
            (
                self.daemon_from,
                self.subject,
                self.null_return_path,
                self.auto_submitted,
                self.format is not None,
            )
        )

    def describe(self) -> str:
        named = [
            label
            for label, on in (
                ("daemon sender", self.daemon_from),
                ("bounce subject", self.subject),
                ("empty Return-Path", self.null_return_path),
                ("Auto-Submitted", self.auto_submitted),
                ("X-Failed-Recipients", bool(self.failed_header)),
                (f"{self.format} report text", self.format is not None),
            )
            if on
        ]
        return ", ".join(named) if named else "no bounce signal"


def signals(headers: Headers, text: str) -> Signals:
    """The bounce hints in the headers and the report's text."""
    sender = f"{headers.decoded('from')} {headers.get('sender')}"
    return_path = headers.get_all("return-path")
    head = _before_copy(text)[:6000]
    found_format = None
    for name, pattern in _FORMATS:
        if pattern.search(head):
            found_format = name
            break
    failed: list[str] = []
    for value in headers.get_all("x-failed-recipients"):
        failed.extend(addresses(value))
    auto = headers.get("auto-submitted").lower()
    return Signals(
        daemon_from=bool(_DAEMON_FROM.search(sender)),
        subject=bool(_BOUNCE_SUBJECT.search(headers.decoded("subject"))),
        null_return_path=any(v.replace(" ", "") in {"<>", ""} for v in return_path),
        auto_submitted=bool(auto) and not auto.startswith("no"),
        failed_header=tuple(failed),
        format=found_format,
    )


def is_bounce(found: Signals) -> bool:
    """Two independent signals, one of them about the content, or X-Failed-Recipients."""
    if found.failed_header:
        return True
    content = found.subject or found.format is not None
    return content and found.count() >= 2


def _before_copy(text: str) -> str:
    """The report's own words, before the returned copy starts."""
    match = _COPY_START.search(text, 40)
    return text[: match.start()] if match else text


def _excluded(headers: Headers, returned: Headers | None) -> set[str]:
    excluded: set[str] = set()
    for name in ("from", "sender", "reply-to", "return-path", "to", "cc", "delivered-to"):
        excluded.update(addresses(headers.get(name)))
    if returned is not None:
        for name in ("from", "sender", "reply-to", "return-path"):
            excluded.update(addresses(returned.get(name)))
    return excluded


def _candidates(section: str, excluded: set[str]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    seen: set[str] = set()
    offset = 0
    for line in section.splitlines(keepends=True):
        if not _SKIP_LINE.match(line):
            for match in ADDRESS.finditer(line):
                address = match.group(1).strip(".").lower()
                local = address.rsplit("@", 1)[0]
                if address in seen or address in excluded or _ROLE_LOCAL.match(local):
                    continue
                seen.add(address)
                found.append((address, offset + match.start()))
        offset += len(line)
    return found


def read_text_bounce(message: Message, headers: Headers, found: Signals) -> Bounce:
    """The failed recipients and their reasons from a report written for people."""
    all_text = "\n".join(texts(message))
    section = _before_copy(all_text)
    returned = returned_headers(message)
    hint = permanent_hint(section)
    excluded = _excluded(headers, returned)
    candidates = _candidates(section, excluded)
    if returned is not None:
        intended = set(addresses(" ".join(returned.get_all("to") + returned.get_all("cc"))))
        preferred = [c for c in candidates if c[0] in intended]
        if preferred:
            candidates = preferred
    if found.failed_header:
        listed = [c for c in candidates if c[0] in found.failed_header]
        positions = {address: position for address, position in listed}
        candidates = [(a, positions.get(a, -1)) for a in found.failed_header]
    if not candidates and returned is not None:
        # The report names nobody: the returned copy says whom it was for.
        candidates = [(a, -1) for a in addresses(returned.get("to"))[:1]]
    recipients: list[BouncedRecipient] = []
    starts = sorted(p for _, p in candidates if p >= 0)
    for address, position in candidates:
        if position < 0:
            segment = section
        else:
            # The words about one recipient run from its line to the next recipient's mention.
            line_start = section.rfind("\n", 0, position) + 1
            later = [p for p in starts if p > position]
            end = later[0] if later else len(section)
            segment = section[line_start : min(end, position + 1200)]
            if not re.search(r"\d{3}|[a-z]{4,} [a-z]{4,}", segment.replace(address, ""), re.I):
                segment = section
        recipients.append(
            make_recipient(
                address=address, action="failed", status="", diagnostic=segment, hint=hint
            )
        )
    return Bounce(
        recipients=tuple(recipients),
        format=found.format or "unknown",
        original_message_id=original_message_id(message, all_text),
        envelope_to=delivered_to(headers),
    )
