"""Test support for case automation, plans and payments: creditors, debtors and cases written
straight through the models (fast), and readers of what the services left behind."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from hub.domain.case_state import CaseState
from hub.services.case_import import name_hash
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, Debtor, DebtorEmail, ThreadEntry
from hub.storage.models_cases import CollectorTask, Installment, InstallmentPlan, Payment

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday


async def make_creditor(database: Database, code: str = "ACME", grace: int = 3) -> int:
    async with database.transaction() as s:
        creditor = Creditor(
            code=code, name=f"{code} GmbH", settings={"dunning": {"promise_grace_days": grace}}
        )
        s.add(creditor)
        await s.flush()
        return creditor.id


async def make_case(
    database: Database,
    creditor_id: int,
    reference: str,
    *,
    amount: str = "250.00",
    fees: str = "0",
    currency: str = "EUR",
    state: CaseState = CaseState.REMINDED,
    emails: tuple[str, ...] = ("debtor@example.org",),
) -> int:
    keyring = database.keyring
    async with database.transaction() as s:
        debtor = Debtor(
            creditor_id=creditor_id,
            external_ref=f"D-{reference}",
            name="Erika Mustermann",
            name_hash=name_hash(keyring, "Erika Mustermann"),
        )
        s.add(debtor)
        await s.flush()
        for index, address in enumerate(emails):
            s.add(
                DebtorEmail(
                    debtor_id=debtor.id,
                    address=address,
                    address_hash=keyring.email_hash(address),
                    is_primary=index == 0,
                )
            )
        case = Case(
            creditor_id=creditor_id,
            debtor_id=debtor.id,
            reference=reference,
            claim_amount=Decimal(amount),
            fees=Decimal(fees),
            currency=currency,
            due_date=date(2026, 11, 1),
            state=state.value,
            dunning_level=1 if state is not CaseState.OPEN else 0,
        )
        s.add(case)
        await s.flush()
        s.add(
            ThreadEntry(
                case_id=case.id, seq=1, kind="reminder", actor="system:dunning", meta={"level": 1}
            )
        )
        return case.id


async def case_row(database: Database, case_id: int) -> Case:
    async with database.sessions() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        return case


async def entries(database: Database, case_id: int) -> list[ThreadEntry]:
    async with database.sessions() as s:
        rows = await s.scalars(
            select(ThreadEntry).where(ThreadEntry.case_id == case_id).order_by(ThreadEntry.seq)
        )
        return list(rows.all())


async def tasks(database: Database, case_id: int) -> list[CollectorTask]:
    async with database.sessions() as s:
        rows = await s.scalars(
            select(CollectorTask).where(CollectorTask.case_id == case_id).order_by(CollectorTask.id)
        )
        return list(rows.all())


async def email_statuses(database: Database, case_id: int) -> list[str]:
    async with database.sessions() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        rows = await s.scalars(
            select(DebtorEmail.status)
            .where(DebtorEmail.debtor_id == case.debtor_id)
            .order_by(DebtorEmail.id)
        )
        return list(rows.all())


async def plans(database: Database, case_id: int) -> list[InstallmentPlan]:
    async with database.sessions() as s:
        rows = await s.scalars(
            select(InstallmentPlan)
            .where(InstallmentPlan.case_id == case_id)
            .order_by(InstallmentPlan.id)
        )
        return list(rows.all())


async def installments(database: Database, plan_id: int) -> list[Installment]:
    async with database.sessions() as s:
        rows = await s.scalars(
            select(Installment).where(Installment.plan_id == plan_id).order_by(Installment.seq)
        )
        return list(rows.all())


async def payments(database: Database, case_id: int | None = None) -> list[Payment]:
    async with database.sessions() as s:
        stmt = select(Payment).order_by(Payment.id)
        if case_id is not None:
            stmt = stmt.where(Payment.case_id == case_id)
        return list((await s.scalars(stmt)).all())


def meta_of(entry: ThreadEntry) -> dict[str, Any]:
    return dict(entry.meta or {})
