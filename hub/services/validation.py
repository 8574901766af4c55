"""Checks for single field values that creditors hand us: email, IBAN, BIC, country, currency.

Each ``check_*`` function returns the value in its normal form or raises :class:`ValueError`
whose message says what is wrong without repeating the value (it may be personal data).
They are pure and cheap, so the case import can call them on every row of a large file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from functools import cache

from babel import Locale
from babel.numbers import get_territory_currencies

#: CLDR territory codes that are not ISO 3166-1 countries (regions, reserved and private codes).
_NOT_COUNTRIES = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}
)

# A pragmatic address check (RFC 5321 "dot-atom" local part, a dotted domain of LDH labels).
# Quoted local parts and IP literals are legal but never seen in creditors' files: refused.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$")

_IBAN_FORM = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
#: IBAN lengths of the countries our creditors bank in (SWIFT IBAN registry); other countries
#: get the general form and the checksum test only.
_IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GL": 18, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24,
}  # fmt: skip
_BIC_FORM = re.compile(r"^[A-Z]{4}([A-Z]{2})[A-Z0-9]{2}(?:[A-Z0-9]{3})?$")
_CODE_FORM = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,31}$")


@cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes (from CLDR's territory list, without regions)."""
    territories: Iterable[object] = Locale("en").territories
    return frozenset(
        code
        for code in territories
        if isinstance(code, str)
        and len(code) == 2
        and code.isalpha()
        and code not in _NOT_COUNTRIES
    )


@cache
def currency_codes() -> frozenset[str]:
    """ISO 4217 codes of the currencies legal tender somewhere today (per CLDR)."""
    today = date.today()
    found: set[str] = set()
    for territory in country_codes():
        found.update(get_territory_currencies(territory, start_date=today, tender=True))
    return frozenset(found)


def check_email(address: str) -> str:
    """A single address, stripped; raises ValueError saying what is wrong."""
    address = address.strip()
    if not address:
        raise ValueError("empty address")
    if len(address) > 254:
        raise ValueError("address longer than 254 characters")
    local, at, domain = address.rpartition("@")
    if not at:
        raise ValueError("address has no '@'")
    if not local or len(local) > 64 or not _LOCAL.match(local):
        raise ValueError("address has an invalid part before '@'")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("address has an invalid domain")
    if not _TLD.match(labels[-1]):
        raise ValueError("address has an invalid top-level domain")
    return address


def split_emails(text: str) -> list[str]:
    """Addresses separated by ';', ',' or white space, duplicates (ignoring case) removed."""
    seen: set[str] = set()
    found: list[str] = []
    for part in re.split(r"[;,\s]+", text):
        if part and part.lower() not in seen:
            seen.add(part.lower())
            found.append(part)
    return found


def check_country(code: str) -> str:
    normal = code.strip().upper()
    if normal not in country_codes():
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return normal


def check_currency(code: str) -> str:
    normal = code.strip().upper()
    if normal not in currency_codes():
        raise ValueError("not an ISO 4217 code of a currency in use")
    return normal


def check_iban(iban: str) -> str:
    """The IBAN without spaces, upper case, with a valid ISO 13616 mod-97 checksum."""
    normal = re.sub(r"\s+", "", iban).upper()
    if not _IBAN_FORM.match(normal):
        raise ValueError("IBAN must be 2 letters, 2 check digits and 11 to 30 letters or digits")
    if normal[:2] not in country_codes():
        raise ValueError(f"IBAN country {normal[:2]} is not a country code")
    expected = _IBAN_LENGTHS.get(normal[:2])
    if expected is not None and len(normal) != expected:
        raise ValueError(f"a {normal[:2]} IBAN has {expected} characters, not {len(normal)}")
    rearranged = normal[4:] + normal[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    if int(digits) % 97 != 1:
        raise ValueError("IBAN checksum is wrong (a typo?)")
    return normal


def check_bic(bic: str) -> str:
    """A BIC (ISO 9362) of 8 or 11 characters with a valid country."""
    normal = re.sub(r"\s+", "", bic).upper()
    match = _BIC_FORM.match(normal)
    if match is None:
        raise ValueError("BIC must be 8 or 11 letters and digits (bank, country, location)")
    if match.group(1) not in country_codes():
        raise ValueError(f"BIC country {match.group(1)} is not a country code")
    return normal


def check_creditor_code(code: str) -> str:
    """Creditor codes are upper case: letters, digits, '_', '.', '-'; at most 32."""
    normal = code.strip().upper()
    if not _CODE_FORM.match(normal):
        raise ValueError(
            "creditor code must be 1 to 32 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return normal
