"""Dates in debtors' words (English, German, Danish), resolved against the time the reply arrived.

Our own rules come first, because dateparser 1.5 misses or misreads what debtors write most often
("nächsten Freitag", "næste fredag", "sidst på måneden", "Monatsende", "end of month", "om to uger",
"15.12." read as a time, "den 1."); dateparser (RELATIVE_BASE = received, PREFER_DATES_FROM =
future, the reply's language) is the fallback for whatever the rules do not cover. Every mention
keeps the span it came from; a date without a year is placed in the year that puts it nearest to
the day of receipt (up to two months back, otherwise ahead), and mentions in the past are marked.
"""

from __future__ import annotations

import calendar
import re
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from text_to_num import text2num

MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "january jan januar jänner jaenner",
        "february feb februar febr",
        "march mar märz maerz marts mrz",
        "april apr",
        "may mai maj",
        "june jun juni",
        "july jul juli",
        "august aug",
        "september sep sept",
        "october oct oktober okt",
        "november nov",
        "december dec dezember dez",
    ],
    start=1,
):
    for _name in _names.split():
        MONTHS[_name] = _number

WEEKDAYS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "monday mon montag mo mandag man",
        "tuesday tue tues dienstag di tirsdag tirs",
        "wednesday wed mittwoch mi onsdag ons",
        "thursday thu thur thurs donnerstag do torsdag tors",
        "friday fri freitag fr fredag fre",
        "saturday sat samstag sonnabend sa lørdag lør",
        "sunday sun sonntag so søndag søn",
    ]
):
    for _name in _names.split():
        WEEKDAYS[_name] = _number
# Swiss German spellings (the corpus has them) and common typos.
for _number, _names in enumerate(
    [
        "mäntig maentig mondag",
        "zischtig tuesdy",
        "mittwuch mittwoch wensday wednsday",
        "donschtig thursdy",
        "fritig freitg friday fredaw",
        "samschtig saturdy",
        "sunntig sundy",
    ]
):
    for _name in _names.split():
        WEEKDAYS[_name] = _number
_LONG_WEEKDAYS = {w for w in WEEKDAYS if len(w) > 4}

_MONTH_ALT = "|".join(sorted(MONTHS, key=len, reverse=True))
_WEEKDAY_ALT = "|".join(sorted(_LONG_WEEKDAYS, key=len, reverse=True))
_YEAR = r"(?:\s*,?\s*(?P<year>(?:19|20)\d{2}|'\d{2}))?"


@dataclass(frozen=True, slots=True)
class DateMention:
    """A date found in the text; ``kind`` says which rule found it."""

    value: date
    start: int
    end: int
    text: str
    kind: str
    past: bool = False
    negated: bool = False
    latest: bool = False


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(d: date, months: int) -> tuple[int, int]:
    total = d.year * 12 + d.month - 1 + months
    return total // 12, total % 12 + 1


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _nearest_year(today: date, month: int, day: int) -> date | None:
    """The (month, day) nearest to today: up to ~2 months back, otherwise in the coming year."""
    this_year = _safe_date(today.year, month, day)
    if this_year is None:
        return _safe_date(today.year + 1, month, day)
    if this_year >= today - timedelta(days=62):
        return this_year
    return _safe_date(today.year + 1, month, day)


def _next_day_of_month(today: date, day: int) -> date | None:
    if not 1 <= day <= 31:
        return None
    if day >= today.day:
        candidate = _safe_date(today.year, today.month, day)
        if candidate is not None:
            return candidate
    year, month = _add_months(today, 1)
    return _safe_date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _next_weekday(today: date, weekday: int) -> date:
    days = (weekday - today.weekday()) % 7
    return today + timedelta(days=days or 7)


def _year_of(raw: str | None) -> int | None:
    if not raw:
        return None
    raw = raw.strip("'")
    return 2000 + int(raw) if len(raw) == 2 else int(raw)


def _count(word: str, lang: str) -> int | None:
    word = word.lower()
    if word.isdigit():
        return int(word)
    if word in ("a", "an", "one", "ein", "eine", "einer", "einem", "en", "et"):
        return 1
    if word in ("couple",):
        return 2
    for candidate in (lang, "en", "de", "da"):
        try:
            return int(text2num(word, candidate))
        except ValueError:
            continue
    return None


_F = re.IGNORECASE | re.UNICODE

# Relative expressions: (regex, function(today, match, lang) -> date | None, kind).
_REL_NOW = re.compile(
    r"\b(?:today|now|nu|lige nu|right now|right away|immediately|straight away|tonight|this (?:evening|afternoon|morning)"
    r"|heute(?: abend| nachmittag| noch)?|jetzt gleich|sofort|umgehend|noch heute|gleich heute"
    r"|i dag|i aften|i eftermiddag|straks|med det samme|nu med det samme)\b",
    _F,
)
_REL_TOMORROW = re.compile(
    r"\b(?:tomorrow|tomorow|tommorow|tommorrow|tmrw|i morgen|imorgen)\b|(?<!guten )(?<!guten  )\bmorgen\b",
    _F,
)
_REL_YESTERDAY = re.compile(r"\b(?:yesterday|gestern|i går|igår|vorgestern|i forgårs)\b", _F)
_REL_DAY_AFTER = re.compile(
    r"\b(?:the day after tomorrow|übermorgen|i overmorgen|overmorgen)\b", _F
)
_REL_IN_N = re.compile(
    r"\b(?:in|within|om|inden for|indenfor|innerhalb(?: von)?|binnen|in den nächsten|i løbet af)\s+"
    r"(?:the next\s+|de næste\s+)?(?P<n>\d{1,3}|[^\W\d_]+)\s+"
    r"(?P<unit>days?|weeks?|tagen?|wochen?|dage?|dages|uger?|ugers|months?|monaten?|måneder?)\b",
    _F,
)
_REL_FORTNIGHT = re.compile(r"\b(?:in a fortnight|in two weeks' time)\b", _F)
_REL_NEXT_WEEK = re.compile(
    r"\b(?:next week|nächste(?:n)? woche|kommende(?:n)? woche|næste uge|i næste uge|kommende uge)\b",
    _F,
)
_REL_MONTH_END = re.compile(
    r"\b(?:(?:the |this )?end of (?:the |this )?month|(?:the )?month[- ]?end|end of month"
    r"|ende (?:des|dieses) monats|ende monat|monatsende|zum monatsende|monatsletzten"
    r"|sidst på måneden|sidst i måneden|i slutningen af måneden|slutningen af måneden"
    r"|ved (?:udgangen af måneden|månedens udgang|månedsskiftet)|inden månedens udgang|ultimo(?! \w+)"
    r"|månedens udgang|månedsskiftet)\b",
    _F,
)
_REL_NEXT_MONTH_END = re.compile(
    r"\b(?:end of next month|ende (?:des )?nächsten monats|sidst i næste måned|sidst på næste måned"
    r"|ultimo næste måned|i slutningen af næste måned)\b",
    _F,
)
_REL_NEXT_MONTH_START = re.compile(
    r"\b(?:(?:the )?(?:beginning|start) of next month|next month|anfang (?:des )?nächsten monats"
    r"|nächsten monat|kommenden monat|im nächsten monat|(?:zum |ab dem )?nächsten monatsersten"
    r"|først i næste måned|i starten af næste måned|næste måned|primo næste måned)\b",
    _F,
)
_REL_MID_MONTH = re.compile(
    r"\b(?:mid[- ]month|mitte des monats|mitte monat|midt i måneden|midten af måneden)\b", _F
)

_DAY_SUFFIX = r"(?:st|nd|rd|th|\.)"
_ISO = re.compile(r"\b(?P<y>20\d{2})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b")
_NUMERIC = re.compile(
    r"(?<![\d.,/])(?P<d>\d{1,2})(?P<sep>[./])(?P<m>\d{1,2})(?:(?P=sep)(?P<y>(?:20)?\d{2})\b|(?P<dot>\.)(?!\d))?",
)
_DAY_MONTH = re.compile(
    rf"\b(?P<d>\d{{1,2}}){_DAY_SUFFIX}?\s*(?:of\s+|de\s+)?(?P<month>{_MONTH_ALT})\b\.?{_YEAR}", _F
)
_MONTH_DAY = re.compile(
    rf"\b(?P<month>{_MONTH_ALT})\.?\s+(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?!\s*(?:{_MONTH_ALT})\b){_YEAR}",
    _F,
)
_MONTH_PART = re.compile(
    rf"\b(?P<part>end of|the end of|by the end of|ende|bis ende|ultimo|sidst i|sidst på|slutningen af|udgangen af"
    rf"|beginning of|start of|early|anfang|først i|primo|starten af|begyndelsen af|from|ab|fra|starting|mid|mitte|midt i)"
    rf"\s+(?P<month>{_MONTH_ALT})\b{_YEAR}",
    _F,
)
_DAY_ORDINAL = re.compile(
    r"\b(?:(?:on|by|before|until|till|from|starting|payday on|after|around)\s+)?(?:the\s+)?"
    r"(?P<d>\d{1,2})(?:st|nd|rd|th)\b(?:\s+of\s+(?:the|this|each|every|next)\s+month)?",
    _F,
)
_DAY_DOT = re.compile(
    r"\b(?:am|zum|bis|bis zum|ab|ab dem|ab den|vor dem|spätestens am|den|d\.|til|til den|senest|senest den|fra|fra den"
    r"|inden|inden den|før|før den|per|pr\.)\s+(?P<d>\d{1,2})\.(?![\d.])",
    _F,
)
_DAY_FIRST = re.compile(
    r"\b(?:on the first|by the first|the 1st|zum ersten|am ersten|ab dem ersten|den første|d\. første|til den første"
    r"|fra den første|inden den første|first of (?:the|next) month)\b",
    _F,
)
_WEEKDAY = re.compile(
    rf"\b(?:(?P<nwpre>next week|nächste woche|næste uge)\s+(?:on\s+|am\s+|på\s+)?)?(?P<mod>last|letzten|vergangenen|sidste|forrige|next|this|coming|on|by|until|before|nächsten|nächste|kommenden|diesen|am|bis|bis zum|spätestens"
    rf"|næste|på|på næste|kommende|inden|senest|til)?\s*(?P<wd>{_WEEKDAY_ALT})\b(?P<week>\s+(?:week|in einer woche|om en uge))?(?P<nextweek>\s+(?:next week|nächster woche|nächste woche|in der nächsten woche|i næste uge|næste uge|in the following week))?",
    _F,
)


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    value: date | None
    kind: str


def _relative(text: str, today: date, lang: str) -> list[_Hit]:
    hits: list[_Hit] = []
    for m in _REL_DAY_AFTER.finditer(text):
        hits.append(_Hit(m.start(), m.end(), today + timedelta(days=2), "relative"))
    for m in _REL_TOMORROW.finditer(text):
        if m.group().lower() == "morgen" and _morning_greeting(text, m.start()):
            continue
        hits.append(_Hit(m.start(), m.end(), today + timedelta(days=1), "relative"))
    for m in _REL_YESTERDAY.finditer(text):
        hits.append(_Hit(m.start(), m.end(), today - timedelta(days=1), "relative"))
    for m in _REL_NOW.finditer(text):
        hits.append(_Hit(m.start(), m.end(), today, "now"))
    for m in _REL_IN_N.finditer(text):
        n = _count(m.group("n"), lang)
        if n is None or n > 400:
            continue
        unit = m.group("unit").lower()
        if unit.startswith(("day", "tag", "dag")):
            value = today + timedelta(days=n)
        elif unit.startswith(("week", "woche", "uge")):
            value = today + timedelta(weeks=n)
        else:
            year, month = _add_months(today, n)
            value = (
                _safe_date(year, month, min(today.day, calendar.monthrange(year, month)[1]))
                or today
            )
        hits.append(_Hit(m.start(), m.end(), value, "relative"))
    for m in _REL_FORTNIGHT.finditer(text):
        hits.append(_Hit(m.start(), m.end(), today + timedelta(days=14), "relative"))
    for m in _REL_NEXT_WEEK.finditer(text):
        hits.append(_Hit(m.start(), m.end(), today + timedelta(days=7), "relative"))
    for m in _REL_NEXT_MONTH_END.finditer(text):
        year, month = _add_months(today, 1)
        hits.append(_Hit(m.start(), m.end(), _month_end(year, month), "month_end"))
    for m in _REL_MONTH_END.finditer(text):
        hits.append(_Hit(m.start(), m.end(), _month_end(today.year, today.month), "month_end"))
    for m in _REL_NEXT_MONTH_START.finditer(text):
        year, month = _add_months(today, 1)
        hits.append(_Hit(m.start(), m.end(), date(year, month, 1), "month_start"))
    for m in _REL_MID_MONTH.finditer(text):
        hits.append(_Hit(m.start(), m.end(), _next_day_of_month(today, 15), "day_of_month"))
    return hits


def _morning_greeting(text: str, start: int) -> bool:
    before = text[max(0, start - 8) : start].lower()
    return "guten" in before or "schönen" in before or "god" in before


_LAST_WEEKDAY = re.compile(
    rf"\b(?:last|letzten|sidste)\s+(?P<wd>{_WEEKDAY_ALT})\s+(?:in|of|im|i)\s+(?P<month>{_MONTH_ALT}|the month|dem monat|måneden)\b",
    _F,
)
_HOLIDAYS = re.compile(
    r"\b(?P<eve>silvester|new year'?s eve|nytårsaften|juleaften|heiligabend|christmas eve)\b", _F
)


def _explicit(text: str, today: date) -> list[_Hit]:
    hits: list[_Hit] = []
    for m in _LAST_WEEKDAY.finditer(text):
        name = m["month"].lower()
        month = MONTHS.get(name, today.month)
        end = _month_end(
            *((today.year, month) if month >= today.month else (today.year + 1, month))
        )
        while end.weekday() != WEEKDAYS[m["wd"].lower()]:
            end -= timedelta(days=1)
        hits.append(_Hit(m.start(), m.end(), end, "explicit"))
    for m in _HOLIDAYS.finditer(text):
        day = (
            31
            if m["eve"].lower() in ("silvester", "new year's eve", "new years eve", "nytårsaften")
            else 24
        )
        hits.append(_Hit(m.start(), m.end(), _nearest_year(today, 12, day), "explicit"))
    for m in _ISO.finditer(text):
        value = _safe_date(int(m["y"]), int(m["m"]), int(m["d"]))
        hits.append(_Hit(m.start(), m.end(), value, "explicit"))
    for m in _DAY_MONTH.finditer(text):
        hits.append(_month_day_hit(m, today, m["month"], int(m["d"])))
    for m in _MONTH_DAY.finditer(text):
        hits.append(_month_day_hit(m, today, m["month"], int(m["d"])))
    for m in _NUMERIC.finditer(text):
        bare = m["y"] is None and m["dot"] is None and m["sep"] != "/"
        if bare and not _DATE_PREPOSITION.search(text[max(0, m.start() - 12) : m.start()]):
            continue  # "15.12" alone is more often an amount than a date
        day, month = int(m["d"]), int(m["m"])
        if month > 12 and day <= 12 and m["sep"] == "/":
            day, month = month, day  # US order: 12/15
        if not (1 <= month <= 12 and 1 <= day <= 31):
            continue
        year = _year_of(m["y"])
        value = _safe_date(year, month, day) if year else _nearest_year(today, month, day)
        hits.append(_Hit(m.start(), m.end(), value, "explicit"))
    for m in _MONTH_PART.finditer(text):
        month = MONTHS[m["month"].lower()]
        part = m["part"].lower()
        year = _year_of(m["year"])
        first = (
            _safe_date(year, month, 1) if year else _nearest_year(today.replace(day=1), month, 1)
        )
        if first is None:
            continue
        if part in ("mid", "mitte", "midt i"):
            value = first.replace(day=15)
        elif part in (
            "beginning of",
            "start of",
            "early",
            "anfang",
            "først i",
            "primo",
            "starten af",
            "begyndelsen af",
            "from",
            "ab",
            "fra",
            "starting",
        ):
            value = first
        else:
            value = _month_end(first.year, first.month)
        hits.append(_Hit(m.start(), m.end(), value, "month_part"))
    return hits


_DATE_PREPOSITION = re.compile(
    r"\b(?:on|by|until|till|before|am|bis|zum|ab|den|d\.|til|senest|inden|før|fra|per)\s*$", _F
)


def _month_day_hit(m: re.Match[str], today: date, month_name: str, day: int) -> _Hit:
    month = MONTHS[month_name.lower()]
    year = _year_of(m.groupdict().get("year"))
    value = _safe_date(year, month, day) if year else _nearest_year(today, month, day)
    return _Hit(m.start(), m.end(), value, "explicit")


def _day_of_month(text: str, today: date) -> list[_Hit]:
    hits: list[_Hit] = []
    for regex in (_DAY_ORDINAL, _DAY_DOT):
        for m in regex.finditer(text):
            after = text[m.end() : m.end() + 20].lower()
            if regex is _DAY_DOT and re.match(rf"\s*(?:{_MONTH_ALT})\b", after):
                continue
            hits.append(
                _Hit(m.start(), m.end(), _next_day_of_month(today, int(m["d"])), "day_of_month")
            )
    for m in _DAY_FIRST.finditer(text):
        hits.append(_Hit(m.start(), m.end(), _next_day_of_month(today, 1), "day_of_month"))
    return hits


def _weekdays(text: str, today: date) -> list[_Hit]:
    hits: list[_Hit] = []
    for m in _WEEKDAY.finditer(text):
        value = _next_weekday(today, WEEKDAYS[m["wd"].lower()])
        if m["mod"] and m["mod"].lower() in ("last", "letzten", "vergangenen", "sidste", "forrige"):
            value -= timedelta(days=7)  # "det er betalt sidste fredag": in the past
        if m["week"]:
            value += timedelta(days=7)
        if m["nextweek"] or m["nwpre"]:
            monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
            value = monday + timedelta(days=WEEKDAYS[m["wd"].lower()])
        start = m.start("nwpre") if m["nwpre"] else m.start("mod") if m["mod"] else m.start("wd")
        hits.append(_Hit(start, m.end(), value, "weekday"))
    return hits


def _dateparser_fallback(text: str, received: datetime, lang: str) -> list[_Hit]:
    # Imported here: dateparser takes ~0.3 s to import and is only the fallback.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from dateparser.search import search_dates

        settings = {
            "RELATIVE_BASE": received.replace(tzinfo=None),
            "PREFER_DATES_FROM": "future",
            "REQUIRE_PARTS": ["day"],
            "RETURN_AS_TIMEZONE_AWARE": False,
        }
        languages = [lang] if lang in ("en", "de", "da") else ["en", "de", "da"]
        try:
            found = search_dates(text, languages=languages, settings=settings)
        except Exception:  # dateparser raises assorted errors on odd input; it is only a fallback
            return []
    hits: list[_Hit] = []
    pos = 0
    for matched, value in found or []:
        if len(matched) < 4 or not re.search(r"[^\W\d_]", matched) or matched.isdigit():
            continue
        lowered = matched.lower()
        if re.search(r"\d", lowered) and not any(
            name in lowered for name in MONTHS if len(name) > 3
        ):
            continue  # "200 a month" is an amount and a period, not a date
        if re.search(r"\b(?:morgen|month|monat|måned|week|woche|uge|year|jahr)", lowered):
            continue
        start = text.find(matched, pos)
        if start < 0:
            continue
        pos = start + len(matched)
        hits.append(_Hit(start, pos, value.date(), "dateparser"))
    return hits


def find_dates(
    text: str, received: datetime, lang: str = "en", *, use_dateparser: bool = True
) -> list[DateMention]:
    """All date mentions in the text, in order of appearance, overlapping ones resolved.

    When two rules match overlapping text the longer match wins ("fredag i næste uge" over "i næste
    uge"); between equally long ones: explicit dates, relative expressions, days of the month,
    weekdays.
    """
    today = received.date()
    ranked: list[tuple[int, _Hit]] = []
    for priority, hits in enumerate(
        (
            _explicit(text, today),
            _relative(text, today, lang),
            _day_of_month(text, today),
            _weekdays(text, today),
        )
    ):
        ranked.extend((priority, h) for h in hits if h.value is not None)
    if not ranked and use_dateparser and len(text) <= 2000:
        ranked.extend((9, h) for h in _dateparser_fallback(text, received, lang))
    ranked.sort(key=lambda ph: (-(ph[1].end - ph[1].start), ph[0], ph[1].start))
    chosen: list[_Hit] = []
    for _, hit in ranked:
        if any(c.start < hit.end and hit.start < c.end for c in chosen):
            continue
        chosen.append(hit)
    chosen.sort(key=lambda h: h.start)
    # "fredag den 19. december", "Friday 12 December": the weekday only names the explicit date.
    chosen = [
        h
        for i, h in enumerate(chosen)
        if not (
            h.kind == "weekday"
            and i + 1 < len(chosen)
            and chosen[i + 1].kind == "explicit"
            and chosen[i + 1].start - h.end <= 8
        )
    ]
    result = []
    for hit in chosen:
        assert hit.value is not None
        before = text[max(0, hit.start - 30) : hit.start]
        clause = re.split(r"[.;!?\n]|\b(?:but|aber|men|sondern)\b", before, flags=_F)[-1]
        result.append(
            DateMention(
                hit.value,
                hit.start,
                hit.end,
                text[hit.start : hit.end],
                hit.kind,
                past=hit.value < today,
                negated=bool(_NEGATION.search(clause)),
                latest=bool(
                    _LATEST.search(text[max(0, hit.start - 15) : hit.end])
                    or _LATEST_AFTER.match(text, hit.end)
                ),
            )
        )
    return result


_NEGATION = re.compile(r"\b(?:not|n't|cannot|nicht|kein|ikke|ikk|never|nie)\b|n't\b", _F)
_LATEST = re.compile(r"\b(?:spätestens|senest|no later than|latest by|latest)\b", _F)
_LATEST_AFTER = re.compile(r"\s*,?\s*(?:at the latest|at latest)\b", _F)


def deadline(mentions: list[DateMention]) -> DateMention | None:
    """The date a payment is promised by: the one marked "at the latest", else the first explicit
    calendar date, else the first mention; mentions in the past or under a negation are skipped."""
    usable = [m for m in mentions if not m.past and not m.negated]
    if not usable:
        return None
    for m in usable:
        if m.latest:
            return m
    for m in usable:
        if m.kind == "explicit":
            return m
    for m in usable:
        if m.kind != "now":  # "we have now approved it ... on Friday"
            return m
    return usable[0]
