"""The understanding of one message: built from the stages' work, stored, and loaded again.

:func:`understand` turns what the stages found into an :class:`~hub.domain.understood.Understood`
through the same two JSON halves that are stored, so what ``hub inspect`` shows and what the
routing stage loads (:func:`load_understood`) can never differ:

* ``analysis_json``: no personal data (kind, crypto verdicts, the outcome of every detection
  rule, bounce facts without addresses, reply-text rule names, defects, attachment count),
  stored in clear in ``inbound_messages.analysis`` so it can be counted and shown;
* ``personal_json``: addresses, subject, texts, the signer, the bounced recipients, sealed in
  ``inbound_messages.understood``.

Free text from the stages (rule reasons, crypto errors, defects) has every address replaced by
``<address>`` before it goes into the analysis.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crypto.at_rest import Keyring
from hub.domain.inbound import MailAddress
from hub.domain.routing import MessageKind
from hub.domain.understood import CryptoFacts, Understood
from hub.errors import NotFoundError
from hub.inbound.detect import Detection, Kind
from hub.inbound.readable import attachments
from hub.inbound.unprotect import Unprotected
from hub.services.learnt_keys import store_learnt_keys, trusted_keys
from hub.storage.models import InboundMessage

if TYPE_CHECKING:
    from hub.inbound.pipeline import InboundWork

ANALYSIS_VERSION = 1
_ADDRESS = re.compile(r"[\w.+=!#$%&'*/?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def redact(text: str) -> str:
    """``text`` with every email address replaced by ``<address>``."""
    return _ADDRESS.sub("<address>", text)


def message_kind(detection: Detection | None) -> MessageKind:
    """The routing kind of a detection. A delivery report (RFC 3464 ``Action: delivered`` or
    ``relayed``, or a provider's delivery notice) says nothing went wrong and must never be
    answered: it is an automatic message, so it is mapped to ``auto_reply``; its own kind is
    kept as ``detected_kind``."""
    if detection is None:
        return MessageKind.REPLY
    if detection.kind is Kind.DELIVERY_REPORT:
        return MessageKind.AUTO_REPLY
    return MessageKind(detection.kind.value)


def _crypto(unprotected: Unprotected | None) -> dict[str, Any]:
    if unprotected is None:
        return {"encrypted": False, "method": None, "decrypted": False, "signed": False}
    best = unprotected.best_signature
    errors = [*unprotected.errors]
    errors += [
        d.detail or d.verdict.value
        for d in unprotected.decryptions
        if d.verdict.value != "decrypted"
    ]
    return {
        "encrypted": unprotected.encrypted,
        "method": unprotected.method.value if unprotected.method else None,
        "decrypted": unprotected.decrypted,
        "decryptions": [d.verdict.value for d in unprotected.decryptions],
        "integrity_protected": unprotected.integrity_protected,
        "signed": unprotected.signed,
        "signature_valid": unprotected.signature_valid,
        "signature_verdict": best.verdict.value if best else None,
        "signatures": [s.verdict.value for s in unprotected.signatures],
        "signer_fingerprint": best.fingerprint if best else None,
        "signer_matches_from": best.matches_from if best else None,
        "trusted": best.trusted if best else None,
        "errors": [redact(e)[:500] for e in errors],
    }


def _original_message_id(detection: Detection | None) -> str | None:
    if detection is None:
        return None
    for found in (detection.bounce, detection.read_receipt, detection.feedback):
        if found is not None and found.original_message_id:
            return found.original_message_id
    return None


def _detection(detection: Detection | None) -> dict[str, Any] | None:
    if detection is None:
        return None
    decided = detection.decided_by
    bounce = detection.bounce
    return {
        "decided_by": decided.rule if decided else None,
        "rules": [
            {"rule": r.rule, "outcome": r.outcome.value, "reason": redact(r.reason)[:300]}
            for r in detection.rules
        ],
        "bounce": None
        if bounce is None
        else {
            "format": bounce.format,
            "status": bounce.status or None,
            "permanent": bounce.permanent,
            "hard": bounce.hard,
            "original_message_id": bounce.original_message_id,
            "recipients": [
                {
                    "action": r.action,
                    "status": r.status,
                    "reply_code": r.reply_code,
                    "reason": r.reason,
                    "permanent": r.permanent,
                    "hard": r.hard,
                }
                for r in bounce.recipients
            ],
        },
        "auto_reply": None
        if detection.auto_reply is None
        else {
            "signal": redact(detection.auto_reply.signal),
            "category": detection.auto_reply.category,
        },
        "read_receipt": None
        if detection.read_receipt is None
        else {
            "disposition_type": detection.read_receipt.disposition_type,
            "original_message_id": detection.read_receipt.original_message_id,
        },
        "feedback": None
        if detection.feedback is None
        else {
            "feedback_type": detection.feedback.feedback_type,
            "format": detection.feedback.format,
            "original_message_id": detection.feedback.original_message_id,
        },
        "original_message_id": _original_message_id(detection),
    }


def analysis_json(work: InboundWork) -> dict[str, Any]:
    """The non-personal half (see the module docstring)."""
    assert work.parsed is not None
    detection = work.detection
    reply = work.reply
    learnt = trusted_keys(work.unprotected) if work.unprotected is not None else ()
    return {
        "version": ANALYSIS_VERSION,
        "kind": message_kind(detection).value,
        "detected_kind": detection.kind.value if detection else "reply",
        "crypto": _crypto(work.unprotected),
        "detection": _detection(detection),
        "reply_text": None
        if reply is None
        else {
            "rules": [hit.rule for hit in reply.rules],
            "kept_everything": reply.kept_everything,
        },
        "defects": [redact(d)[:300] for d in work.parsed.defects],
        "attachments": len(attachments(work.parsed, work.unprotected)),
        "text_from_html": work.text_from_html,
        "learnt_keys": [{"kind": k.kind, "source": k.source} for k in learnt],
    }


def _address(value: MailAddress | None) -> dict[str, str] | None:
    return None if value is None else {"name": value.name, "address": value.address}


def _header_addresses(work: InboundWork, name: str) -> list[str]:
    assert work.parsed is not None
    wanted = name.lower()
    found: list[str] = []
    for key, value in work.parsed.headers:
        if key.lower() == wanted:
            found += [m.lower() for m in _ADDRESS.findall(value)]
    return found


def personal_json(work: InboundWork) -> dict[str, Any]:
    """The personal half (see the module docstring), sealed at rest."""
    parsed = work.parsed
    assert parsed is not None
    detection = work.detection
    reply = work.reply
    best = work.unprotected.best_signature if work.unprotected is not None else None
    bounce = detection.bounce if detection is not None else None
    return {
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": list(parsed.references),
        "subject": parsed.subject,
        "date": parsed.date.isoformat() if parsed.date else None,
        "from": _address(parsed.from_),
        "to": [_address(a) for a in parsed.to],
        "cc": [_address(a) for a in parsed.cc],
        "text": work.text,
        "reply_text": reply.reply if reply is not None else work.text,
        "signature": (reply.signature or None) if reply is not None else None,
        "quoted": reply.quoted if reply is not None else "",
        "signer": best.signer if best else None,
        "bounce_recipients": [r.address for r in bounce.recipients] if bounce else [],
        "delivered_to": _header_addresses(work, "Delivered-To"),
        "x_original_to": _header_addresses(work, "X-Original-To"),
        "envelope_to": list(detection.envelope_to) if detection else [],
        "authentication_results": [
            value for key, value in parsed.headers if key.lower() == "authentication-results"
        ],
    }


def _mail_address(value: Any) -> MailAddress | None:
    if not isinstance(value, dict):
        return None
    return MailAddress(str(value.get("name") or ""), str(value.get("address") or ""))


def from_json(inbound_id: int, analysis: dict[str, Any], personal: dict[str, Any]) -> Understood:
    """An :class:`Understood` from its two stored halves."""
    crypto = analysis.get("crypto") or {}
    detection = analysis.get("detection") or {}
    bounce = detection.get("bounce") or {}
    date = personal.get("date")
    return Understood(
        inbound_id=inbound_id,
        message_id=personal.get("message_id"),
        in_reply_to=personal.get("in_reply_to"),
        references=tuple(personal.get("references") or ()),
        subject=str(personal.get("subject") or ""),
        date=datetime.fromisoformat(date) if date else None,
        from_=_mail_address(personal.get("from")),
        to=tuple(a for a in map(_mail_address, personal.get("to") or ()) if a is not None),
        cc=tuple(a for a in map(_mail_address, personal.get("cc") or ()) if a is not None),
        kind=MessageKind(analysis.get("kind", "reply")),
        detected_kind=str(analysis.get("detected_kind", "reply")),
        text=str(personal.get("text") or ""),
        reply_text=str(personal.get("reply_text") or ""),
        signature=personal.get("signature"),
        crypto=CryptoFacts(
            encrypted=bool(crypto.get("encrypted")),
            method=crypto.get("method"),
            decrypted=bool(crypto.get("decrypted")),
            decryptions=tuple(crypto.get("decryptions") or ()),
            signed=bool(crypto.get("signed")),
            signature_valid=bool(crypto.get("signature_valid")),
            signature_verdict=crypto.get("signature_verdict"),
            signer_fingerprint=crypto.get("signer_fingerprint"),
            signer_matches_from=crypto.get("signer_matches_from"),
            trusted=crypto.get("trusted"),
            integrity_protected=crypto.get("integrity_protected"),
            errors=tuple(crypto.get("errors") or ()),
        ),
        signer=personal.get("signer"),
        delivered_to=tuple(personal.get("delivered_to") or ()),
        x_original_to=tuple(personal.get("x_original_to") or ()),
        envelope_to=tuple(personal.get("envelope_to") or ()),
        authentication_results=tuple(personal.get("authentication_results") or ()),
        original_message_id=detection.get("original_message_id"),
        bounce_recipients=tuple(personal.get("bounce_recipients") or ()),
        bounce_permanent=bounce.get("permanent") if bounce else None,
        bounce_status=bounce.get("status") if bounce else None,
        attachment_count=int(analysis.get("attachments") or 0),
        analysis=analysis,
    )


def understand(work: InboundWork) -> Understood:
    """What the stages found, through the same JSON halves that are stored."""
    return from_json(work.inbound_id, analysis_json(work), personal_json(work))


def _sealable(personal: dict[str, Any]) -> bytes:
    # lone surrogates (undecodable header bytes) cannot be UTF-8: keep them as escapes
    return json.dumps(personal, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def record_understood(
    session: AsyncSession,
    keyring: Keyring,
    row: InboundMessage,
    work: InboundWork,
    gnupghome: Path | None,
) -> None:
    """Store both halves on ``row`` and the trusted learnt keys of known debtors."""
    row.analysis = analysis_json(work)
    row.understood = _sealable(personal_json(work))
    if work.unprotected is not None:
        await store_learnt_keys(session, keyring, gnupghome, work.unprotected)


async def load_understood(session: AsyncSession, inbound_id: int) -> Understood:
    """The understanding of a ``processed`` inbound message (for routing)."""
    row = await session.get(InboundMessage, inbound_id)
    if row is None or row.analysis is None or row.understood is None:
        raise NotFoundError(f"inbound message {inbound_id} has not been understood")
    return from_json(row.id, row.analysis, json.loads(row.understood))
