"""Build the exact bytes of one reminder: render, compose, protect (blocking CPU and gpg work).

:class:`ReminderMailer` turns a :class:`MailPlan` (the facts gathered under the case lock, no
ORM objects) into a :class:`BuiltMail`; :meth:`ReminderMailer.build_rendered` does the same for
any other rendered mail of a case's thread (the hub's answers, a collector's reply) given an
:class:`OutgoingPlan`. The protection decides the shape:

* ``pgp-mime``: the reminder signed and encrypted as one OpenPGP message (RFC 3156, 6.2);
* ``smime-gcm`` / ``smime-cbc``: signed, then enveloped with AES-256-GCM (AuthEnvelopedData,
  recipients who announced it) or AES-256-CBC (RFC 8551, 3.7);
* ``notice``: instead of the reminder, the notice without personal data, unencrypted;
* ``plain``: the reminder unencrypted (the ``opportunistic`` policy, debtor without a key).

Encrypted mail carries the real headers inside (protected headers, ``protected-headers="v1"``)
and outside a Subject that names nothing: the subject of the notice template in the debtor's
language, because the real subject carries the creditor and the reference. Every mail carries
the ``Autocrypt`` header offering the hub's OpenPGP key.

``build`` blocks (templates, gpg, openssl): call it through ``asyncio.to_thread``. One mailer
serves one pass at a time (its cache of imported OpenPGP keys is not locked).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr
from enum import StrEnum

from hub.config import Settings
from hub.crypto.mime_parts import protect_message
from hub.crypto.smime import protect_smime
from hub.domain.mail import NoticeContext, ReminderContext, RenderedMail
from hub.errors import ConfigError
from hub.outbound.compose import compose_notice, compose_reminder, normal_message_id, to_bytes
from hub.outbound.render import MailRenderer
from hub.services.debtor_keys import OPENPGP, SMIME, ChosenKey
from hub.services.hub_identity import HubIdentity, load_identity

log = logging.getLogger(__name__)


class Protection(StrEnum):
    PGP_MIME = "pgp-mime"
    SMIME_GCM = "smime-gcm"
    SMIME_CBC = "smime-cbc"
    NOTICE = "notice"
    PLAIN = "plain"

    @property
    def encrypted(self) -> bool:
        return self in {Protection.PGP_MIME, Protection.SMIME_GCM, Protection.SMIME_CBC}


def protection_for(key: ChosenKey | None) -> Protection | None:
    """The protection a key gives (None without a key: the policy decides)."""
    if key is None:
        return None
    if key.kind == OPENPGP:
        return Protection.PGP_MIME
    if key.kind == SMIME:
        return Protection.SMIME_GCM if key.supports_aead else Protection.SMIME_CBC
    raise ValueError(f"unknown key kind {key.kind!r}")


@dataclass(frozen=True)
class MailPlan:
    """What one reminder needs; gathered under the case lock."""

    case_id: int
    to_addr: str
    reply_address: str
    reminder: ReminderContext
    notice: NoticeContext
    #: the case's earlier Message-IDs, oldest first
    references: tuple[str, ...]
    protection: Protection
    key: ChosenKey | None
    date: datetime


@dataclass(frozen=True)
class OutgoingPlan:
    """Where and how any rendered mail in a case's thread goes (a reminder or an answer)."""

    to_addr: str
    reply_address: str
    #: what goes instead under the ``notice`` protection
    notice: NoticeContext
    #: the case's earlier Message-IDs, oldest first
    references: tuple[str, ...]
    #: the message this one answers; None: the newest of ``references``
    in_reply_to: str | None
    protection: Protection
    key: ChosenKey | None
    date: datetime
    list_unsubscribe: str | None
    #: RFC 3834: ``auto-generated``, ``auto-replied``, or None for a person's own words
    auto_submitted: str | None = "auto-generated"


@dataclass(frozen=True)
class BuiltMail:
    message_id: str
    #: the reminder's real subject and text (what the thread and the portal show)
    subject: str
    text: str
    #: the exact bytes handed to the relay
    raw: bytes
    protection: Protection


class ReminderMailer:
    """Renders, composes and protects reminders with the hub's identity."""

    def __init__(self, settings: Settings, renderer: MailRenderer, identity: HubIdentity) -> None:
        self.renderer = renderer
        self.identity = identity
        self.from_header = formataddr((settings.hub.name, settings.smtp.from_address))
        self.message_id_domain = settings.smtp.from_address.rpartition("@")[2]
        self._known_pgp: set[str] | None = None

    def close(self) -> None:
        self.identity.close()

    def _ensure_pgp_key(self, key: ChosenKey) -> None:
        """The debtor's key in the hub's GnuPG home (the database is the source of truth)."""
        store = self.identity.keystore
        if self._known_pgp is None:
            self._known_pgp = {k.fingerprint for k in store.list_keys()}
        if key.fingerprint not in self._known_pgp:
            store.import_key(key.key_data)
            self._known_pgp.add(key.fingerprint)

    def _references(self, plan: OutgoingPlan) -> tuple[list[str], str | None]:
        valid: list[str] = []
        for value in plan.references:
            try:
                valid.append(normal_message_id(value))
            except ValueError:
                continue  # a malformed ID from a debtor's client: leave it out of the chain
        if plan.in_reply_to is not None:
            try:
                return valid, normal_message_id(plan.in_reply_to)
            except ValueError:
                pass  # a malformed ID: follow the case's newest message instead
        if not valid:
            return [], None
        return valid[:-1], valid[-1]

    def build(self, plan: MailPlan) -> BuiltMail:
        """The finished reminder for ``plan`` (blocking)."""
        opt_out = plan.reminder.opt_out_url
        outgoing = OutgoingPlan(
            to_addr=plan.to_addr,
            reply_address=plan.reply_address,
            notice=plan.notice,
            references=plan.references,
            in_reply_to=None,
            protection=plan.protection,
            key=plan.key,
            date=plan.date,
            list_unsubscribe=opt_out if opt_out.startswith("https://") else None,
        )
        return self.build_rendered(self.renderer.render_reminder(plan.reminder), outgoing)

    def build_rendered(self, rendered: RenderedMail, plan: OutgoingPlan) -> BuiltMail:
        """Compose and protect any rendered mail of a case's thread (blocking)."""
        identity = self.identity
        if identity.autocrypt is None:
            raise ConfigError(
                "the hub has no OpenPGP signing key: run 'hub keys init-signing' and set "
                "signing.pgp_fingerprint (every mail offers it by Autocrypt)"
            )
        notice = self.renderer.render_notice(plan.notice)
        if plan.protection is Protection.NOTICE:
            message, message_id = compose_notice(
                notice,
                from_addr=self.from_header,
                to_addr=plan.to_addr,
                message_id_domain=self.message_id_domain,
                date=plan.date,
                reply_to=plan.reply_address,
            )
            message["Autocrypt"] = identity.autocrypt
            return BuiltMail(
                message_id, rendered.subject, rendered.text, to_bytes(message), plan.protection
            )
        references, in_reply_to = self._references(plan)
        message, message_id = compose_reminder(
            rendered,
            from_addr=self.from_header,
            to_addr=plan.to_addr,
            reply_to=plan.reply_address,
            message_id_domain=self.message_id_domain,
            references=references,
            in_reply_to=in_reply_to,
            date=plan.date,
            list_unsubscribe=plan.list_unsubscribe,
            auto_submitted=plan.auto_submitted,
        )
        message["Autocrypt"] = identity.autocrypt
        if plan.protection is Protection.PLAIN:
            return BuiltMail(
                message_id, rendered.subject, rendered.text, to_bytes(message), plan.protection
            )
        protected = self._protect(message, plan)
        # the real Subject travels inside (protected headers); outside it names nothing
        del protected["Subject"]
        protected["Subject"] = notice.subject
        return BuiltMail(
            message_id, rendered.subject, rendered.text, to_bytes(protected), plan.protection
        )

    def _protect(self, message: EmailMessage, plan: OutgoingPlan) -> EmailMessage:
        identity, key = self.identity, plan.key
        if key is None:
            raise ValueError("an encrypted reminder needs a key")
        if plan.protection is Protection.PGP_MIME:
            if identity.pgp_fingerprint is None:  # pragma: no cover - autocrypt implies it
                raise ConfigError("signing.pgp_fingerprint is not set")
            self._ensure_pgp_key(key)
            protect = functools.partial(
                identity.keystore.protect_pgp_mime,
                recipient_fpr=key.fingerprint,
                signer_fpr=identity.pgp_fingerprint,
                passphrase=identity.pgp_passphrase,
            )
            return protect_message(message, protect, protected_headers=True)
        if identity.smime is None:
            raise ConfigError(
                "the hub has no S/MIME signer: run 'hub keys init-signing --smime' and set "
                "signing.smime_cert_file and signing.smime_key_file"
            )
        smime = identity.smime
        return protect_message(
            message,
            functools.partial(
                protect_smime,
                recipient_cert_pem=key.key_data,
                signer_cert_pem=smime.cert,
                signer_key_pem=smime.key,
                aead=plan.protection is Protection.SMIME_GCM,
            ),
            protected_headers=True,
        )


def earlier_message_ids(values: Sequence[str | None]) -> tuple[str, ...]:
    """The non-empty Message-IDs of a case's thread, in thread order, each once."""
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return tuple(seen)


async def open_mailer(settings: Settings) -> ReminderMailer:
    """A mailer with the hub's identity from the settings; ``close()`` it when done."""
    identity = await asyncio.to_thread(load_identity, settings)
    try:
        renderer = MailRenderer.from_settings(settings.outbound)
    except BaseException:
        identity.close()
        raise
    return ReminderMailer(settings, renderer, identity)
