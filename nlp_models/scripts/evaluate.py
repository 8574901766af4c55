"""Evaluate the trained pipelines on the EVALUATION split and write metrics.json.

Runs the full hub classifier (hub.nlp.model: language detection, intent, detail, field extraction)
on assets/eval/<lang>.jsonl, so the figures are the ones `hub classify` produces. Per language:
per-class precision/recall/F1, macro-F1, accuracy, confusion matrix; field accuracies computed as
/work/shared/tools/score_intents.py does (end to end: a promise the intent model missed counts as a
wrong date), plus ``promise_date_given_intent``: the date rules alone on every gold promise.
Then chooses the confidence threshold: the lowest threshold at which the accepted predictions
(confidence >= threshold), pooled over the languages, reach the target precision;
writes it with the model version into <models>/classifier.json.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer

from hub.nlp.fields import Claim, extract_fields
from hub.nlp.model import INTENTS, Classifier


def _num(x: Any) -> Any:
    try:
        return None if x is None else round(float(x), 2)
    except (TypeError, ValueError):
        return "bad"


def per_class(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {"per_class": {}}
    f1s = []
    for c in INTENTS:
        tp = sum(1 for g, p in pairs if g == c and p == c)
        fp = sum(1 for g, p in pairs if g != c and p == c)
        fn = sum(1 for g, p in pairs if g == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1s.append(f1)
        out["per_class"][c] = {
            "precision": round(prec, 4),
            "recall": round(rec, 4),
            "f1": round(f1, 4),
            "support": tp + fn,
        }
    out["macro_f1"] = round(sum(f1s) / len(f1s), 4)
    out["accuracy"] = round(sum(1 for g, p in pairs if g == p) / max(1, len(pairs)), 4)
    out["confusion"] = {
        "rows_gold_cols_predicted": list(INTENTS),
        "matrix": [
            [sum(1 for g, p in pairs if g == gi and p == pi) for pi in INTENTS] for gi in INTENTS
        ],
    }
    return out


def choose_threshold(scored: list[tuple[float, bool]], target: float) -> dict[str, Any]:
    for t in [i / 100 for i in range(25, 100)]:
        accepted = [ok for conf, ok in scored if conf >= t]
        if accepted and sum(accepted) / len(accepted) >= target:
            return {
                "threshold": t,
                "accepted_share": round(len(accepted) / len(scored), 4),
                "accepted_precision": round(sum(accepted) / len(accepted), 4),
                "target_precision": target,
            }
    return {
        "threshold": 1.0,
        "accepted_share": 0.0,
        "accepted_precision": None,
        "target_precision": target,
    }


def corpus_version(assets: Path) -> str:
    """A hash of what made the models: training corpus, configs, steps and the model text."""
    from hub.nlp import features

    project = assets.parent
    h = hashlib.sha256()
    paths = [*sorted(assets.glob("train/*.jsonl")), *sorted(project.glob("configs/*.cfg"))]
    paths += [project / "project.yml", Path(features.__file__)]
    for path in paths:
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def main(models: Path, eval_dir: Path, output: Path, target_precision: float = 0.97) -> None:
    classifier = Classifier.load(models)
    metrics: dict[str, Any] = {"languages": {}}
    scored: list[tuple[float, bool]] = []
    fields_ok: dict[str, list[bool]] = {
        "promise_date": [],
        "promise_date_given_intent": [],
        "promise_amount": [],
        "installment_count": [],
        "dispute_reason": [],
        "other_subtype": [],
        "language_id": [],
    }
    n = 0
    t0 = time.perf_counter()
    for lang in ("en", "de", "da"):
        pairs = []
        for line in (eval_dir / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            claim = Claim(
                Decimal(str(r["claim"]["amount"])),
                r["claim"].get("currency"),
                r["claim"].get("reference"),
            )
            c = classifier.classify(r["text"], datetime.fromisoformat(r["received"]), claim)
            n += 1
            pairs.append((r["intent"], c.intent))
            scored.append((c.confidence, c.intent == r["intent"]))
            fields_ok["language_id"].append(c.language == r["lang"])
            g, f = r["fields"], c.fields
            if r["intent"] == "payment_promise":
                if g.get("date"):
                    fields_ok["promise_date"].append(f.get("date") == g["date"])
                    # the extraction alone: the fields of a payment promise, whatever the intent
                    # model said (the intent is measured by the F1 figures above)
                    given, _ = extract_fields(
                        "payment_promise", r["text"],
                        classifier._model_lang(c.language, claim),
                        datetime.fromisoformat(r["received"]), claim, {},
                    )  # fmt: skip
                    fields_ok["promise_date_given_intent"].append(given.get("date") == g["date"])
                fields_ok["promise_amount"].append(_num(f.get("amount")) == _num(g.get("amount")))
            if r["intent"] == "installment_request" and g.get("installments") is not None:
                fields_ok["installment_count"].append(f.get("installments") == g["installments"])
            if r["intent"] == "dispute":
                fields_ok["dispute_reason"].append(f.get("reason") == g.get("reason"))
            if r["intent"] == "other":
                fields_ok["other_subtype"].append(f.get("subtype") == g.get("subtype"))
        metrics["languages"][lang] = {"n": len(pairs), **per_class(pairs)}
    elapsed = time.perf_counter() - t0
    metrics["fields"] = {
        k: {"accuracy": round(sum(v) / len(v), 4) if v else None, "n": len(v)}
        for k, v in fields_ok.items()
    }
    metrics["confidence"] = choose_threshold(scored, target_precision)
    metrics["speed"] = {
        "replies": n,
        "seconds": round(elapsed, 2),
        "replies_per_second": round(n / elapsed, 1),
    }
    version = f"{datetime.now().strftime('%Y%m%d')}-{corpus_version(eval_dir.parent)}"
    metrics["model_version"] = version
    output.write_text(json.dumps(metrics, indent=2) + "\n")
    (models / "classifier.json").write_text(
        json.dumps(
            {
                "threshold": metrics["confidence"]["threshold"],
                "model_version": version,
                "target_precision": target_precision,
            },
            indent=2,
        )
        + "\n"
    )
    for lang, m in metrics["languages"].items():
        print(f"{lang}: macro-F1 {m['macro_f1']:.3f} accuracy {m['accuracy']:.3f}")
    print("fields:", {k: v["accuracy"] for k, v in metrics["fields"].items()})
    print("threshold:", metrics["confidence"])


if __name__ == "__main__":
    typer.run(main)
