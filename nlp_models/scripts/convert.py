"""Convert the labelled JSONL corpus of one language into spaCy DocBin files.

Writes <out_dir>/{intent,detail}_{train,dev,eval}/<lang>.spacy. Each language's model is trained
on the train files of ALL languages (a directory is one spaCy corpus): measured on the dev splits it
is as good or better than training on one language, and debtors mix languages.
  intent_*: doc.cats = the four intents (exclusive), for the intent model
  detail_*: doc.cats = "reason:*" (disputes only), "subtype:*" (other only) and "also:*"
    (every reply), for the multi-label detail model; labels that do not apply to a reply are
    left out of doc.cats, so spaCy treats them as missing, not as negative
  *_eval from the evaluation split (never used for training or for choosing a model: spaCy's
    dev corpus is carved from TRAIN only)

The dev split is stratified by intent and seeded, so the conversion is reproducible.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import spacy
import typer
from spacy.tokens import DocBin

from hub.nlp.features import model_text

INTENTS = ("dispute", "payment_promise", "installment_request", "other")
REASONS = (
    "already_paid",
    "not_received",
    "defective",
    "wrong_amount",
    "not_owed",
    "cancelled",
    "other",
)
SUBTYPES = (
    "question",
    "invoice_copy",
    "contact_change",
    "hardship",
    "cease_contact",
    "thanks",
    "gdpr_request",
    "out_of_office",
    "unrelated",
)


def read_jsonl(path: Path, limit: int = 0) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                records.append(json.loads(line))
    if limit:
        records = records[:limit]
    return records


def intent_cats(record: dict[str, Any]) -> dict[str, float]:
    return {label: float(record["intent"] == label) for label in INTENTS}


def detail_cats(record: dict[str, Any]) -> dict[str, float]:
    cats: dict[str, float] = {}
    fields = record.get("fields") or {}
    if record["intent"] == "dispute" and fields.get("reason") in REASONS:
        for reason in REASONS:
            cats[f"reason:{reason}"] = float(fields["reason"] == reason)
    if record["intent"] == "other" and fields.get("subtype") in SUBTYPES:
        for subtype in SUBTYPES:
            cats[f"subtype:{subtype}"] = float(fields["subtype"] == subtype)
    also = set(record.get("also") or [])
    for intent in INTENTS:
        cats[f"also:{intent}"] = float(intent in also)
    return cats


def split_dev(
    records: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    by_intent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_intent[record["intent"]].append(record)
    rng = random.Random(seed)
    train: list[dict[str, Any]] = []
    dev: list[dict[str, Any]] = []
    for intent in sorted(by_intent):
        group = sorted(by_intent[intent], key=lambda r: r["id"])
        rng.shuffle(group)
        n_dev = max(1, round(len(group) * fraction)) if len(group) > 1 else 0
        dev.extend(group[:n_dev])
        train.extend(group[n_dev:])
    return train, dev


def write(nlp: spacy.language.Language, records: list[dict[str, Any]], out: Path) -> None:
    intent_bin = DocBin(store_user_data=False)
    detail_bin = DocBin(store_user_data=False)
    for record in records:
        doc = nlp.make_doc(model_text(record["text"], nlp.lang))
        doc.cats = intent_cats(record)
        intent_bin.add(doc)
        doc2 = nlp.make_doc(model_text(record["text"], nlp.lang))
        doc2.cats = detail_cats(record)
        detail_bin.add(doc2)
    for kind in ("intent", "detail"):
        (out.parent / f"{kind}_{out.name}").mkdir(parents=True, exist_ok=True)
    intent_bin.to_disk(out.parent / f"intent_{out.name}" / f"{nlp.lang}.spacy")
    detail_bin.to_disk(out.parent / f"detail_{out.name}" / f"{nlp.lang}.spacy")


def main(
    lang: str,
    train_path: Path,
    eval_path: Path,
    out_dir: Path,
    dev_fraction: float = 0.15,
    seed: int = 0,
    limit: int = 0,
) -> None:
    nlp = spacy.blank(lang)
    records = read_jsonl(train_path, limit)
    train, dev = split_dev(records, dev_fraction, seed)
    evaluation = read_jsonl(eval_path, limit)
    for name, part in (("train", train), ("dev", dev), ("eval", evaluation)):
        write(nlp, part, out_dir / name)
    print(f"{lang}: {len(train)} train, {len(dev)} dev, {len(evaluation)} eval -> {out_dir}")


if __name__ == "__main__":
    typer.run(main)
