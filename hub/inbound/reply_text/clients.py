"""What mail clients write around a reply, in English, German and Danish, as compiled patterns.

Attribution lines ("On … wrote:", "Am … schrieb …:", "Den … skrev …:"), Outlook/Exchange header
blocks and separators, forward markers and mobile footers. Only patterns live here; the rules
that use them are in :mod:`quotes` and :mod:`signatures` (how people sign off: :mod:`closings`).
"""

from __future__ import annotations

import re

# --- attribution lines ("On … wrote:") ------------------------------------------------------

#: an address in angle brackets or bare, as Gmail, Apple Mail and Thunderbird write it
_ADDRESS = r"(?:<[^<>\s]+@[^<>\s]+>|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b|\[mailto:[^\]]+\])"
#: a time of day ("10:12", "kl. 10.12", "9:14 AM") or an address: what clients put in an
#: attribution and debtors do not put in a sentence like "Den 3. marts skrev jeg til jer:"
_TIME_OR_ADDRESS = re.compile(rf"\b\d{{1,2}}[:.]\d{{2}}(?![.\d])|{_ADDRESS}")

_DA_DAY = r"(?:man|tir|ons|tor|fre|lør|søn)(?:dag|s?\.)?"
_DE_DAY = r"(?:Mo|Di|Mi|Do|Fr|Sa|So)\.?,?"

#: attributions in the forms clients write them; one that also names a time or an address
#: (:func:`has_time_or_address`) is safe to cut at when no ``>`` quote follows (HTML mail)
STRONG_ATTRIBUTION = re.compile(
    r"^(?:"
    # Gmail, Apple Mail, Thunderbird, Outlook.com, Yahoo:
    # "On Mon, 3 Mar 2026 at 10:12, X <x@y> wrote:", "On 03/03/2026 10:12, X wrote:"
    r"On\s.{4,300}?\bwrote\s?:"
    # "X <x@y> wrote on 3 March 2026:"
    r"|.{1,200}?\bwrote on\s.{4,120}:"
    # Gmail, Apple Mail, Thunderbird, GMX, web.de, Roundcube:
    # "Am 03.03.2026 um 10:12 schrieb X <x@y>:", "Am Mo., 3. März 2026 um 10:12 Uhr schrieb X:"
    r"|Am\s.{4,300}?\bschrieb\b.{0,200}:"
    # Lotus Notes, Outlook for Mac, some webmailers: "X <x@y> schrieb am 03.03.2026 10:12:"
    r"|.{1,200}?\bschrieb am\s.{4,120}:"
    # Gmail, Apple Mail, Thunderbird (da): "Den 3. mar. 2026 kl. 10.12 skrev X <x@y>:",
    # "Den man. 3. mar. 2026 kl. 10.12 skrev X:", "d. 03/03/2026 skrev X:"
    r"|(?:Den|d\.)\s.{4,300}?\bskrev\b.{0,200}:"
    rf"|{_DA_DAY}\s.{{4,300}}?\bskrev\b.{{0,200}}:"
    r"|\d{1,2}[./-]\s?.{2,300}?\bskrev\b.{0,200}:"
    # "X <x@y> skrev den 3. mar. 2026 kl. 10.12:", "X skrev d. 03.03.2026:"
    r"|.{1,200}?\bskrev (?:den|d\.)\s.{4,120}:"
    # "X <x@y> wrote:", "X <x@y> schrieb:", "X <x@y> skrev:" (an address makes it strong)
    rf"|.{{0,200}}?{_ADDRESS}.{{0,40}}?\b(?:wrote|schrieb|skrev)\s?:"
    r")\s*$",
)

#: looser attributions, taken only when a ``>`` quote block follows: "X wrote:", "X schrieb:"
WEAK_ATTRIBUTION = re.compile(
    r"^(?:.{1,200}?\b(?:wrote|writes|schrieb|schreibt|skrev|skriver)\s?:"
    r"|(?:Quoting|Zitat von|Citat fra|Citerer)\s.{1,200}:)\s*$",
)

#: HTML mail turned into text may join the attribution and the quoted text on one line
HTML_ATTRIBUTION_PREFIX = re.compile(
    r"^(?:On\s.{4,300}?\bwrote\s?:"
    r"|Am\s.{4,300}?\bschrieb\s[^:]{1,200}?:"
    r"|(?:Den|d\.)\s.{4,300}?\bskrev\s[^:]{1,200}?:)\s+\S",
)

#: the first line of an attribution that a client wrapped over two or three lines
ATTRIBUTION_START = re.compile(
    rf"^(?:On|Am|Den|d\.|{_DA_DAY}|{_DE_DAY})\s\S|^.{{1,120}}<$|^\S.{{0,200}}{_ADDRESS}"
)


def has_time_or_address(text: str) -> bool:
    """True when ``text`` names a time of day or a mail address, as client attributions do."""
    return _TIME_OR_ADDRESS.search(text) is not None


# --- Outlook / Exchange header blocks and separators ----------------------------------------

#: header names by kind, as Outlook, Outlook for Mac, Thunderbird and webmailers write them
HEADER_KINDS: dict[str, str] = {
    "From": "from",
    "Von": "from",
    "Fra": "from",
    "Sent": "date",
    "Date": "date",
    "Gesendet": "date",
    "Datum": "date",
    "Sendt": "date",
    "Dato": "date",
    "To": "to",
    "An": "to",
    "Til": "to",
    "Cc": "to",
    "CC": "to",
    "Bcc": "to",
    "Kopi": "to",
    "Reply-To": "to",
    "Antwort an": "to",
    "Svar til": "to",
    "Subject": "subject",
    "Betreff": "subject",
    "Emne": "subject",
    "Importance": "other",
    "Wichtigkeit": "other",
    "Prioritet": "other",
    "Attachments": "other",
    "Anlagen": "other",
    "Vedhæftede filer": "other",
}

_HEADER_NAMES = "|".join(sorted((re.escape(n) for n in HEADER_KINDS), key=len, reverse=True))

#: one header line of a quoted message ("From: …", "*Von:* …", "Betreff:\t…")
HEADER_LINE = re.compile(rf"^[*_]*(?P<name>{_HEADER_NAMES})[*_]*\s?:[*_]*(?:\s|$)")

#: Outlook's header block flattened into one line, as HTML-to-text conversion leaves it
ONE_LINE_HEADER = re.compile(
    r"^[*_]*(?:From|Von|Fra)[*_]*:.{1,300}?\s[*_]*(?:Sent|Date|Gesendet|Datum|Sendt|Dato)[*_]*:"
    r".{1,200}?\s[*_]*(?:To|Subject|An|Betreff|Til|Emne)[*_]*:",
)

#: dashed separators of Outlook, Thunderbird, Gmail, GMX/web.de and Telekom, replies and forwards
DASHED_SEPARATOR = re.compile(
    r"^-{2,}\s*(?:Original Message|Original-Nachricht|Originalnachricht|Ursprüngliche Nachricht"
    r"|Oprindelig meddelelse|Oprindelig besked|Original meddelelse|Forwarded message"
    r"|Weitergeleitete Nachricht|Weitergeleitete E-Mail|Videresendt meddelelse"
    r"|Videresendt besked|Videresendt e-mail|Videresendt mail)\s*-{2,}$",
    re.IGNORECASE,
)

#: Apple Mail's forward markers
FORWARD_MARKER = re.compile(
    r"^(?:Begin forwarded message|Anfang der weitergeleiteten (?:E-Mail|Nachricht)"
    r"|Start på videresendt (?:besked|meddelelse|e-mail)|Videresendt besked)\s*:\s*$",
    re.IGNORECASE,
)

#: Outlook's line of underscores above the header block (and above some disclaimers)
UNDERSCORES = re.compile(r"^_{10,}$")

#: a plain rule line that may stand above a disclaimer
RULE_LINE = re.compile(r"^(?:[-_=*~#]\s?){5,}$")

# --- mobile footers ----------------------------------------------------------------------------

_FOOTER = (
    r"(?:"
    # English
    r"Sent from my \S.{0,60}"
    r"|Sent from (?:Outlook|Mail|Yahoo Mail|Gmail|AOL|Proton ?Mail|Samsung|BlueMail|Spark"
    r"|the \S+ app)\b.{0,60}"
    r"|Sent (?:via|using|with) (?:the )?\S.{0,50}"
    r"|Get Outlook for (?:iOS|Android)"
    r"|Sent from mobile"
    # German
    r"|Von meinem .{1,60}? gesendet"
    r"|Gesendet (?:von|mit|über|aus) .{1,60}"
    r"|Outlook für (?:iOS|Android) (?:beziehen|herunterladen)"
    r"|Diese Nachricht wurde von meinem .{1,80}? gesendet"
    # Danish
    r"|Sendt fra .{1,60}"
    r"|Sendt med .{1,60}"
    r"|Hentet fra Outlook til (?:iOS|Android)"
    r"|Hent Outlook til (?:iOS|Android)"
    r"|Få Outlook til (?:iOS|Android)"
    r")"
)

#: a mobile footer on a line of its own
FOOTER_LINE = re.compile(rf"^{_FOOTER}[.!]?$")

#: a mobile footer that a client appended to the last line of text
INLINE_FOOTER = re.compile(
    r"(?<=[.!?)])\s+(?P<footer>(?:Sent from my|Von meinem|Gesendet von meinem|Sendt fra min"
    r"|Sendt fra|Sent from|Gesendet von|Get Outlook for|Hent Outlook til)\s.{1,60}?)[.!]?$"
)
