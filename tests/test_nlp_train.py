"""``hub train``: retrain in a temporary copy, keep the old model when the new one is worse.

Runs on a tiny project in a temporary directory (a few records per intent, a few dozen steps,
English only). Its evaluation split is a part of its training slice, on purpose: a model trained
on the true labels then scores well on it and one trained on rotated labels scores badly, so
"better" and "worse" are certain and the test is about keeping and replacing, not about quality.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hub.nlp.training import INTENTS, train, training_record

PROJECT = Path(__file__).resolve().parents[1] / "nlp_models"
PER_INTENT = 10
STEPS = "40"


def _slice(lang: str, per_intent: int) -> list[dict[str, object]]:
    kept: dict[str, int] = {}
    records = []
    for line in (PROJECT / "assets" / "train" / f"{lang}.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if kept.get(record["intent"], 0) < per_intent:
            kept[record["intent"]] = kept.get(record["intent"], 0) + 1
            records.append(record)
    return records


def _write(path: Path, records: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _rotated(records: list[dict[str, object]]) -> list[dict[str, object]]:
    shift = {a: b for a, b in zip(INTENTS, INTENTS[1:] + INTENTS[:1], strict=True)}
    return [{**r, "intent": shift[str(r["intent"])], "fields": {}, "also": []} for r in records]


def _fingerprint(project: Path) -> dict[str, str]:
    files = [*(project / "models").rglob("*"), project / "metrics.json"]
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
        if p.is_file()
    }


def _project(tmp_path: Path) -> tuple[Path, dict[str, list[dict[str, object]]]]:
    project = tmp_path / "nlp"
    project.mkdir()
    shutil.copy(PROJECT / "project.yml", project / "project.yml")
    shutil.copytree(PROJECT / "configs", project / "configs")
    shutil.copytree(PROJECT / "scripts", project / "scripts")
    slices = {}
    for lang in ("en", "de", "da"):
        slices[lang] = _slice(lang, PER_INTENT)
        _write(project / "assets" / "train" / f"{lang}.jsonl", slices[lang])
        # every third training record: an evaluation split the true labels can reach
        _write(project / "assets" / "eval" / f"{lang}.jsonl", slices[lang][::3])
    return project, slices


def test_train_keeps_the_old_model_when_worse_and_replaces_it_otherwise(tmp_path: Path) -> None:
    project, slices = _project(tmp_path)

    # no model yet: whatever is trained is installed (here one taught rotated labels: a bad one)
    _write(project / "assets" / "train" / "en.jsonl", _rotated(slices["en"]))
    first = train([], project=project, languages=["en"], max_steps=int(STEPS))
    assert [(o.lang, o.old_macro_f1, o.replaced) for o in first.outcomes] == [("en", None, True)]
    assert (project / "models" / "en" / "intent" / "config.cfg").is_file()
    assert not (project / "models" / "de").exists()  # only the language asked for
    bad = first.outcomes[0].new_macro_f1
    assert bad <= 0.3
    before = _fingerprint(project)

    # better: the true labels plus collectors' labels (one of them unusable)
    _write(project / "assets" / "train" / "en.jsonl", slices["en"])
    corrections = [
        {**r, "corrected": True, "model_intent": "other", "model_version": "x"}
        for r in slices["en"][:4]
    ] + [{"lang": "other", "text": "Bonjour", "intent": "other", "fields": {}, "also": []}]
    second = train(corrections, project=project, languages=["en"], max_steps=int(STEPS))
    assert second.corrections == {"en": 4, "de": 0, "da": 0}
    assert second.skipped_corrections == 1
    outcome = second.outcomes[0]
    assert outcome.old_macro_f1 == bad
    assert outcome.new_macro_f1 >= 0.75 and outcome.replaced
    after = _fingerprint(project)
    assert after["models/en/intent/textcat/model"] != before["models/en/intent/textcat/model"]
    before = after
    metrics = json.loads((project / "metrics.json").read_text())
    assert metrics["languages"]["en"]["macro_f1"] == outcome.new_macro_f1
    meta = json.loads((project / "models" / "classifier.json").read_text())
    assert 0.0 < meta["threshold"] <= 1.0

    # worse: rotated labels again, through the CLI; nothing may change
    _write(project / "assets" / "train" / "en.jsonl", _rotated(slices["en"]))
    hub = Path(sys.executable).with_name("hub")
    proc = subprocess.run(
        [str(hub), "train", "--project", str(project), "--lang", "en", "--no-corrections",
         "--max-steps", STEPS],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "error"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"en: eval macro-F1 old {outcome.new_macro_f1:.4f}" in proc.stdout
    assert "kept the old model" in proc.stdout
    assert _fingerprint(project) == before  # byte for byte
    assert not [p for p in project.iterdir() if p.name.startswith(".train-")]


def test_training_record_keeps_labels_md_keys_only() -> None:
    record = {
        "id": "de-hub-7", "lang": "de", "received": "2025-06-11T10:00:00+02:00",
        "claim": {"amount": 10, "currency": "EUR", "reference": "R"}, "text": "Ich zahle morgen.",
        "intent": "payment_promise", "fields": {"amount": None, "currency": None, "date": None},
        "also": [], "corrected": True, "model_intent": "other", "model_version": "v",
    }  # fmt: skip
    out = training_record(record)
    assert out is not None
    assert set(out) == {"id", "lang", "received", "claim", "text", "intent", "fields", "also"}
    assert training_record({**record, "text": "  "}) is None
    assert training_record({**record, "lang": "other"}) is None
    assert training_record({**record, "intent": "maybe"}) is None
