"""Split a composed message into the part that gets protected and the headers that stay outside.

PGP/MIME (RFC 3156) and S/MIME (RFC 8551) both protect one MIME entity (the "inner" entity:
the body with its ``Content-*`` headers) and put the result into a new body; the message's
envelope headers (From, To, Subject, Date, Message-ID, References, ...) must be copied onto that
new body by the caller. This module does both halves, and serialises the inner entity in the
canonical form both standards sign and encrypt: CRLF line ends (RFC 3156 section 5, RFC 8551
section 3.1.1), lines folded as for SMTP.

Protected headers follow draft-autocrypt-lamps-protected-headers ("v1"): a copy of the
user-facing header fields goes inside the inner entity, whose Content-Type carries
``protected-headers="v1"``. The outer Subject is kept as it is (no "..." replacement).
"""

from __future__ import annotations

import copy
import email.policy
from collections.abc import Callable
from email.message import EmailMessage

#: Header fields copied into the inner entity when protected headers are asked for.
PROTECTED_HEADER_FIELDS: tuple[str, ...] = (
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "References",
    "In-Reply-To",
    "Followup-To",
)

# Never copied to the outside: the body's own headers (the protected body brings its own), and
# Bcc, which must not travel in a message at all.
_NOT_OUTER = frozenset({"mime-version", "bcc"})


def _is_content_header(name: str) -> bool:
    return name.lower().startswith("content-")


def inner_entity(plain: EmailMessage, *, protected_headers: bool = False) -> EmailMessage:
    """The MIME entity to protect: ``plain``'s body with its ``Content-*`` headers.

    ``plain`` is not changed. With ``protected_headers`` the fields in
    :data:`PROTECTED_HEADER_FIELDS` are copied inside too and the Content-Type gets the parameter
    ``protected-headers="v1"``.
    """
    inner = copy.deepcopy(plain)
    keep = {name.lower() for name in PROTECTED_HEADER_FIELDS} if protected_headers else set()
    for name in {key.lower() for key in inner}:
        if not _is_content_header(name) and name not in keep:
            del inner[name]
    if inner.get("Content-Type") is None:
        # RFC 2045 default, made explicit so the inner entity is self-describing.
        inner["Content-Type"] = "text/plain; charset=us-ascii"
    if protected_headers:
        inner.set_param("protected-headers", "v1")
    return inner


def canonical_bytes(entity: EmailMessage) -> bytes:
    """``entity`` as the bytes that are signed and encrypted: CRLF line ends, SMTP folding."""
    return entity.as_bytes(policy=email.policy.SMTP)


def copy_outer_headers(plain: EmailMessage, protected: EmailMessage) -> EmailMessage:
    """A new message: ``plain``'s envelope headers on top of ``protected``'s body.

    Every header of ``plain`` except ``Content-*``, ``MIME-Version`` and ``Bcc`` is copied in its
    order (From, To, Subject, Date, Message-ID, References, In-Reply-To, Auto-Submitted, any
    Autocrypt or List-* field, ...), then ``MIME-Version: 1.0`` and ``protected``'s own
    ``Content-*`` headers and payload.
    """
    result = EmailMessage(policy=plain.policy)
    for name, value in plain.items():
        if not _is_content_header(name) and name.lower() not in _NOT_OUTER:
            result[name] = value
    result["MIME-Version"] = "1.0"
    for name, value in protected.items():
        if _is_content_header(name):
            result[name] = value
    result.set_payload(protected.get_payload())
    result.preamble = protected.preamble
    result.epilogue = protected.epilogue
    return result


def protect_message(
    plain: EmailMessage,
    protect: Callable[[EmailMessage], EmailMessage],
    *,
    protected_headers: bool = False,
) -> EmailMessage:
    """Apply ``protect`` to ``plain``'s inner entity and put the envelope headers back on.

    ``protect`` is one of the ``protect_*`` functions with its keys bound (for example
    ``functools.partial(store.protect_pgp_mime, recipient_fpr=..., signer_fpr=..., ...)``).
    """
    inner = inner_entity(plain, protected_headers=protected_headers)
    return copy_outer_headers(plain, protect(inner))
