from datetime import date
from decimal import Decimal

from sqlalchemy import select

from hub.storage.db import Database
from hub.storage.models import Case, Creditor, Debtor


async def test_roundtrip(database: Database) -> None:
    async with database.transaction() as s:
        c = Creditor(code="ACME", name="Acme")
        s.add(c)
        await s.flush()
        d = Debtor(creditor_id=c.id, external_ref="D1", name="Jane Doe", name_hash="x")
        s.add(d)
        await s.flush()
        s.add(
            Case(
                creditor_id=c.id,
                debtor_id=d.id,
                reference="R1",
                claim_amount=Decimal("1250.50"),
                currency="EUR",
                due_date=date(2026, 1, 1),
            )
        )
    async with database.sessions() as s:
        case = (await s.execute(select(Case))).scalar_one()
        assert case.claim_amount == Decimal("1250.50")
