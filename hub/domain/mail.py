"""What the mail templates are given and what they give back: pure, validated value types.

:class:`ReminderContext` holds exactly the facts a reminder states (creditor, claim, how to pay,
reply and opt out); :class:`NoticeContext` holds what a notice may state, which is nothing about
the debtor, the claim or the creditor. Both check their values when built, so that a template
never renders an empty IBAN or a ``javascript:`` link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Literal, get_args

from hub.domain.dunning import LevelKind
from hub.errors import UserError

Language = Literal["en", "de", "da"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

#: a creditor code may name an override directory: letters, digits, ``-`` and ``_`` only
_CREDITOR_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")


def language_or_default(code: str | None, default: Language) -> Language:
    """The supported language for a stored code (``"de-AT"`` -> ``"de"``), else ``default``."""
    if code:
        primary = code.strip().lower().replace("_", "-").split("-", 1)[0]
        for language in LANGUAGES:
            if primary == language:
                return language
    return default


def valid_creditor_code(code: str) -> bool:
    """True when ``code`` is safe to use as a directory name for template overrides."""
    return bool(_CREDITOR_CODE.match(code))


def _check_url(name: str, value: str) -> None:
    if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
        raise UserError(f"{name}: must be an http(s) URL without spaces")


def _check_language(value: str) -> None:
    if value not in LANGUAGES:
        raise UserError(f"language: {value!r} has no templates (use one of {', '.join(LANGUAGES)})")


@dataclass(frozen=True)
class DunningFee:
    """A fee charged at one dunning level, itemised in the reminder."""

    level: int
    kind: LevelKind
    amount: Decimal


@dataclass(frozen=True)
class ReminderContext:
    """Everything a reminder template may use; nothing else reaches the template."""

    language: Language
    #: selects the per-creditor template overrides (``<template_dir>/<code>/mail/<lang>/``)
    creditor_code: str
    creditor_name: str
    #: what a first demand must state: legal name, address, register number (may be multi-line)
    creditor_legal_identity: str
    iban: str
    #: optional inside SEPA; shown when given
    bic: str | None
    #: the agency (or creditor) signing the mail
    sender_name: str
    debtor_name: str
    reference: str
    #: what the claim is for (invoice number and date, contract); optional
    claim_description: str | None
    amount: Decimal
    currency: str
    #: the fees of every level reached so far, this one included
    fees: tuple[DunningFee, ...]
    paid_amount: Decimal
    #: when the claim fell due
    due_date: date
    #: the payment deadline this reminder sets
    pay_by: date
    level: int
    level_kind: LevelKind
    #: the debtor portal, with the access token the caller made
    portal_url: str
    #: the per-case reply address (``reply+<token>@<domain>``)
    reply_address: str
    opt_out_url: str

    def __post_init__(self) -> None:
        _check_language(self.language)
        if not valid_creditor_code(self.creditor_code):
            raise UserError("creditor_code: letters, digits, '-' and '_' only (at most 32)")
        for name in (
            "creditor_name",
            "creditor_legal_identity",
            "sender_name",
            "debtor_name",
            "reference",
        ):
            if not str(getattr(self, name)).strip():
                raise UserError(f"{name}: must not be empty in a reminder")
        if not _IBAN.match(self.iban):
            raise UserError("iban: the creditor has no valid IBAN (letters and digits, no spaces)")
        if self.bic is not None and not _BIC.match(self.bic):
            raise UserError("bic: not a valid BIC (8 or 11 letters and digits)")
        if not _CURRENCY.match(self.currency):
            raise UserError(f"currency: {self.currency!r} is not an ISO 4217 code like EUR")
        if self.amount <= 0:
            raise UserError("amount: must be positive")
        if self.paid_amount < 0 or any(fee.amount < 0 for fee in self.fees):
            raise UserError("fees and paid_amount must not be negative")
        if self.level < 1:
            raise UserError("level: dunning levels start at 1")
        if self.pay_by < self.due_date:
            raise UserError("pay_by: the payment deadline lies before the due date")
        for name in ("portal_url", "opt_out_url"):
            _check_url(name, getattr(self, name))
        if "@" not in self.reply_address or any(c.isspace() for c in self.reply_address):
            raise UserError("reply_address: not an email address")
        if self.total <= 0:
            raise UserError("total: nothing is owed, so no reminder can be sent")

    @property
    def fees_total(self) -> Decimal:
        return sum((fee.amount for fee in self.fees), Decimal("0"))

    @property
    def total(self) -> Decimal:
        """What the debtor owes today: claim plus fees, less what was paid."""
        return self.amount + self.fees_total - self.paid_amount

    def template_vars(self) -> dict[str, object]:
        """The variables a template sees: every field plus ``fees_total`` and ``total``."""
        values: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        values["fees_total"] = self.fees_total
        values["total"] = self.total
        return values


@dataclass(frozen=True)
class NoticeContext:
    """What a notice may state: that a message waits in the portal, and the portal link.

    Deliberately no name, amount, reference or creditor: the notice goes out unencrypted.
    """

    language: Language
    portal_url: str
    #: selects per-creditor overrides of the notice wording; never shown in the mail
    creditor_code: str | None = None

    def __post_init__(self) -> None:
        _check_language(self.language)
        _check_url("portal_url", self.portal_url)
        if self.creditor_code is not None and not valid_creditor_code(self.creditor_code):
            raise UserError("creditor_code: letters, digits, '-' and '_' only (at most 32)")

    def template_vars(self) -> dict[str, object]:
        return {"language": self.language, "portal_url": self.portal_url}


@dataclass(frozen=True)
class RenderedMail:
    """A rendered mail: one subject line and the same message as plain text and as HTML."""

    subject: str
    text: str
    html: str
    language: Language
