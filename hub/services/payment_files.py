"""Reading payment files: a CSV of payments or an ISO 20022 camt.053 bank statement, bytes in,
typed payments and every problem out. Pure: no database, no I/O.

CSV: a header line naming ``reference``, ``amount``, ``currency``, ``booked_date``,
``external_id`` and optionally ``text`` (the remittance text, searched for a case reference when
``reference`` is empty); comma or semicolon separated, UTF-8. Amounts and dates are read by the
case importer's own parsers (:mod:`hub.services.csv_fields`), so "1.250,00" and "05.12.2026" mean
the same in both files.

camt.053 (any version: elements are matched by local name): every booked (``Sts`` BOOK) entry
``Ntry`` with ``CdtDbtInd`` CRDT gives one payment per ``NtryDtls/TxDtls`` (a batch booking
holds several), with the amount of the transaction (or of the entry when it has one transaction),
``Ccy``, ``BookgDt`` (``Dt`` or ``DtTm``), the structured creditor reference
``RmtInf/Strd/CdtrRefInf/Ref`` and the unstructured ``RmtInf/Ustrd`` text; the external id is
the entry's ``AcctSvcrRef`` (``/n`` appended for the n-th transaction of a batch), else the
transaction's, else ``NtryRef``. Debits and pending entries are counted and left out. Bank
files are untrusted XML: :mod:`defusedxml` refuses DTDs and entities (no billion laughs, no
external entities).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from hub.errors import ImportFileError
from hub.services import validation
from hub.services.csv_fields import parse_amount, parse_due_date
from hub.services.csv_file import decode_csv, header_names, sniff_delimiter

CSV_COLUMNS = ("reference", "amount", "currency", "booked_date", "external_id", "text")
CSV_REQUIRED = frozenset({"reference", "amount", "currency", "booked_date", "external_id"})
MAX_TEXT = 500

T = TypeVar("T")


@dataclass(frozen=True)
class PaymentRow:
    """One incoming payment as the file states it; ``where`` names its place in the file."""

    where: str
    reference: str | None
    text: str | None
    amount: Decimal
    currency: str
    booked_on: date
    external_id: str


@dataclass(frozen=True)
class FileProblem:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ParsedPayments:
    rows: list[PaymentRow] = field(default_factory=list)
    errors: list[FileProblem] = field(default_factory=list)
    #: entries that are not incoming booked payments (debits, pending): counted, not errors
    ignored: list[FileProblem] = field(default_factory=list)

    def add(self, row: PaymentRow) -> None:
        if any(r.external_id == row.external_id for r in self.rows):
            self.errors.append(
                FileProblem(row.where, f"external id {row.external_id!r} appears twice")
            )
        else:
            self.rows.append(row)


def _clean(value: str | None, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())[:limit]
    return text or None


# --- CSV ----------------------------------------------------------------------------------


def _header(raw: list[str]) -> list[str]:
    names = header_names(raw)
    unknown = [n or "(empty)" for n in names if n not in CSV_COLUMNS]
    missing = [n for n in CSV_COLUMNS if n in CSV_REQUIRED and n not in names]
    twice = sorted({n for n in names if names.count(n) > 1})
    problems = []
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)}")
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if twice:
        problems.append(f"column(s) named twice: {', '.join(twice)}")
    if problems:
        raise ImportFileError(
            "line 1 (header): " + "; ".join(problems) + f" (columns: {', '.join(CSV_COLUMNS)})"
        )
    return names


def _parsed(
    cells: dict[str, str], column: str, parse: Callable[[str], T], reasons: list[str]
) -> T | None:
    try:
        return parse(cells.get(column, ""))
    except ValueError as exc:
        reasons.append(f"{column}: {exc}")
        return None


def _csv_row(line: int, cells: dict[str, str], out: ParsedPayments) -> None:
    where = f"line {line}"
    reasons: list[str] = []
    amount = _parsed(cells, "amount", parse_amount, reasons)
    booked = _parsed(cells, "booked_date", parse_due_date, reasons)
    currency = _parsed(cells, "currency", validation.check_currency, reasons)
    external_id = cells.get("external_id", "").strip()
    if not external_id:
        reasons.append("external_id: missing")
    elif len(external_id) > 200:
        reasons.append("external_id: longer than 200 characters")
    reference = _clean(cells.get("reference"), 64)
    text = _clean(cells.get("text"))
    if reference is None and text is None:
        reasons.append("reference: missing (and no text to search for one)")
    if reasons or amount is None or booked is None or currency is None:
        out.errors.append(FileProblem(where, "; ".join(reasons)))
        return
    out.add(PaymentRow(where, reference, text, amount, currency, booked, external_id))


def parse_payment_csv(data: bytes) -> ParsedPayments:
    text = decode_csv(data)
    first = text.splitlines()[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(first))
    out = ParsedPayments()
    try:
        names = _header(next(reader))
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(names):
                out.errors.append(
                    FileProblem(f"line {line}", f"{len(cells)} fields, the header has {len(names)}")
                )
                continue
            _csv_row(line, dict(zip(names, cells, strict=True)), out)
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: unreadable CSV ({exc})") from None
    return out


# --- camt.053 -----------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: Element | None, *path: str) -> Element | None:
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _children(node: Element | None, name: str) -> list[Element]:
    return [] if node is None else [c for c in node if _local(c.tag) == name]


def _text(node: Element | None, *path: str) -> str | None:
    found = _child(node, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _booked_on(entry: Element) -> date:
    day = _text(entry, "BookgDt", "Dt")
    if day is not None:
        return date.fromisoformat(day)
    moment = _text(entry, "BookgDt", "DtTm")
    if moment is not None:
        return datetime.fromisoformat(moment.replace("Z", "+00:00")).date()
    raise ValueError("no booking date (BookgDt)")


def _amount(node: Element | None) -> tuple[Decimal, str] | None:
    if node is None or node.text is None:
        return None
    try:
        value = Decimal(node.text.strip())
    except InvalidOperation:
        raise ValueError(f"{node.text.strip()!r} is not an amount") from None
    if not value.is_finite() or value <= 0:
        raise ValueError("the amount is not positive")
    currency = validation.check_currency(node.get("Ccy", ""))
    return value, currency


def _remittance(tx: Element | None) -> tuple[str | None, str | None]:
    info = _child(tx, "RmtInf")
    reference = None
    for structured in _children(info, "Strd"):
        reference = reference or _text(structured, "CdtrRefInf", "Ref")
    texts = [u.text.strip() for u in _children(info, "Ustrd") if u.text and u.text.strip()]
    return _clean(reference, 64), _clean(" ".join(texts)) if texts else None


def _entry(number: int, entry: Element, out: ParsedPayments) -> None:
    where = f"entry {number}"
    status = _text(entry, "Sts") or _text(entry, "Sts", "Cd")
    if status is not None and status != "BOOK":
        out.ignored.append(FileProblem(where, f"status {status}, not booked"))
        return
    if _text(entry, "CdtDbtInd") != "CRDT":
        out.ignored.append(FileProblem(where, "a debit"))
        return
    entry_amount = _amount(_child(entry, "Amt"))
    booked = _booked_on(entry)
    entry_ref = _text(entry, "AcctSvcrRef")
    found = [tx for details in _children(entry, "NtryDtls") for tx in _children(details, "TxDtls")]
    # an entry without details is one payment described by the entry itself
    txs: list[Element | None] = list(found) or [None]
    single = len(txs) == 1
    for index, tx in enumerate(txs, start=1):
        tx_where = where if single else f"{where}, transaction {index}"
        if tx is not None and _text(tx, "CdtDbtInd") == "DBIT":
            out.ignored.append(FileProblem(tx_where, "a debit"))
            continue
        amount = _amount(_child(tx, "Amt")) or _amount(_child(tx, "AmtDtls", "TxAmt", "Amt"))
        if amount is None:
            if not single or entry_amount is None:
                raise ValueError(f"transaction {index} has no amount")
            amount = entry_amount
        base = entry_ref or _text(tx, "Refs", "AcctSvcrRef") or _text(entry, "NtryRef")
        if base is None:
            raise ValueError("no bank reference (AcctSvcrRef or NtryRef) to recognise it by")
        external = base if single else f"{base}/{index}"
        reference, text = _remittance(tx)
        if reference is None and text is None:
            out.errors.append(FileProblem(tx_where, "no remittance information (RmtInf)"))
            continue
        out.add(PaymentRow(tx_where, reference, text, amount[0], amount[1], booked, external[:200]))


def parse_camt053(data: bytes) -> ParsedPayments:
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise ImportFileError(f"not a readable camt.053 XML file: {exc}") from None
    statements = [
        stmt
        for top in root.iter()
        if _local(top.tag) == "BkToCstmrStmt"
        for stmt in _children(top, "Stmt")
    ]
    if _local(root.tag) != "Document" or not statements:
        raise ImportFileError("not a camt.053 statement (no Document/BkToCstmrStmt/Stmt)")
    out = ParsedPayments()
    number = 0
    for stmt in statements:
        for entry in _children(stmt, "Ntry"):
            number += 1
            try:
                _entry(number, entry, out)
            except ValueError as exc:
                out.errors.append(FileProblem(f"entry {number}", str(exc)))
    return out


def parse_payment_file(data: bytes, file_format: str) -> ParsedPayments:
    if file_format == "csv":
        return parse_payment_csv(data)
    if file_format == "camt053":
        return parse_camt053(data)
    raise ImportFileError(f"unknown payment file format {file_format!r} (csv or camt053)")
