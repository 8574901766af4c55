"""Why a delivery failed: a reason label from the status code and the server's words.

Labels follow sisimai's vocabulary (userunknown, mailboxfull, hostunknown, filtered, rejected,
blocked, spamdetected, expired, suspend, ...), so reports compare with that well-tested tool.
The server's words win over the status code when they are specific, because servers often send
a generic code (``5.0.0``, ``5.7.1``) with a precise text. Hard bounces (stop writing to this
address) are the dead-address reasons, as sisimai decides them: ``userunknown``,
``hostunknown``, ``hasmoved``, and ``notaccept`` when it is permanent.
"""

from __future__ import annotations

import re

UNDEFINED = "undefined"
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved"})

#: RFC 3463 enhanced status code (class.subject.detail)
STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
#: a failure status (2.x.x success codes in a session transcript are not the failure)
FAILURE_STATUS = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
#: an SMTP reply code at a line start, after "said:", or before a status code
REPLY_CODE = re.compile(
    r"(?:^|said:\s*|<<<\s*|\(\s*|:\s+|\b(?:error|code|reply|smtp|host)\W{0,3}\s*)"
    r"([45][0-5]\d)(?=[ -]|$)|(?<![\d.])([45][0-5]\d)(?=[ -][45]\.\d{1,3}\.\d)",
    re.M | re.I,
)

# Status details that name a reason on their own (RFC 3463, 3.x). Keys are "subject.detail".
_BY_DETAIL: dict[str, str] = {
    "1.1": "userunknown",
    "1.2": "hostunknown",
    "1.3": "userunknown",
    "1.4": "userunknown",
    "1.6": "hasmoved",
    "1.7": "rejected",
    "1.8": "rejected",
    "1.10": "notaccept",
    "2.0": "mailboxfull",
    "2.1": "suspend",
    "2.2": "mailboxfull",
    "2.3": "exceedlimit",
    "2.4": "mailererror",
    "3.0": "systemerror",
    "3.1": "systemfull",
    "3.2": "systemerror",
    "3.3": "systemerror",
    "3.4": "mesgtoobig",
    "3.5": "systemerror",
    "4.0": "networkerror",
    "4.1": "networkerror",
    "4.2": "networkerror",
    "4.3": "systemerror",
    "4.4": "hostunknown",
    "4.5": "systemerror",
    "4.6": "networkerror",
    "4.7": "expired",
    "5.0": "systemerror",
    "5.3": "syntaxerror",
    "5.4": "syntaxerror",
    "5.5": "syntaxerror",
    "6.0": "contenterror",
    "6.1": "contenterror",
    "6.2": "contenterror",
    "6.3": "contenterror",
    "6.5": "contenterror",
    "7.0": "securityerror",
    "7.1": "rejected",
    "7.7": "securityerror",
    "7.8": "authfailure",
    "7.9": "securityerror",
    "7.10": "failedstarttls",
    "7.11": "failedstarttls",
    "7.13": "suspend",
    "7.14": "securityerror",
    "7.17": "suspend",
    "7.18": "suspend",
    "7.20": "authfailure",
    "7.21": "authfailure",
    "7.22": "authfailure",
    "7.23": "authfailure",
    "7.24": "authfailure",
    "7.25": "requireptr",
    "7.26": "authfailure",
    "7.27": "notaccept",
}


def _compile(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


# The server's words, checked in this order; the first that matches names the reason.
_BY_TEXT: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "mailboxfull",
        _compile(
            r"mail\s*box (?:is )?(?:full|exceeded|over ?quota|size limit)",
            r"over ?quota|quota (?:exceeded|full|violation)|exceeded (?:storage|quota|the quota)",
            r"(?:mailbox|mail folder|inbox|account|disk) (?:is |has )?(?:full|exceeded)",
            r"user(?:'s)? (?:mailbox|quota|disk).{0,20}(?:full|exceeded)|"
            r"insufficient (?:system )?storage",
            r"too much mail data|not enough (?:disk )?space|no space left|storage (?:limit|full)",
            r"postfach (?:ist )?voll|speicherplatz|boîte (?:aux lettres )?pleine|mailbox size",
            r"full mailbox|mailfolder is full|user is over|would exceed",
        ),
    ),
    (
        "hasmoved",
        _compile(r"has been replaced by|address (?:has )?(?:changed|moved)|\bhas moved\b"),
    ),
    (
        "suspend",
        _compile(
            r"(?:account|mailbox|user|address) (?:has been |is |was )?"
            r"(?:disabled|suspended|inactive|deactivated|locked|frozen|expired|closed)",
            r"\bsuspended\b|recipient suspend|is not active|deactivated mailbox|inactive (?:user|"
            r"account)",
        ),
    ),
    (
        "hostunknown",
        _compile(
            r"host (?:or domain name )?not found|unknown host|host unknown|no such (?:host|domain)",
            r"domain (?:does not exist|not found|name not found|not exist|unknown)|unrouteable",
            r"name or service not known|name service error|unknown domain|nxdomain|"
            r"dns.{0,20}not found",
            r"domain .{0,60} is not (?:a )?(?:valid|configured)|illegal host|unroutable",
            r"no mx (?:record|host)|invalid domain|host .{0,60} not found",
            r"recipient domain .{0,40}(?:not exist|unknown)|domain is not reachable",
        ),
    ),
    (
        "notaccept",
        _compile(r"no mx found|no smtp service|null mx|does not accept (?:any )?mail"),
    ),
    (
        "norelaying",
        _compile(
            r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited)",
            r"not (?:permitted|allowed) to relay|unable to relay|we do not relay|no relaying",
            r"not a gateway|relay not|no relay",
        ),
    ),
    (
        "userunknown",
        _compile(
            r"user(?:name)? (?:is )?unknown|unknown (?:user|recipient|mailbox|address|local ?part)",
            r"no such (?:user|recipient|mailbox|address|person|account)|invalid (?:recipient|"
            r"mailbox|address|user)",
            r"(?:user|recipient|mailbox|address|account|addressee) (?:\S+ )?(?:does not|doesn't|"
            r"did not|doesn't) exist",
            r"(?:user|recipient|mailbox|address|account) (?:\S+ )?(?:not found|not exist|"
            r"unavailable|not known)",
            r"(?:recipient|user|mailbox) (?:is )?not (?:local|valid|a valid|an active|known)",
            r"not (?:a )?valid (?:recipient|user|mailbox)|bad (?:destination|"
            r"recipient) (?:mailbox|address)",
            r"unknown or illegal alias|this user doesn't have an? \S+ account|"
            r"invalid .{0,20}userid",
            r"no mailbox|mailbox (?:is )?(?:unavailable|not available|invalid|inactive)",
            r"no (?:account|one) (?:by that name|at this address)|not our customer|"
            r"addressee unknown",
            r"email account that you tried to reach does not exist|couldn't be found|"
            r"could not be found",
            r"the following recipient.{0,20}undeliverable|not listed in|was not found in",
            r"badrcptto|validrcptto|not in my list of allowed rcpthosts|recipient not ok",
            r"\bdoes not exist\b|empfänger unbekannt|adresse (?:nicht|ungültig)|"
            r"utilisateur inconnu",
            r"destinataire inconnu|ukjent|findes ikke|unbekannt|no existe|"
            r"resolver\.adr\.recipientnotfound",
            r"recipientnotfound|nicht gefunden|mailbox (?:name )?not allowed",
        ),
    ),
    (
        "expired",
        _compile(
            r"retry time(?:out)? (?:not reached|exceeded)|delivery time expired|message expired",
            r"(?:has been|was) delayed|could not be delivered for|too long|giving up|gave up",
            r"will be retried|delivery (?:is )?delayed|not yet been delivered",
            r"queue(?:d)? too long|delivery (?:attempts? )?(?:will continue|expired|"
            r"has been delayed)",
            r"timed? out|time-?out|expired|no (?:longer )?retry|unable to deliver for|"
            r"retry timeout",
            r"message has not been delivered for|still could not be delivered|"
            r"has not yet been delivered",
        ),
    ),
    (
        "spamdetected",
        _compile(
            r"\bspam\b|junk mail|unsolicited|bulk mail|blacklisted content|content (?:is )?spam"
        ),
    ),
    (
        "virusdetected",
        _compile(r"virus|malware|infected|worm detected"),
    ),
    (
        "requireptr",
        _compile(
            r"reverse (?:dns|lookup)|\bptr\b|no rdns|cannot find your hostname|"
            r"client host rejected: cannot find"
        ),
    ),
    (
        "authfailure",
        _compile(
            r"\bspf\b|\bdkim\b|\bdmarc\b|sender policy framework|authentication (?:failed|failure)"
        ),
    ),
    (
        "blocked",
        _compile(
            r"blocked|blacklist|block ?list|deny ?list|\brbl\b|\bdnsbl\b|spamhaus|spamcop|"
            r"barracuda",
            r"(?:ip|client|connection|host).{0,30}(?:refused|rejected|denied|not allowed)",
            r"poor reputation|access denied|listed (?:at|on|in)|banned",
        ),
    ),
    (
        "toomanyconn",
        _compile(
            r"too many (?:connections|recipients|messages|sessions)|rate limit|throttl|"
            r"try again later"
        ),
    ),
    (
        "mesgtoobig",
        _compile(
            r"(?:message|mail) (?:is )?too (?:big|large)|size (?:limit|exceeds)|"
            r"exceeds.{0,30}size|too large"
        ),
    ),
    (
        "filtered",
        _compile(
            r"filter(?:ed)?|not authori[sz]ed|not allowed to (?:send|receive)|refuses? to accept",
            r"content (?:rejected|denied)|policy|prohibited|declined|restrict",
        ),
    ),
    (
        "networkerror",
        _compile(
            r"connection (?:refused|reset|lost|timed out)|network|unreachable|lost connection|"
            r"mail loop|loops? back"
        ),
    ),
    (
        "systemerror",
        _compile(
            r"system error|server error|local error|internal error|temporary failure|i/o error|"
            r"configuration error"
        ),
    ),
    (
        "mailererror",
        _compile(
            r"mailer error|program failed|command (?:failed|died|output)|procmail|unknown mailer|"
            r"exit(?:ed)? (?:status|code)"
        ),
    ),
    (
        "rejected",
        _compile(
            r"sender .{0,40}(?:rejected|denied|refused|unknown)|rejected|refused|denied|"
            r"not accepted"
        ),
    ),
)


def reason_from_text(text: str) -> str | None:
    """The reason the server's words name, if they name one."""
    if not text:
        return None
    for reason, pattern in _BY_TEXT:
        if pattern.search(text):
            return reason
    return None


def reason_from_status(status: str) -> str | None:
    """The reason an RFC 3463 status names on its own, if it does."""
    match = STATUS.fullmatch(status.strip())
    if not match:
        return None
    return _BY_DETAIL.get(f"{int(match.group(2))}.{int(match.group(3))}")


#: text reasons precise enough to overrule the status code
_SPECIFIC_TEXT = frozenset(
    {
        "userunknown",
        "mailboxfull",
        "hostunknown",
        "suspend",
        "hasmoved",
        "norelaying",
        "spamdetected",
        "virusdetected",
        "mesgtoobig",
        "requireptr",
        "notaccept",
    }
)


def decide_reason(status: str, diagnostic: str) -> str:
    """The reason label for one failed recipient.

    Precise words ("user unknown", "mailbox full") win; then a specific status (``x.1.1``,
    ``x.2.2``, ``x.4.7``); a generic status (``x.0.0``, ``x.7.1``, ``x.5.0``) yields to any
    words that name a reason.
    """
    by_status = reason_from_status(status)
    by_text = reason_from_text(diagnostic)
    if by_text == "hostunknown" and status.startswith("4"):
        # a DNS failure the server will retry is a network problem, not a dead domain
        by_text = "networkerror"
    if by_text in _SPECIFIC_TEXT:
        return by_text
    generic = status.endswith((".0.0", ".7.1", ".5.0", ".0.1", ".3.0", ".7.0"))
    if by_status and not generic:
        return by_status
    return by_text or by_status or UNDEFINED


def status_from_reply(reply_code: str) -> str:
    """A generic enhanced status for an SMTP reply code ("" if there is none)."""
    if reply_code[:1] in {"4", "5", "2"}:
        return f"{reply_code[0]}.0.0"
    return ""


#: the status a reason implies when the report gave none (how the failure usually looks)
_DEFAULT_STATUS = {
    "userunknown": "5.1.1",
    "hostunknown": "5.1.2",
    "hasmoved": "5.1.6",
    "mailboxfull": "5.2.2",
    "suspend": "5.2.1",
    "norelaying": "5.7.1",
    "mesgtoobig": "5.3.4",
    "exceedlimit": "5.2.3",
    "spamdetected": "5.7.1",
    "virusdetected": "5.7.1",
    "blocked": "5.7.1",
    "filtered": "5.2.1",
    "rejected": "5.1.8",
    "networkerror": "5.4.6",
    "systemerror": "5.3.0",
    "mailererror": "5.3.0",
    "securityerror": "5.7.0",
    "policyviolation": "5.7.0",
    "contenterror": "5.6.0",
    "authfailure": "5.7.26",
    "requireptr": "5.7.25",
    "toomanyconn": "4.7.0",
}


def default_status(reason: str, permanent_hint: bool | None) -> str:
    """The status to report when the bounce stated none: from the reason and the report's
    words; a failure report that says nothing either way is final (RFC 3464 "failed")."""
    status = _DEFAULT_STATUS.get(reason, "5.0.0")
    if reason == "expired":
        # "giving up" ends delivery (5.4.7); "will retry" reports a delay (4.4.7)
        return "4.4.7" if permanent_hint is False else "5.4.7"
    if permanent_hint is not None and reason != "toomanyconn":
        status = ("5" if permanent_hint else "4") + status[1:]
    return status


def is_hard(reason: str, status: str) -> bool:
    """A dead address: stop sending to it (sisimai's hard bounce)."""
    if reason in HARD_REASONS:
        return True
    return reason == "notaccept" and not status.startswith("4")


def find_status(text: str) -> str:
    """The first RFC 3463 failure status (4.x.x or 5.x.x) in ``text`` ("" if none)."""
    match = FAILURE_STATUS.search(text)
    return f"{match.group(1)}.{int(match.group(2))}.{int(match.group(3))}" if match else ""


def find_reply_code(text: str) -> str:
    """The first SMTP reply code in ``text`` ("" if none)."""
    match = REPLY_CODE.search(text)
    return (match.group(1) or match.group(2)) if match else ""
