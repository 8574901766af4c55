"""Language detection: en, de, da, and "other" for the rest (Danish vs Norwegian included)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from hub.nlp.language import LanguageDetector

ASSETS = Path(__file__).resolve().parents[1] / "nlp_models" / "assets" / "eval"


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I will pay the invoice next Friday, sorry for the delay.", "en"),
        ("Ich werde die Rechnung nächsten Freitag bezahlen, entschuldigen Sie bitte.", "de"),
        ("Jeg betaler regningen på fredag. Undskyld forsinkelsen. Venlig hilsen Lise", "da"),
        ("Bonjour, je vais payer la facture la semaine prochaine.", "other"),
        ("Hola, pagaré la factura el viernes, gracias.", "other"),
        ("Hej, jag betalar fakturan på fredag. Med vänliga hälsningar", "other"),
        ("Hei, eg kan ikkje betale før neste veke. Korleis gjer eg det?", "other"),
        ("Buongiorno, pagherò la fattura venerdì prossimo.", "other"),
    ],
)
def test_detect(detector: LanguageDetector, text: str, expected: str) -> None:
    assert detector.detect(text).lang == expected


def test_empty_and_garbage(detector: LanguageDetector) -> None:
    assert detector.detect("").lang == "other"
    assert detector.detect("12345 !!! ???").lang == "other"
    assert detector.detect("\x00\x01\x02\ufffd").lang == "other"
    # a hint (the case's language) decides when there is nothing to judge
    assert detector.detect("", hint="da").lang == "da"


def test_corpus_accuracy(detector: LanguageDetector) -> None:
    hits: Counter[bool] = Counter()
    for lang in ("en", "de", "da"):
        for line in (ASSETS / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                hits[detector.detect(record["text"]).lang == record["lang"]] += 1
    accuracy = hits[True] / (hits[True] + hits[False])
    assert accuracy >= 0.97, accuracy
