"""Dates as debtors write them in English, German and Danish, resolved against a fixed receipt time.

The receipt time is a Wednesday (2025-06-11, as in the measurements of COMPONENTS.md); the cases
include every gap measured there for dateparser 1.5 ("nächsten Freitag", "næste fredag", "sidst på
måneden", "Ende des Monats", "Monatsende", "end of month", "om to uger", "15.12.", "den 1.").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from hub.nlp.dates import deadline, find_dates

RECEIVED = datetime(2025, 6, 11, 10, 30, tzinfo=timezone(timedelta(hours=2)))  # a Wednesday

CASES = [
    # English
    ("en", "I will pay today.", "2025-06-11"),
    ("en", "paying now sorry", "2025-06-11"),
    ("en", "I'll pay it tomorrow", "2025-06-12"),
    ("en", "I pay this tomorow", "2025-06-12"),
    ("en", "the day after tomorrow", "2025-06-13"),
    ("en", "I'll pay next Friday.", "2025-06-13"),
    ("en", "I'll pay on Friday, I promise.", "2025-06-13"),
    ("en", "Money goes out Monday", "2025-06-16"),
    ("en", "I'll pay it next week Tuesday", "2025-06-17"),
    ("en", "Friday next week is fine", "2025-06-20"),
    ("en", "I can pay in two weeks", "2025-06-25"),
    ("en", "within 10 days", "2025-06-21"),
    ("en", "next week", "2025-06-18"),
    ("en", "I'll pay at the end of the month", "2025-06-30"),
    ("en", "by month end", "2025-06-30"),
    ("en", "end of month", "2025-06-30"),
    ("en", "end of next month", "2025-07-31"),
    ("en", "after payday on the 25th", "2025-06-25"),
    ("en", "on the 1st", "2025-07-01"),
    ("en", "Payment of £410 will be made on 29 August.", "2025-08-29"),
    ("en", "on August 29th", "2025-08-29"),
    ("en", "by 15/07/2025", "2025-07-15"),
    ("en", "on 2025-07-15", "2025-07-15"),
    ("en", "at the beginning of next month", "2025-07-01"),
    ("en", "mid July", "2025-07-15"),
    ("en", "The £1,990 will be with you by Friday 20 June.", "2025-06-20"),
    ("en", "I'll pay on the last Friday in June", "2025-06-27"),
    ("en", "in a fortnight", "2025-06-25"),
    # German
    ("de", "Ich zahle heute.", "2025-06-11"),
    ("de", "Ich überweise morgen früh.", "2025-06-12"),
    ("de", "Übermorgen sind die 42,50 drüben.", "2025-06-13"),
    ("de", "Ich zahle nächsten Freitag.", "2025-06-13"),
    ("de", "bis nächsten Freitag", "2025-06-13"),
    ("de", "am Montag", "2025-06-16"),
    ("de", "Dienstag nächste Woche, früher ist nicht möglich.", "2025-06-17"),
    ("de", "Donnerstag nächster Woche", "2025-06-19"),
    ("de", "Ich zahle Freitag in einer Woche.", "2025-06-20"),
    ("de", "in zwei Wochen", "2025-06-25"),
    ("de", "in einer Woche", "2025-06-18"),
    ("de", "bis Ende des Monats", "2025-06-30"),
    ("de", "zum Monatsende", "2025-06-30"),
    ("de", "Monatsende", "2025-06-30"),
    ("de", "75.– bis Ende Juli, merci", "2025-07-31"),
    ("de", "Gehalt kommt am 20., dann zahle ich.", "2025-06-20"),
    ("de", "zum 1. überweise ich", "2025-07-01"),
    ("de", "zum Ersten", "2025-07-01"),
    ("de", "bis 15.12. ist alles bezahlt", "2025-12-15"),
    ("de", "am 15.07.2025", "2025-07-15"),
    ("de", "am 15. Dezember", "2025-12-15"),
    ("de", "Anfang Juli", "2025-07-01"),
    ("de", "Mitte Juli", "2025-07-15"),
    ("de", "Ich zahle Anfang Juli, spätestens am 5.", "2025-07-05"),
    ("de", "Ich kann NICHT heute zahlen, aber am Freitag.", "2025-06-13"),
    ("de", "nächsten Monat", "2025-07-01"),
    ("de", "Bis Silvester bezahlt.", "2025-12-31"),
    # Danish
    ("da", "Jeg betaler i dag.", "2025-06-11"),
    ("da", "Jeg betaler i morgen.", "2025-06-12"),
    ("da", "i overmorgen", "2025-06-13"),
    ("da", "Jeg betaler næste fredag.", "2025-06-13"),
    ("da", "Det bliver betalt på fredag når vi har fået løn.", "2025-06-13"),
    ("da", "Jeg betaler på mandag, ok?", "2025-06-16"),
    ("da", "Det bliver betalt fredag i næste uge.", "2025-06-20"),
    ("da", "om to uger", "2025-06-25"),
    ("da", "om 14 dage", "2025-06-25"),
    ("da", "Jeg betaler sidst på måneden.", "2025-06-30"),
    ("da", "i slutningen af måneden", "2025-06-30"),
    ("da", "Jeg betaler 1950 sidst i juli", "2025-07-31"),
    ("da", "ultimo juli", "2025-07-31"),
    ("da", "Jeg betaler den 1.", "2025-07-01"),
    ("da", "d. 20. betaler jeg", "2025-06-20"),
    ("da", "Jeg betaler senest den 15. december.", "2025-12-15"),
    ("da", "fra 1. juli", "2025-07-01"),
    ("da", "inden 15.12.", "2025-12-15"),
    ("da", "Jeg betaler 2.200 kr fredag d. 20. juni når jeg får løn.", "2025-06-20"),
    ("da", "Jeg kan ikke betale i dag, men jeg betaler de 950 kr. på mandag.", "2025-06-16"),
    ("da", "næste måned", "2025-07-01"),
    ("da", "Hej jeg betaler sidste fredag i juni. Mvh Tobias", "2025-06-27"),
]


@pytest.mark.parametrize(("lang", "text", "expected"), CASES, ids=[c[1][:40] for c in CASES])
def test_deadline(lang: str, text: str, expected: str) -> None:
    found = deadline(find_dates(text, RECEIVED, lang))
    assert found is not None, text
    assert found.value.isoformat() == expected
    # the span points at the words the date came from
    assert text[found.start : found.end] == found.text
    assert found.text.strip()


def test_time_is_not_a_date_and_greeting_is_not_tomorrow() -> None:
    assert deadline(find_dates("Guten Morgen, ich melde mich.", RECEIVED, "de")) is None
    assert deadline(find_dates("God morgen. Jeg har et spørgsmål.", RECEIVED, "da")) is None
    # "15.12" without the trailing dot or a preposition is an amount, not a date
    assert find_dates("Ich zahle 15.12 Euro", RECEIVED, "de", use_dateparser=False) == []


def test_past_dates_are_marked_and_skipped() -> None:
    mentions = find_dates("I paid on 3 June, the rest follows on 20 June.", RECEIVED, "en")
    assert [m.value for m in mentions] == [date(2025, 6, 3), date(2025, 6, 20)]
    assert mentions[0].past and not mentions[1].past
    chosen = deadline(mentions)
    assert chosen is not None and chosen.value == date(2025, 6, 20)


def test_year_rollover() -> None:
    december = datetime(2025, 12, 20, 9, 0, tzinfo=UTC_PLUS_1)
    found = deadline(find_dates("Jeg betaler den 10. januar.", december, "da"))
    assert found is not None and found.value == date(2026, 1, 10)
    found = deadline(find_dates("end of the month", december, "en"))
    assert found is not None and found.value == date(2025, 12, 31)
    found = deadline(find_dates("zum 1.", december, "de"))
    assert found is not None and found.value == date(2026, 1, 1)


UTC_PLUS_1 = timezone(timedelta(hours=1))
