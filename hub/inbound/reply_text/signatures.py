"""Split the signature off the end of the debtor's text, and nothing that reads like a sentence.

Signature parts are peeled from the end one at a time, each by a named rule: a disclaimer,
a mobile footer ("Sent from my iPhone"), the RFC 3676 delimiter ``-- ``, a closing with the name
and contact lines under it ("Mit freundlichen Grüßen\\nMax Mustermann"), a goodbye appended to
the last sentence ("… fredag. Mvh Bettina"), a name with contact lines. A closing counts only
when everything under it looks like a signature, so text after a closing (a P.S.) keeps it.
A rule that would leave no words is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hub.domain.reply_text import RuleHit
from hub.inbound.reply_text.clients import FOOTER_LINE, INLINE_FOOTER, RULE_LINE, UNDERSCORES
from hub.inbound.reply_text.closings import (
    CLOSING_LINE,
    CONNECTORS,
    CONTACT_LINE,
    DISCLAIMER_START,
    DISCLAIMER_WORDS,
    INLINE_CLOSING,
    INLINE_THANKS,
    NOT_A_NAME,
    SENTENCE_START,
)

#: the most signature lines under a ``-- `` delimiter (RFC 3676 asks for four; many use more)
_MAX_DELIMITED = 15
#: the most lines under a closing (name, title, company, address, phones, web)
_MAX_UNDER_CLOSING = 8
#: the most lines and characters of a disclaimer
_MAX_DISCLAIMER = 40
_MAX_DISCLAIMER_CHARS = 3000
_MAX_SIG_WORDS = 6
#: a signature has a few parts; more peels than this means the rules are eating text
_MAX_PEELS = 12
#: inline closings and footers are looked for in this many last characters of the last line
_INLINE_WINDOW = 240
#: a closing or a contact block is looked for in this many last lines
_SCAN_LINES = 30
#: no signature line is longer than this
_MAX_SIG_LINE = 200
_MATCH_LIMIT = 160
_WORD = re.compile(r"\w")
_DATE = re.compile(r"\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b")
_SLASH_NAME = re.compile(r"^/\s?[A-ZÄÖÜÆØÅ][\w'-]*(?:\s[A-ZÄÖÜÆØÅ][\w'-]*)?$")
_NAME_WORD = re.compile(r"^(?:[A-ZÄÖÜÆØÅÉ][\w'’-]*\.?|[A-ZÄÖÜÆØÅ]\.|von|van|de|der|af|zu)$")
_ABBREVIATION = re.compile(r"^(?:\w{1,4}\.|[A-ZÄÖÜÆØÅ]\.)$")
#: "i. A.", "i. V.", "pp.", "v/" before a name: on behalf of
_ON_BEHALF = re.compile(r"^(?:i\.\s?[AV]\.|pp?\.|p\.p\.|v/|ppa\.)\s*")
_LONE_WORD = re.compile(r"^[^\W\d_]{2,20}$")
_FULL_NAME_WORDS = (2, 3)


def has_words(text: str) -> bool:
    """True when ``text`` has at least one letter or digit."""
    return _WORD.search(text) is not None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MATCH_LIMIT else text[: _MATCH_LIMIT - 1] + "…"


def _sentence_like(line: str) -> bool:
    words = line.split()
    if not words:
        return False
    if SENTENCE_START.match(words[0].strip(",.;:")):
        return True
    return line.endswith("?") or (len(words) >= 5 and line.endswith((".", "!")))


def contact_like(line: str) -> bool:
    """A line with contact details (phone, mail, web, company, address), not a sentence."""
    if len(line) > _MAX_SIG_LINE or _sentence_like(line):
        return False
    match = CONTACT_LINE.search(_DATE.sub(" ", line))
    return match is not None


def plausible_name(name: str | None) -> bool:
    """False when a "name" after a closing is a word that starts a sentence or names a day."""
    if not name:
        return True
    words = [w.strip(",.!/").lower() for w in name.split()]
    return not any(w in NOT_A_NAME for w in words if w)


def name_like(line: str) -> bool:
    """One to four capitalised words: a person's name ("Max Mustermann", "R. Haas")."""
    words = line.split()
    return 1 <= len(words) <= 4 and all(_NAME_WORD.match(w) for w in words)


def signature_like(line: str) -> bool:
    """A line that may stand in a signature: a name, a title, a company, contact details."""
    line = _ON_BEHALF.sub("", line.strip())
    if not line:
        return True
    if len(line) > _MAX_SIG_LINE:
        return False
    if contact_like(line) or (_LONE_WORD.match(line) and line.lower() not in NOT_A_NAME):
        return True
    words = line.split()
    if _sentence_like(line) or len(words) > _MAX_SIG_WORDS or line.endswith(("!", ":", ";")):
        return False
    if line.endswith(".") and not _ABBREVIATION.match(words[-1]):
        return False
    lower = [w for w in words if w[0].islower() and w.lower().strip(",") not in CONNECTORS]
    if not lower:
        return True
    # a job title with one lowercase word: "Sales manager, Acme"
    return len(lower) == 1 and len(words) >= 2 and re.search(r"[,|/·–-]", line) is not None


@dataclass(frozen=True)
class _Peel:
    """What one rule would cut: keep ``lines``, sign off ``removed``."""

    lines: list[str]
    removed: str
    hit: RuleHit


_Peeler = Callable[[list[str]], "_Peel | None"]


def _peel_from(lines: list[str], start: int, rule: str, matched: str) -> _Peel:
    return _Peel(lines[:start], "\n".join(lines[start:]), RuleHit(rule, _short(matched)))


def _footer_line(lines: list[str]) -> _Peel | None:
    last = lines[-1].strip()
    if len(last) <= 90 and FOOTER_LINE.match(last):
        return _peel_from(lines, len(lines) - 1, "mobile_footer", last)
    return None


def _tail(line: str) -> tuple[str, int]:
    """The end of ``line`` that inline rules look at, and where it starts in ``line``."""
    line = line.rstrip()
    start = max(0, len(line) - _INLINE_WINDOW)
    return line[start:], start


def _inline_footer(lines: list[str]) -> _Peel | None:
    tail, offset = _tail(lines[-1])
    match = INLINE_FOOTER.search(tail)
    if match is None:
        return None
    keep = lines[-1][: offset + match.start()].rstrip()
    return _Peel([*lines[:-1], keep], match["footer"], RuleHit("mobile_footer", match["footer"]))


def _paragraph_start(lines: list[str], end: int) -> int:
    start = end - 1
    while start > 0 and lines[start - 1].strip():
        start -= 1
    return start


def _disclaimer(lines: list[str]) -> _Peel | None:
    end = len(lines)
    start: int | None = None
    while end > 0 and len(lines) - end < _MAX_DISCLAIMER:
        p = _paragraph_start(lines, end)
        para = lines[p:end]
        first = para[0].strip()
        rule_above = bool(RULE_LINE.match(first) or UNDERSCORES.match(first))
        text = " ".join(x.strip() for x in para[1:] if rule_above) if rule_above else ""
        text = text or " ".join(x.strip() for x in para)
        if len(text) > _MAX_DISCLAIMER_CHARS or not DISCLAIMER_WORDS.search(text):
            break
        opening = para[1].strip() if rule_above and len(para) > 1 else first
        if rule_above or DISCLAIMER_START.match(opening):
            start = p
        prev = p - 1
        while prev >= 0 and not lines[prev].strip():
            prev -= 1
        if prev >= 0 and (RULE_LINE.match(lines[prev].strip()) or UNDERSCORES.match(lines[prev])):
            start = prev
            break
        end = prev + 1
        if rule_above:
            break
    if start is None:
        return None
    opening = next(x for x in lines[start:] if x.strip() and not RULE_LINE.match(x.strip()))
    return _peel_from(lines, start, "disclaimer", opening)


def _delimiter(lines: list[str]) -> _Peel | None:
    end = len(lines)
    for k in range(end - 1, max(-1, end - _MAX_DELIMITED - 6), -1):
        if lines[k].strip() == "--":
            below = [x for x in lines[k + 1 :] if x.strip()]
            if len(below) <= _MAX_DELIMITED:
                return _peel_from(lines, k, "signature_delimiter", lines[k])
            return None
    return None


def _closing(lines: list[str]) -> _Peel | None:
    """A closing with only signature lines under it; the highest one that leaves words above."""
    starts: list[int] = []
    under = 0
    for k in range(len(lines) - 1, max(-1, len(lines) - 1 - _SCAN_LINES), -1):
        line = lines[k].strip()
        if not line:
            continue
        if len(line) > _MAX_SIG_LINE:
            break
        closing = CLOSING_LINE.match(line)
        if closing and plausible_name(closing["name"]):
            starts.append(k)
        elif not signature_like(line):
            break
        else:
            under += 1
            if under > _MAX_UNDER_CLOSING:
                break
    if not starts:
        return None
    # "Mange tak. Modtaget.\n\nVenlig hilsen\nElsebeth": the first line reads as a closing
    # too, but cutting there would leave nothing, so the one under it is the signature
    start = next((k for k in reversed(starts) if has_words("\n".join(lines[:k]))), starts[0])
    return _peel_from(lines, start, "closing", lines[start])


def _inline_closing(lines: list[str]) -> _Peel | None:
    tail, offset = _tail(lines[-1])
    match = INLINE_CLOSING.search(tail) or INLINE_THANKS.search(tail)
    if match is None or not plausible_name(match["name"]):
        return None
    keep = lines[-1][: offset + match.start()].rstrip()
    return _Peel([*lines[:-1], keep], match["closing"], RuleHit("closing", match["closing"]))


def _slash_name(lines: list[str]) -> _Peel | None:
    last = lines[-1].strip()
    if _SLASH_NAME.match(last):
        return _peel_from(lines, len(lines) - 1, "name", last)
    return None


def _full_name(lines: list[str]) -> _Peel | None:
    """A full name alone on the last line, under a finished sentence ("… time,\nLiam Foster")."""
    last = lines[-1].strip()
    words = last.split()
    if not (_FULL_NAME_WORDS[0] <= len(words) <= _FULL_NAME_WORDS[1]) or len(lines) < 2:
        return None
    if not name_like(last) or not plausible_name(last) or any(w.endswith(".") for w in words):
        return None
    above = lines[-2].strip()
    if not above.endswith((".", "!", "?", ",")):
        return None
    return _peel_from(lines, len(lines) - 1, "name", last)


def _contact_block(lines: list[str]) -> _Peel | None:
    start: int | None = None
    contacts = 0
    for k in range(len(lines) - 1, max(-1, len(lines) - 1 - _SCAN_LINES), -1):
        line = lines[k].strip()
        if not line or not signature_like(line):
            break
        contacts += contact_like(line)
        start = k
    if start is None or contacts == 0 or len(lines) - start < 2:
        return None
    # the block starts at the name above the contact lines
    while start < len(lines) and not name_like(lines[start].strip()):
        start += 1
    if start >= len(lines) - 1:
        return None
    above = lines[start - 1].strip() if start > 0 else ""
    if above and not above.endswith((".", "!", "?", ":", ",")) and not CLOSING_LINE.match(above):
        return None
    return _peel_from(lines, start, "contact_block", lines[start])


#: the order the rules are tried in at each step; the first that applies peels
PEELERS: tuple[_Peeler, ...] = (
    _footer_line,
    _inline_footer,
    _disclaimer,
    _delimiter,
    _closing,
    _inline_closing,
    _slash_name,
    _contact_block,
    _full_name,
)


@dataclass(frozen=True)
class SignatureSplit:
    """The debtor's text without its signature."""

    reply: str
    signature: str
    hits: tuple[RuleHit, ...]


def _trim(lines: list[str]) -> list[str]:
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return lines[:end]


def split_signature(text: str) -> SignatureSplit:
    """Peel the signature off the end of ``text``; never leave it without words."""
    lines = _trim(text.split("\n"))
    removed: list[str] = []
    hits: list[RuleHit] = []
    refused: list[RuleHit] = []
    progress = True
    while progress and lines and len(hits) < _MAX_PEELS:
        progress = False
        for peeler in PEELERS:
            peel = peeler(lines)
            if peel is None:
                continue
            if not has_words("\n".join(peel.lines)):
                if peel.hit not in refused:
                    refused.append(peel.hit)
                continue
            lines = _trim(peel.lines)
            removed.insert(0, peel.removed.strip("\n"))
            hits.append(peel.hit)
            progress = True
            break
    hits.extend(RuleHit("signature_kept", f"{h.rule}: {h.matched}") for h in refused)
    signature = "\n".join(part for part in removed if part.strip()).strip()
    return SignatureSplit("\n".join(lines).strip(), signature, tuple(hits))
