"""Reading ``Authentication-Results`` headers (RFC 8601) and judging them for a From domain.

Only headers whose authserv-id names one of OUR receiving servers are believed: anyone can put
an ``Authentication-Results`` header into a message, and RFC 8601 (section 5) lets a receiver
trust only those its own border servers added (they remove incoming ones with their id).

The verdict for the From domain follows what the hub needs: ``dmarc=fail`` fails; DKIM fails
when a signature of the From domain (or an aligned parent or sub-domain) failed and none of
them passed (RFC 6376, 6.1: one good signature is enough). SPF alone never fails a message,
because forwarding breaks SPF for honest mail every day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

#: ``method[/version]=result`` or ``ptype.property=value``; values may be quoted strings.
_PAIR = re.compile(
    r'([A-Za-z0-9_.-]+(?:\s*/\s*[0-9]+)?)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;"]+)', re.ASCII
)
_MAX_HEADER_CHARS = 16_384


@dataclass(frozen=True)
class AuthResult:
    """One ``resinfo``: ``dkim=pass header.d=example.org`` and the like."""

    method: str
    result: str
    reason: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthResultsHeader:
    authserv_id: str
    results: tuple[AuthResult, ...]


@dataclass(frozen=True)
class AuthVerdict:
    """What the believed headers say about the From domain."""

    failed: bool
    #: a believed DKIM (aligned) or DMARC pass for the From domain, and no failure
    authenticated: bool
    reasons: tuple[str, ...]
    #: how many headers were believed (0: nothing was checked)
    believed: int


def _strip_comments(text: str) -> str:
    """The header without ``(comments)`` (nested, with quoted pairs); quoted strings kept."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
            continue
        if quoted:
            out.append(char)
            quoted = char != '"'
            continue
        if char == "(":
            depth += 1
            if depth == 1:
                out.append(" ")
            continue
        if char == ")" and depth:
            depth -= 1
            continue
        if depth:
            continue
        if char == '"':
            quoted = True
        out.append(char)
    return "".join(out)


def _split_semicolons(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_authentication_results(value: str) -> AuthResultsHeader | None:
    """One header value parsed, or None when it has no authserv-id."""
    segments = _split_semicolons(_strip_comments(value[:_MAX_HEADER_CHARS]))
    head = segments[0].split()
    if not head:
        return None
    authserv_id = _unquote(head[0]).lower()
    results: list[AuthResult] = []
    for segment in segments[1:]:
        pairs = [(k, _unquote(v)) for k, v in _PAIR.findall(segment)]
        if not pairs:
            continue  # "none", or something we cannot read
        method = re.sub(r"\s", "", pairs[0][0]).split("/", 1)[0].lower()
        reason: str | None = None
        properties: dict[str, str] = {}
        for key, val in pairs[1:]:
            key = key.lower()
            if key == "reason":
                reason = val
            elif "." in key:
                properties.setdefault(key, val)
        results.append(AuthResult(method, pairs[0][1].lower(), reason, properties))
    return AuthResultsHeader(authserv_id, tuple(results))


def believed_headers(
    values: Iterable[str], trusted_authserv_ids: Iterable[str]
) -> list[AuthResultsHeader]:
    """The parsed headers whose authserv-id is one of ours (compared case-insensitively)."""
    trusted = {t.strip().lower() for t in trusted_authserv_ids if t.strip()}
    found: list[AuthResultsHeader] = []
    for value in values:
        header = parse_authentication_results(value)
        if header is not None and header.authserv_id in trusted:
            found.append(header)
    return found


def _domain_of(value: str | None) -> str | None:
    if not value:
        return None
    return value.rpartition("@")[2].strip().rstrip(".").lower() or None


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment without a public-suffix list: equal, or one a sub-domain of the other.

    Without the list ``example.co.uk`` would align with ``other.co.uk``; that is good enough
    here, because alignment only decides which DKIM failures count against the sender.
    """
    return (
        domain == from_domain
        or from_domain.endswith("." + domain)
        or domain.endswith("." + from_domain)
    )


def judge(headers: Iterable[AuthResultsHeader], from_domain: str) -> AuthVerdict:
    """The verdict of the believed headers for mail claiming to come from ``from_domain``."""
    from_domain = from_domain.lower()
    reasons: list[str] = []
    dkim_pass = dkim_fail = dmarc_pass = dmarc_fail = False
    believed = 0
    for header in headers:
        believed += 1
        for result in header.results:
            if result.method == "dmarc":
                domain = _domain_of(result.properties.get("header.from")) or from_domain
                if not aligned(domain, from_domain):
                    continue
                if result.result == "fail":
                    dmarc_fail = True
                    reasons.append(f"dmarc=fail for {domain} ({header.authserv_id})")
                elif result.result == "pass":
                    dmarc_pass = True
            elif result.method == "dkim":
                signer = _domain_of(result.properties.get("header.d")) or _domain_of(
                    result.properties.get("header.i")
                )
                # a failed signature that does not say whose it is may be the From domain's
                if signer is not None and not aligned(signer, from_domain):
                    continue
                if result.result == "fail":
                    dkim_fail = True
                    reasons.append(
                        f"dkim=fail for {signer or 'an unnamed signer'} ({header.authserv_id})"
                    )
                elif result.result == "pass" and signer is not None:
                    dkim_pass = True
    if dkim_fail and dkim_pass:
        reasons = [r for r in reasons if not r.startswith("dkim=fail")]
        reasons.append("a failed DKIM signature, but another one of the From domain passed")
        dkim_fail = False
    failed = dmarc_fail or dkim_fail
    authenticated = not failed and (dkim_pass or dmarc_pass)
    if authenticated:
        reasons.append(f"{'dmarc' if dmarc_pass else 'dkim'}=pass for the From domain")
    return AuthVerdict(failed, authenticated, tuple(reasons), believed)
