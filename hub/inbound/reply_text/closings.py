"""How debtors sign off, in English, German and Danish, as compiled patterns.

Closings ("Best regards", "Mit freundlichen Grüßen", "Venlig hilsen"), the names and firms
written after them, contact lines, disclaimer openings and the words that never start a name or
a signature line. The rules that use them are in :mod:`signatures`.
"""

from __future__ import annotations

import re


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# --- closings ----------------------------------------------------------------------------------

#: sign-offs that only say goodbye; also cut when appended to the last sentence
_REGARDS = [
    # English
    "best regards",
    "kind regards",
    "kindest regards",
    "warm regards",
    "warmest regards",
    "with kind regards",
    "with best regards",
    "with regards",
    "many regards",
    "regards",
    "best wishes",
    "all the best",
    "best",
    "cheers",
    "sincerely",
    "yours sincerely",
    "sincerely yours",
    "yours faithfully",
    "yours truly",
    "respectfully",
    "take care",
    "rgds",
    "br",
    "kr",
    # German (ß, ss and ue spellings, Swiss forms)
    "mit freundlichen grüßen",
    "mit freundlichen grüssen",
    "mit freundlichen gruessen",
    "mit freundlichem gruß",
    "mit freundlichem gruss",
    "mit besten grüßen",
    "mit besten grüssen",
    "mit herzlichen grüßen",
    "mit herzlichen grüssen",
    "mit lieben grüßen",
    "mit lieben grüssen",
    "freundliche grüße",
    "freundliche grüsse",
    "freundlichen gruß",
    "freundlichen gruss",
    "beste grüße",
    "beste grüsse",
    "besten gruß",
    "besten gruss",
    "viele grüße",
    "viele grüsse",
    "liebe grüße",
    "liebe grüsse",
    "lieben gruß",
    "lieben gruss",
    "herzliche grüße",
    "herzliche grüsse",
    "herzlichen gruß",
    "herzlichen gruss",
    "schöne grüße",
    "schöne grüsse",
    "gruß",
    "gruss",
    "grüße",
    "grüsse",
    "gruess",
    "grüessli",
    "hochachtungsvoll",
    "freundlichst",
    "mit freundlichen kollegialen grüßen",
    "mit freundlichen kollegialen grüssen",
    "freundlich grüsst",
    "freundlich grüßt",
    "mfg",
    "lg",
    "vg",
    "tschüss",
    "servus",
    # Danish
    "med venlig hilsen",
    "med venlige hilsner",
    "venlig hilsen",
    "venlige hilsner",
    "de bedste hilsner",
    "bedste hilsner",
    "bedste hilsen",
    "mange hilsner",
    "kærlig hilsen",
    "kærlige hilsner",
    "hilsen",
    "hilsner",
    "mvh",
    "vh",
    "kh",
    "dbh",
    "knus",
    # Swedish, as Danish debtors near the border write it
    "med vänliga hälsningar",
    "vänliga hälsningar",
    "hälsningar",
]

#: sign-offs that thank; cut only on a line of their own at the end
_THANKS = [
    "thanks",
    "thank you",
    "many thanks",
    "thank you very much",
    "thanks a lot",
    "thanks so much",
    "thank you so much",
    "vielen lieben dank",
    "tak skal du have",
    "thanks again",
    "thanks in advance",
    "thank you in advance",
    "thanks and regards",
    "thanks & regards",
    "thx",
    "ta",
    "danke",
    "vielen dank",
    "besten dank",
    "herzlichen dank",
    "danke schön",
    "dankeschön",
    "danke im voraus",
    "vielen dank im voraus",
    "danke und gruß",
    "danke und grüße",
    "danke und viele grüße",
    "danke und liebe grüße",
    "merci",
    "tak",
    "mange tak",
    "tusind tak",
    "på forhånd tak",
    "tak på forhånd",
    "tak og hilsen",
]


def _alternatives(phrases: list[str]) -> str:
    ordered = sorted(phrases, key=len, reverse=True)
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in ordered)


_REGARDS_RE = _alternatives(_REGARDS)
_THANKS_RE = _alternatives(_THANKS)
_ANY_CLOSING = _alternatives(_REGARDS + _THANKS)

_CAP = "A-ZÄÖÜÆØÅÉÈ"
_NAME_WORD = rf"(?:[{_CAP}][\w'’.-]*|[{_CAP}]\.)"
_PARTICLE = r"(?:von|van|de|der|den|af|zu|da|di|le|la|og|und|and|&|fra|from|aus|v/|med\.)"
#: a name after a closing: capitalised words (with particles, "Kurt og Anette"), maybe a
#: role or firm after a comma ("Jonas, CTO", "Birthe Kristensen, Kristensen Revision"), or "/Name"
NAME = (
    rf"/?\s?{_NAME_WORD}(?:[ \t]+(?:{_NAME_WORD}|{_PARTICLE})){{0,4}}"
    rf"(?:,[ \t]*{_NAME_WORD}(?:[ \t]+(?:{_NAME_WORD}|{_PARTICLE})){{0,3}}){{0,2}}"
)

#: a closing on a line of its own, maybe with the name after it ("Gruß Andrea", "Thanks, Chloe")
CLOSING_LINE = re.compile(
    rf"^(?i:{_ANY_CLOSING})(?:\s*(?:/|&|\+|(?i:and|und|og))\s*(?i:{_ANY_CLOSING}))?"
    rf"[ \t]*[,.!:;–-]*[ \t]*(?P<name>{NAME})?[ \t]*[.!]?$"
)

#: a goodbye appended to the last sentence ("… am Montag. Gruß Timo", "… fredag. Mvh Bettina")
INLINE_CLOSING = re.compile(
    rf"(?<=[.!?)])[ \t]+(?P<closing>(?i:{_REGARDS_RE})[ \t]*[,.!]?"
    rf"(?:[ \t]*(?P<name>{NAME}))?[ \t]*[.!]?)$"
)

#: thanks and a name appended to the last sentence ("… fredag. Tak. Line", "… Danke, Nicole")
INLINE_THANKS = re.compile(
    rf"(?<=[.!?)])[ \t]+(?P<closing>(?i:{_THANKS_RE})[ \t]*[,.!]?[ \t]*(?P<name>{NAME})"
    rf"[ \t]*[.!]?)$"
)

#: capitalised words that start sentences, wish things or name days: never a name
NOT_A_NAME = _word_set(
    """
    i i'm i'll we you it this that the please ok okay yes no hi hello dear have nice good great
    happy merry see bye monday tuesday wednesday thursday friday saturday sunday january february
    march april may june july august september october november december today tomorrow
    ich wir sie ihr es das die der bitte ja nein hallo bis schönes schöne schönen frohe frohes
    gute guten dann jetzt heute morgen montag dienstag mittwoch donnerstag freitag samstag
    sonntag januar februar märz mai juni juli oktober dezember jänner
    jeg vi i du det den de ja nej hej god godt glædelig glædelige ses mandag tirsdag onsdag
    torsdag fredag lørdag søndag januar februar marts april maj juni juli august oktober
    december alles viel viele herzlichen herzliche liebe beste bedste mange kind best warm many
    all god
    """
)
# --- signature lines and disclaimers -----------------------------------------------------------

#: a line that carries contact details: phone, mail, web, company form, address, registry ids
CONTACT_LINE = re.compile(
    r"(?:\+?\d[\d \t/().-]{5,}\d"
    r"|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"
    r"|\b(?:https?://|www\.)\S+"
    r"|\b[\w-]+\.(?:de|dk|com|co\.uk|ch|at|net|org|eu|io|info|biz|design)\b"
    r"|\b(?:GmbH|gGmbH|AG|KG|OHG|GbR|UG|e\.\s?K\.|e\.\s?V\.|mbH|Ltd|Limited|LLC|LLP|Inc|plc"
    r"|ApS|A/S|I/S|IVS|P/S|K/S|S\.A\.|B\.V\.)(?![\w/])"
    r"|\b(?:Tel|Tlf|Telefon|Phone|Mobil|Mobile|Mob|Handy|Fax|CVR|SE-nr|USt-?IdNr|VAT|IBAN|BIC"
    r"|HRB|HRA|Amtsgericht|Steuernummer|Reg\.?\s?nr|Company No)\b"
    r"|\b\d{4,5}\s+[A-ZÄÖÜÆØÅ][\w-]+"
    r"|\b[A-ZÄÖÜÆØÅ][\w-]*(?:straße|strasse|str\.|weg|gasse|gade|vej|allé|alle|platz|torv"
    r"|road|street|lane|avenue)\s*\d+"
    r"|[|·•])",
)

#: the opening of a legal disclaimer or confidentiality notice
DISCLAIMER_START = re.compile(
    r"^(?:[*_]*)(?:CONFIDENTIAL|Confidentiality|Disclaimer|DISCLAIMER|Important notice"
    r"|IMPORTANT:|NOTICE:|Notice:|This (?:e-?mail|message|communication|transmission)"
    r"|The (?:information|content)s? (?:in|of|contained)|Please consider the environment"
    r"|Vertraulichkeitshinweis|Haftungsausschluss|Wichtiger Hinweis|Hinweis:"
    r"|Diese (?:E-Mail|Email|Mail|Nachricht)|Der Inhalt dieser|Bitte denken Sie an die Umwelt"
    r"|Fortrolighed|Ansvarsfraskrivelse|Denne (?:e-?mail|mail|meddelelse|besked)"
    r"|Informationen i denne|Indholdet af denne|Tænk på miljøet)",
)

#: words every disclaimer has; a paragraph after a rule line is cut only with one of them
DISCLAIMER_WORDS = re.compile(
    r"(?i:confidential|intended (?:solely )?(?:for|recipient)|privileged|disclaimer"
    r"|addressee|unauthori[sz]ed|vertraulich|Empfänger|irrtümlich|Haftung|rechtlich geschützt"
    r"|fortrolig|modtager|ved en fejl|ansvar|environment|Umwelt|miljøet)",
)

#: a sentence opener that never starts a signature line
SENTENCE_START = re.compile(
    r"^(?i:i|i'm|i'll|i've|we|we'll|please|can|could|will|would|is|are|do|does|did|my|our"
    r"|ich|wir|bitte|können|kann|könnten|werde|werden|ist|sind|mein|meine|unser|das|die|der|es"
    r"|jeg|vi|venligst|kan|vil|kunne|er|min|mit|vores|det|den|der|hvis|når"
    r"|p\.?\s?s\.?|ps:?)$"
)

#: short words that may stay lowercase inside a name, title or company line
CONNECTORS = _word_set(
    "of and for the at in on & und für der die das von zu im am bei og i af på ved til "
    "en et de du van le la y med. rer. nat. jur. dipl.-ing."
)
