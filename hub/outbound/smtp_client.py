"""The SMTP side of the relay: one aiosmtplib connection, and what a server's answer means.

Transport only: bytes in, an outcome out. A reply code 4xx, a dropped connection or a timeout is
temporary (RFC 5321 §4.2.1: the same transaction may succeed later); 5xx is permanent. Failures
before any message is offered (connect, greeting, EHLO, STARTTLS, AUTH) are the relay's problem
and not the message's: they always count as temporary, so a misconfigured relay never marks a
debtor's address as bad.
"""

from __future__ import annotations

import logging
import re
import ssl
from dataclasses import dataclass
from enum import StrEnum

import aiosmtplib

from hub.config import SmtpSection

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+)")


def redact_addresses(text: str) -> str:
    """Replace the local part of every address in ``text`` (``jane@x.org`` -> ``***@x.org``)."""
    return _ADDRESS.sub(lambda m: f"***@{m.group(1)}", text)


class Outcome(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    #: the SMTP reply code, or None when there was no answer (dropped, timeout, TLS error)
    code: int | None = None
    #: the server's answer (or what went wrong): may hold addresses, so store it encrypted
    reply: str = ""

    @property
    def summary(self) -> str:
        """The answer without addresses: for logs, ``last_error`` and unencrypted metadata."""
        text = self.reply
        if self.code is not None and not text.startswith(str(self.code)):
            text = f"{self.code} {text}"
        return redact_addresses(" ".join(text.split()))[:500]


def _response_result(code: int, message: str) -> DeliveryResult:
    outcome = Outcome.PERMANENT if 500 <= code < 600 else Outcome.TEMPORARY
    return DeliveryResult(outcome, code, message)


def classify(exc: BaseException) -> DeliveryResult:
    """What an aiosmtplib (or socket) exception raised during a mail transaction means."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        if len(refused) == 1:
            reply = refused[0].message
        else:
            reply = "; ".join(f"{r.code} {r.message}" for r in refused)
        temporary = any(400 <= r.code < 500 for r in refused) or not refused
        first = refused[0].code if refused else None
        return DeliveryResult(Outcome.TEMPORARY if temporary else Outcome.PERMANENT, first, reply)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _response_result(exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | ConnectionError):
        return DeliveryResult(Outcome.TEMPORARY, None, f"connection lost: {exc}")
    if isinstance(exc, TimeoutError):
        return DeliveryResult(Outcome.TEMPORARY, None, f"timeout: {exc}")
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address it cannot send safely
        return DeliveryResult(Outcome.PERMANENT, None, f"unsendable: {exc}")
    return DeliveryResult(Outcome.TEMPORARY, None, f"{type(exc).__name__}: {exc}")


def tls_context(settings: SmtpSection) -> ssl.SSLContext | None:
    """A verifying TLS context; with ``cafile`` it trusts that (private) CA."""
    if settings.security == "none":
        return None
    cafile = str(settings.cafile) if settings.cafile is not None else None
    return ssl.create_default_context(cafile=cafile)


class SmtpConnection:
    """One connection to the smart host, opened lazily and reopened after a failure."""

    def __init__(self, settings: SmtpSection, context: ssl.SSLContext | None) -> None:
        self._settings = settings
        self._context = context
        self._client: aiosmtplib.SMTP | None = None

    @property
    def is_open(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def open(self) -> DeliveryResult | None:
        """Connect (TLS or STARTTLS, AUTH); None on success, else why not (always temporary)."""
        if self.is_open:
            return None
        await self.close()
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            use_tls=s.security == "tls",
            # STARTTLS is required, never "if offered": a downgrade must fail, not send in clear
            start_tls=s.security == "starttls",
            tls_context=self._context,
            username=s.username,
            password=s.password.get_secret_value() if s.password is not None else None,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            result = classify(exc)
            log.warning("relay: cannot connect to %s:%s: %s", s.host, s.port, result.summary)
            return DeliveryResult(Outcome.TEMPORARY, result.code, result.reply)
        self._client = client
        return None

    async def send(
        self, envelope_from: str, recipients: list[str], message: bytes
    ) -> DeliveryResult:
        """One mail transaction (MAIL, RCPT..., DATA) on the open connection."""
        if self._client is None:
            raise RuntimeError("SmtpConnection.send() before open()")
        try:
            refused, answer = await self._client.sendmail(envelope_from, recipients, message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
            return classify(exc)
        if refused:
            # accepted for at least one recipient: the message is out; note who was refused
            notes = "; ".join(f"{r.code} {r.message}" for r in refused.values())
            return DeliveryResult(Outcome.SENT, 250, f"{answer}; refused: {notes}")
        return DeliveryResult(Outcome.SENT, 250, answer)

    async def close(self, *, polite: bool = False) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if polite and client.is_connected:
            try:
                await client.quit()
                return
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                pass
        client.close()
