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


def test_cli_odd_inputs_get_a_clear_answer() -> None:
    """Empty, 1 MB, binary garbage (replacement characters, lone surrogates, raw non-UTF-8 bytes)
    and languages the models do not know: `other`, a low confidence, a suggestion, never a crash."""
    import random

    garbage = random.Random(0).randbytes(20_000)
    big = ("Hello, I will pay the rest of it next Friday. " * 25_000)[:1_000_000]
    records = {
        "empty": "",
        "replaced": garbage.decode("utf-8", "replace"),
        "surrogates": garbage.decode("utf-8", "surrogateescape"),
        "fr": "Bonjour, je ne comprends pas pourquoi je reçois cette lettre. J'ai déjà payé.",
        "zh": "您好，我不明白这封信是什么意思。我已经付款了，请查看您的记录。",
        "big": big,
    }
    lines = [
        json.dumps({"id": k, "text": v, "received": "2025-06-11T10:30:00+02:00"}).encode()
        for k, v in records.items()
    ]
    # a line whose bytes are not UTF-8 at all (inside the JSON string)
    lines.append(b'{"id": "raw", "text": "' + bytes(range(0x80, 0xFF)) + b'"}')
    hub = Path(sys.executable).with_name("hub")
    proc = subprocess.run(
        [str(hub), "classify"], input=b"\n".join(lines) + b"\n", capture_output=True, timeout=180,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = {r["id"]: r for r in map(json.loads, proc.stdout.decode("utf-8").splitlines())}
    assert set(out) == {*records, "raw"}
    for reply_id, result in out.items():
        assert "error" not in result, reply_id
        assert set(result["scores"]) == {
            "dispute", "payment_promise", "installment_request", "other",
        }  # fmt: skip
        assert isinstance(result["spans"], dict)
        assert 0.0 <= result["confidence"] <= 1.0
        if reply_id == "big":
            continue
        assert result["intent"] == "other", reply_id
        assert result["lang"] == "other", reply_id
        assert result["is_suggestion"] is True, reply_id
        assert result["confidence"] <= 0.25, reply_id
    assert out["big"]["lang"] == "en" and out["big"]["intent"] == "payment_promise"
    start, end = out["big"]["spans"]["date"]
    assert big[start:end] == "next Friday"


def test_swedish_is_read_by_the_danish_model_but_only_suggested(classifier: Classifier) -> None:
    text = "Hej, jag betalar 850 kronor på fredag. Med vänliga hälsningar, Anders"
    result = classifier.classify(text, RECEIVED, Claim(Decimal("850"), "SEK", "R-3"))
    assert result.language == "other"
    assert result.intent == "payment_promise"
    assert result.is_suggestion is True
