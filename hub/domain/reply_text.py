"""What the reply-text extractor gives back: the debtor's own words, and what was cut and why.

A pure value type: :class:`ReplyText` keeps the three parts a reply body is split into (the
debtor's words, the quoted history, the signature) and the rules that decided the split, so a
collector can always see why text was set aside (as Mailman records the rules that hit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class RuleHit(NamedTuple):
    """One rule that fired: its name and the text it matched (shortened)."""

    rule: str
    matched: str


@dataclass(frozen=True)
class ReplyText:
    """A reply body split into the debtor's words, the quoted history and the signature.

    ``reply`` is never empty when the body had any words: when no rule could split anything
    off, or when splitting would leave nothing, ``reply`` is the whole text and
    ``kept_everything`` is true.
    """

    #: what the debtor wrote, without the quoted history and the signature
    reply: str
    #: the quoted history that was removed (attributions, header blocks, ``>`` lines)
    quoted: str
    #: the removed signature: closing and name, contact lines, mobile footers, disclaimers
    signature: str
    #: the rules that fired, in the order they fired
    rules: tuple[RuleHit, ...]
    #: true when nothing could be split off and ``reply`` is the whole text
    kept_everything: bool
