"""Split the quoted history off a reply body, keeping every line the debtor wrote.

Lines marked with ``>`` (any depth, ``> >`` too) are quoted wherever they stand, so answers
written between quoted blocks (interleaved) and below them (bottom-posting) stay. An attribution
("On … wrote:") or an Outlook header block that introduces a ``>`` block goes with that block;
one that introduces unquoted text (Outlook, forwards, HTML mail whose blockquotes were lost)
starts the history, which then runs to the end. A ``>`` that begins an amount ("> 100 EUR")
inside a sentence is not a quote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.domain.reply_text import RuleHit
from hub.inbound.reply_text.clients import (
    ATTRIBUTION_START,
    DASHED_SEPARATOR,
    FORWARD_MARKER,
    HEADER_KINDS,
    HEADER_LINE,
    HTML_ATTRIBUTION_PREFIX,
    ONE_LINE_HEADER,
    STRONG_ATTRIBUTION,
    UNDERSCORES,
    WEAK_ATTRIBUTION,
    has_time_or_address,
)

_QUOTE_MARK = re.compile(r"^[ \t]*>")
#: what follows a ``>`` that compares or gives an amount rather than quoting
_AMOUNT_AFTER_GT = re.compile(r"^[ \t]*>[ \t]*(?:=|[\d€$£]|(?:EUR|DKK|CHF|GBP|USD|kr)\b)")
#: the longest attribution a client wraps, in lines
_MAX_ATTRIBUTION_LINES = 3
#: the most lines between an underscore rule and the header block it introduces
_UNDERSCORE_LOOKAHEAD = 2
_MATCH_LIMIT = 160
#: quoted blocks named one by one in the rules; more are counted in one entry
_MAX_BLOCK_HITS = 20
#: every attribution has one of these; a cheap test before the long patterns
_ATTRIBUTION_VERB = re.compile(
    r"wrote|writes|schrieb|schreibt|skrev|skriver|Quoting|Zitat von|Citat fra|Citerer"
)


@dataclass(frozen=True)
class QuoteSplit:
    """The body with the quoted history taken out."""

    #: the lines the debtor wrote; removed blocks become one blank line between answers
    reply: str
    #: the removed lines, in their order
    quoted: str
    hits: tuple[RuleHit, ...]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MATCH_LIMIT else text[: _MATCH_LIMIT - 1] + "…"


def _is_amount_not_quote(lines: list[str], i: int, quotes_elsewhere: bool) -> bool:
    """A lone ``>`` line that starts with an amount ("I can pay\\n> 100 EUR\\nper month").

    It is taken for a comparison when no other line of the body is quoted, or when it sits
    inside a paragraph: after an unfinished line, or before a line that goes on in lowercase.
    """
    if not _AMOUNT_AFTER_GT.match(lines[i]):
        return False
    before = lines[i - 1] if i > 0 else ""
    after = lines[i + 1] if i + 1 < len(lines) else ""
    if _QUOTE_MARK.match(before) or _QUOTE_MARK.match(after):
        return False
    if not quotes_elsewhere:
        return True
    prev = before.strip()
    if not prev:
        return False
    if prev.endswith((".", "!", "?", ":")):
        nxt = after.strip()
        return bool(nxt) and nxt[0].islower()
    return True


def quote_flags(lines: list[str]) -> list[bool]:
    """For each line, whether it is a ``>`` quote line."""
    marked = [i for i, line in enumerate(lines) if _QUOTE_MARK.match(line)]
    flags = [False] * len(lines)
    for i in marked:
        flags[i] = not _is_amount_not_quote(lines, i, quotes_elsewhere=len(marked) > 1)
    return flags


def _next_nonblank(lines: list[str], start: int) -> int | None:
    for j in range(start, len(lines)):
        if lines[j].strip():
            return j
    return None


@dataclass(frozen=True)
class _Span:
    """Lines ``start`` to ``end`` (exclusive) that introduce quoted history."""

    end: int
    rule: str
    matched: str
    #: safe to cut at even when no ``>`` block follows
    strong: bool


def _attribution(lines: list[str], flags: list[bool], i: int, html: bool) -> _Span | None:
    first = lines[i].strip()
    if html and HTML_ATTRIBUTION_PREFIX.match(first) and has_time_or_address(first):
        return _Span(len(lines), "attribution", _short(first), strong=True)
    joined = ""
    for k in range(_MAX_ATTRIBUTION_LINES):
        j = i + k
        if j >= len(lines) or flags[j] or not lines[j].strip():
            return None
        part = lines[j].strip()
        joined = joined + part if joined.endswith("<") or not joined else f"{joined} {part}"
        if len(joined) > 400:
            return None
        if not _ATTRIBUTION_VERB.search(joined):
            if k == 0 and not ATTRIBUTION_START.match(part):
                return None
            continue
        if STRONG_ATTRIBUTION.match(joined):
            strong = has_time_or_address(joined)
            return _Span(j + 1, "attribution", _short(joined), strong=strong)
        if WEAK_ATTRIBUTION.match(joined) and len(joined.split()) <= 20:
            return _Span(j + 1, "attribution", _short(joined), strong=False)
        if k == 0 and not ATTRIBUTION_START.match(part):
            return None
    return None


def _header_block_end(lines: list[str], i: int, html: bool) -> int | None:
    """End of an Outlook-style header block starting at ``i`` ("From: … Sent: … To: …")."""
    kinds: set[str] = set()
    count = 0
    last = i
    j = i
    while j < len(lines):
        line = lines[j].strip()
        match = HEADER_LINE.match(line)
        if match:
            kinds.add(HEADER_KINDS[match["name"]])
            count += 1
            last = j
            j += 1
            continue
        header_next = j + 1 < len(lines) and HEADER_LINE.match(lines[j + 1].strip())
        # HTML conversion puts blank lines between the header lines; long To: lists wrap
        if count and header_next and (html or line):
            j += 1
            continue
        break
    if count >= 2 and "from" in kinds and len(kinds) >= 2:
        return last + 1
    return None


def _header(lines: list[str], i: int, html: bool) -> _Span | None:
    line = lines[i].strip()
    if ONE_LINE_HEADER.match(line):
        return _Span(i + 1, "outlook_header", _short(line), strong=True)
    if DASHED_SEPARATOR.match(line) or FORWARD_MARKER.match(line):
        after = _next_nonblank(lines, i + 1)
        end = i + 1
        if after is not None:
            end = _header_block_end(lines, after, html) or end
        return _Span(end, "separator", _short(line), strong=True)
    if UNDERSCORES.match(line):
        after = _next_nonblank(lines, i + 1)
        if after is None or after - i > _UNDERSCORE_LOOKAHEAD + 1:
            return None
        block_end = _header_block_end(lines, after, html)
        if block_end is None and not ONE_LINE_HEADER.match(lines[after].strip()):
            return None
        return _Span(block_end or after + 1, "separator", _short(line), strong=True)
    block_end = _header_block_end(lines, i, html)
    if block_end is not None:
        return _Span(block_end, "outlook_header", _short(line), strong=True)
    return None


def split_quotes(lines: list[str], *, html: bool) -> QuoteSplit:
    """Take the quoted history out of ``lines`` (already normalised, no line ends)."""
    flags = quote_flags(lines)
    quoted_at = [False] * len(lines)
    hits: list[RuleHit] = []
    blocks = 0
    i = 0
    while i < len(lines):
        if flags[i]:
            before = next((k for k in range(i - 1, -1, -1) if lines[k].strip()), None)
            if before is None or not flags[before]:
                blocks += 1
                if blocks <= _MAX_BLOCK_HITS:
                    hits.append(RuleHit("quote_marker", _short(lines[i])))
            quoted_at[i] = True
            # blank lines inside a quoted block belong to it
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and flags[j]:
                for k in range(i + 1, j):
                    quoted_at[k] = True
                i = j
            else:
                i += 1
            continue
        if not lines[i].strip():
            i += 1
            continue
        span = _header(lines, i, html) or _attribution(lines, flags, i, html)
        if span is None:
            if _AMOUNT_AFTER_GT.match(lines[i]):
                hits.append(RuleHit("not_a_quote", _short(lines[i])))
            i += 1
            continue
        follower = _next_nonblank(lines, span.end)
        if follower is not None and flags[follower]:
            hits.append(RuleHit(span.rule, span.matched))
            for k in range(i, follower):
                quoted_at[k] = True
            i = follower
            continue
        if span.strong:
            hits.append(RuleHit(span.rule, span.matched))
            if follower is not None:
                hits.append(RuleHit("unquoted_history", _short(lines[follower])))
            for k in range(i, len(lines)):
                quoted_at[k] = True
            break
        i += 1
    if blocks > _MAX_BLOCK_HITS:
        hits.append(RuleHit("quote_marker", f"{blocks - _MAX_BLOCK_HITS} more quoted blocks"))
    return _assemble(lines, quoted_at, hits)


def _assemble(lines: list[str], quoted_at: list[bool], hits: list[RuleHit]) -> QuoteSplit:
    segments: list[list[str]] = [[]]
    quoted: list[str] = []
    answers_after_quote = False
    for line, is_quoted in zip(lines, quoted_at, strict=True):
        if is_quoted:
            quoted.append(line)
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append(line)
            if quoted and line.strip():
                answers_after_quote = True
    texts = [t for t in ("\n".join(s).strip("\n") for s in segments) if t.strip()]
    if answers_after_quote and texts:
        rule = "interleaved" if len(texts) > 1 else "text_below_quote"
        hits.append(RuleHit(rule, f"{len(texts)} part(s) of text kept around the quotes"))
    return QuoteSplit(
        reply="\n\n".join(texts),
        quoted="\n".join(quoted).strip("\n"),
        hits=tuple(hits),
    )
