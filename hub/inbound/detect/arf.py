"""Abuse and feedback reports: RFC 5965 ARF, and providers' own complaint and opt-out notices.

An ARF report is a ``multipart/report; report-type=feedback-report`` with a
``message/feedback-report`` part (Feedback-Type, Original-Mail-From, Original-Rcpt-To,
Source-IP, ...) and the reported message or its headers. Outlook.com's complaint mail (a
``message/rfc822`` with ``X-HmXmrOriginalRecipient``) and Apple Mail's unsubscribe message
(``X-Apple-Unsubscribe: true``) say the same without the standard form.
"""

from __future__ import annotations

import re
from email.message import Message

from hub.inbound.detect.fields import first, part_blocks, parts_of_type
from hub.inbound.detect.mime import (
    Headers,
    addresses,
    normal_message_id,
    original_message_id,
    param,
    returned_headers,
)
from hub.inbound.detect.result import FeedbackReport

_COMPLAINT_SUBJECT = re.compile(r"complaint about message|abuse report|spam report", re.I)
_TEXT_FEEDBACK = re.compile(r"(?im)^Feedback-Type\s*:\s*([\w-]+)")


def read_feedback(message: Message, headers: Headers) -> tuple[FeedbackReport | None, str]:
    """The feedback report the message is, and why; or None and why not."""
    parts = parts_of_type(message, "message/feedback-report")
    if parts or param(message, "report-type") == "feedback-report":
        fields = [field for part in parts for block in part_blocks(part) for field in block]
        if not fields:
            for part in parts_of_type(message, "text/plain"):
                payload = part.get_payload(decode=True)
                text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
                if _TEXT_FEEDBACK.search(text):
                    fields = [f for block in part_blocks(part) for f in block]
                    break
        feedback_type = first(fields, "feedback-type").lower() or "other"
        rcpt_to: list[str] = []
        for name, value in fields:
            if name in {"original-rcpt-to", "removal-recipient"}:
                rcpt_to.extend(addresses(value))
        report = FeedbackReport(
            feedback_type=feedback_type,
            original_mail_from=(addresses(first(fields, "original-mail-from")) or [""])[0],
            original_rcpt_to=tuple(rcpt_to),
            original_message_id=original_message_id(message, ""),
            source_ip=first(fields, "source-ip"),
        )
        return report, f"RFC 5965 feedback report (Feedback-Type: {feedback_type})"
    if headers.get("x-apple-unsubscribe").lower() == "true":
        report = FeedbackReport(
            feedback_type="opt-out",
            original_mail_from="",
            original_rcpt_to=tuple(addresses(headers.get("to"))),
            original_message_id=normal_message_id(headers.get("in-reply-to")),
            format="apple-unsubscribe",
        )
        return report, "Apple Mail unsubscribe request (X-Apple-Unsubscribe: true)"
    returned = returned_headers(message)
    if (
        returned is not None
        and "x-hmxmroriginalrecipient" in returned
        and _COMPLAINT_SUBJECT.search(headers.decoded("subject"))
    ):
        report = FeedbackReport(
            feedback_type="abuse",
            original_mail_from=(addresses(returned.get("from")) or [""])[0],
            original_rcpt_to=tuple(addresses(returned.get("x-hmxmroriginalrecipient"))),
            original_message_id=original_message_id(message, ""),
            format="outlook-complaint",
        )
        return report, "Outlook.com complaint (returned copy with X-HmXmrOriginalRecipient)"
    return None, "no message/feedback-report part, no provider complaint or opt-out"
