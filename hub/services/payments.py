"""Record a payment on a case: settle installments oldest first, reduce the balance, close a
paid case. One call per payment, in the caller's transaction; the API and the statement
import (:mod:`hub.services.payment_import`) both go through :func:`record_payment`.

Idempotent on ``external_id`` (the bank's entry reference or the API caller's key): a payment
already recorded is reported as a duplicate and changes nothing. A payment in another currency
than the claim's is refused (a person converts it). Money above the open balance is kept on the
case as an overpayment with a ``refund_overpayment`` task; money for a case that is already
finished (paid, closed, withdrawn, handed over) is recorded with a ``review_payment`` task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.domain.automation import TaskKind
from hub.domain.case_state import TERMINAL_STATES, CaseEvent, CaseState, transition
from hub.domain.installments import in_minor_units
from hub.errors import UserError
from hub.services.tasks import open_task
from hub.services.thread import append_entry, load_case, lock_case
from hub.storage.models_cases import InstallmentPlan, Payment

log = logging.getLogger(__name__)

PAYMENT_KIND = "payment"
SOURCES = frozenset({"csv", "camt053", "api"})


class PaymentResult(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class PaymentOutcome:
    result: PaymentResult
    case_id: int
    payment_id: int | None
    from_state: CaseState | None = None
    to_state: CaseState | None = None
    balance: Decimal | None = None
    overpaid: Decimal = Decimal("0")
    installments: list[dict[str, Any]] = field(default_factory=list)


async def find_payment(session: AsyncSession, external_id: str) -> Payment | None:
    found: Payment | None = await session.scalar(
        select(Payment).where(Payment.external_id == external_id)
    )
    return found


async def _settle_installments(
    session: AsyncSession, case_id: int, amount: Decimal, currency: str
) -> tuple[list[dict[str, Any]], InstallmentPlan | None]:
    """Spread ``amount`` over the active plan's open installments, oldest first."""
    plan = await session.scalar(
        select(InstallmentPlan)
        .where(InstallmentPlan.case_id == case_id, InstallmentPlan.status == "approved")
        .options(selectinload(InstallmentPlan.installments))
        .execution_options(populate_existing=True)
    )
    if plan is None:
        return [], None
    settled: list[dict[str, Any]] = []
    left = amount
    for part in sorted(plan.installments, key=lambda p: p.seq):
        if left <= 0:
            break
        if part.status != "open":
            continue
        take = min(left, part.amount - part.paid_amount)
        part.paid_amount += take
        left -= take
        if part.paid_amount >= part.amount:
            part.status = "paid"
        settled.append(
            {"seq": part.seq, "applied": str(in_minor_units(take, currency)), "status": part.status}
        )
    if all(part.status == "paid" for part in plan.installments):
        plan.status = "completed"
    return settled, plan


async def record_payment(
    session: AsyncSession,
    *,
    case_id: int,
    amount: Decimal,
    currency: str,
    booked_at: datetime,
    source: str,
    external_id: str,
    reference_text: str | None,
    actor: str,
    now: datetime,
) -> PaymentOutcome:
    """Record one payment for a case and apply it (see the module's description)."""
    if source not in SOURCES:
        raise UserError(f"unknown payment source {source!r}")
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise UserError("a payment amount must be a positive decimal")
    external_id = external_id.strip()
    if not external_id or len(external_id) > 200:
        raise UserError("a payment needs an external id of 1 to 200 characters")
    await lock_case(session, case_id)
    existing = await find_payment(session, external_id)
    if existing is not None:
        return PaymentOutcome(PaymentResult.DUPLICATE, existing.case_id, existing.id)
    case = await load_case(session, case_id)
    if currency.upper() != case.currency:
        raise UserError(
            f"the payment is in {currency.upper()}, the claim in {case.currency}: "
            "record it by hand after conversion"
        )
    state = CaseState(case.state)
    payment = Payment(
        case_id=case.id,
        amount=amount,
        currency=case.currency,
        booked_at=booked_at,
        source=source,
        external_id=external_id,
        reference_text=reference_text,
        recorded_by=actor,
        created_at=now,
        meta={},
    )
    session.add(payment)
    case.paid_amount = case.paid_amount + amount
    balance = case.claim_amount + case.fees - case.paid_amount
    settled, plan = await _settle_installments(session, case.id, amount, case.currency)
    target = state
    task: TaskKind | None = None
    if state in TERMINAL_STATES:
        task = TaskKind.REVIEW_PAYMENT
        why = f"money came for a case that is {state.value}: a person reviews it"
    elif balance <= 0:
        target = transition(state, CaseEvent.PAID_IN_FULL)
        case.paused_until = None
        why = "the claim is paid in full: dunning stops"
    else:
        target = transition(state, CaseEvent.PARTIAL_PAYMENT)
        why = "a partial payment: the balance is reduced"
    # the part of this payment beyond what was open (all of it on a case already paid)
    overpaid = in_minor_units(max(Decimal("0"), min(amount, -balance)), case.currency)
    balance = in_minor_units(balance, case.currency)
    if overpaid > 0 and task is None:
        task = TaskKind.REFUND_OVERPAYMENT
        why += f"; {overpaid} {case.currency} more than was open: refund or keep"
    case.state = target.value
    await session.flush()
    meta: dict[str, Any] = {
        "rule": "payment",
        "payment_id": payment.id,
        "amount": str(in_minor_units(amount, case.currency)),
        "currency": case.currency,
        "source": source,
        "from_state": state.value,
        "to_state": target.value,
        "event": (
            CaseEvent.PAID_IN_FULL.value
            if target is CaseState.PAID and state is not CaseState.PAID
            else CaseEvent.PARTIAL_PAYMENT.value
        ),
        "why": why,
        "balance": str(balance),
        "overpaid": str(overpaid),
        "installments": settled,
    }
    if plan is not None:
        meta["plan_id"] = plan.id
        meta["plan_status"] = plan.status
    entry = await append_entry(session, case.id, kind=PAYMENT_KIND, actor=actor, now=now, meta=meta)
    if task is not None:
        created = await open_task(
            session, case.id, task.value, reason=why, entry_id=entry.id, now=now
        )
        entry.meta = {**meta, "task_ids": [created.id]}
    payment.meta = {"thread_entry_id": entry.id, "installments": settled, "overpaid": str(overpaid)}
    await session.flush()
    log.info("payments: case %s payment %s (%s -> %s)", case.id, payment.id, state, target)
    return PaymentOutcome(
        PaymentResult.RECORDED,
        case.id,
        payment.id,
        from_state=state,
        to_state=target,
        balance=balance,
        overpaid=overpaid,
        installments=settled,
    )
