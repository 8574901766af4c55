"""The address fields of a message (From, Sender, To, Cc, Reply-To) as :class:`MailAddress` lists.

The modern parser reads each field; display names in comments or split encoded words are
recovered from the raw value (:mod:`hub.inbound.mime_leniency`), a field named twice is read as
one list, and an invalid entry does not lose the well-formed addresses after it.
"""

from __future__ import annotations

import re
from email import errors
from email.utils import getaddresses
from typing import Any

from hub.domain.inbound import MailAddress
from hub.inbound.mime_leniency import better_name, decode_words, legacy_names
from hub.inbound.parse_text import MailReader, unescape, unfold


def read_addresses(
    reader: MailReader, values: list[Any], raw_values: list[str], name: str
) -> tuple[MailAddress, ...]:
    """Every address of every ``name`` field: a duplicated To or Cc (RFC 5322 allows one) is
    read as one list rather than losing the second field."""
    found: list[MailAddress] = []
    for value, raw in zip(values, raw_values, strict=True):
        found.extend(_address_list(reader, value, unfold(raw), name))
    return tuple(found)


def _address_list(reader: MailReader, value: Any, raw: str, name: str) -> list[MailAddress]:
    found: list[MailAddress] = []
    addresses = getattr(value, "addresses", None)
    if addresses is not None:
        try:
            legacy = legacy_names(raw) if "(" in raw or "=?" in raw else {}
            for item in addresses:
                if item.addr_spec and item.addr_spec != "<>":
                    address = unescape(item.addr_spec)
                    display = unescape(item.display_name or "")
                    if legacy:
                        display = better_name(display, address, raw, legacy)
                    found.append(MailAddress(display, address))
            if any(isinstance(d, errors.InvalidHeaderDefect) for d in value.defects):
                return _keep_every_address(found, raw)
            return found
        except Exception as exc:
            reader.defect(f"{name}: address list unreadable ({type(exc).__name__})")
    for display, address in getaddresses([str(value)]):
        if address:
            found.append(MailAddress(decode_words(display), address))
    return found


def _keep_every_address(found: list[MailAddress], raw: str) -> list[MailAddress]:
    """The modern parser drops what follows an invalid entry (``Mikel@Lindsaar <a@b.example>``
    lost ``a@b.example``): when the traditional reading has every address it found and more
    well-formed ones, that reading is kept (with the modern display names where they agree)."""
    try:
        pairs = [(name, address) for name, address in getaddresses([raw]) if address]
    except Exception:
        return found
    known = {a.address for a in found}
    extra = [a for _, a in pairs if a not in known]
    if not extra or not known <= {a for _, a in pairs}:
        return found
    if not all(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a) for a in extra):
        return found
    names = {a.address: a.name for a in found}
    return [MailAddress(names.get(a) or decode_words(n).strip(), a) for n, a in pairs]
