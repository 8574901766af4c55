"""Single cells of an import file: amounts, dates and free text, read strictly and never guessed.

Pure functions shared by the case importer (:mod:`hub.services.case_rows`) and the payment
importer (:mod:`hub.services.payment_files`), so "1.250,00" and "05.12.2026" mean the same in
both files. Each raises :class:`ValueError` with a reason that names no person.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from babel.numbers import NumberFormatError, parse_decimal

MAX_AMOUNT = Decimal("1e14")  # NUMERIC(18, 4)

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DOTTED_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_AMOUNT_CHARS = re.compile(r"^[0-9.,]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_amount(text: str) -> Decimal:
    """An amount written "1250.00", "1250,00", "1.250,00" or "1,250.00"; never a guess.

    A single separator followed by exactly three digits ("1,250", "1.250") could be a
    thousands separator or a decimal point, so it is refused rather than misread.
    Grouped numbers are checked by Babel's strict parser (groups of three digits).
    """
    s = text.strip()
    if not s:
        raise ValueError("missing")
    if s[0] in "+-":
        raise ValueError("must be a positive amount without a sign")
    if not _AMOUNT_CHARS.match(s):
        raise ValueError(f"{s!r} is not an amount (digits with '.' or ',' only)")
    dots, commas = s.count("."), s.count(",")
    locale: str | None = None
    if dots and commas:
        decimal_sep = "." if s.rfind(".") > s.rfind(",") else ","
        if s.count(decimal_sep) > 1:
            raise ValueError(f"{s!r} has more than one decimal separator")
        locale = "en" if decimal_sep == "." else "de"
    elif dots or commas:
        sep = "." if dots else ","
        head, _, tail = s.partition(sep)
        if s.count(sep) > 1:
            locale = "en" if sep == "," else "de"  # only thousands separators
        elif not head or not tail:
            raise ValueError(f"{s!r} is not an amount")
        elif len(tail) == 3 and head != "0":
            raise ValueError(
                f"{s!r} is ambiguous (thousands separator or decimals?): "
                "write it with two decimals, for example 1250.00"
            )
        else:
            s = f"{head}.{tail}"
    if locale is not None:
        try:
            value = parse_decimal(s, locale=locale, strict=True)
        except NumberFormatError:
            raise ValueError(f"{s!r} has badly placed thousands separators") from None
    else:
        try:
            value = Decimal(s)
        except InvalidOperation:
            raise ValueError(f"{s!r} is not an amount") from None
    if value <= 0:
        raise ValueError("must be greater than zero")
    if value >= MAX_AMOUNT:
        raise ValueError("is too large")
    return value


def parse_due_date(text: str) -> date:
    """ISO ``YYYY-MM-DD`` or ``DD.MM.YYYY``."""
    s = text.strip()
    if not s:
        raise ValueError("missing")
    match = _ISO_DATE.match(s)
    if match:
        year, month, day = (int(part) for part in match.groups())
    else:
        match = _DOTTED_DATE.match(s)
        if not match:
            raise ValueError(f"{s!r} is not a date (write YYYY-MM-DD or DD.MM.YYYY)")
        day, month, year = (int(part) for part in match.groups())
    if not 1900 <= year <= 2200:
        raise ValueError(f"{s!r}: the year is out of range")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{s!r} is not a day of the calendar") from None


def check_text(value: str, limit: int) -> str:
    """``value`` unchanged if it is one line of at most ``limit`` characters."""
    if _CONTROL.search(value):
        raise ValueError("contains a line break or control character")
    if len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    return value
