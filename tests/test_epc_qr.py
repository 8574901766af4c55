"""The EPC QR payload (EPC069-12 version 002) line by line, its limits, and the drawn code."""

from __future__ import annotations

import base64
from decimal import Decimal
from urllib.parse import unquote

import pytest

from hub.domain.epc_qr import (
    TransferRequest,
    amount_text,
    epc_payload,
    epc_qr_svg_uri,
    iban_valid,
    is_creditor_reference,
)

IBAN = "DE89 3704 0044 0532 0130 00"


def test_payload_lines_follow_the_standard() -> None:
    payload = epc_payload(
        TransferRequest(
            name="Nordlicht Energie GmbH",
            iban=IBAN,
            bic="cobadeffxxx",
            amount=Decimal("310.50"),
            remittance="NL-2026-0042",
        )
    )
    assert payload.split("\n") == [
        "BCD",  # service tag
        "002",  # version
        "1",  # UTF-8
        "SCT",  # SEPA credit transfer
        "COBADEFFXXX",
        "Nordlicht Energie GmbH",
        "DE89370400440532013000",  # spaces removed
        "EUR310.5",  # no trailing zero
        "",  # no purpose
        "",  # not a structured (RF) reference
        "NL-2026-0042",  # the case reference as unstructured remittance text
    ]
    assert "\r" not in payload and len(payload.encode()) <= 331


def test_structured_creditor_reference_goes_to_its_own_line() -> None:
    assert is_creditor_reference("RF18 5390 0754 7034")
    payload = epc_payload(
        TransferRequest("ACME", IBAN, Decimal("12"), "RF18539007547034", bic="")
    ).split("\n")
    assert payload[4] == "" and payload[7] == "EUR12"
    assert payload[9] == "RF18539007547034" and len(payload) == 10  # trailing text line left out


@pytest.mark.parametrize(
    ("amount", "text"),
    [("0.01", "EUR0.01"), ("1250.00", "EUR1250"), ("999999999.99", "EUR999999999.99")],
)
def test_amount_format(amount: str, text: str) -> None:
    assert amount_text(Decimal(amount)) == text


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": Decimal("0")},
        {"amount": Decimal("1000000000")},
        {"iban": "DE89370400440532013001"},  # wrong check digits
        {"bic": "COBA"},
        {"name": "x" * 71},
        {"remittance": "y" * 141},
        {"remittance": "  "},
    ],
)
def test_values_outside_the_standard_are_refused(changes: dict[str, object]) -> None:
    values: dict[str, object] = {
        "name": "ACME",
        "iban": IBAN,
        "amount": Decimal("10"),
        "remittance": "A-1",
    }
    values.update(changes)
    with pytest.raises(ValueError):
        epc_payload(TransferRequest(**values))  # type: ignore[arg-type]


def test_iban_check_digits() -> None:
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")


def test_qr_code_is_an_inline_svg_of_the_payload() -> None:
    payload = epc_payload(TransferRequest("ACME", IBAN, Decimal("10"), "A-1"))
    uri = epc_qr_svg_uri(payload)
    assert uri.startswith("data:image/svg+xml")
    body = (
        unquote(uri.split(",", 1)[1])
        if ";base64" not in uri
        else base64.b64decode(uri.split(",", 1)[1]).decode()
    )
    assert "<svg" in body and "<path" in body
