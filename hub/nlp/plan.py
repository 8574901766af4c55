"""An installment plan as a debtor proposes it: how many payments, how much each, how often, from when.

Works on what amounts.py and dates.py found, plus the words around them ("4 monthly payments of
£320", "3 Raten à 130.–", "800 kr om måneden i 7 måneder", "half now and half next month", "fra maj
til december"). Every value keeps the span it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from text_to_num import text2num

from hub.nlp.amounts import Amount
from hub.nlp.dates import MONTHS, DateMention

Span = tuple[int, int]

_F = re.IGNORECASE | re.UNICODE
_NUM = r"(?P<n>\d{1,2}|[^\W\d_]+)"
_COUNT_UNITS = (
    r"(?:(?:equal|monthly|weekly|separate|gleiche|monatliche|wöchentliche|månedlige|lige store)\s+)?"
    r"(?:payments?|instal(?:l)?ments?|rates|months|monthly payments|chunks|parts|goes|lots"
    r"|month|rate|raten|monatsraten|teilzahlungen|teilbeträgen?|zahlungen|monaten?|teile|tranchen|wochen"
    r"|rater|afdrag|måneder|betalinger|portioner|dele|omgange|gange|weeks|uger)"
)
_COUNT = re.compile(rf"\b{_NUM}\s+{_COUNT_UNITS}\b", _F)
_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_MONTH_LIST = re.compile(
    rf"\b(?:{_MONTH_NAMES})(?:\s*(?:,|og|and|und|&|\+)\s*(?:{_MONTH_NAMES})\b)+", re.IGNORECASE
)
_N_TIMES = re.compile(
    rf"\b(?:{_NUM}\s*(?:times|ganger|gange|mal)\b|(?P<word>twice|zweimal|dreimal|viermal|fünfmal|sechsmal))",
    re.IGNORECASE,
)
_TWO_HALVES = re.compile(
    r"\b(?:half|hälfte|halvdelen|halvt)\b.{1,60}\b(?:half|hälfte|halvdelen|halvt|resten|rest)\b",
    re.IGNORECASE | re.DOTALL,
)
_EVERY_BEFORE = re.compile(r"\b(?:every|alle|hver|each|jede|jeden|per|om)\s*$", re.IGNORECASE)
_TIMES = re.compile(r"\b(?P<n>\d{1,2})\s*[x×]\s*(?=(?:[£$€]|eur|chf|dkk|kr\.?|gbp|usd)?\s?\d)", _F)
_MORE = re.compile(
    rf"\b{_NUM}\s+(?:more|further|weitere|mere|yderligere)\s+(?:months?|payments?|monate?|raten|måneder|rater|gange)\b",
    _F,
)
_YEAR_LONG = re.compile(
    r"\b(?P<half>et halvt år|ein halbes jahr|half a year|six months)\b|\b(?:i et år|et års tid|ein jahr lang|ein jahr|in a year|over a year|for a year|a year)\b",
    _F,
)
_HALVES = re.compile(
    r"\b(?:half now and (?:the other )?half|in two halves|two halves|halb jetzt|die hälfte jetzt|hälfte jetzt"
    r"|zwei hälften|in zwei teilen|halvdelen nu|halvdelen nu og resten|to halvdele|halvt nu)\b",
    _F,
)
_REST = re.compile(
    r"\b(?:the rest|the other half|the remainder|the balance|den rest|die andere hälfte|restbetrag|resten"
    r"|den anden halvdel|det andet halve)\b",
    re.IGNORECASE,
)
_HALF = re.compile(r"\b(?:half|hälfte|halvdelen|det halve|halvt)\b", re.IGNORECASE)
_WEEKLY = re.compile(
    r"\b(?:weekly|a week|per week|each week|every week|every (?:monday|tuesday|wednesday|thursday|friday)"
    r"|wöchentlich|pro woche|jede woche|die woche|jeden (?:montag|dienstag|mittwoch|donnerstag|freitag)"
    r"|om ugen|hver uge|ugentlig|ugentligt|pr\. uge|per uge|hver (?:mandag|tirsdag|onsdag|torsdag|fredag))\b",
    _F,
)
_BIWEEKLY = re.compile(
    r"\b(?:every (?:two|2|other) weeks?|fortnightly|biweekly|bi-weekly|every fortnight|alle (?:zwei|2) wochen"
    r"|vierzehntägig|14-tägig|zweiwöchentlich|jede zweite woche|hver (?:anden|14\.) (?:uge|dag)"
    r"|hver 14\. dag|hver fjortende dag|hver anden uge|hveranden uge)\b",
    _F,
)
_MONTHLY = re.compile(
    r"\b(?:month|months|monthly|per month|a month|pcm|p/m|monat|monate|monaten|monatlich|monatsraten?"
    r"|im monat|pro monat|måned|måneden|måneder|månedlig|månedligt|om måneden|pr\. md\.?|md\.?|mdr\.?|mdl\.?)\b",
    _F,
)
_PER_PERIOD_AFTER = re.compile(
    r"^\s*(?:(?:a|per|each|every|/|im|pro|je|om|pr\.|hver|i)\s*(?:month|week|monat|woche|måned(?:en)?|uge(?:n)?|md\.?|mdr\.?)"
    r"|monthly|weekly|monatlich|wöchentlich|månedlig(?:t)?|ugentlig(?:t)?|each|apiece|jeweils|hver gang|ad gangen)\b",
    _F,
)
_PER_PERIOD_BEFORE = re.compile(
    r"(?:payments? of|instal(?:l)?ments? of|rates? of|raten (?:à|a|á|von|zu|über|je)|rate von|monatlich"
    r"|jeden monat|pro monat|rater (?:á|a|à|på|af)|afdrag (?:på|af)|hver måned|om måneden|each month|every month"
    r"|[x×]|à|á|je)\s*$",
    _F,
)
_RANGE = re.compile(
    rf"\b(?:from|von|ab|fra)\s+(?P<a>{'|'.join(sorted(MONTHS, key=len, reverse=True))})\s+"
    rf"(?:to|until|till|bis|til|-|–)\s+(?:und mit\s+|og med\s+)?(?P<b>{'|'.join(sorted(MONTHS, key=len, reverse=True))})\b",
    _F,
)
_START_WORDS = re.compile(
    r"\b(?:from|starting|start|beginning|first payment|ab|beginnend|erste rate|anfangen|fra|første gang"
    r"|første rate|begynde|startende)\b",
    _F,
)


_WORD_TIMES = {"twice": 2, "zweimal": 2, "dreimal": 3, "viermal": 4, "fünfmal": 5, "sechsmal": 6}


@dataclass(frozen=True, slots=True)
class Plan:
    installments: int | None = None
    amount_per_installment: Decimal | None = None
    frequency: str | None = None  # "weekly" | "biweekly" | "monthly"
    start_date: date | None = None
    spans: dict[str, Span] = field(default_factory=dict)


def _count_word(word: str, lang: str) -> int | None:
    word = word.lower()
    if word.isdigit():
        return int(word)
    for candidate in dict.fromkeys((lang, "en", "de", "da")):
        try:
            value = int(text2num(word, candidate))
        except ValueError:
            continue
        return value
    return None


def _installments(text: str, lang: str, amounts: list[Amount]) -> tuple[int | None, Span | None]:
    for m in _COUNT.finditer(text):
        if _EVERY_BEFORE.search(text[max(0, m.start() - 8) : m.start()]):
            continue  # "every 2 weeks" is a period, not a count
        n = _count_word(m["n"], lang)
        if n is not None and 2 <= n <= 60:
            return n, (m.start(), m.end())
    for m in _MORE.finditer(text):
        n = _count_word(m["n"], lang)
        if n is not None and 1 <= n <= 60:
            return n + 1, (m.start(), m.end())  # "135 EUR today and then ... for 2 more months"
    for m in _N_TIMES.finditer(text):
        word = (m["word"] or "").lower()
        n = _WORD_TIMES.get(word) if word else _count_word(m["n"], lang)
        if n is not None and 2 <= n <= 60:
            return n, (m.start(), m.end())
    m_list = _MONTH_LIST.search(text)
    if m_list:
        names = re.findall(rf"(?:{_MONTH_NAMES})", m_list.group(), re.IGNORECASE)
        return len(names), (m_list.start(), m_list.end())
    m_year = _YEAR_LONG.search(text)
    if m_year and _MONTHLY.search(text):
        return (6 if m_year["half"] else 12), (m_year.start(), m_year.end())
    m_halves = _TWO_HALVES.search(text)
    if m_halves:
        return 2, (m_halves.start(), m_halves.end())
    for m in _TIMES.finditer(text):
        n = int(m["n"])
        if 2 <= n <= 60:
            return n, (m.start(), m.end())
    m2 = _HALVES.search(text)
    if m2:
        return 2, (m2.start(), m2.end())
    m3 = _RANGE.search(text)
    if m3:
        a, b = MONTHS[m3["a"].lower()], MONTHS[m3["b"].lower()]
        n = (b - a) % 12 + 1
        if n >= 2:
            return n, (m3.start(), m3.end())
    if _REST.search(text):
        return 2, None
    # "1950 sidst i september og 1950 sidst i oktober": the same amount written k times
    values = [a.value for a in amounts if a.value >= 5]
    for value in values:
        k = values.count(value)
        if k >= 2:
            first = next(a for a in amounts if a.value == value)
            return k, (first.start, first.end)
    return None, None


def _per_installment(
    text: str, amounts: list[Amount], claim_amount: Decimal | None, count: int | None
) -> Amount | None:
    money = [a for a in amounts if a.value >= 1 and not (count is not None and a.value == count)]
    for a in money:
        if _PER_PERIOD_AFTER.match(text[a.end : a.end + 20]) or _PER_PERIOD_BEFORE.search(
            text[max(0, a.start - 25) : a.start]
        ):
            return a
    values = [a.value for a in money]
    for a in money:
        if values.count(a.value) >= 2:
            return a
    others = [a for a in money if claim_amount is None or a.value != claim_amount]
    if len(others) == 1 and (claim_amount is None or others[0].value < claim_amount):
        return others[0]
    return None


def _frequency(text: str) -> tuple[str | None, Span | None]:
    for name, regex in (("biweekly", _BIWEEKLY), ("weekly", _WEEKLY), ("monthly", _MONTHLY)):
        m = regex.search(text)
        if m:
            return name, (m.start(), m.end())
    return None, None


def _start(text: str, dates: list[DateMention]) -> DateMention | None:
    usable = [d for d in dates if not d.past and not d.negated]
    for d in usable:
        if _START_WORDS.search(text[max(0, d.start - 25) : d.start + 1]):
            return d
    return usable[0] if usable else None


def extract_plan(
    text: str,
    lang: str,
    amounts: list[Amount],
    dates: list[DateMention],
    claim_amount: Decimal | None = None,
) -> Plan:
    spans: dict[str, Span] = {}
    count, count_span = _installments(text, lang, amounts)
    future = [
        d for d in dates if not d.past and not d.negated and d.kind in ("explicit", "month_part")
    ]
    if count is None and len({d.value for d in future}) >= 2:
        count = len({d.value for d in future})  # "1.700 den 1. december, 1. januar og 1. februar"
    if count_span:
        spans["installments"] = count_span
    per = _per_installment(text, amounts, claim_amount, count)
    per_value = per.value if per is not None else None
    if per is not None:
        spans["amount_per_installment"] = (per.start, per.end)
    elif claim_amount and count == 2 and (m := _HALF.search(text)):
        per_value = claim_amount / 2  # "halvdelen sidst i juli og resten sidst i august"
        spans["amount_per_installment"] = (m.start(), m.end())
    frequency, freq_span = _frequency(text)
    if freq_span:
        spans["frequency"] = freq_span
    elif count is not None or per_value is not None:
        frequency = "monthly"  # "three rates of 500 €": a plan with no period is monthly
    if count is None and per_value is not None and claim_amount and per_value > 0:
        total = claim_amount / per_value
        if total == total.to_integral_value() and 2 <= total <= 60 and _says_full(text):
            count = int(total)
    start = _start(text, dates)
    if start is not None:
        spans["start_date"] = (start.start, start.end)
    return Plan(
        installments=count,
        amount_per_installment=per_value,
        frequency=frequency,
        start_date=start.value if start is not None else None,
        spans=spans,
    )


def _says_full(text: str) -> bool:
    return (
        False
        if not text
        else bool(re.search(r"\b(?:until|bis|indtil)\b.*\b(?:paid|bezahlt|betalt)\b", text, _F))
    )


def count_mention(text: str, lang: str) -> bool:
    """Whether the text names a number of payments ("3 Raten", "4 x 50", "half now and half ...")."""
    for m in _COUNT.finditer(text):
        n = _count_word(m["n"], lang)
        if n is not None and 2 <= n <= 60:
            return True
    return bool(
        _TIMES.search(text) or _HALVES.search(text) or _RANGE.search(text) or _REST.search(text)
    )


def frequency_mention(text: str) -> str | None:
    return _frequency(text)[0]
