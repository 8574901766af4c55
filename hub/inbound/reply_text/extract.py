"""The text the debtor actually wrote: a reply body without quoted history and signature.

:func:`extract_reply` normalises the body, takes out the quoted history (:mod:`quotes`), then
the signature (:mod:`signatures`), and records every rule that fired. Pure: a string in, a
:class:`~hub.domain.reply_text.ReplyText` out, no I/O. It never returns an empty reply for a
body with words: when only quoted text would remain, the whole body is kept and marked so.
"""

from __future__ import annotations

import re

from hub.domain.reply_text import ReplyText, RuleHit
from hub.inbound.reply_text.quotes import split_quotes
from hub.inbound.reply_text.signatures import has_words, split_signature

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_SPACES = {ord("\u00a0"): " ", ord("\u202f"): " ", ord("\u2007"): " "}
_BLANK_RUNS = re.compile(r"\n{3,}")


def normalise(text: str, *, html: bool = False) -> str:
    """Line ends to ``\\n``, invisible characters out, trailing spaces off each line.

    HTML turned into text leaves runs of blank lines (one per ``<p>`` and ``<div>``); those
    are folded into one blank line.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_INVISIBLE).translate(_SPACES)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    if html:
        text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n")


def extract_reply(text: str, *, html: bool = False) -> ReplyText:
    """Split a reply body into the debtor's words, the quoted history and the signature.

    ``html`` says the body was converted from HTML, where blockquote markers may be lost: an
    attribution line then also cuts when the text after it is on the same line.
    """
    body = normalise(text, html=html)
    if not has_words(body):
        return ReplyText(body.strip(), "", "", (), kept_everything=True)
    quotes = split_quotes(body.split("\n"), html=html)
    hits = list(quotes.hits)
    if not has_words(quotes.reply):
        hits.append(RuleHit("kept_everything", "only quoted text: the whole body is kept"))
        return ReplyText(body.strip(), "", "", tuple(hits), kept_everything=True)
    signature = split_signature(quotes.reply)
    hits.extend(signature.hits)
    return ReplyText(
        reply=signature.reply,
        quoted=quotes.quoted,
        signature=signature.signature,
        rules=tuple(hits),
        kept_everything=not quotes.quoted and not signature.signature,
    )
