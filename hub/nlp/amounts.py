"""Money amounts as debtors write them in English, German and Danish, with the spans they came from.

Digits ("1.250,00 €", "EUR 1,250.00", "1250 kr.", "250,-", "CHF 1'250.–") are parsed with Babel's
``parse_decimal(strict=True)`` under a locale decided from the number itself: a separator followed
by exactly three digits groups thousands, any other final separator is the decimal mark (non-strict
parsing of "1,250.00" under de_DE silently gives 1.25). Number words ("fifty euros", "fünfzig Euro",
"halvtreds kroner") go through text2num.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import NumberFormatError, parse_decimal
from text_to_num import text2num

# Currency words and symbols -> ISO 4217. Longest first so "kroner" wins over "kr".
_CURRENCY_WORDS: dict[str, str] = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "$": "USD",
    "usd": "USD",
    "us$": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "bucks": "USD",
    "£": "GBP",
    "gbp": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "quid": "GBP",
    "dkk": "DKK",
    "kr": "DKK",
    "kr.": "DKK",
    "kroner": "DKK",
    "krone": "DKK",
    "kronor": "SEK",
    "sek": "SEK",
    "nok": "NOK",
    "chf": "CHF",
    "fr.": "CHF",
    "sfr.": "CHF",
    "franken": "CHF",
}
_CUR_ALT = "|".join(
    re.escape(w) for w in sorted(_CURRENCY_WORDS, key=len, reverse=True) if not w[0].isalpha()
)
_CUR_WORD_ALT = "|".join(
    re.escape(w) for w in sorted(_CURRENCY_WORDS, key=len, reverse=True) if w[0].isalpha()
)
_CURRENCY = rf"(?:{_CUR_ALT}|(?<![\w])(?:{_CUR_WORD_ALT})(?![\w]))"

# A number: grouped (1.250 / 1,250 / 1 250 / 1'250) or plain, an optional decimal part, and an
# optional ",-" / ".–" (Scandinavian and Swiss "no cents").
_NUMBER = r"(?<![\w.,/:-])(?:\d{1,3}(?:[.,' \u00a0]\d{3})+|\d+)(?:[.,]\d{1,2})?(?:[.,][-–])?(?![\w/:]|[.,]\d)"
_AMOUNT_RE = re.compile(
    rf"(?P<pre>{_CURRENCY})\s?(?P<num1>{_NUMBER})|(?P<num2>{_NUMBER})\s?(?P<post>{_CURRENCY})?",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
_CURRENCY_TOKEN_RE = re.compile(rf"\s*(?P<cur>{_CURRENCY})", re.IGNORECASE)

# Single words that text2num reads as a number but that are ordinary words in that language.
_NOT_NUMBERS = {
    "en": {"a", "an", "one", "and", "second"},
    "de": {"ein", "eine", "einen", "einem", "einer", "eins", "und"},
    "da": {"en", "et", "og"},
}


@dataclass(frozen=True, slots=True)
class Amount:
    """A number found in the text; ``currency`` is the ISO code when one was written beside it."""

    value: Decimal
    currency: str | None
    start: int
    end: int
    text: str
    from_words: bool = False


def currency_of(token: str) -> str | None:
    return _CURRENCY_WORDS.get(token.strip().lower())


def parse_number(raw: str) -> Decimal | None:
    """Parse one number in any of the local spellings; None if it is not a well-formed number."""
    s = raw.strip().rstrip("-–").replace("\u00a0", " ")
    s = s.rstrip(".,")
    if not s:
        return None
    s = s.replace("'", "").replace(" ", "")
    seps = [c for c in s if c in ".,"]
    if not seps:
        locale = "en_US"
    else:
        last = max(s.rfind("."), s.rfind(","))
        decimals = len(s) - last - 1
        if len(set(seps)) == 2:
            locale = "en_US" if s[last] == "." else "de_DE"
        elif decimals == 3:  # "1.250" / "1,250": grouping, never three decimals in money
            locale = "de_DE" if s[last] == "." else "en_US"
        elif len(seps) > 1:
            return None
        else:
            locale = "en_US" if s[last] == "." else "de_DE"
    try:
        return parse_decimal(s, locale=locale, strict=True)
    except NumberFormatError:
        return None


def _digit_amounts(text: str) -> list[Amount]:
    found: list[Amount] = []
    for m in _AMOUNT_RE.finditer(text):
        raw = m.group("num1") or m.group("num2")
        value = parse_number(raw)
        if value is None:
            continue
        cur_token = m.group("pre") or m.group("post")
        currency = currency_of(cur_token) if cur_token else None
        end = m.end()
        if cur_token is None:
            end = m.end("num2")
        found.append(Amount(value, currency, m.start(), end, text[m.start() : end]))
    return found


def _word_amounts(text: str, lang: str) -> list[Amount]:
    """Runs of number words ("two hundred and fifty") read with text2num."""
    if lang not in _NOT_NUMBERS:
        return []
    words = list(_WORD_RE.finditer(text))
    found: list[Amount] = []
    i = 0
    while i < len(words):
        first = words[i].group().lower()
        if first in _NOT_NUMBERS[lang] or not _is_number_word(first, lang):
            i += 1
            continue
        best: tuple[int, int] | None = None
        for j in range(i + 1, min(i + 7, len(words)) + 1):
            phrase = " ".join(w.group().lower() for w in words[i:j])
            try:
                best = (j, text2num(phrase, lang))
            except ValueError:
                if j > i + 1 and words[j - 1].group().lower() in ("and", "og", "und"):
                    continue
                break
        if best is None:
            i += 1
            continue
        j, value = best
        start, end = words[i].start(), words[j - 1].end()
        cur = _CURRENCY_TOKEN_RE.match(text, end)
        currency = None
        if cur:
            currency = currency_of(cur.group("cur"))
            end = cur.end()
        found.append(Amount(Decimal(value), currency, start, end, text[start:end], True))
        i = j
    return found


def _is_number_word(word: str, lang: str) -> bool:
    try:
        text2num(word, lang)
    except ValueError:
        return False
    return True


def find_amounts(text: str, lang: str) -> list[Amount]:
    """Every number in the text (digits or words), in order, with its currency when written."""
    found = _digit_amounts(text)
    taken = [(a.start, a.end) for a in found]
    for amount in _word_amounts(text, lang):
        if not any(s < amount.end and amount.start < e for s, e in taken):
            found.append(amount)
    return sorted(found, key=lambda a: a.start)
