"""``hub classify``: JSON lines in (id, text, received?, claim?), one JSON line out per input.

Input that is not UTF-8 is decoded with replacement characters. A bad input line gives an error
line for that id (or line number) and processing goes on. Runs the classifier in this process
(the CLI has no event loop to protect); the service uses hub.nlp.pool.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from hub.nlp.fields import Claim
from hub.nlp.model import Classifier


def _parse(line: str) -> tuple[Any, str, datetime | None, Claim]:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    received = None
    if record.get("received"):
        received = datetime.fromisoformat(str(record["received"]))
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
    raw_claim = record.get("claim") or {}
    if not isinstance(raw_claim, dict):
        raise ValueError("'claim' must be an object")
    amount = raw_claim.get("amount")
    try:
        claim_amount = Decimal(str(amount)) if amount is not None else None
    except InvalidOperation as exc:
        raise ValueError("'claim.amount' must be a number") from exc
    claim = Claim(claim_amount, raw_claim.get("currency"), raw_claim.get("reference"))
    return record.get("id"), text, received, claim


@click.command("classify")
@click.option(
    "--models",
    "models_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Directory of trained pipelines (default: nlp_models/models of this checkout).",
)
def classify(models_dir: Path | None) -> None:
    """Classify debtor replies read as JSON lines on standard input."""
    classifier = Classifier.load(models_dir)
    out = sys.stdout
    # bytes, decoded per line: a line that is not UTF-8 is read with replacement characters
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        line = raw.decode("utf-8", "replace")
        if not line.strip():
            continue
        reply_id: Any = number
        try:
            try:
                reply_id = json.loads(line).get("id", number)
            except (ValueError, AttributeError):
                reply_id = number
            reply_id, text, received, claim = _parse(line)
            result = classifier.classify(text, received, claim).to_json(reply_id)
        except (ValueError, TypeError, KeyError) as exc:
            result = {"id": reply_id, "line": number, "error": str(exc)[:200]}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    out.flush()
