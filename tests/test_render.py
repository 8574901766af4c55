"""Rendering reminders and notices: languages, locale formats, escaping, strictness, overrides."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from mail_support import LEGAL_IDENTITY, reminder_context, shipped_renderer

import hub
from hub.config import load_settings
from hub.domain.dunning import LevelKind
from hub.domain.mail import LANGUAGES, Language, NoticeContext, RenderedMail
from hub.errors import ConfigError, UserError
from hub.outbound.render import MailRenderer, TemplateRenderError

REPO = Path(__file__).resolve().parents[1]

#: currency, claim, fee 2, fee 3, paid, total, due date, pay-by date: as the locale writes them
LOCALE_FORMATS: dict[Language, tuple[str, ...]] = {
    "en": ("EUR", "€1,250.00", "€5.00", "€7.50", "-€100.00", "€1,162.50",
           "14 March 2025", "28 April 2025"),
    "de": ("EUR", "1.250,00\xa0€", "5,00\xa0€", "7,50\xa0€", "-100,00\xa0€", "1.162,50\xa0€",
           "14. März 2025", "28. April 2025"),
    "da": ("DKK", "1.250,00\xa0kr.", "5,00\xa0kr.", "7,50\xa0kr.", "-100,00\xa0kr.",
           "1.162,50\xa0kr.", "14. marts 2025", "28. april 2025"),
}  # fmt: skip

#: words each language must use for each level in the subject
SUBJECT_WORDS: dict[Language, dict[LevelKind, str]] = {
    "en": {LevelKind.FRIENDLY: "Payment reminder", LevelKind.FIRST: "First reminder",
           LevelKind.SECOND: "Second reminder", LevelKind.FINAL: "Final notice"},
    "de": {LevelKind.FRIENDLY: "Zahlungserinnerung", LevelKind.FIRST: "1. Mahnung",
           LevelKind.SECOND: "2. Mahnung", LevelKind.FINAL: "Letzte Mahnung"},
    "da": {LevelKind.FRIENDLY: "Betalingspåmindelse", LevelKind.FIRST: "1. rykker",
           LevelKind.SECOND: "2. rykker", LevelKind.FINAL: "Sidste rykker"},
}  # fmt: skip

#: a phrase of each language's "how to reply" and opt-out paragraphs
REPLY_PHRASE = {"en": "reply to this email", "de": "Antworten Sie einfach auf diese E-Mail",
                "da": "Du skal blot svare på denne e-mail"}  # fmt: skip
OPT_OUT_PHRASE = {"en": "no longer wish to be contacted by email",
                  "de": "keine E-Mails mehr von uns erhalten",
                  "da": "ikke længere ønsker at modtage e-mails"}  # fmt: skip

NOTICE_SUBJECTS = {
    "en": "A new message is waiting for you",
    "de": "Eine neue Nachricht wartet auf Sie",
    "da": "Du har en ny besked",
}

KINDS = list(LevelKind)


class _Html(HTMLParser):
    """Collects the text and the link targets of an HTML part, as a mail client would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.hrefs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs.extend(value for name, value in attrs if name == "href" and value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(html: str) -> _Html:
    parser = _Html()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return shipped_renderer()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_reminder_states_every_required_element(
    renderer: MailRenderer, language: Language, kind: LevelKind
) -> None:
    context = reminder_context(language, kind, currency=LOCALE_FORMATS[language][0])
    mail = renderer.render_reminder(context)
    _, claim, fee2, fee3, paid, total, due, pay_by = LOCALE_FORMATS[language]

    assert isinstance(mail, RenderedMail) and mail.language == language
    assert SUBJECT_WORDS[language][kind] in mail.subject
    assert context.reference in mail.subject and "\n" not in mail.subject

    html = parse_html(mail.html)
    html_text = "".join(html.text)
    for body in (mail.text, html_text):
        for expected in (
            context.creditor_name,
            context.debtor_name,
            context.reference,
            context.iban,
            "COBADEFFXXX",
            context.reply_address,
            context.portal_url,
            context.opt_out_url,
            "Stromrechnung 2024-113",
            claim,
            fee2,
            fee3,
            paid,
            total,
            due,
            pay_by,
            REPLY_PHRASE[language],
            OPT_OUT_PHRASE[language],
            *LEGAL_IDENTITY.splitlines(),
        ):
            assert expected in body, (language, kind, expected)
        # the friendly level costs nothing: a zero fee is not itemised
        assert not re.search(r"\b0[.,]00\b", body)
    # the links work in the HTML part: portal, opt-out and the reply address
    assert context.portal_url in html.hrefs
    assert context.opt_out_url in html.hrefs
    assert f"mailto:{context.reply_address}" in html.hrefs
    assert f'lang="{language}"' in mail.html


def test_subjects_and_intros_differ_per_level(renderer: MailRenderer) -> None:
    for language in LANGUAGES:
        mails = [renderer.render_reminder(reminder_context(language, kind)) for kind in KINDS]
        assert len({m.subject for m in mails}) == len(KINDS)
        assert len({m.text for m in mails}) == len(KINDS)
        assert len({m.html for m in mails}) == len(KINDS)


def test_english_pound_and_alphabetic_currency_signs(renderer: MailRenderer) -> None:
    gbp = renderer.render_reminder(reminder_context("en", currency="GBP"))
    assert "£1,250.00" in gbp.text and "£1,162.50" in gbp.text
    dkk = renderer.render_reminder(reminder_context("en", currency="DKK"))
    # CLDR puts a space between a letter code and the digits; Babel's en_GB pattern does not
    assert "DKK\xa01,250.00" in dkk.text and "DKK1" not in dkk.text
    eur_de = renderer.render_reminder(reminder_context("de", currency="DKK"))
    assert "1.250,00\xa0DKK" in eur_de.text


def test_html_is_escaped_and_text_is_literal(renderer: MailRenderer) -> None:
    hostile = "<script>alert('x')</script> & Søn"
    context = reminder_context(
        "da",
        debtor_name=hostile,
        creditor_name="Müller & Söhne <GmbH>",
        creditor_legal_identity="Müller & Söhne <GmbH>\n<b>CVR</b> 12345678",
    )
    mail = renderer.render_reminder(context)
    assert hostile in mail.text
    assert "Müller & Söhne <GmbH>" in mail.subject
    assert "<b>CVR</b> 12345678" in mail.text
    assert "<script>" not in mail.html and "<GmbH>" not in mail.html and "<b>" not in mail.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Søn" in mail.html
    assert "Müller &amp; Söhne &lt;GmbH&gt;" in mail.html
    # the legal identity keeps its lines as <br>, and only those are markup
    assert "Müller &amp; Söhne &lt;GmbH&gt;<br>\n&lt;b&gt;CVR&lt;/b&gt; 12345678" in mail.html
    html = parse_html(mail.html)
    assert "script" not in html.tags and "b" not in html.tags
    assert hostile in "".join(html.text)


@pytest.mark.parametrize(
    "missing",
    [
        "iban",
        "reference",
        "total",
        "due_date",
        "portal_url",
        "opt_out_url",
        "reply_address",
        "creditor_legal_identity",
        "creditor_name",
        "debtor_name",
        "fees",
        "currency",
    ],
)
def test_a_missing_variable_raises_in_every_template(renderer: MailRenderer, missing: str) -> None:
    for language in LANGUAGES:
        variables = reminder_context(language).template_vars()
        del variables[missing]
        for kind in KINDS:
            for part in ("txt", "html"):
                template = renderer.environment(language).get_template(f"{kind}.{part}.j2")
                with pytest.raises(jinja2.UndefinedError, match=missing):
                    template.render(variables)


def test_an_override_using_an_unknown_variable_raises(tmp_path: Path) -> None:
    override = tmp_path / "mail" / "en"
    override.mkdir(parents=True)
    (override / "first.subject.j2").write_text("Reminder for {{ debtor_nickname }}\n")
    renderer = MailRenderer(REPO / "templates", tmp_path)
    with pytest.raises(TemplateRenderError, match="debtor_nickname"):
        renderer.render_reminder(reminder_context("en"))
    # a typo in an attribute is caught as well
    (override / "first.subject.j2").write_text("Reminder {{ fees[0].amout }}\n")
    with pytest.raises(TemplateRenderError, match="amout"):
        MailRenderer(REPO / "templates", tmp_path).render_reminder(reminder_context("en"))


def test_override_templates_cannot_reach_python_internals(tmp_path: Path) -> None:
    override = tmp_path / "mail" / "en"
    override.mkdir(parents=True)
    (override / "first.subject.j2").write_text("{{ reference.__class__.__mro__ }}\n")
    with pytest.raises(TemplateRenderError):
        MailRenderer(REPO / "templates", tmp_path).render_reminder(reminder_context("en"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_notice_carries_no_personal_data(renderer: MailRenderer, language: Language) -> None:
    context = reminder_context(language, LevelKind.FINAL, currency=LOCALE_FORMATS[language][0])
    notice = renderer.render_notice(
        NoticeContext(language=language, portal_url="https://portal.hub.example/login")
    )
    everything = "\n".join((notice.subject, notice.text, notice.html))
    forbidden = [
        context.debtor_name,
        *context.debtor_name.split(),
        context.reference,
        context.creditor_name,
        "Nordlicht",
        context.iban,
        "COBADEFFXXX",
        "Stromrechnung",
        context.reply_address,
        context.opt_out_url,
        *LEGAL_IDENTITY.splitlines(),
        *LOCALE_FORMATS[language][1:],
        "1250",
        "1.250",
        "1,250",
        "1162",
        "2025",
    ]
    for value in forbidden:
        assert value not in everything, value
    assert not re.search(r"\d", notice.subject + notice.text.replace("S/MIME", ""))
    assert "https://portal.hub.example/login" in notice.text
    assert "https://portal.hub.example/login" in parse_html(notice.html).hrefs
    assert notice.subject == NOTICE_SUBJECTS[language]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_override_directory_wins_and_per_creditor_wins_over_it(tmp_path: Path) -> None:
    _write(tmp_path / "mail" / "de" / "first.subject.j2", "AGENTUR {{ reference }}\n")
    _write(
        tmp_path / "mail" / "de" / "first.txt.j2",
        '{% extends "_base.txt.j2" %}{% block intro %}AGENTUR-TEXT{% endblock %}',
    )
    _write(tmp_path / "NORDLICHT" / "mail" / "de" / "first.subject.j2", "GLÄUBIGER {{ reference }}")
    settings = load_settings(None, {"HUB_OUTBOUND_TEMPLATE_DIR": str(tmp_path)})
    assert settings.outbound.template_dir == tmp_path
    renderer = MailRenderer.from_settings(settings.outbound)

    own = renderer.render_reminder(reminder_context("de"))
    assert own.subject == "GLÄUBIGER NL-2025-004711"
    # the text part falls through to the agency's override, which extends the shipped base
    assert "AGENTUR-TEXT" in own.text and "IBAN: DE89370400440532013000" in own.text
    # the HTML part is overridden nowhere: the shipped one
    assert own.html == shipped_renderer().render_reminder(reminder_context("de")).html

    other = renderer.render_reminder(reminder_context("de", creditor_code="SUEDWIND"))
    assert other.subject == "AGENTUR NL-2025-004711"
    # languages without overrides render the shipped templates
    english = renderer.render_reminder(reminder_context("en"))
    assert english == shipped_renderer().render_reminder(reminder_context("en"))


def test_per_creditor_notice_override(tmp_path: Path) -> None:
    _write(tmp_path / "NORDLICHT" / "mail" / "en" / "notice.subject.j2", "Secure message\n")
    renderer = MailRenderer(REPO / "templates", tmp_path)
    own = renderer.render_notice(
        NoticeContext(language="en", portal_url="https://p.example/", creditor_code="NORDLICHT")
    )
    assert own.subject == "Secure message"
    other = renderer.render_notice(NoticeContext(language="en", portal_url="https://p.example/"))
    assert other.subject == "A new message is waiting for you"


def test_shipped_templates_resolve_from_a_checkout_and_from_the_package() -> None:
    settings = load_settings(None, {})
    assert settings.outbound.template_dir is None
    assert settings.outbound.default_template_dir == REPO / "templates"
    packaged = Path(hub.__file__).resolve().parent / "templates"
    # the package's templates/ (a symlink in the checkout, real files in a wheel) is the same
    assert (packaged / "mail" / "da" / "final.txt.j2").read_text(encoding="utf-8") == (
        REPO / "templates" / "mail" / "da" / "final.txt.j2"
    ).read_text(encoding="utf-8")
    names = {p.name for p in (REPO / "templates" / "mail" / "de").iterdir()}
    for language in LANGUAGES:
        found = {p.name for p in (REPO / "templates" / "mail" / language).iterdir()}
        assert found == names, language
    for stem in [*(k.value for k in KINDS), "notice"]:
        for part in ("subject", "txt", "html"):
            assert f"{stem}.{part}.j2" in names


def test_broken_configuration_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="default_template_dir"):
        MailRenderer(tmp_path)
    with pytest.raises(ConfigError, match="template_dir"):
        MailRenderer(REPO / "templates", tmp_path / "nowhere")
    # a default directory missing one template names it
    _write(tmp_path / "mail" / "en" / "first.subject.j2", "Subject {{ reference }}")
    with pytest.raises(TemplateRenderError, match=r"first\.txt\.j2"):
        MailRenderer(tmp_path).render_reminder(reminder_context("en"))
    _write(tmp_path / "mail" / "en" / "first.txt.j2", "{% if %}")
    with pytest.raises(TemplateRenderError, match="line 1"):
        MailRenderer(tmp_path).render_reminder(reminder_context("en"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iban": ""}, "iban"),
        ({"iban": "DE89 3704 0044 0532 0130 00"}, "iban"),
        ({"bic": "nope"}, "bic"),
        ({"creditor_legal_identity": "  "}, "creditor_legal_identity"),
        ({"creditor_code": "../../etc"}, "creditor_code"),
        ({"portal_url": "javascript:alert(1)"}, "portal_url"),
        ({"opt_out_url": "https://x.example/a b"}, "opt_out_url"),
        ({"currency": "eur"}, "currency"),
        ({"amount": Decimal("0")}, "amount"),
        ({"paid_amount": Decimal("2000")}, "total"),
        ({"language": "fr"}, "language"),
        ({"level": 0}, "level"),
    ],
)
def test_reminder_context_refuses_what_would_render_wrong(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        replace(reminder_context("en"), **changes)


def test_no_bic_means_no_bic_line(renderer: MailRenderer) -> None:
    mail = renderer.render_reminder(reminder_context("de", bic=None))
    assert "BIC" not in mail.text and "BIC" not in mail.html
    assert "IBAN: DE89370400440532013000" in mail.text


def test_text_part_layout(renderer: MailRenderer) -> None:
    mail = renderer.render_reminder(reminder_context("de", LevelKind.FRIENDLY))
    assert mail.text.startswith("Guten Tag Karoline Bjerregaard,\n\n")
    assert mail.text.endswith("\n") and not mail.text.endswith("\n\n")
    assert "\n\n\n\n" not in mail.text
    assert all(line == line.rstrip() for line in mail.text.splitlines())
