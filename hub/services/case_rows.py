"""One row of a case import file: its fields validated into a :class:`CaseRow`, and the rows
checked against each other (duplicate references, one debtor described two ways).

Pure (no database, no I/O). Every problem is a :class:`RowError` (line, column, reason);
reasons never repeat names or addresses from the file: they may end up in a log.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel.numbers import get_currency_precision

from hub.domain.mail import LANGUAGES
from hub.services import validation
from hub.services.csv_fields import check_text, parse_amount, parse_due_date

#: The fields that describe the debtor: rows naming the same debtor must agree on them.
DEBTOR_FIELDS = (
    "name",
    "emails",
    "language",
    "timezone",
    "street",
    "postal_code",
    "city",
    "country",
    "phone",
)

_PHONE = re.compile(r"^\+?[0-9 ()/.-]{5,32}$")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class RowError:
    """One problem in the file: ``column`` is None when the whole row is wrong."""

    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class CaseRow:
    """A valid row: one case and the debtor it belongs to, in normal form."""

    line: int
    creditor: str
    reference: str
    debtor_ref: str
    name: str
    emails: tuple[str, ...]
    language: str
    timezone: str
    street: str | None
    postal_code: str | None
    city: str | None
    country: str | None
    phone: str | None
    amount: Decimal
    currency: str
    due_date: date
    description: str | None

    def debtor_key(self) -> tuple[str, str]:
        return (self.creditor, self.debtor_ref)

    def debtor_data(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in DEBTOR_FIELDS)


@dataclass(frozen=True)
class RowDefaults:
    """What an empty optional cell means; ``creditor`` comes from ``--creditor``."""

    language: str
    timezone: str
    creditor: str | None = None


def normalize_name(name: str) -> str:
    """The form a name is hashed in: white space collapsed, case folded."""
    return _SPACES.sub(" ", name).strip().casefold()


class RowParser:
    """Validates one row at a time; keeps the small caches a big file profits from."""

    def __init__(self, header: list[str], defaults: RowDefaults) -> None:
        self.header = header
        self.defaults = defaults
        self.width = len(header)
        self._zones: dict[str, bool] = {}

    def _zone_ok(self, name: str) -> bool:
        known = self._zones.get(name)
        if known is None:
            try:
                zoneinfo.ZoneInfo(name)
                known = True
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                known = False
            self._zones[name] = known
        return known

    def parse(self, line: int, cells: list[str]) -> tuple[CaseRow | None, list[RowError]]:
        if len(cells) != self.width:
            reason = f"expected {self.width} fields, found {len(cells)}"
            return None, [RowError(line, None, reason)]
        raw = {name: cell.strip() for name, cell in zip(self.header, cells, strict=True)}
        errors: list[RowError] = []

        def fail(column: str, reason: str) -> None:
            errors.append(RowError(line, column, reason))

        def text(column: str, limit: int, *, required: bool) -> str | None:
            value = raw.get(column, "")
            if not value:
                if required:
                    fail(column, "missing")
                return None
            try:
                return check_text(value, limit)
            except ValueError as exc:
                fail(column, str(exc))
                return None

        creditor = raw.get("creditor", "")
        if self.defaults.creditor:
            if creditor and creditor.upper() != self.defaults.creditor.upper():
                fail("creditor", f"{creditor!r} differs from --creditor {self.defaults.creditor}")
            creditor = self.defaults.creditor
        if not creditor:
            fail("creditor", "missing")
        else:
            try:
                creditor = validation.check_creditor_code(creditor)
            except ValueError as exc:
                fail("creditor", str(exc))
        reference = text("reference", 64, required=True)
        debtor_ref = text("debtor_ref", 64, required=True)
        name = text("name", 200, required=True)
        if name is not None:
            name = _SPACES.sub(" ", name)

        emails: list[str] = []
        parts = validation.split_emails(raw.get("email", ""))
        if not parts:
            fail("email", "missing")
        for number, part in enumerate(parts, start=1):
            try:
                emails.append(validation.check_email(part))
            except ValueError as exc:
                which = f"address {number}: " if len(parts) > 1 else ""
                fail("email", which + str(exc))

        language = raw.get("language", "").lower() or self.defaults.language
        if language not in LANGUAGES:
            fail("language", f"{language!r} is not one of {', '.join(sorted(LANGUAGES))}")
        timezone = raw.get("timezone", "") or self.defaults.timezone
        if not self._zone_ok(timezone):
            fail("timezone", f"{timezone!r} is not an IANA time zone (e.g. Europe/Berlin)")

        street = text("street", 200, required=False)
        postal_code = text("postal_code", 16, required=False)
        city = text("city", 100, required=False)
        country: str | None = None
        if raw.get("country"):
            try:
                country = validation.check_country(raw["country"])
            except ValueError as exc:
                fail("country", f"{raw['country']!r} is {exc}")
        phone = raw.get("phone") or None
        if phone is not None and (not _PHONE.match(phone) or sum(c.isdigit() for c in phone) < 5):
            fail("phone", "not a phone number (digits, spaces, + ( ) / . - only)")

        currency: str | None = None
        try:
            currency = validation.check_currency(raw.get("currency", "") or "(missing)")
        except ValueError as exc:
            fail("currency", "missing" if not raw.get("currency") else str(exc))
        amount: Decimal | None = None
        try:
            amount = parse_amount(raw.get("amount", ""))
        except ValueError as exc:
            fail("amount", str(exc))
        if amount is not None and currency is not None:
            places = -int(amount.as_tuple().exponent)
            allowed = get_currency_precision(currency)
            if places > allowed:
                fail("amount", f"has {places} decimal places; {currency} has {allowed}")
                amount = None
        due_date: date | None = None
        try:
            due_date = parse_due_date(raw.get("due_date", ""))
        except ValueError as exc:
            fail("due_date", str(exc))
        description = text("description", 2000, required=False)

        if (
            errors
            or reference is None
            or debtor_ref is None
            or name is None
            or amount is None
            or currency is None
            or due_date is None
        ):
            return None, errors
        return CaseRow(
            line=line,
            creditor=creditor,
            reference=reference,
            debtor_ref=debtor_ref,
            name=name,
            emails=tuple(emails),
            language=language,
            timezone=timezone,
            street=street,
            postal_code=postal_code,
            city=city,
            country=country,
            phone=phone,
            amount=amount,
            currency=currency,
            due_date=due_date,
            description=description,
        ), []


def cross_check(rows: list[CaseRow]) -> tuple[list[CaseRow], list[RowError]]:
    """Duplicate references, and rows that describe the same debtor differently."""
    errors: list[RowError] = []
    kept: list[CaseRow] = []
    seen_refs: dict[tuple[str, str], int] = {}
    debtors: dict[tuple[str, str], CaseRow] = {}
    for row in rows:
        key = (row.creditor, row.reference)
        first = seen_refs.setdefault(key, row.line)
        bad = False
        if first != row.line:
            errors.append(RowError(row.line, "reference", f"duplicate of line {first}"))
            bad = True
        debtor = debtors.setdefault(row.debtor_key(), row)
        if debtor is not row and debtor.debtor_data() != row.debtor_data():
            differing = [
                name
                for name, a, b in zip(
                    DEBTOR_FIELDS, debtor.debtor_data(), row.debtor_data(), strict=True
                )
                if a != b
            ]
            errors.append(
                RowError(
                    row.line,
                    "debtor_ref",
                    f"same debtor as line {debtor.line} but {', '.join(differing)} differ(s)",
                )
            )
            bad = True
        if not bad:
            kept.append(row)
    return kept, errors
