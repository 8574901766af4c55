"""Creditors: the companies whose claims the hub collects. Create them, list them, find them.

Codes are short upper-case identifiers (``ACME``) that import files use to name the creditor;
the bank details are checked (IBAN checksum, BIC form) before anything is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import UserError
from hub.services import validation
from hub.storage.db import Database
from hub.storage.models import Creditor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreditorData:
    """What a person gives to create a creditor; :meth:`validated` puts it in normal form."""

    code: str
    name: str
    legal_identity: str = ""
    contact_email: str = ""
    iban: str = ""
    bic: str = ""

    def validated(self) -> CreditorData:
        problems: list[str] = []

        def check(label: str, value: str, checker: Callable[[str], str]) -> str:
            if not value.strip():
                return ""
            try:
                return checker(value)
            except ValueError as exc:
                problems.append(f"{label}: {exc}")
                return value

        code = self.code
        try:
            code = validation.check_creditor_code(self.code)
        except ValueError as exc:
            problems.append(f"code: {exc}")
        name = " ".join(self.name.split())
        if not name:
            problems.append("name: must not be empty")
        elif len(name) > 200:
            problems.append("name: longer than 200 characters")
        email = check("contact email", self.contact_email, validation.check_email)
        iban = check("IBAN", self.iban, validation.check_iban)
        bic = check("BIC", self.bic, validation.check_bic)
        if problems:
            raise UserError("invalid creditor: " + "; ".join(problems))
        return CreditorData(code, name, self.legal_identity.strip(), email, iban, bic)


async def create_creditor(database: Database, data: CreditorData) -> Creditor:
    """Validate and store a new creditor; a code already taken is the user's error."""
    clean = data.validated()
    creditor = Creditor(
        code=clean.code,
        name=clean.name,
        legal_identity=clean.legal_identity,
        contact_email=clean.contact_email,
        iban=clean.iban,
        bic=clean.bic,
        settings={},
    )
    try:
        async with database.transaction() as session:
            existing = await session.scalar(select(Creditor.id).where(Creditor.code == clean.code))
            if existing is not None:
                raise UserError(f"a creditor with the code {clean.code} already exists")
            session.add(creditor)
    except IntegrityError:  # a concurrent create won the race
        raise UserError(f"a creditor with the code {clean.code} already exists") from None
    log.info("creditor %s created (id %s)", creditor.code, creditor.id)
    return creditor


async def list_creditors(database: Database) -> list[Creditor]:
    async with database.sessions() as session:
        return list((await session.scalars(select(Creditor).order_by(Creditor.code))).all())


async def creditor_ids_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, int]:
    """The ids of the creditors with these codes; codes not found are simply absent."""
    wanted = sorted({code.upper() for code in codes})
    if not wanted:
        return {}
    result = await session.execute(
        select(Creditor.code, Creditor.id).where(Creditor.code.in_(wanted))
    )
    return {code: creditor_id for code, creditor_id in result}
