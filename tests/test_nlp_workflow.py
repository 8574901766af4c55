"""The spaCy project workflow itself (convert -> train -> install -> evaluate) on a tiny slice.

Copies project.yml, configs and scripts into a temporary directory, writes a few dozen records per
language as the corpus, and runs `spacy project run all` with a handful of training steps: the
declared steps, their inputs and outputs and metrics.json must all work together.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1] / "nlp_models"


def _slice(source: Path, target: Path, per_intent: int) -> None:
    kept: dict[str, int] = {}
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        intent = json.loads(line)["intent"]
        if kept.get(intent, 0) < per_intent:
            kept[intent] = kept.get(intent, 0) + 1
            lines.append(line)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_project_workflow_on_a_small_slice(tmp_path: Path) -> None:
    shutil.copy(PROJECT / "project.yml", tmp_path / "project.yml")
    shutil.copytree(PROJECT / "configs", tmp_path / "configs")
    shutil.copytree(PROJECT / "scripts", tmp_path / "scripts")
    for lang in ("en", "de", "da"):
        _slice(
            PROJECT / "assets" / "train" / f"{lang}.jsonl",
            tmp_path / "assets" / "train" / f"{lang}.jsonl",
            8,
        )
        _slice(
            PROJECT / "assets" / "eval" / f"{lang}.jsonl",
            tmp_path / "assets" / "eval" / f"{lang}.jsonl",
            3,
        )
    proc = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "all", str(tmp_path),
         "--vars.max_steps", "20", "--vars.eval_frequency", "10"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for lang in ("en", "de", "da"):
        m = metrics["languages"][lang]
        assert m["n"] == 12
        assert set(m["per_class"]) == {"dispute", "payment_promise", "installment_request", "other"}
        assert sum(map(sum, m["confusion"]["matrix"])) == 12
        assert 0.0 <= m["macro_f1"] <= 1.0
        for part in ("intent", "detail"):
            model = tmp_path / "models" / lang / part
            assert (model / "config.cfg").is_file()
            assert not (model / "optimizer").exists()
    assert "promise_date" in metrics["fields"]
    classifier_meta = json.loads((tmp_path / "models" / "classifier.json").read_text())
    assert 0.0 < classifier_meta["threshold"] <= 1.0
    assert classifier_meta["model_version"] == metrics["model_version"]
    # the dev split came from train only: 8 per intent -> 1 dev record per intent, 7 train
    dev = (tmp_path / "corpus" / "intent_dev" / "en.spacy").stat().st_size
    train = (tmp_path / "corpus" / "intent_train" / "en.spacy").stat().st_size
    assert 0 < dev < train
