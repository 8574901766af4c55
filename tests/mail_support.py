"""Test support for rendering and composing mail: a complete reminder context to vary."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from hub.config import load_settings
from hub.domain.dunning import LevelKind
from hub.domain.mail import DunningFee, Language, ReminderContext
from hub.outbound.render import MailRenderer

LEGAL_IDENTITY = (
    "Nordlicht Energie GmbH\n"
    "Hafenstraße 12, 20457 Hamburg\n"
    "Amtsgericht Hamburg HRB 998877, Geschäftsführerin Ida Falk"
)


def shipped_renderer() -> MailRenderer:
    """A renderer on the templates the hub ships (no override directory)."""
    return MailRenderer.from_settings(load_settings(None, {}).outbound)


def reminder_context(
    language: Language = "de", kind: LevelKind = LevelKind.FIRST, **changes: Any
) -> ReminderContext:
    """A reminder for a claim of 1,250.00 EUR with fees of 5.00 and 7.50 and 100.00 paid."""
    context = ReminderContext(
        language=language,
        creditor_code="NORDLICHT",
        creditor_name="Nordlicht Energie GmbH",
        creditor_legal_identity=LEGAL_IDENTITY,
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
        sender_name="Hub Collections",
        debtor_name="Karoline Bjerregaard",
        reference="NL-2025-004711",
        claim_description="Stromrechnung 2024-113",
        amount=Decimal("1250.00"),
        currency="EUR",
        fees=(
            DunningFee(1, LevelKind.FRIENDLY, Decimal("0")),
            DunningFee(2, LevelKind.FIRST, Decimal("5.00")),
            DunningFee(3, LevelKind.SECOND, Decimal("7.50")),
        ),
        paid_amount=Decimal("100.00"),
        due_date=date(2025, 3, 14),
        pay_by=date(2025, 4, 28),
        level=2,
        level_kind=kind,
        portal_url="https://portal.hub.example/p/Zq9xT4?lang=de&case=1",
        reply_address="reply+ahj5tmfmg5i3bnqexegcuv6w4e6gshsipsunw@hub.example",
        opt_out_url="https://portal.hub.example/opt-out/Zq9xT4",
    )
    return replace(context, **changes) if changes else context
