"""The reply classifier: language, intent with confidence, secondary intents, and the fields.

Loads the per-language spaCy pipelines once (``<models_dir>/<lang>/intent`` and ``.../detail``, both
bag-of-words text classifiers) and the threshold chosen on the evaluation split
(``<models_dir>/classifier.json``). Below the threshold a classification is only a suggestion for
a collector. CPU-bound: inside the async service call it through ``hub.nlp.pool``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import spacy

from hub.nlp.features import model_text
from hub.nlp.fields import Claim, extract_fields
from hub.nlp.language import SUPPORTED, LanguageDetector

INTENTS = ("dispute", "payment_promise", "installment_request", "other")
# "also" lists a secondary intent when the detail model gives it at least this probability.
ALSO_THRESHOLD = 0.5
# A reply in a language the models do not know: "other", every intent equally likely.
UNKNOWN_CONFIDENCE = 1 / len(INTENTS)
_NORDIC = ("no", "nb", "nn", "sv")  # close enough to Danish for its model to read
_CURRENCY_LANG = {"DKK": "da", "EUR": "de", "CHF": "de", "GBP": "en", "USD": "en"}


def default_models_dir() -> Path:
    """The trained pipelines committed in the repository (nlp_models/models)."""
    return Path(__file__).resolve().parents[2] / "nlp_models" / "models"


@dataclass(frozen=True, slots=True)
class Classification:
    intent: str
    confidence: float
    scores: dict[str, float]
    also: list[str]
    language: str
    fields: dict[str, Any]
    spans: dict[str, list[int]]
    model_version: str
    is_suggestion: bool

    def to_json(self, reply_id: Any) -> dict[str, Any]:
        return {
            "id": reply_id,
            "lang": self.language,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "is_suggestion": self.is_suggestion,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "also": self.also,
            "fields": {**self.fields, "spans": self.spans},
            "spans": self.spans,
            "model_version": self.model_version,
        }


@dataclass
class Classifier:
    """Holds the loaded pipelines; build it once per process with :meth:`load`."""

    intent_models: dict[str, Any]
    detail_models: dict[str, Any]
    detector: LanguageDetector
    threshold: float
    model_version: str
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, models_dir: Path | None = None) -> Classifier:
        models_dir = models_dir or default_models_dir()
        meta_path = models_dir / "classifier.json"
        meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        intent_models: dict[str, Any] = {}
        detail_models: dict[str, Any] = {}
        for lang in SUPPORTED:
            if (models_dir / lang / "intent").is_dir():
                intent_models[lang] = spacy.load(models_dir / lang / "intent")
            if (models_dir / lang / "detail").is_dir():
                detail_models[lang] = spacy.load(models_dir / lang / "detail")
        if not intent_models:
            raise FileNotFoundError(f"no trained intent pipelines under {models_dir}")
        return cls(
            intent_models=intent_models,
            detail_models=detail_models,
            detector=LanguageDetector(),
            threshold=float(meta.get("threshold", 0.5)),
            model_version=str(meta.get("model_version", "unversioned")),
            meta=meta,
        )

    def _model_lang(self, lang: str, claim: Claim) -> str:
        if lang in self.intent_models:
            return lang
        hinted = _CURRENCY_LANG.get(claim.currency or "")
        if hinted in self.intent_models:
            return hinted
        return "en" if "en" in self.intent_models else next(iter(self.intent_models))

    def classify(
        self, text: str, received: datetime | None = None, claim: Claim | None = None
    ) -> Classification:
        claim = claim or Claim()
        received = received or datetime.now(UTC)
        text = text if isinstance(text, str) else str(text)
        # lone surrogates (undecodable bytes passed through) cannot be encoded: replace them
        text = text.encode("utf-8", "replace").decode("utf-8")
        guess = self.detector.detect(text, _CURRENCY_LANG.get(claim.currency or ""))
        nordic = guess.raw in _NORDIC and "da" in self.intent_models
        if guess.lang not in SUPPORTED and text.strip() and not nordic:
            # a language (or binary data) the models were not trained on: say so, do not guess
            return Classification(
                "other", UNKNOWN_CONFIDENCE, dict.fromkeys(INTENTS, UNKNOWN_CONFIDENCE), [],
                "other", {"subtype": None}, {}, self.model_version, True,
            )  # fmt: skip
        # Norwegian and Swedish: read with the Danish model, but only ever as a suggestion
        model_lang = (
            "da" if nordic and guess.lang not in SUPPORTED else self._model_lang(guess.lang, claim)
        )
        normalised = model_text(text, model_lang)
        if not normalised.strip():
            return Classification(
                "other", 0.0, dict.fromkeys(INTENTS, 0.0), [], guess.lang,
                {"subtype": "unrelated"}, {}, self.model_version, True,
            )  # fmt: skip
        doc = self.intent_models[model_lang](normalised)
        scores = {label: float(doc.cats.get(label, 0.0)) for label in INTENTS}
        intent = max(INTENTS, key=lambda label: scores[label])
        confidence = scores[intent]
        detail: dict[str, float] = {}
        if model_lang in self.detail_models:
            detail = {
                k: float(v) for k, v in self.detail_models[model_lang](normalised).cats.items()
            }
        also = [
            label
            for label in INTENTS
            if label != intent and detail.get(f"also:{label}", 0.0) >= ALSO_THRESHOLD
        ]
        fields, spans = extract_fields(intent, text, model_lang, received, claim, detail)
        return Classification(
            intent=intent,
            confidence=confidence,
            scores=scores,
            also=also,
            language=guess.lang,
            fields=fields,
            spans=spans,
            model_version=self.model_version,
            is_suggestion=confidence < self.threshold or guess.lang not in SUPPORTED,
        )
