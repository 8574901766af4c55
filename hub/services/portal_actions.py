"""What a debtor does in the portal, recorded exactly as if they had written it.

Every action appends one ``inbound`` entry by ``debtor`` to the case's thread (the text in the
debtor's words, in the portal's language; ``meta.source`` is ``portal``), classifies it at once
(a :class:`~hub.storage.models.Classification` with confidence 1.0, not a suggestion, model
``portal``: the debtor chose what they meant) and hands it to the case automation
(:func:`hub.services.automation.apply_intent`), so the case moves as it would for a mail with
the same meaning. All of that is one transaction. The actions:

==============  =================================  ===========================================
action          intent (subtype)                   besides the automation
==============  =================================  ===========================================
reply           other (question)
promise         payment_promise
plan            installment_request                accepted at once where the creditor's rules
                                                   allow (:mod:`hub.domain.plan_rules`)
dispute         dispute (reason)                   an optional checked attachment
contact         other (contact_change)             new address added unverified; postal data
key             other (contact_change)             :func:`~hub.services.debtor_keys.add_debtor_key`
opt_out         other (cease_contact)              every address opted out (by the automation)
==============  =================================  ===========================================

Personal values (addresses, postal data) never go into ``meta``: it names the fields only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.crypto.errors import CryptoOperationError
from hub.domain.automation import Decision
from hub.domain.dunning import policy_from_settings
from hub.domain.installments import Frequency, minor_unit
from hub.domain.mail import Language
from hub.domain.plan_rules import PlanCheck, check_plan, rules_from_settings
from hub.domain.portal_text import text, thread_text
from hub.errors import UserError
from hub.outbound.render import LOCALES
from hub.services.automation import apply_intent
from hub.services.debtor_keys import add_debtor_key
from hub.services.hub_identity import open_keystore
from hub.services.plans import approve_plan, open_balance
from hub.services.thread import append_entry, load_case, lock_case
from hub.storage.db import Database
from hub.storage.models import (
    Attachment,
    Case,
    Classification,
    Creditor,
    Debtor,
    DebtorEmail,
    DebtorKey,
    utcnow,
)

log = logging.getLogger(__name__)

ACTOR = "debtor"
PLAN_ACTOR = "system:portal"
ENTRY_KIND = "inbound"
MODEL_VERSION = "portal"
DISPUTE_REASONS = (
    "already_paid",
    "not_received",
    "defective",
    "wrong_amount",
    "not_owed",
    "cancelled",
    "other",
)
MAX_TEXT = 5000
#: how far ahead a promised date may lie
MAX_PROMISE_DAYS = 366


class PortalInputError(UserError):
    """A form value the portal cannot take; ``key`` names the text that explains it."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    content: bytes


#: what a dispute may carry: the content type, and how its first bytes must look
ATTACHMENT_TYPES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "text/plain": (),
}
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024


def checked_upload(filename: str, content_type: str, content: bytes) -> Upload:
    """The dispute's attachment, if its type is accepted and its bytes look like that type.

    The declared type alone proves nothing (a browser takes it from the file name), so the
    first bytes are checked too; text must be UTF-8 without control characters.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in ATTACHMENT_TYPES:
        raise PortalInputError("error.file_type")
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise PortalInputError("error.file_size")
    if not content:
        raise PortalInputError("error.file_type")
    magic = ATTACHMENT_TYPES[kind]
    if magic and not content.startswith(magic):
        raise PortalInputError("error.file_type")
    if kind == "text/plain":
        try:
            decoded = content.decode("utf-8")
        except UnicodeDecodeError:
            raise PortalInputError("error.file_type") from None
        if any(ord(c) < 32 and c not in "\t\r\n" for c in decoded):
            raise PortalInputError("error.file_type")
    name = "".join(c for c in filename if c.isprintable() and c not in "/\\")[-120:]
    return Upload(name or "attachment", kind, content)


@dataclass(frozen=True)
class ActionOutcome:
    """What the debtor is told: the confirmation key, and what the automation decided."""

    done: str
    entry_id: int
    decisions: list[Decision] = field(default_factory=list)
    plan: PlanCheck | None = None


@dataclass(frozen=True)
class _Action:
    name: str
    intent: str
    fields: dict[str, Any]
    body: str
    facts: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal | date):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    return value


async def _record(
    session: AsyncSession,
    case: Case,
    action: _Action,
    language: Language,
    now: datetime,
    upload: Upload | None = None,
) -> tuple[int, list[Decision]]:
    """The debtor's entry, its classification and the automation's decision (case locked)."""
    fields = {k: _plain(v) for k, v in action.fields.items()}
    classification = {
        "intent": action.intent,
        "subtype": fields.get("subtype"),
        "confidence": 1.0,
        "model_version": MODEL_VERSION,
        "language": language,
    }
    entry = await append_entry(
        session,
        case.id,
        kind=ENTRY_KIND,
        actor=ACTOR,
        now=now,
        body=action.body,
        meta={
            "source": "portal",
            "action": action.name,
            "classification": classification,
            **action.facts,
        },
    )
    entry.subject = text("portal.title", language)
    session.add(
        Classification(
            thread_entry_id=entry.id,
            intent=action.intent,
            subtype=fields.get("subtype"),
            confidence=1.0,
            language=language,
            fields=fields,
            model_version=MODEL_VERSION,
            is_suggestion=False,
            created_at=now,
        )
    )
    if upload is not None:
        session.add(
            Attachment(
                thread_entry_id=entry.id,
                filename=upload.filename,
                content_type=upload.content_type,
                size=len(upload.content),
                sha256=hashlib.sha256(upload.content).hexdigest(),
                content=upload.content,
            )
        )
    await session.flush()
    settings = await session.scalar(
        select(Creditor.settings).where(Creditor.id == case.creditor_id)
    )
    policy = policy_from_settings((settings or {}).get("dunning"))
    decisions = await apply_intent(
        session,
        case.id,
        intent=action.intent,
        fields=action.fields,
        confidence=1.0,
        is_suggestion=False,
        sender_verified=True,  # the portal session proved who it is
        source_entry_id=entry.id,
        now=now,
        policy=policy,
    )
    log.info("portal: case %s action %s recorded as entry %s", case.id, action.name, entry.id)
    return entry.id, decisions


async def _locked_case(session: AsyncSession, case_id: int) -> Case:
    await lock_case(session, case_id)
    return await load_case(session, case_id)


async def _simple(
    database: Database, case_id: int, action: _Action, language: Language, done: str
) -> ActionOutcome:
    now = utcnow()
    async with database.transaction() as session:
        case = await _locked_case(session, case_id)
        entry_id, decisions = await _record(session, case, action, language, now)
    return ActionOutcome(done, entry_id, decisions)


def _money(amount: Decimal, currency: str, language: Language) -> str:
    from babel.numbers import format_currency

    return str(format_currency(amount, currency, locale=LOCALES[language]))


def _day(value: date, language: Language) -> str:
    from babel.dates import format_date

    return str(format_date(value, format="long", locale=LOCALES[language]))


def _clean_text(value: str, *, required: bool) -> str:
    cleaned = value.replace("\r\n", "\n").strip()
    if required and not cleaned:
        raise PortalInputError("error.text_required")
    return cleaned[:MAX_TEXT]


async def reply(
    database: Database, case_id: int, language: Language, message: str
) -> ActionOutcome:
    body = _clean_text(message, required=True)
    action = _Action("reply", "other", {"subtype": "question"}, body)
    return await _simple(database, case_id, action, language, "reply")


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise PortalInputError("error.date") from None


def parse_amount(value: str) -> Decimal | None:
    """A positive amount, with either a decimal point or comma ("12,50"); "" is None."""
    raw = value.strip().replace(" ", "")
    if not raw:
        return None
    if "," in raw and "." not in raw:
        raw = raw.replace(",", ".")
    try:
        amount = Decimal(raw)
    except ArithmeticError:
        raise PortalInputError("error.amount") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise PortalInputError("error.amount")
    return amount


async def promise(
    database: Database, case_id: int, language: Language, day: date, amount: Decimal | None
) -> ActionOutcome:
    now = utcnow()
    today = now.date()
    if not today <= day <= today + timedelta(days=MAX_PROMISE_DAYS):
        raise PortalInputError("error.date_past")
    async with database.transaction() as session:
        case = await _locked_case(session, case_id)
        if amount is not None and amount > open_balance(case):
            raise PortalInputError("error.amount")
        when = _day(day, language)
        body = (
            thread_text("promise_all", language, date=when)
            if amount is None
            else thread_text(
                "promise", language, amount=_money(amount, case.currency, language), date=when
            )
        )
        fields = {
            "date": day,
            "amount": amount,
            "currency": case.currency if amount is not None else None,
        }
        action = _Action("promise", "payment_promise", fields, body)
        entry_id, decisions = await _record(session, case, action, language, now)
    moved = any(d.changed_state for d in decisions)
    return ActionOutcome("promise" if moved else "promise_refused", entry_id, decisions)


async def propose_plan(
    database: Database,
    case_id: int,
    language: Language,
    *,
    count: int | None,
    amount: Decimal | None,
    frequency: Frequency,
    start: date,
) -> ActionOutcome:
    """Record the proposal; approve it at once when the creditor's rules allow."""
    now = utcnow()
    async with database.transaction() as session:
        case = await _locked_case(session, case_id)
        raw_rules = await session.scalar(
            select(Creditor.settings).where(Creditor.id == case.creditor_id)
        )
        rules = rules_from_settings((raw_rules or {}).get("plans"))
        try:
            check = check_plan(
                rules,
                balance=open_balance(case),
                count=count,
                amount=amount,
                frequency=frequency,
                start=start,
                minor_unit=minor_unit(case.currency),
                today=now.date(),
            )
        except UserError:
            raise PortalInputError("error.plan") from None
        if start < now.date():
            raise PortalInputError("error.date_past")
        schedule = check.schedule
        body = thread_text(
            "plan",
            language,
            count=len(schedule),
            frequency=text(f"freq.{frequency.value}", language),
            amount=_money(schedule[0].amount, case.currency, language),
            start=_day(start, language),
        )
        fields = {
            "installments": len(schedule),
            "amount_per_installment": schedule[0].amount,
            "frequency": frequency.value,
            "start_date": start,
        }
        facts = {"plan_rules": {"broken": list(check.broken), "auto_accept": rules.auto_accept}}
        action = _Action("plan", "installment_request", fields, body, facts)
        entry_id, decisions = await _record(session, case, action, language, now)
        plan_id = next((d.plan_id for d in decisions if d.plan_id is not None), None)
        accepted = False
        if check.accept_now and plan_id is not None:
            await approve_plan(session, plan_id, PLAN_ACTOR, now)
            accepted = True
    log.info(
        "portal: case %s plan %s (%s)",
        case_id,
        "accepted" if accepted else "proposed",
        ",".join(check.broken) or "within the rules",
    )
    return ActionOutcome(
        "plan_accepted" if accepted else "plan_proposed", entry_id, decisions, check
    )


async def dispute(
    database: Database,
    case_id: int,
    language: Language,
    reason: str,
    explanation: str,
    upload: Upload | None,
) -> ActionOutcome:
    if reason not in DISPUTE_REASONS:
        raise PortalInputError("error.reason")
    words = _clean_text(explanation, required=False)
    body = thread_text("dispute", language, reason=text(f"reason.{reason}", language))
    if words:
        body = f"{body}\n\n{words}"
    facts: dict[str, Any] = {"attachment": upload is not None}
    action = _Action("dispute", "dispute", {"reason": reason}, body, facts)
    now = utcnow()
    async with database.transaction() as session:
        case = await _locked_case(session, case_id)
        entry_id, decisions = await _record(session, case, action, language, now, upload)
    return ActionOutcome("dispute", entry_id, decisions)


@dataclass(frozen=True)
class ContactChange:
    email: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    phone: str = ""


def _valid_email(value: str) -> bool:
    local, sep, domain = value.rpartition("@")
    return (
        bool(sep and local and "." in domain)
        and len(value) <= 254
        and not any(c.isspace() or c in "<>,;\"'" for c in value)
    )


async def update_contact(
    database: Database, case_id: int, language: Language, change: ContactChange
) -> ActionOutcome:
    """Add a new address (unverified: a collector verifies it) and update the postal data."""
    email = change.email.strip()
    if email and not _valid_email(email):
        raise PortalInputError("error.email")
    postal = {
        "street": change.street.strip()[:200],
        "postal_code": change.postal_code.strip()[:20],
        "city": change.city.strip()[:100],
        "phone": change.phone.strip()[:40],
    }
    changed = [name for name, value in postal.items() if value]
    if not email and not changed:
        raise PortalInputError("error.nothing")
    now = utcnow()
    async with database.transaction() as session:
        case = await _locked_case(session, case_id)
        debtor = await session.get(Debtor, case.debtor_id)
        assert debtor is not None
        email_added = False
        if email:
            digest = database.keyring.email_hash(email)
            known = await session.scalar(
                select(DebtorEmail.id).where(
                    DebtorEmail.debtor_id == debtor.id, DebtorEmail.address_hash == digest
                )
            )
            if known is None:
                session.add(
                    DebtorEmail(
                        debtor_id=debtor.id,
                        address=email,
                        address_hash=digest,
                        is_primary=False,
                        verified=False,
                        status="active",
                        created_at=now,
                    )
                )
                email_added = True
        for name in changed:
            setattr(debtor, name, postal[name])
        names = (["email"] if email else []) + changed
        shown = [text(f"contact.{'postal' if n == 'postal_code' else n}", language) for n in names]
        lines = [thread_text("contact", language, fields=", ".join(shown))]
        if email:
            lines.append(email)
        lines += [postal[n] for n in changed]
        facts = {"changed_fields": names, "email_added_unverified": email_added}
        action = _Action("contact", "other", {"subtype": "contact_change"}, "\n".join(lines), facts)
        entry_id, decisions = await _record(session, case, action, language, now)
    return ActionOutcome("contact", entry_id, decisions)


async def upload_key(
    database: Database, settings: Settings, case_id: int, language: Language, data: bytes
) -> ActionOutcome:
    """Store the debtor's OpenPGP key or S/MIME certificate (source ``portal``) and record it."""
    async with database.sessions() as session:
        row = (
            await session.execute(
                select(Case.reference, Creditor.code, Case.debtor_id)
                .join(Creditor, Creditor.id == Case.creditor_id)
                .where(Case.id == case_id)
            )
        ).one()
    reference, creditor_code, debtor_id = row
    keystore = await asyncio.to_thread(open_keystore, settings)
    try:
        added = await add_debtor_key(
            database, keystore, ref=reference, data=data, creditor_code=creditor_code
        )
    except (UserError, CryptoOperationError, ValueError):
        raise PortalInputError("error.key") from None
    finally:
        await asyncio.to_thread(keystore.close)
    if added.unusable is not None:
        raise PortalInputError("error.key")
    now = utcnow()
    async with database.transaction() as session:
        case = await _locked_case(session, case_id)
        await session.execute(
            update(DebtorKey)
            .where(
                DebtorKey.debtor_id == debtor_id,
                DebtorKey.kind == added.kind,
                DebtorKey.fingerprint == added.fingerprint,
            )
            .values(source="portal")
        )
        kind = "OpenPGP" if added.kind == "openpgp" else "S/MIME"
        body = thread_text("key", language, kind=kind, fingerprint=added.fingerprint)
        facts = {"key_kind": added.kind, "key_fingerprint": added.fingerprint, "new": added.new}
        action = _Action("key", "other", {"subtype": "contact_change"}, body, facts)
        entry_id, decisions = await _record(session, case, action, language, now)
    return ActionOutcome("key", entry_id, decisions)


async def opt_out(database: Database, case_id: int, language: Language) -> ActionOutcome:
    body = thread_text("opt_out", language)
    action = _Action("opt_out", "other", {"subtype": "cease_contact"}, body)
    return await _simple(database, case_id, action, language, "opt_out")
