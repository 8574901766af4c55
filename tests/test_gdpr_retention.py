"""Retention on SQLite and PostgreSQL: a dry run lists and changes nothing; the real run
anonymizes exactly the finished cases past their creditor's period, whole persons only when all
their cases are due, never a held case; a second run finds nothing more."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from gdpr_sample import snapshot
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.cli.worker_cmd import worker_loops
from hub.config import Settings
from hub.security.audit import chain_status
from hub.services.retention import retention_days, run_retention_pass
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, Debtor, ThreadEntry

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def _debtor(s: AsyncSession, creditor: Creditor, name: str) -> Debtor:
    debtor = Debtor(
        creditor_id=creditor.id, external_ref=name, name=f"Person {name}", name_hash=name
    )
    s.add(debtor)
    await s.flush()
    return debtor


async def _case(
    s: AsyncSession,
    creditor: Creditor,
    debtor: Debtor,
    ref: str,
    state: str,
    closed_days_ago: int | None,
    *,
    hold: bool = False,
) -> Case:
    case = Case(
        creditor_id=creditor.id,
        debtor_id=debtor.id,
        reference=ref,
        description=f"description of {ref}",
        claim_amount=Decimal("100.00"),
        currency="EUR",
        due_date=date(2025, 1, 1),
        state=state,
        legal_hold=hold,
        closed_at=None if closed_days_ago is None else NOW - timedelta(days=closed_days_ago),
    )
    s.add(case)
    await s.flush()
    s.add(
        ThreadEntry(
            case_id=case.id,
            seq=1,
            kind="imported",
            actor="system:importer",
            occurred_at=NOW - timedelta(days=400),
            body=f"body of {ref}",
        )
    )
    return case


async def _setup(database: Database) -> None:
    async with database.transaction() as s:
        short = Creditor(
            code="SHORT", name="Short", settings={"retention": {"closed_case_days": 30}}
        )
        default = Creditor(code="LONG", name="Long")
        s.add_all([short, default])
        await s.flush()
        d1, d2, d3, d4, d5 = [await _debtor(s, short, n) for n in ("d1", "d2", "d3", "d4", "d5")]
        await _case(s, short, d1, "A-closed-old", "closed", 40)
        await _case(s, short, d2, "B-paid-recent", "paid", 10)
        await _case(s, short, d3, "C-held", "withdrawn", 40, hold=True)
        await _case(s, short, d4, "E-paid-old", "paid", 45)
        await _case(s, short, d4, "F-open", "reminded", None)
        await _case(s, short, d5, "G-handed-over", "handed_over", 400)
        long_debtor = await _debtor(s, default, "d6")
        await _case(s, default, long_debtor, "H-default-period", "closed", 400)


def test_retention_days_per_creditor(settings: Settings) -> None:
    assert retention_days(settings, {"retention": {"closed_case_days": 30}}) == 30
    assert retention_days(settings, {}) == settings.retention.closed_case_days == 3650
    assert retention_days(settings, {"retention": {"closed_case_days": "x"}}) == 3650
    assert "retention" in [loop.name for loop in worker_loops()]


async def test_retention_dry_run_then_real_run(database: Database, settings: Settings) -> None:
    await _setup(database)
    before = await snapshot(database)

    dry = await run_retention_pass(database, settings, now=NOW, dry_run=True)
    assert [(c.reference, c.legal_hold) for c in dry.due] == [
        ("A-closed-old", False),
        ("C-held", True),
        ("E-paid-old", False),
    ]
    assert dry.summary().startswith("due=2 held=1 would anonymize=2")
    assert await snapshot(database) == before

    done = await run_retention_pass(database, settings, now=NOW, actor="worker:retention")
    assert sorted(r for e in done.erasures for r in e.case_references) == [
        "A-closed-old",
        "E-paid-old",
    ]
    assert {e.case_references[0]: e.whole_person for e in done.erasures} == {
        "A-closed-old": True,  # d1 had no other case
        "E-paid-old": False,  # d4 still has an open case
    }
    async with database.sessions() as s:
        cases = {c.reference: c for c in (await s.scalars(select(Case))).all()}
        debtors = {d.external_ref: d for d in (await s.scalars(select(Debtor))).all()}
        bodies = {
            cases_ref: body
            for cases_ref, body in (
                await s.execute(
                    select(Case.reference, ThreadEntry.body)
                    .join(ThreadEntry, ThreadEntry.case_id == Case.id)
                    .where(ThreadEntry.seq == 1)
                )
            ).all()
        }
        erasures = (await s.scalars(select(ThreadEntry).where(ThreadEntry.kind == "erasure"))).all()
        chain = await chain_status(s)
    assert debtors["d1"].erased_at is not None and debtors["d1"].name == "[erased]"
    assert debtors["d4"].erased_at is None and debtors["d4"].name == "Person d4"
    for ref in ("A-closed-old", "E-paid-old"):
        assert cases[ref].description is None and bodies[ref] is None
        assert cases[ref].claim_amount == Decimal("100.00")
    for ref in ("B-paid-recent", "C-held", "F-open", "G-handed-over", "H-default-period"):
        assert cases[ref].description == f"description of {ref}", ref
        assert bodies[ref] == f"body of {ref}", ref
    assert sorted(e.meta["scope"] for e in erasures) == ["retention", "retention"]
    assert chain.first_broken_id is None and chain.entries == 2

    again = await run_retention_pass(database, settings, now=NOW)
    assert [c.reference for c in again.due] == ["C-held"]
    assert again.erasures == []
    # ten years later the default creditor's case is due too
    later = await run_retention_pass(
        database, settings, now=NOW + timedelta(days=3650), dry_run=True
    )
    assert "H-default-period" in [c.reference for c in later.due]
