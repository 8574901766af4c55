"""Amazon SES notifications mailed through SNS: a JSON document instead of a report.

``{"notificationType": "Bounce" | "Complaint" | "Delivery", "bounce": {"bounceType":
"Permanent", "bouncedRecipients": [{"emailAddress", "status", "diagnosticCode"}]}, "mail":
{"commonHeaders": {"messageId"}}}`` from ``no-reply@sns.amazonaws.com``.
"""

from __future__ import annotations

import json
from typing import Any

from hub.inbound.detect.bounce import make_recipient
from hub.inbound.detect.mime import Headers, addresses, delivered_to, normal_message_id
from hub.inbound.detect.result import Bounce, FeedbackReport


def notification(headers: Headers, text: str) -> dict[str, Any] | None:
    """The SES notification the message carries, or None."""
    if "amazonaws.com" not in headers.get("from").lower() or "{" not in text:
        return None
    body = text[text.index("{") :]
    end = body.find("\n--\n")
    body = body[: end if end > 0 else len(body)]
    for candidate in (body, body.replace("\r", "").replace("\n", "")):
        try:
            value = json.loads(candidate.strip())
        except ValueError:
            continue
        if isinstance(value, dict) and "notificationType" in value:
            return value
    return None


def _message_id(value: dict[str, Any]) -> str | None:
    mail = value.get("mail") or {}
    headers = mail.get("commonHeaders") or {}
    found = headers.get("messageId") if isinstance(headers, dict) else None
    return normal_message_id(str(found)) if found else None


def ses_bounce(value: dict[str, Any], headers: Headers) -> Bounce:
    data = value.get("bounce") or {}
    permanent = str(data.get("bounceType", "")).lower() == "permanent"
    recipients = []
    for item in data.get("bouncedRecipients") or []:
        found = addresses(str(item.get("emailAddress", "")))
        if not found:
            continue
        recipients.append(
            make_recipient(
                address=found[0],
                action=str(item.get("action", "failed")),
                status=str(item.get("status", "")),
                diagnostic=str(item.get("diagnosticCode", "")),
                hint=permanent,
            )
        )
    return Bounce(
        recipients=tuple(recipients),
        format="amazon-ses",
        original_message_id=_message_id(value),
        envelope_to=delivered_to(headers),
        reporting_mta=str(data.get("reportingMTA", "")),
    )


def ses_complaint(value: dict[str, Any]) -> FeedbackReport:
    data = value.get("complaint") or {}
    recipients = [
        a
        for item in data.get("complainedRecipients") or []
        for a in addresses(str(item.get("emailAddress", "")))
    ]
    mail = value.get("mail") or {}
    return FeedbackReport(
        feedback_type=str(data.get("complaintFeedbackType") or "abuse").lower(),
        original_mail_from=(addresses(str(mail.get("source", ""))) or [""])[0],
        original_rcpt_to=tuple(recipients),
        original_message_id=_message_id(value),
        format="amazon-ses",
    )
