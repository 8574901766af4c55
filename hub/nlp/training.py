"""Retraining the reply classifier (``hub train``): corpus plus collectors' labels, keep the better.

Works in a temporary copy of the spaCy project (``nlp_models/``) created next to it, so the models
in use are never touched while training runs:

1. the training corpus is ``assets/train/<lang>.jsonl`` plus the labelled replies collectors
   confirmed or corrected in the hub (LABELS.md records, see
   :mod:`hub.services.corrections_export`), each appended to its language's file;
2. ``spacy project run`` converts, trains the chosen languages and installs the new pipelines;
3. the current models and the new ones are evaluated on the evaluation split
   (``assets/eval``, never trained on) with ``scripts/evaluate.py``, i.e. through the full
   classifier;
4. per language, the new pipelines replace the old ones only where their macro-F1 is not lower;
   the directory swap is a rename on the same file system. If any language changed, the
   threshold (``classifier.json``) and ``metrics.json`` are recomputed for the combination now in
   use; if none changed, nothing under the project is written.

CPU-bound and minutes long: a CLI job, not something the server runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.nlp.language import SUPPORTED

#: the keys of a LABELS.md record; the export adds bookkeeping keys that training does not need
RECORD_KEYS = ("id", "lang", "received", "claim", "text", "intent", "fields", "also")
INTENTS = ("dispute", "payment_promise", "installment_request", "other")
_COPIED = ("project.yml", "configs", "scripts")


def default_project_dir() -> Path:
    """The spaCy project committed in the repository (nlp_models/)."""
    return Path(__file__).resolve().parents[2] / "nlp_models"


class TrainingError(RuntimeError):
    """A step of the spaCy project failed; the models in use were not touched."""


@dataclass
class LanguageOutcome:
    lang: str
    old_macro_f1: float | None
    new_macro_f1: float
    replaced: bool


@dataclass
class TrainReport:
    outcomes: list[LanguageOutcome]
    corrections: dict[str, int]  # per language, labelled replies added to the corpus
    skipped_corrections: int  # labelled replies in no supported language or without text
    metrics: dict[str, Any] = field(default_factory=dict)  # of the models now in use

    @property
    def replaced(self) -> list[str]:
        return [o.lang for o in self.outcomes if o.replaced]


def training_record(record: dict[str, Any]) -> dict[str, Any] | None:
    """A collector's labelled reply as a corpus record, or None when it cannot be used."""
    if record.get("lang") not in SUPPORTED or record.get("intent") not in INTENTS:
        return None
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    out = {key: record.get(key) for key in RECORD_KEYS}
    out["fields"] = dict(out["fields"] or {})
    out["also"] = list(out["also"] or [])
    return out


def _write_corpus(
    project: Path, work: Path, records: Iterable[dict[str, Any]]
) -> tuple[dict[str, int], int]:
    added: dict[str, list[str]] = {lang: [] for lang in SUPPORTED}
    skipped = 0
    for record in records:
        usable = training_record(record)
        if usable is None:
            skipped += 1
            continue
        added[usable["lang"]].append(json.dumps(usable, ensure_ascii=False))
    (work / "assets" / "train").mkdir(parents=True)
    for lang in SUPPORTED:
        base = (project / "assets" / "train" / f"{lang}.jsonl").read_text(encoding="utf-8")
        lines = [line for line in base.splitlines() if line.strip()] + added[lang]
        (work / "assets" / "train" / f"{lang}.jsonl").write_text(
            "\n".join(lines) + "\n", encoding="utf-8"
        )
    shutil.copytree(project / "assets" / "eval", work / "assets" / "eval")
    return {lang: len(v) for lang, v in added.items()}, skipped


def _run(args: Sequence[str], cwd: Path, what: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise TrainingError(f"{what} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout


def _project_run(work: Path, command: str, variables: dict[str, str]) -> None:
    args = ["-m", "spacy", "project", "run", command, str(work)]
    for name, value in variables.items():
        args += [f"--vars.{name}", value]
    _run(args, work, f"spacy project run {command}")


def evaluate(
    project: Path, models: Path, out: Path, target_precision: float = 0.97
) -> dict[str, Any]:
    """Run the project's evaluation on a COPY of ``models`` (evaluate.py writes classifier.json
    into the directory it evaluates); returns the metrics. ``out`` is a scratch directory."""
    copy = out / "models"
    shutil.copytree(models, copy)
    metrics_path = out / "metrics.json"
    _run(
        [str(project / "scripts" / "evaluate.py"), str(copy), str(project / "assets" / "eval"),
         str(metrics_path), "--target-precision", str(target_precision)],
        project, "evaluation",
    )  # fmt: skip
    metrics: dict[str, Any] = json.loads(metrics_path.read_text())
    return metrics


def _swap(new: Path, target: Path) -> None:
    """Put directory ``new`` where ``target`` is: renames on one file system, old one removed."""
    if not target.exists():
        os.replace(new, target)
        return
    aside = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(aside, target)
        raise
    shutil.rmtree(aside)


def train(
    records: Iterable[dict[str, Any]],
    *,
    project: Path | None = None,
    languages: Sequence[str] = SUPPORTED,
    max_steps: int | None = None,
    limit: int | None = None,
    target_precision: float = 0.97,
) -> TrainReport:
    """Retrain ``languages`` on the corpus plus ``records``; keep, per language, the better model.

    ``max_steps`` and ``limit`` override the project's variables (a quick run on a slice).
    """
    project = project or default_project_dir()
    languages = [lang for lang in SUPPORTED if lang in languages]
    if not languages:
        raise ValueError("no language to train")
    models = project / "models"
    work = Path(tempfile.mkdtemp(prefix=".train-", dir=project))
    try:
        for name in _COPIED:
            source = project / name
            if source.is_dir():
                shutil.copytree(source, work / name)
            else:
                shutil.copy2(source, work / name)
        corrections, skipped = _write_corpus(project, work, records)
        variables: dict[str, str] = {}
        if max_steps is not None:
            variables["max_steps"] = str(max_steps)
            variables["eval_frequency"] = str(max(1, min(100, max_steps // 2)))
        if limit is not None:
            variables["limit"] = str(limit)
        _project_run(work, "convert", variables)
        candidate = work / "candidate"
        if models.is_dir():
            shutil.copytree(models, candidate)
        candidate.mkdir(exist_ok=True)
        for lang in languages:
            _project_run(work, f"train_{lang}", variables)
            shutil.rmtree(candidate / lang, ignore_errors=True)
            for part in ("intent", "detail"):
                shutil.copytree(
                    work / "training" / lang / part / "model-best", candidate / lang / part
                )
        (work / "eval_new").mkdir()
        new_metrics = evaluate(work, candidate, work / "eval_new", target_precision)
        old_metrics: dict[str, Any] = {"languages": {}}
        if any((models / lang / "intent").is_dir() for lang in languages):
            (work / "eval_old").mkdir()
            old_metrics = evaluate(work, models, work / "eval_old", target_precision)
        outcomes = []
        for lang in languages:
            new_f1 = float(new_metrics["languages"][lang]["macro_f1"])
            old_f1: float | None = None
            if (models / lang / "intent").is_dir():
                old_f1 = float(old_metrics["languages"][lang]["macro_f1"])
            outcomes.append(
                LanguageOutcome(lang, old_f1, new_f1, old_f1 is None or new_f1 >= old_f1)
            )
        report = TrainReport(outcomes, corrections, skipped, old_metrics)
        if not report.replaced:
            return report
        models.mkdir(exist_ok=True)
        for outcome in outcomes:
            if outcome.replaced:
                _swap(candidate / outcome.lang, models / outcome.lang)
        # the threshold belongs to the combination now in use: evaluate it and install
        # classifier.json and metrics.json (each written beside and renamed into place)
        final = new_metrics
        meta_source = work / "eval_new" / "models" / "classifier.json"
        if len(report.replaced) < len(languages):  # a mix of old and new: evaluate the mix
            (work / "eval_final").mkdir()
            final = evaluate(work, models, work / "eval_final", target_precision)
            meta_source = work / "eval_final" / "models" / "classifier.json"
        shutil.copy2(meta_source, work / "classifier.json")
        os.replace(work / "classifier.json", models / "classifier.json")
        (work / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
        os.replace(work / "metrics.json", project / "metrics.json")
        report.metrics = final
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def format_report(report: TrainReport) -> list[str]:
    """Human-readable lines for the CLI."""
    lines = [
        "corrections added: "
        + ", ".join(f"{lang} {n}" for lang, n in report.corrections.items())
        + f" (skipped {report.skipped_corrections})"
    ]
    for o in report.outcomes:
        old = "none" if o.old_macro_f1 is None else f"{o.old_macro_f1:.4f}"
        verdict = "replaced" if o.replaced else "kept the old model (new one is worse)"
        lines.append(f"{o.lang}: eval macro-F1 old {old}, new {o.new_macro_f1:.4f}: {verdict}")
    if report.replaced and report.metrics:
        fields = report.metrics.get("fields", {})
        date = fields.get("promise_date", {}).get("accuracy")
        threshold = report.metrics.get("confidence", {}).get("threshold")
        lines.append(f"promise dates exact: {date}; confidence threshold: {threshold}")
    return lines
