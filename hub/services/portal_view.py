"""What the debtor sees in the portal: the claim, the history meant for them, how to pay.

Only entries written to or by the debtor are shown: the reminders and answers the hub sent
(their real text), and the debtor's own messages and portal actions. Internal notes,
classifications, decisions and state changes stay with the collector. Payment details come from
the creditor (IBAN, BIC, name) with the case reference as the payment reference; for a euro
balance the page also gets the EPC QR code (:mod:`hub.domain.epc_qr`). Every view is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hub.domain.epc_qr import TransferRequest, epc_payload, epc_qr_svg_uri, iban_valid
from hub.errors import NotFoundError
from hub.security import audit
from hub.services.answer_send import ANSWER_KIND
from hub.services.dunning_facts import REMINDER_KIND
from hub.services.plans import open_balance
from hub.storage.db import Database
from hub.storage.models import Attachment, Case, Debtor, ThreadEntry
from hub.storage.models_cases import InstallmentPlan

#: thread entries by the hub that are addressed to the debtor
_TO_DEBTOR = (REMINDER_KIND, ANSWER_KIND)


@dataclass(frozen=True)
class PortalClaim:
    reference: str
    creditor_name: str
    debtor_name: str
    state: str
    claim_amount: Decimal
    fees: Decimal
    paid_amount: Decimal
    balance: Decimal
    currency: str
    due_date: date
    paused_until: datetime | None


@dataclass(frozen=True)
class PortalEntry:
    seq: int
    #: reminder | answer | debtor | portal
    kind: str
    occurred_at: datetime
    subject: str | None
    body: str | None
    attachments: tuple[str, ...]


@dataclass(frozen=True)
class PaymentDetails:
    recipient: str
    iban: str
    bic: str
    reference: str
    amount: Decimal
    currency: str
    #: the EPC QR code as a data: URI (euro balances with valid bank details only)
    qr_uri: str | None
    qr_payload: str | None


@dataclass(frozen=True)
class PlanPart:
    seq: int
    due_date: date
    amount: Decimal
    status: str


@dataclass(frozen=True)
class PortalPlan:
    status: str
    parts: tuple[PlanPart, ...]


@dataclass(frozen=True)
class PortalPage:
    claim: PortalClaim
    entries: tuple[PortalEntry, ...]
    payment: PaymentDetails | None
    plan: PortalPlan | None
    opted_out: bool


def _entry_kind(entry: ThreadEntry) -> str | None:
    if entry.internal:
        return None
    if entry.kind in _TO_DEBTOR:
        return entry.kind
    if entry.kind == "inbound" and entry.actor == "debtor":
        return "portal" if (entry.meta or {}).get("source") == "portal" else "debtor"
    return None


def payment_details(case: Case, balance: Decimal) -> PaymentDetails | None:
    """The bank details to pay the balance to (None without a usable IBAN or with nothing open)."""
    creditor = case.creditor
    if balance <= 0 or not creditor.iban or not iban_valid(creditor.iban):
        return None
    uri = payload = None
    if case.currency == "EUR":
        request = TransferRequest(
            name=creditor.name[:70],
            iban=creditor.iban,
            bic=creditor.bic or "",
            amount=balance,
            remittance=case.reference,
        )
        payload = epc_payload(request)
        uri = epc_qr_svg_uri(payload)
    return PaymentDetails(
        recipient=creditor.name,
        iban=creditor.iban,
        bic=creditor.bic or "",
        reference=case.reference,
        amount=balance,
        currency=case.currency,
        qr_uri=uri,
        qr_payload=payload,
    )


async def portal_page(
    database: Database, case_id: int, remote_addr: str | None = None
) -> PortalPage:
    async with database.transaction() as session:
        case = await session.scalar(
            select(Case)
            .where(Case.id == case_id)
            .options(
                selectinload(Case.creditor),
                selectinload(Case.debtor).selectinload(Debtor.emails),
            )
        )
        if case is None:
            raise NotFoundError("no such case")
        rows = (
            await session.scalars(
                select(ThreadEntry)
                .where(ThreadEntry.case_id == case_id, ThreadEntry.internal.is_(False))
                .options(selectinload(ThreadEntry.attachments).defer(Attachment.content))
                .order_by(ThreadEntry.seq)
            )
        ).all()
        plan_row = await session.scalar(
            select(InstallmentPlan)
            .where(
                InstallmentPlan.case_id == case_id,
                InstallmentPlan.status.in_(("approved", "proposed")),
            )
            .options(selectinload(InstallmentPlan.installments))
            .order_by(InstallmentPlan.id.desc())
            .limit(1)
        )
        await audit.record(
            session, f"debtor:case:{case_id}", "portal.read", "case", case_id, remote_addr, {}
        )
        balance = open_balance(case)
        claim = PortalClaim(
            reference=case.reference,
            creditor_name=case.creditor.name,
            debtor_name=case.debtor.name,
            state=case.state,
            claim_amount=case.claim_amount,
            fees=case.fees,
            paid_amount=case.paid_amount,
            balance=balance,
            currency=case.currency,
            due_date=case.due_date,
            paused_until=case.paused_until,
        )
        entries = []
        for row in rows:
            kind = _entry_kind(row)
            if kind is None:
                continue
            entries.append(
                PortalEntry(
                    seq=row.seq,
                    kind=kind,
                    occurred_at=row.occurred_at,
                    subject=row.subject,
                    body=row.body,
                    attachments=tuple(a.filename for a in row.attachments),
                )
            )
        plan = None
        if plan_row is not None:
            plan = PortalPlan(
                plan_row.status,
                tuple(
                    PlanPart(p.seq, p.due_date, p.amount, p.status) for p in plan_row.installments
                ),
            )
        opted_out = any(e.status == "opted_out" for e in case.debtor.emails)
        payment = payment_details(case, balance)
    return PortalPage(claim, tuple(entries), payment, plan, opted_out)
