"""The headers of a file download: always an attachment, never sniffed, a harmless name.

A stored file name comes from a debtor's mail or the portal, so it is hostile input. The
plain ``filename=`` gets printable ASCII letters, digits, dot, dash and underscore only, with
any directory part and leading dots dropped; the exact name goes, percent-encoded with no
character left raw (``/`` included), into ``filename*`` (RFC 6266, 4.3; RFC 8187). The type
is ``application/octet-stream`` whatever the file claims, so no browser renders it inline.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

FALLBACK_NAME = "attachment"
MAX_NAME = 120


def _base_name(filename: str) -> str:
    """The last path component, without control characters or leading dots and spaces."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return name.lstrip(". ")[-MAX_NAME:]


def ascii_filename(filename: str) -> str:
    """A plain ASCII name that every client shows and saves safely."""
    folded = unicodedata.normalize("NFKD", _base_name(filename))
    name = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_"
        for ch in folded
        if not unicodedata.combining(ch)
    )
    return name.strip("._") or FALLBACK_NAME


def content_disposition(filename: str) -> str:
    """``attachment`` with the safe ASCII name and the exact (base) name in ``filename*``."""
    exact = _base_name(filename) or FALLBACK_NAME
    return (
        f'attachment; filename="{ascii_filename(filename)}"; '
        f"filename*=UTF-8''{quote(exact, safe='')}"
    )


def download_headers(filename: str) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": content_disposition(filename),
        "X-Content-Type-Options": "nosniff",
    }
