"""The EPC QR code ("GiroCode") payload for a SEPA credit transfer, per EPC069-12 version 002.

Banking apps read a QR code that holds these lines, separated by LF::

    BCD          service tag
    002          version
    1            character set (1 = UTF-8)
    SCT          identification: SEPA credit transfer
    <BIC>        optional in version 002 inside the EEA
    <name>       the beneficiary, at most 70 characters
    <IBAN>
    EUR<amount>  0.01 to 999999999.99, "." as decimal point, no trailing zeros
    <purpose>    optional four-letter purpose code
    <reference>  a structured creditor reference (ISO 11649, "RF..."), at most 35 characters
    <text>       or else an unstructured remittance text, at most 140 characters

Exactly one of reference and text is given; trailing empty lines are left out. The payload is at
most 331 bytes. The code itself is drawn by segno (error correction level M, as the standard
asks) as an SVG ``data:`` URI, so a page shows it under a CSP that allows ``img-src data:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import segno

MAX_PAYLOAD_BYTES = 331
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999.99")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$")
_BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?$")
_PURPOSE = re.compile(r"^[A-Z]{4}$")
_RF = re.compile(r"^RF[0-9]{2}[A-Z0-9]{1,21}$")


@dataclass(frozen=True)
class TransferRequest:
    """What a debtor's banking app should fill in."""

    name: str
    iban: str
    amount: Decimal
    remittance: str
    bic: str = ""
    purpose: str = ""


def _mod97(text: str) -> int:
    digits = "".join(str(int(ch, 36)) for ch in text)
    return int(digits) % 97


def normal_iban(value: str) -> str:
    return "".join(value.split()).upper()


def iban_valid(value: str) -> bool:
    """Format and the ISO 13616 check digits."""
    iban = normal_iban(value)
    return bool(_IBAN.match(iban)) and _mod97(iban[4:] + iban[:4]) == 1


def is_creditor_reference(value: str) -> bool:
    """An ISO 11649 structured creditor reference (``RF`` + check digits + up to 21 chars)."""
    ref = "".join(value.split()).upper()
    return bool(_RF.match(ref)) and _mod97(ref[4:] + ref[:4]) == 1


def amount_text(amount: Decimal) -> str:
    """``EUR12.3`` for 12.30: two decimals at most, trailing zeros dropped (EPC069-12)."""
    text = f"{amount.quantize(Decimal('0.01')):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "EUR" + text


def epc_payload(request: TransferRequest) -> str:
    """The payload text; :class:`ValueError` names the field that does not fit the standard."""
    name = " ".join(request.name.split())
    if not 0 < len(name) <= 70:
        raise ValueError("name: 1 to 70 characters")
    iban = normal_iban(request.iban)
    if not iban_valid(iban):
        raise ValueError("iban: not a valid IBAN")
    bic = request.bic.strip().upper()
    if bic and not _BIC.match(bic):
        raise ValueError("bic: 8 or 11 letters and digits")
    if not MIN_AMOUNT <= request.amount <= MAX_AMOUNT:
        raise ValueError(f"amount: from {MIN_AMOUNT} to {MAX_AMOUNT} EUR")
    purpose = request.purpose.strip().upper()
    if purpose and not _PURPOSE.match(purpose):
        raise ValueError("purpose: four letters")
    remittance = " ".join(request.remittance.split())
    if not remittance:
        raise ValueError("remittance: a reference or text is needed")
    if is_creditor_reference(remittance):
        reference, text = "".join(remittance.split()).upper(), ""
    else:
        if len(remittance) > 140:
            raise ValueError("remittance: at most 140 characters")
        reference, text = "", remittance
    lines = ["BCD", "002", "1", "SCT", bic, name, iban, amount_text(request.amount)]
    lines += [purpose, reference, text]
    while lines and not lines[-1]:
        lines.pop()
    payload = "\n".join(lines)
    if len(payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"the payload exceeds {MAX_PAYLOAD_BYTES} bytes")
    return payload


def epc_qr_svg_uri(payload: str) -> str:
    """The QR code of ``payload`` as an SVG ``data:`` URI (error correction M, no boost)."""
    code = segno.make_qr(payload, error="m", boost_error=False, encoding="utf-8")
    return str(code.svg_data_uri(scale=4, border=4, title="EPC QR"))
