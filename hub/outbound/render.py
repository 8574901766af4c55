"""Render reminders and notices from jinja2 templates in the debtor's language.

Templates live in ``mail/<lang>/`` below a template directory: ``<kind>.subject.j2``,
``<kind>.txt.j2`` and ``<kind>.html.j2`` for each dunning level kind (``friendly``, ``first``,
``second``, ``final``), for ``notice``, and for each of the hub's answers (the
:class:`~hub.domain.answers.AnswerKind` values, framed by ``_answer_base``). Three
directories are searched in order, so that an operator can override one file without copying
the rest:

1. ``<template_dir>/<creditor code>/mail/<lang>/`` (one creditor's wording),
2. ``<template_dir>/mail/<lang>/`` (the agency's wording),
3. ``<default_template_dir>/mail/<lang>/`` (what the hub ships).

Undefined variables raise (``StrictUndefined``); only ``*.html.j2`` is autoescaped. Amounts and
dates are formatted with Babel in the debtor's locale. The environment is sandboxed because
override templates come from outside the package. Rendering is CPU work of well under a
millisecond once a template is compiled (compiled templates are cached per environment).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.dates import format_date as babel_format_date
from babel.numbers import format_currency as babel_format_currency
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from hub.config import OutboundSection
from hub.domain.answers import AnswerContext
from hub.domain.mail import (
    LANGUAGES,
    Language,
    NoticeContext,
    ReminderContext,
    RenderedMail,
    valid_creditor_code,
)
from hub.errors import ConfigError, UserError

#: the Babel locale for each language: day-month dates and the currency symbol for English
LOCALES: Mapping[Language, str] = {"en": "en_GB", "de": "de_DE", "da": "da_DK"}

NOTICE = "notice"

# CLDR wants a space between an alphabetic currency sign and the digits ("DKK 1,250.00");
# Babel leaves it out in patterns like en_GB's "¤#,##0.00".
_ALPHA_SIGN_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class TemplateRenderError(UserError):
    """A template is missing, broken, or uses a variable it was not given."""


def _defined(*values: object) -> None:
    """Filters get undefined values without raising: fail here, as StrictUndefined would."""
    for value in values:
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()


def _currency_filter(locale: str) -> Callable[..., str]:
    def format_currency(amount: Decimal | int, currency: str, locale: str = locale) -> str:
        _defined(amount, currency, locale)
        formatted = babel_format_currency(amount, currency, locale=locale)
        return _ALPHA_SIGN_DIGIT.sub("\xa0", formatted)

    return format_currency


def _date_filter(locale: str) -> Callable[..., str]:
    def format_date(value: date, format: str = "long", locale: str = locale) -> str:
        _defined(value, format, locale)
        return babel_format_date(value, format=format, locale=locale)

    return format_date


def nl2br(value: str) -> Markup:
    """Escape ``value`` and turn its line breaks into ``<br>`` (for multi-line legal text)."""
    _defined(value)
    lines = str(value).strip().splitlines()
    return Markup("<br>\n").join(escape(line) for line in lines)


def _one_line(subject: str) -> str:
    """A subject is one header line: fold template whitespace, refuse control characters."""
    line = " ".join(subject.split())
    if not line:
        raise TemplateRenderError("the subject template rendered an empty subject")
    if _CONTROL.search(line):
        raise TemplateRenderError("the subject contains control characters")
    return line


def _text_body(text: str) -> str:
    """Trailing spaces off every line, at most two blank lines in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and len(out) >= 2 and not out[-1] and not out[-2]:
            continue
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


class MailRenderer:
    """Renders mail from the template directories; build one and pass it to who renders."""

    def __init__(self, default_dir: Path, override_dir: Path | None = None) -> None:
        if not (default_dir / "mail").is_dir():
            raise ConfigError(
                f"outbound.default_template_dir: {default_dir} has no mail/ templates directory"
            )
        if override_dir is not None and not override_dir.is_dir():
            raise ConfigError(f"outbound.template_dir: {override_dir} is not a directory")
        self.default_dir = default_dir
        self.override_dir = override_dir
        self._environments: dict[tuple[Language, str | None], ImmutableSandboxedEnvironment] = {}

    @classmethod
    def from_settings(cls, outbound: OutboundSection) -> MailRenderer:
        return cls(outbound.default_template_dir, outbound.template_dir)

    def search_path(self, language: Language, creditor_code: str | None) -> list[Path]:
        """The directories searched for a language, first match wins."""
        if language not in LANGUAGES:
            raise UserError(f"language: no templates for {language!r}")
        paths: list[Path] = []
        if self.override_dir is not None:
            if creditor_code is not None:
                if not valid_creditor_code(creditor_code):
                    raise UserError("creditor_code: letters, digits, '-' and '_' only")
                paths.append(self.override_dir / creditor_code / "mail" / language)
            paths.append(self.override_dir / "mail" / language)
        paths.append(self.default_dir / "mail" / language)
        return paths

    def environment(
        self, language: Language, creditor_code: str | None = None
    ) -> ImmutableSandboxedEnvironment:
        """The (cached) environment for one language and creditor."""
        key = (language, creditor_code)
        env = self._environments.get(key)
        if env is None:
            env = ImmutableSandboxedEnvironment(
                loader=FileSystemLoader([str(p) for p in self.search_path(*key)]),
                undefined=StrictUndefined,
                autoescape=select_autoescape(
                    enabled_extensions=("html.j2",),
                    disabled_extensions=(),
                    default_for_string=False,
                    default=False,
                ),
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=True,
            )
            locale = LOCALES[language]
            env.filters["format_currency"] = _currency_filter(locale)
            env.filters["format_date"] = _date_filter(locale)
            env.filters["nl2br"] = nl2br
            self._environments[key] = env
        return env

    def _render(
        self,
        language: Language,
        creditor_code: str | None,
        stem: str,
        variables: Mapping[str, Any],
    ) -> RenderedMail:
        env = self.environment(language, creditor_code)
        parts: dict[str, str] = {}
        for part in ("subject", "txt", "html"):
            name = f"{stem}.{part}.j2"
            try:
                parts[part] = env.get_template(name).render(variables)
            except UndefinedError as exc:
                # the message names the variable, never a value
                raise TemplateRenderError(f"mail/{language}/{name}: {exc.message}") from exc
            except TemplateNotFound as exc:
                raise TemplateRenderError(
                    f"mail/{language}/{name}: template not found "
                    f"(missing {exc.name!r}; searched {', '.join(map(str, env.loader.searchpath))})"  # type: ignore[union-attr]
                ) from exc
            except TemplateSyntaxError as exc:
                raise TemplateRenderError(
                    f"{exc.filename or name}, line {exc.lineno}: {exc.message}"
                ) from exc
            except TemplateError as exc:
                raise TemplateRenderError(f"mail/{language}/{name}: {exc.message}") from exc
        return RenderedMail(
            subject=_one_line(parts["subject"]),
            text=_text_body(parts["txt"]),
            html=parts["html"].strip() + "\n",
            language=language,
        )

    def render_reminder(self, context: ReminderContext) -> RenderedMail:
        """Subject, text and HTML of the reminder for the context's level kind."""
        return self._render(
            context.language,
            context.creditor_code,
            context.level_kind.value,
            context.template_vars(),
        )

    def render_answer(self, context: AnswerContext) -> RenderedMail:
        """Subject, text and HTML of one of the hub's answers (``<answer kind>.*.j2``)."""
        return self._render(
            context.language, context.creditor_code, context.kind.value, context.template_vars()
        )

    def render_notice(self, context: NoticeContext) -> RenderedMail:
        """The notice sent instead of a reminder when the debtor has no usable key.

        Only the portal link and the language reach the template, so an overridden notice
        cannot leak personal data either.
        """
        return self._render(
            context.language, context.creditor_code, NOTICE, context.template_vars()
        )
