"""Extract the reply text: what the debtor wrote, without quoted history and signature.

English, German and Danish, as the common mail clients write them. See :func:`extract_reply`.
"""

from __future__ import annotations

from hub.domain.reply_text import ReplyText, RuleHit
from hub.inbound.reply_text.extract import extract_reply

__all__ = ["ReplyText", "RuleHit", "extract_reply"]
