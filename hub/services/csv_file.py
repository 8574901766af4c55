"""Reading a CSV import file as text: UTF-8 decoding, the delimiter, records with line numbers.

Shared by the case importer (:mod:`hub.services.csv_rows`) and the payment importer
(:mod:`hub.services.payment_files`); what the columns mean is theirs. A file that cannot be
read at all raises :class:`~hub.errors.ImportFileError`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from hub.errors import ImportFileError

_QUOTED = re.compile(r'"[^"]*"')


def decode_csv(data: bytes) -> str:
    """The file as text (UTF-8, with or without BOM); ImportFileError when it is not."""
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


def header_names(raw: list[str]) -> list[str]:
    """Column names as the importers compare them: lower case, ``_`` for spaces and dashes."""
    return [cell.strip().lower().replace(" ", "_").replace("-", "_") for cell in raw]


def csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
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
