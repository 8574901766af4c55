"""Reading and validating a case import file: bytes in, typed rows and every problem out.

This is pure (no database, no I/O): :func:`parse_case_file` decodes the file (UTF-8 with or
without BOM), sniffs the delimiter (comma or semicolon) (:mod:`hub.services.csv_file`), checks
the header, validates every row and the rows against each other (:mod:`hub.services.case_rows`),
and returns the good rows together with a :class:`~hub.services.case_rows.RowError` (line,
column, reason) for each problem. A header it cannot work with raises
:class:`~hub.errors.ImportFileError`: without the right columns no row can be judged.

Reasons never repeat names or addresses from the file: they may end up in a log.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

from hub.errors import ImportFileError
from hub.services.case_rows import CaseRow, RowError, RowParser, cross_check

# The options of parse_case_file, re-exported for callers that cannot be changed yet
# (hub/demo/run.py); new code imports it from hub.services.case_rows.
from hub.services.case_rows import RowDefaults as RowDefaults
from hub.services.csv_file import csv_records, decode_csv, header_names, sniff_delimiter

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


def _check_header(raw: list[str], defaults: RowDefaults) -> list[str]:
    names = header_names(raw)
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


def parse_case_file(data: bytes, defaults: RowDefaults) -> ParsedFile:
    """Validate a whole file; raises ImportFileError when it cannot be read at all."""
    text = decode_csv(data)
    first_line = next(line for line in text.splitlines() if line.strip())
    delimiter = sniff_delimiter(first_line)
    result = ParsedFile(delimiter=delimiter)
    parser: RowParser | None = None
    candidates: list[CaseRow] = []
    for line, record in csv_records(text, delimiter):
        if isinstance(record, csv.Error):
            if parser is None:
                raise ImportFileError(f"line {line} (header): cannot read it: {record}")
            result.total += 1
            result.errors.append(RowError(line, None, f"cannot read the row: {record}"))
            continue
        if not record or all(not cell.strip() for cell in record):
            continue  # blank line
        if parser is None:
            parser = RowParser(_check_header(record, defaults), defaults)
            continue
        result.total += 1
        row, errors = parser.parse(line, record)
        if row is not None:
            candidates.append(row)
        result.errors.extend(errors)
    if parser is None or result.total == 0:
        raise ImportFileError("the file has a header but no rows")
    result.rows, cross_errors = cross_check(candidates)
    result.errors.extend(cross_errors)
    result.errors.sort(key=lambda e: (e.line, COLUMNS.index(e.column) if e.column else -1))
    return result
