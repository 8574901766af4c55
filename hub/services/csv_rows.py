"""Reading and validating a case import file: bytes in, typed rows and every problem out.

This is pure (no database, no I/O): :func:`parse_case_file` decodes the file (UTF-8 with or
without BOM), sniffs the delimiter (comma or semicolon), checks the header, validates every
field of every row and the rows against each other, and returns the good rows together with a
:class:`RowError` (line, column, reason) for each problem. A header it cannot work with raises
:class:`~hub.errors.ImportFileError`: without the right columns no row can be judged.

Reasons never repeat names or addresses from the file: they may end up in a log.
"""

from __future__ import annotations

import csv
import io
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from babel.numbers import NumberFormatError, get_currency_precision, parse_decimal

from hub.errors import ImportFileError
from hub.services import validation

#: Every column the importer knows, in the order a template file lists them.
COLUMNS = (
    "creditor",
    "reference",
    "debtor_ref",
    "name",
    "email",
    "language",
    "timezone",
    "street",
    "postal_code",
    "city",
    "country",
    "phone",
    "amount",
    "currency",
    "due_date",
    "description",
)
REQUIRED = frozenset(
    {"creditor", "reference", "debtor_ref", "name", "email", "amount", "currency", "due_date"}
)
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
LANGUAGES = frozenset({"en", "de", "da"})
MAX_AMOUNT = Decimal("1e14")  # NUMERIC(18, 4)

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DOTTED_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_AMOUNT_CHARS = re.compile(r"^[0-9.,]+$")
_PHONE = re.compile(r"^\+?[0-9 ()/.-]{5,32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUOTED = re.compile(r'"[^"]*"')
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


@dataclass
class ParsedFile:
    rows: list[CaseRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    #: data rows seen (blank lines not counted)
    total: int = 0
    delimiter: str = ","

    @property
    def invalid_lines(self) -> set[int]:
        return {error.line for error in self.errors}


def normalize_name(name: str) -> str:
    """The form a name is hashed in: white space collapsed, case folded."""
    return _SPACES.sub(" ", name).strip().casefold()


# --- single fields ------------------------------------------------------------------------


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


def _check_text(value: str, limit: int) -> str:
    if _CONTROL.search(value):
        raise ValueError("contains a line break or control character")
    if len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    return value


# --- the file -----------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"line {line}: the file is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise ImportFileError("the file is empty")
    return text


def sniff_delimiter(first_line: str) -> str:
    """Comma or semicolon, whichever the header line (outside quotes) uses more."""
    bare = _QUOTED.sub("", first_line)
    return ";" if bare.count(";") > bare.count(",") else ","


def _check_header(raw: list[str], defaults: RowDefaults) -> list[str]:
    names = [cell.strip().lower().replace(" ", "_").replace("-", "_") for cell in raw]
    problems: list[str] = []
    unknown = [name or "(empty)" for name in names if name not in COLUMNS]
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    duplicates = sorted({name for name in names if name and names.count(name) > 1})
    if duplicates:
        problems.append(f"column(s) named twice: {', '.join(duplicates)}")
    required = REQUIRED - ({"creditor"} if defaults.creditor else set())
    missing = [name for name in COLUMNS if name in required and name not in names]
    if missing:
        hint = " (or give --creditor CODE)" if "creditor" in missing else ""
        problems.append(f"missing required column(s): {', '.join(missing)}{hint}")
    if problems:
        raise ImportFileError("line 1 (header): " + "; ".join(problems))
    return names


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(first physical line, fields) per record; a csv.Error in place of unreadable ones."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    last = 0
    while True:
        try:
            record: list[str] | csv.Error = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            record = exc
        start, last = last + 1, reader.line_num
        yield start, record


class _RowParser:
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
                return _check_text(value, limit)
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


def _cross_check(rows: list[CaseRow]) -> tuple[list[CaseRow], list[RowError]]:
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


def parse_case_file(data: bytes, defaults: RowDefaults) -> ParsedFile:
    """Validate a whole file; raises ImportFileError when it cannot be read at all."""
    text = _decode(data)
    first_line = next(line for line in text.splitlines() if line.strip())
    delimiter = sniff_delimiter(first_line)
    result = ParsedFile(delimiter=delimiter)
    parser: _RowParser | None = None
    candidates: list[CaseRow] = []
    for line, record in _records(text, delimiter):
        if isinstance(record, csv.Error):
            if parser is None:
                raise ImportFileError(f"line {line} (header): cannot read it: {record}")
            result.total += 1
            result.errors.append(RowError(line, None, f"cannot read the row: {record}"))
            continue
        if not record or all(not cell.strip() for cell in record):
            continue  # blank line
        if parser is None:
            parser = _RowParser(_check_header(record, defaults), defaults)
            continue
        result.total += 1
        row, errors = parser.parse(line, record)
        if row is not None:
            candidates.append(row)
        result.errors.extend(errors)
    if parser is None or result.total == 0:
        raise ImportFileError("the file has a header but no rows")
    result.rows, cross_errors = _cross_check(candidates)
    result.errors.extend(cross_errors)
    result.errors.sort(key=lambda e: (e.line, COLUMNS.index(e.column) if e.column else -1))
    return result
