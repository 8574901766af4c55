"""The text the intent and detail models see: the reply, lower-cased, plus a few feature words.

Bag-of-words models only know the exact words of their training data. Two additions generalise:
word prefixes ("überweise"/"überwiesen" -> "überw", "payed"/"payment" -> "payme"), and marker words
for what the extraction rules found (a date of some kind, an amount, a payment count, a period) and
for a payment already made, a negated payment and a condition.
Training (nlp_models/scripts/convert.py) and inference (hub.nlp.model) both call
:func:`model_text`, so they always agree.
"""

from __future__ import annotations

import re
from datetime import datetime

from hub.nlp.amounts import find_amounts
from hub.nlp.dates import find_dates
from hub.nlp.plan import count_mention, frequency_mention

MAX_MODEL_CHARS = 5000
PREFIX_LENGTH = 5
_WORD = re.compile(r"[^\W\d_]{6,}", re.UNICODE)
# A payment already made ("I paid", "habe überwiesen", "har betalt"): a dispute, not a promise.
_PAST_PAID = re.compile(
    r"\b(?:i|we|i've|we've)\s+(?:have\s+|had\s+)?(?:already\s+)?"
    r"(?:paid|payed|transferred|sent the (?:money|payment))\b"
    r"|\balready (?:paid|been paid|settled)\b|\b(?:was|been|is) (?:already )?(?:paid|settled)\b"
    r"|\bhabe?\b.{0,40}\b(?:bezahlt|überwiesen|gezahlt|beglichen)\b"
    r"|\b(?:ist|wurde|wurden|sind)\b.{0,25}\b(?:bezahlt|überwiesen|beglichen)\b"
    r"|\bbereits\b.{0,20}\b(?:bezahlt|überwiesen)\b"
    r"|\bhar\b.{0,30}\b(?:betalt|overført|indbetalt)\b|\ber (?:allerede )?betalt\b"
    r"|\b(?:overførte|betalte|indbetalte)\b"
)
# A negated payment ("I will NOT pay", "zahle ich nicht", "nægter at betale").
_NEGATED_PAY = re.compile(
    r"\b(?:not|never|won't|wont|refuse|nicht|nie|niemals|keinen?|weigere|ikke|aldrig|nægter)\b"
    r".{0,30}\b(?:pay|paying|zahlen|bezahlen|zahle|betale|betaler)\b"
    r"|\b(?:pay|zahle|betaler|bezahle)\b.{0,12}\b(?:not|nicht|ikke|nichts)\b"
)
# A condition ("if", "sobald", "hvis"): conditional promises and disputes.
_CONDITION = re.compile(r"\b(?:if|once|as soon as|wenn|sobald|falls|hvis|når|så snart)\b")
# Relative dates resolve against some day; only the kind of mention matters here.
_REFERENCE = datetime(2025, 6, 11, 12, 0)


def marker_words(text: str, lang: str) -> list[str]:
    markers: list[str] = []
    dates = find_dates(text, _REFERENCE, lang, use_dateparser=False)
    markers.extend(f"xxdate{kind.replace('_', '')}" for kind in sorted({m.kind for m in dates}))
    if any(m.past and m.kind in ("weekday", "relative") for m in dates):
        markers.append("xxdatepast")  # "betalt sidste fredag", "paid yesterday"
    if len(dates) >= 2:
        markers.append("xxdates2")  # "1.300 kr. næste fredag og 1.300 kr. en måned efter"
    amounts = [a for a in find_amounts(text, lang) if a.value >= 5]
    if any(a.currency for a in amounts):
        markers.append("xxmoney")
    elif amounts:
        markers.append("xxnumber")
    if len(amounts) >= 2:
        markers.append("xxamounts2")
        if len({a.value for a in amounts}) < len(amounts):
            markers.append("xxrepeated")
    if count_mention(text, lang):
        markers.append("xxcount")
    frequency = frequency_mention(text)
    if frequency:
        markers.append(f"xxperiod{frequency}")
    if _PAST_PAID.search(text):
        markers.append("xxpaidpast")
    if _NEGATED_PAY.search(text):
        markers.append("xxnegpay")
    if _CONDITION.search(text):
        markers.append("xxcond")
    return markers


def model_text(text: str, lang: str) -> str:
    """Cut, lower-case, then append prefixes of long words and the marker words."""
    cut = text[:MAX_MODEL_CHARS].lower()
    if not cut.strip():
        return cut
    prefixes = [w[:PREFIX_LENGTH] for w in _WORD.findall(cut)]
    return " ".join([cut, "xxsep", *prefixes, *marker_words(cut, lang)])
