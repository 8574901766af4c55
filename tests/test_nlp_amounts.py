"""Money amounts in the local ways debtors write them, with currencies and spans."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub.nlp.amounts import find_amounts, parse_number

CASES = [
    ("de", "Ich zahle 1.250,00 € am Freitag", "1250.00", "EUR", "1.250,00 €"),
    ("en", "EUR 1,250.00 will follow", "1250.00", "EUR", "EUR 1,250.00"),
    ("da", "Jeg betaler 1250 kr. på fredag", "1250", "DKK", "1250 kr."),
    ("da", "Jeg betaler 250,- i morgen", "250", None, "250,-"),
    ("de", "75.– bis Ende Juni", "75", None, "75.–"),
    ("de", "CHF 1'250.– überweise ich", "1250", "CHF", "CHF 1'250.–"),
    ("en", "I can pay fifty euros", "50", "EUR", "fifty euros"),
    ("en", "two hundred and fifty pounds next week", "250", "GBP", "two hundred and fifty pounds"),
    ("da", "jeg kan betale halvtreds kroner", "50", "DKK", "halvtreds kroner"),
    ("de", "ich kann fünfzig Euro zahlen", "50", "EUR", "fünfzig Euro"),
    ("en", "We are paying £2,050 today", "2050", "GBP", "£2,050"),
    ("en", "the $1,480 paid by month end", "1480", "USD", "$1,480"),
    ("en", "I'm sending 140 EUR right now", "140", "EUR", "140 EUR"),
    ("de", "Übermorgen sind die 42,50 drüben", "42.50", None, "42,50"),
    ("da", "de 7.600 kr. betaler jeg", "7600", "DKK", "7.600 kr."),
    ("en", "USD 99.99 tomorrow", "99.99", "USD", "USD 99.99"),
    ("de", "1.575,00 EUR in drei Raten", "1575.00", "EUR", "1.575,00 EUR"),
    ("da", "Jeg kan betale 800 DKK om måneden", "800", "DKK", "800 DKK"),
    ("en", "€500 on Friday", "500", "EUR", "€500"),
    ("de", "Ich zahl d'160 Franken am Samstag", "160", "CHF", "160 Franken"),
]


@pytest.mark.parametrize(
    ("lang", "text", "value", "currency", "span"), CASES, ids=[c[1][:30] for c in CASES]
)
def test_amounts(lang: str, text: str, value: str, currency: str | None, span: str) -> None:
    found = find_amounts(text, lang)
    assert found, text
    first = found[0]
    assert first.value == Decimal(value)
    assert first.currency == currency
    assert first.text == span
    assert text[first.start : first.end] == span


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.250,00", "1250.00"),  # German/Danish
        ("1,250.00", "1250.00"),  # English: never 1.25 (the non-strict Babel trap)
        ("1 250,00", "1250.00"),
        ("1'250.50", "1250.50"),
        ("1,250", "1250"),
        ("1.250", "1250"),
        ("42,5", "42.5"),
        ("99.99", "99.99"),
        ("250,-", "250"),
    ],
)
def test_parse_number_decides_the_locale_from_the_number(raw: str, expected: str) -> None:
    assert parse_number(raw) == Decimal(expected)


def test_malformed_numbers_are_refused() -> None:
    assert parse_number("1.2.3,4.5") is None
    assert parse_number("") is None


def test_times_references_and_ordinary_words_are_not_amounts() -> None:
    texts = {a.text for a in find_amounts("Ref INV-2025-2063, call me at 14:30", "en")}
    assert texts == set()
    # "a", "ein", "en" are articles, not the number one
    assert find_amounts("I have a question about an invoice", "en") == []
    assert find_amounts("Ich habe eine Frage", "de") == []
    assert find_amounts("Jeg har en regning", "da") == []
