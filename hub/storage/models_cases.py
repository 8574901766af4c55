"""Tables of a case's money and follow-up: payments, installment plans, collectors' tasks.

Amounts are :class:`~hub.storage.types.Money` (exact decimals). A payment's ``external_id``
(the bank's entry reference, or the caller's idempotency key) is unique, so importing the same
statement twice records nothing new. The remittance text may name a person, so it is encrypted.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.storage.models import Base, BigId, utcnow
from hub.storage.types import EncryptedText


class Payment(Base):
    """Money received for a case (from a bank statement, a CSV file or the API)."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    amount: Mapped[Decimal] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    booked_at: Mapped[datetime] = mapped_column()
    #: csv | camt053 | api
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    reference_text: Mapped[str | None] = mapped_column(EncryptedText("payments.reference_text"))
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: how the amount was applied: installments settled, excess over the balance
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


class InstallmentPlan(Base):
    """A debtor's request to pay in parts, and the collector's decision on it."""

    __tablename__ = "installment_plans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: proposed | approved | rejected | completed | defaulted | replaced
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    count: Mapped[int | None] = mapped_column(Integer)
    amount_per_installment: Mapped[Decimal | None] = mapped_column()
    #: weekly | biweekly | monthly
    frequency: Mapped[str | None] = mapped_column(String(16))
    start_date: Mapped[date | None] = mapped_column(Date)
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column()
    #: the thread entries behind it (proposal, decision), the debtor's original terms
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)

    installments: Mapped[list[Installment]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="Installment.seq"
    )


class Installment(Base):
    __tablename__ = "installments"
    __table_args__ = (
        UniqueConstraint("plan_id", "seq"),
        Index("ix_installments_status_due", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("installment_plans.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column()
    paid_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    #: open | paid | missed
    status: Mapped[str] = mapped_column(String(16), default="open")

    plan: Mapped[InstallmentPlan] = relationship(back_populates="installments")


class CollectorTask(Base):
    """Something a person must look at: a dispute, hardship, a plan to approve, triage."""

    __tablename__ = "collector_tasks"
    __table_args__ = (
        Index("ix_collector_tasks_status_kind", "status", "kind"),
        Index("ix_collector_tasks_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: review_dispute | hardship | approve_plan | triage | ask_promise_date | cease_contact | …
    kind: Mapped[str] = mapped_column(String(32))
    #: open | done
    status: Mapped[str] = mapped_column(String(8), default="open")
    #: the thread entry (decision) that opened it
    thread_entry_id: Mapped[int | None] = mapped_column(ForeignKey("thread_entries.id"))
    #: why, in words without personal data
    reason: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_by: Mapped[str | None] = mapped_column(String(64))
    done_at: Mapped[datetime | None] = mapped_column()
