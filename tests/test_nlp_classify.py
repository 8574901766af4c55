"""The committed models: clear replies per language and intent, odd inputs, and `hub classify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from hub.nlp.fields import Claim
from hub.nlp.model import Classifier

RECEIVED = datetime(2025, 6, 11, 10, 30, tzinfo=timezone(timedelta(hours=2)))  # a Wednesday


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


CLEAR = [
    ("en", "I already paid this invoice last month, check your records.", "dispute"),
    ("en", "I will pay the full amount next Friday.", "payment_promise"),
    ("en", "Could I pay this in 4 monthly payments of £100?", "installment_request"),
    ("en", "Please send me a copy of the invoice.", "other"),
    ("de", "Ich habe die Rechnung schon bezahlt, bitte prüfen Sie das.", "dispute"),
    ("de", "Ich überweise den Betrag nächsten Freitag.", "payment_promise"),
    ("de", "Kann ich in 3 Raten à 100 € zahlen?", "installment_request"),
    ("de", "Bitte schicken Sie mir eine Kopie der Rechnung.", "other"),
    ("da", "Jeg har allerede betalt regningen, tjek jeres system.", "dispute"),
    ("da", "Jeg betaler det hele på fredag.", "payment_promise"),
    ("da", "Kan jeg betale 500 kr om måneden i 6 måneder?", "installment_request"),
    ("da", "Kan I sende mig en kopi af fakturaen?", "other"),
]


@pytest.mark.parametrize(("lang", "text", "intent"), CLEAR, ids=[c[1][:30] for c in CLEAR])
def test_clear_replies(classifier: Classifier, lang: str, text: str, intent: str) -> None:
    result = classifier.classify(text, RECEIVED, Claim(Decimal("400"), "EUR", "R-1"))
    assert result.language == lang
    assert result.intent == intent
    assert 0.0 <= result.confidence <= 1.0
    assert abs(sum(result.scores.values()) - 1.0) < 1e-3
    assert result.is_suggestion == (result.confidence < classifier.threshold)


def test_promise_fields_with_spans(classifier: Classifier) -> None:
    text = "Ich überweise die 250,00 € nächsten Freitag."
    result = classifier.classify(text, RECEIVED, Claim(Decimal("250"), "EUR", "R-1"))
    assert result.intent == "payment_promise"
    assert result.fields == {"amount": 250, "currency": "EUR", "date": "2025-06-13"}
    start, end = result.spans["amount"]
    assert text[start:end] == "250,00 €"
    start, end = result.spans["date"]
    assert text[start:end] == "nächsten Freitag"


def test_installment_fields(classifier: Classifier) -> None:
    text = "Can I pay 4 monthly payments of £320 starting next month?"
    result = classifier.classify(text, RECEIVED, Claim(Decimal("1280"), "GBP", "R-2"))
    assert result.intent == "installment_request"
    assert result.fields == {
        "installments": 4,
        "amount_per_installment": 320,
        "frequency": "monthly",
        "start_date": "2025-07-01",
    }


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t", "\x00\x01\x02 \ufffd\ufffd", "%PDF-1.4 \x89PNG\r\n\x1a\n" * 50, "x" * 1_000_000,
     "Bonjour, je voudrais savoir pourquoi je reçois cette lettre."],
)  # fmt: skip
def test_odd_input_gives_a_valid_answer(classifier: Classifier, text: str) -> None:
    result = classifier.classify(text, RECEIVED, Claim())
    assert result.intent in ("dispute", "payment_promise", "installment_request", "other")
    payload = json.dumps(result.to_json("x"))
    assert json.loads(payload)["id"] == "x"
    if not text.strip():
        assert result.intent == "other" and result.is_suggestion


def test_cli_round_trip() -> None:
    lines = [
        {"id": "a", "text": "I will pay £50 tomorrow.", "received": "2025-06-11T10:30:00+02:00",
         "claim": {"amount": 50, "currency": "GBP", "reference": "R-9"}},
        "this is not json",
        {"id": "c", "text": 42},
        {"id": "d", "text": "Jeg betaler 1.250 kr. sidst på måneden.",
         "received": "2025-06-11T10:30:00+02:00"},
        {"id": "e", "text": "Ich zahle heute", "received": "not a date"},
    ]  # fmt: skip
    stdin = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    hub = Path(sys.executable).with_name("hub")
    proc = subprocess.run(
        [str(hub), "classify"], input=stdin, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 5
    a, b, c, d, e = out
    assert a["id"] == "a" and a["lang"] == "en" and a["intent"] == "payment_promise"
    assert a["fields"]["date"] == "2025-06-12" and a["fields"]["amount"] == 50
    assert set(a) >= {"id", "lang", "intent", "confidence", "is_suggestion", "also", "fields"}
    assert "spans" in a["fields"]
    assert b["id"] == 2 and "error" in b
    assert c["id"] == "c" and "error" in c
    assert d["lang"] == "da" and d["intent"] == "payment_promise"
    assert d["fields"]["date"] == "2025-06-30" and d["fields"]["amount"] == 1250
    assert e["id"] == "e" and "error" in e


async def test_process_pool_keeps_the_event_loop_free() -> None:
    import asyncio

    from hub.nlp.pool import ClassifierPool

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        async with ClassifierPool(workers=1) as pool:
            results = await pool.classify_many(
                [(text, RECEIVED, Claim()) for _, text, _ in CLEAR], batch_size=4
            )
    finally:
        task.cancel()
    assert [r.intent for r in results] == [intent for _, _, intent in CLEAR]
    assert ticks > 10  # the loop kept running while the worker loaded models and classified
