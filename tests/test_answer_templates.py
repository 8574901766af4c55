"""Every answer kind renders in every language with its facts, amounts and dates by Babel.

The renderer is the real one over the shipped templates; no database is needed here.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from hub.config import OutboundSection
from hub.domain.answers import (
    AnswerContext,
    AnswerKind,
    answer_facts,
    facts_to_json,
    reply_subject,
)
from hub.domain.mail import LANGUAGES, Language, RenderedMail
from hub.errors import UserError
from hub.outbound.render import MailRenderer

FACTS: dict[AnswerKind, dict[str, Any]] = {
    AnswerKind.CONFIRM_PROMISE: {"amount": "250.00", "due": "2026-12-12"},
    AnswerKind.ASK_PROMISE_DATE: {"amount": "75.5"},
    AnswerKind.CONFIRM_PLAN_REQUEST: {
        "count": 6,
        "amount_per_installment": "52.00",
        "frequency": "monthly",
        "start_date": "2026-02-01",
    },
    AnswerKind.ASK_PLAN_AMOUNT: {"count": 4},
    AnswerKind.PLAN_APPROVED: {
        "installments": [
            {"due": "2026-02-01", "amount": "100.00"},
            {"due": "2026-03-01", "amount": "100.00"},
            {"due": "2026-04-01", "amount": "112.34"},
        ],
        "frequency": "monthly",
    },
    AnswerKind.PLAN_REJECTED: {},
    AnswerKind.ACKNOWLEDGE_DISPUTE: {"review_days": 21},
    AnswerKind.ACKNOWLEDGE_CEASE_CONTACT: {},
    AnswerKind.COLLECTOR_REPLY: {"text": "Line one <b>bold?</b>\n\nSecond & last line"},
}

#: what each rendered text part must say, per language (Babel's formatting included)
EXPECT: dict[AnswerKind, dict[Language, tuple[str, ...]]] = {
    AnswerKind.CONFIRM_PROMISE: {
        "en": ("promise to pay €250.00 by 12 December 2026", "DE89370400440532013000"),
        "de": ("250,00\xa0€ bis zum 12. Dezember 2026 zu zahlen", "Verwendungszweck: R-77"),
        "da": ("betale 250,00\xa0€ senest den 12. december 2026", "Betalingsreference: R-77"),
    },
    AnswerKind.ASK_PROMISE_DATE: {
        "en": ("offering to pay €75.50", "by when you will pay", "€1,310.00"),
        "de": ("75,50\xa0€ zu zahlen", "bis wann Sie zahlen", "1.310,00\xa0€"),
        "da": ("betale 75,50\xa0€", "hvornår du vil betale", "1.310,00\xa0€"),
    },
    AnswerKind.CONFIRM_PLAN_REQUEST: {
        "en": ("Number of instalments: 6", "€52.00", "Payments: monthly", "1 February 2026"),
        "de": ("Anzahl der Raten: 6", "52,00\xa0€", "Zahlweise: monatlich", "1. Februar 2026"),
        "da": ("Antal rater: 6", "52,00\xa0€", "Betaling: månedligt", "1. februar 2026"),
    },
    AnswerKind.ASK_PLAN_AMOUNT: {
        "en": ("how much you can pay per instalment", "in 4 instalments", "€1,310.00"),
        "de": ("welchen Betrag Sie je Rate", "in 4 Raten", "1.310,00\xa0€"),
        "da": ("hvor meget du kan betale pr. rate", "i 4 rater", "1.310,00\xa0€"),
    },
    AnswerKind.PLAN_APPROVED: {
        "en": ("1. by 1 February 2026: €100.00", "3. by 1 April 2026: €112.34", "Total: €312.34"),
        "de": ("1. bis zum 1. Februar 2026: 100,00\xa0€", "Gesamt: 312,34\xa0€"),
        "da": ("1. senest den 1. februar 2026: 100,00\xa0€", "I alt: 312,34\xa0€"),
    },
    AnswerKind.PLAN_REJECTED: {
        "en": ("unable to accept it", "€1,310.00"),
        "de": ("leider nicht annehmen", "1.310,00\xa0€"),
        "da": ("desværre ikke acceptere det", "1.310,00\xa0€"),
    },
    AnswerKind.ACKNOWLEDGE_DISPUTE: {
        "en": ("paused all reminders", "within 21 days", "Nordlicht Energie GmbH"),
        "de": ("alle Mahnungen", "innerhalb von 21 Tagen"),
        "da": ("rykkere for kravet i bero", "inden for 21 dage"),
    },
    AnswerKind.ACKNOWLEDGE_CEASE_CONTACT: {
        "en": ("last email you will receive", "€1,310.00"),
        "de": ("letzte E-Mail", "1.310,00\xa0€"),
        "da": ("sidste e-mail", "1.310,00\xa0€"),
    },
    AnswerKind.COLLECTOR_REPLY: {
        lang: ("Line one <b>bold?</b>\n\nSecond & last line",) for lang in LANGUAGES
    },
}

GREETING = {"en": "Dear Alice Andersen,", "de": "Guten Tag Alice Andersen,", "da": "Kære Alice"}


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return MailRenderer.from_settings(OutboundSection())


def context(
    kind: AnswerKind, language: Language, facts: dict[str, Any], subject: str | None = None
) -> AnswerContext:
    return AnswerContext(
        kind=kind,
        language=language,
        creditor_code="NORD",
        creditor_name="Nordlicht Energie GmbH",
        creditor_legal_identity="Nordlicht Energie GmbH\nHamburg",
        sender_name="Hub Collections",
        debtor_name="Alice Andersen",
        reference="R-77",
        currency="EUR",
        balance=Decimal("1310.00"),
        iban="DE89370400440532013000",
        bic=None,
        portal_url="https://hub.example/portal/c/tok",
        reply_address="reply+tok@hub.example",
        opt_out_url="https://hub.example/portal/opt-out/tok",
        reply_subject=reply_subject(subject),
        facts=answer_facts(kind, facts),
    )


def render(renderer: MailRenderer, kind: AnswerKind, language: Language) -> RenderedMail:
    return renderer.render_answer(context(kind, language, FACTS[kind]))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(AnswerKind))
def test_each_kind_renders_in_each_language(
    renderer: MailRenderer, kind: AnswerKind, language: Language
) -> None:
    mail = render(renderer, kind, language)
    assert mail.language == language
    for expected in EXPECT[kind][language]:
        assert expected in mail.text, (expected, mail.text)
    assert mail.text.startswith(GREETING[language])
    assert "reply+tok@hub.example" in mail.text and "https://hub.example/portal/c/tok" in mail.text
    assert f'<html lang="{language}">' in mail.html
    assert "{{" not in mail.text + mail.html and "{%" not in mail.text + mail.html
    if kind is AnswerKind.COLLECTOR_REPLY:
        assert "R-77" in mail.subject
        # the collector's text is escaped in HTML, kept as written in the text part
        assert "<b>" not in mail.html and "&lt;b&gt;bold?&lt;/b&gt;" in mail.html
        assert "Second &amp; last line" in mail.html
    else:
        assert mail.subject.endswith("R-77"), mail.subject
    # the opt-out link is offered, except in the confirmation that email contact ends
    offered = "https://hub.example/portal/opt-out/tok" in mail.text
    assert offered == (kind is not AnswerKind.ACKNOWLEDGE_CEASE_CONTACT)


def test_amounts_in_html_and_danish_kroner(renderer: MailRenderer) -> None:
    mail = render(renderer, AnswerKind.PLAN_APPROVED, "en")
    assert "<td>1 April 2026</td>" not in mail.html and "by 1 April 2026" in mail.html
    assert "€312.34" in mail.html
    dkk = context(AnswerKind.CONFIRM_PROMISE, "da", {"due": "2026-12-12"})
    dkk = AnswerContext(**{**dkk.__dict__, "currency": "DKK"})
    text = renderer.render_answer(dkk).text
    # no amount promised: the whole balance
    assert "betale 1.310,00\xa0kr. senest den 12. december 2026" in text


def test_subject_follows_the_debtors_subject(renderer: MailRenderer) -> None:
    mail = renderer.render_answer(
        context(
            AnswerKind.ACKNOWLEDGE_DISPUTE,
            "de",
            {"review_days": 14},
            subject="AW: Re: 1. Mahnung: Nordlicht, Aktenzeichen R-77",
        )
    )
    assert mail.subject == "Re: 1. Mahnung: Nordlicht, Aktenzeichen R-77"
    assert reply_subject("   ") is None and reply_subject("SV: hej") == "Re: hej"


@pytest.mark.parametrize(
    ("kind", "facts", "message"),
    [
        (AnswerKind.CONFIRM_PROMISE, {"amount": "10"}, "due is required"),
        (AnswerKind.CONFIRM_PROMISE, {"due": "12.12.2026"}, "must be a date"),
        (AnswerKind.CONFIRM_PROMISE, {"due": "2026-12-12", "amount": "-5"}, "positive"),
        (AnswerKind.CONFIRM_PROMISE, {"due": "2026-12-12", "amount": 2.5}, "decimal"),
        (AnswerKind.PLAN_APPROVED, {"installments": []}, "non-empty"),
        (
            AnswerKind.PLAN_APPROVED,
            {
                "installments": [
                    {"due": "2026-03-01", "amount": "1"},
                    {"due": "2026-02-01", "amount": "1"},
                ]
            },
            "date order",
        ),
        (AnswerKind.CONFIRM_PLAN_REQUEST, {"frequency": "daily"}, "frequency"),
        (AnswerKind.ACKNOWLEDGE_DISPUTE, {}, "review_days is required"),
        (AnswerKind.COLLECTOR_REPLY, {"text": "  \n "}, "empty"),
        (AnswerKind.COLLECTOR_REPLY, {"text": "x" * 20_001}, "longer"),
    ],
)
def test_facts_are_checked(kind: AnswerKind, facts: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        answer_facts(kind, facts)


def test_facts_survive_json_for_drafts() -> None:
    for kind, facts in FACTS.items():
        checked = answer_facts(kind, facts)
        assert answer_facts(kind, facts_to_json(checked)) == checked
    promise = answer_facts(AnswerKind.CONFIRM_PROMISE, FACTS[AnswerKind.CONFIRM_PROMISE])
    assert promise == {"promise_date": date(2026, 12, 12), "promise_amount": Decimal("250.00")}
