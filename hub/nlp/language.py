"""Which language a reply is written in: "en", "de", "da", or "other".

py3langid ships its model inside the package (no download at run time). It is restricted to a set
of European languages so that short Danish texts are not scattered over unrelated languages, but it
keeps Norwegian and Swedish (close to Danish), Dutch, French, Spanish, Italian and Portuguese as
competitors, so their texts come out as "other" rather than as a wrong supported language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from py3langid.langid import MODEL_FILE, LanguageIdentifier

SUPPORTED = ("en", "de", "da")
_CANDIDATES = ["en", "de", "da", "no", "nn", "sv", "nl", "fr", "es", "it", "pt", "pl", "fi"]
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
# What binary data decoded as text looks like: replacement characters, lone surrogates, controls.
_GARBAGE = re.compile(r"[\ufffd\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_MAX_GARBAGE_SHARE = 0.1
# Texts too short or too odd to judge fall back to the hint (the case's language) or "other".
_MIN_LETTERS = 3
_SHORT = 25
# Danish-only spellings that Norwegian (Bokmål) writes differently; they tip close calls.
_DANISH_MARKERS = re.compile(
    r"\b(?:ikke|jeg|hvad|hvordan|betale|betalt|venlig hilsen|mvh|tak|kr\.|også|købt|måned|fordi|nogle)\b",
    re.IGNORECASE,
)
_NORWEGIAN_MARKERS = re.compile(
    r"\b(?:ikkje|eg|kva|korleis|hvordan|også|kjøpt|måned|fordi|noen|betale|vennlig hilsen|hilsen|mnd)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    lang: str  # "en", "de", "da" or "other"
    raw: str  # what the identifier said (ISO 639-1), "" if it was not asked
    probability: float


class LanguageDetector:
    """Load once, call many times; thread-safe for reading."""

    def __init__(self) -> None:
        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._identifier.set_languages(_CANDIDATES)

    def detect(self, text: str, hint: str | None = None) -> LanguageGuess:
        sample = text[:4000]
        letters = len(_LETTERS.findall(sample))
        if letters < _MIN_LETTERS:
            return LanguageGuess(hint if hint in SUPPORTED else "other", "", 0.0)
        if len(_GARBAGE.findall(sample)) > _MAX_GARBAGE_SHARE * len(sample):
            return LanguageGuess("other", "", 0.0)  # binary data, not a language
        if len(_LATIN.findall(sample)) < letters / 2:
            return LanguageGuess("other", "", 0.0)  # Chinese, Greek, Cyrillic, Arabic, ...
        raw, probability = self._identifier.classify(sample)
        if raw in ("no", "nb", "nn") and _DANISH_MARKERS.search(sample):
            # Danish and Norwegian Bokmål share most short words; "ikke"/"jeg" plus a Danish-only
            # form decide it, and the rank below keeps real Norwegian as "other".
            ranked = dict(self._identifier.rank(sample))
            if ranked.get("da", 0.0) > 0.05 and not _strongly_norwegian(sample):
                return LanguageGuess("da", raw, float(ranked["da"]))
        lang = raw if raw in SUPPORTED else "other"
        if lang == "other" and len(_LETTERS.findall(sample)) < _SHORT and float(probability) < 0.9:
            # "thx", "danke!!", "fredag": too short for character statistics to be sure; the best
            # of our three languages is the better guess than "other".
            ranked = dict(self._identifier.rank(sample))
            best = max(SUPPORTED, key=lambda code: ranked.get(code, 0.0))
            return LanguageGuess(best, raw, float(ranked.get(best, 0.0)))
        if lang == "other" and hint in SUPPORTED and float(probability) < 0.6:
            ranked = dict(self._identifier.rank(sample))
            if ranked.get(hint, 0.0) > 0.2:
                return LanguageGuess(hint, raw, float(ranked[hint]))
        return LanguageGuess(lang, raw, float(probability))


_NORWEGIAN_ONLY = re.compile(
    r"\b(?:ikkje|eg|kva|korleis|noen|kjøpt|vennlig|mnd|ble|etter|hva|hvis det er|betalingen min)\b",
    re.IGNORECASE,
)


def _strongly_norwegian(text: str) -> bool:
    return len(_NORWEGIAN_ONLY.findall(text)) >= 2
