"""The export archive's files: safe names, JSON encoding, and the one write of the ZIP file.

Names inside the archive are built from ids and sanitised names only (:func:`safe_name`), so a
hostile attachment name cannot escape the archive. The file is written to a temporary name with
mode 0600 (it is personal data) and renamed into place once complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

README = """\
Data held about you by {hub}
=============================

This archive was written on {when} in answer to a request for access to personal data
(Art. 15 GDPR) and in a machine-readable form (Art. 20 GDPR).

person.json      your name, postal data, phone, language, email addresses and the
                 fingerprints of the encryption keys we hold for you
cases.json       each claim: amounts, currency, dates, state, installment plans,
                 payments received and the follow-up tasks opened for it
threads/         one file per case: every entry of the case's history (messages in and
                 out, notes, decisions, payments) with subject, text, the facts recorded
                 with it, the names of its attachments and how a reply was classified
originals/       the original messages as .eml files (open them with any mail program)
                 and the attachments as they were received or sent
processing.json  per case, every step that processed your data: what, when, by whom
                 or what, and on which legal basis
"""

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(name: str | None, fallback: str = "file") -> str:
    """A file name that stays where it is put: no directories, dots in front or controls."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _SAFE.sub("_", text).strip("._") or fallback
    return text[:100]


def plain(value: Any) -> Any:
    """JSON-ready: datetimes and dates in ISO 8601, amounts as exact strings, bytes dropped."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def to_json(value: Any) -> bytes:
    return json.dumps(plain(value), indent=2, ensure_ascii=False, sort_keys=True).encode()


class Archive:
    """The archive's files, collected in memory before one write."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, path: str, data: bytes) -> str:
        base, dot, ext = path.rpartition(".")
        candidate, n = path, 1
        while candidate in self.files:
            n += 1
            candidate = f"{base}-{n}.{ext}" if dot else f"{path}-{n}"
        self.files[candidate] = data
        return candidate


def write_zip(path: Path, files: dict[str, bytes]) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    os.replace(tmp, path)
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()
