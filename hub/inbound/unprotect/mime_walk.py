"""Walk a message's MIME tree, opening every protected layer and recording each leaf apart.

Layers (RFC 3156 PGP/MIME, RFC 8551 S/MIME, RFC 4880 inline) may nest in any order: signed
inside encrypted, encrypted inside signed. Each leaf part is recorded with the protection of the
layers around it, never merged with its neighbours.

A ``multipart/signed`` signature is checked over the exact bytes of its first part, cut out of
the raw layer (:func:`~hub.inbound.unprotect.mime_bytes.signed_content`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from email.message import MIMEPart

from hub.crypto import pgp_inbound, smime_inbound
from hub.crypto.errors import CryptoOperationError, CryptoTimeoutError
from hub.crypto.pgp_inbound import DecryptStatus
from hub.crypto.smime_inbound import CmsKind, SmimeSigStatus
from hub.inbound.unprotect import keys_learnt, pgp_inline, verdicts
from hub.inbound.unprotect.inbound_keys import InboundKeys
from hub.inbound.unprotect.mime_bytes import looks_like_pgp_message, parse_entity, signed_content
from hub.inbound.unprotect.result import (
    DecryptionCheck,
    DecryptionVerdict,
    LearntKey,
    Method,
    ProtectedPart,
    SignatureCheck,
)

log = logging.getLogger(__name__)

#: Crypto layers inside each other beyond this depth are not opened (a loop or a bomb).
MAX_DEPTH = 6
_PGP_SIGNATURE_TYPES = {"application/pgp-signature"}
_SMIME_SIGNATURE_TYPES = {"application/pkcs7-signature", "application/x-pkcs7-signature"}
_SMIME_MIME_TYPES = {"application/pkcs7-mime", "application/x-pkcs7-mime"}
_ENCRYPTED_SUFFIXES = (".pgp", ".gpg", ".asc")
_NOT_CONTENT = {"application/pgp-encrypted"}


@dataclass(frozen=True)
class Layer:
    """The protection around the part being walked."""

    encrypted: bool = False
    signed: bool = False
    method: Method | None = None
    depth: int = 0


class Walker:
    """Collects leaves, verdicts and keys while walking one message."""

    def __init__(self, keys: InboundKeys, from_address: str | None) -> None:
        self.keys = keys
        self.from_address = from_address
        self.parts: list[ProtectedPart] = []
        self.decryptions: list[DecryptionCheck] = []
        self.signatures: list[SignatureCheck] = []
        self.learnt: list[LearntKey] = []
        self.errors: list[str] = []

    # -- dispatch ----------------------------------------------------------------------------

    def walk(self, part: MIMEPart, raw: bytes, layer: Layer) -> None:
        """Walk ``part``; ``raw`` is the bytes of the innermost layer that contains it."""
        content_type = part.get_content_type()
        if layer.depth > MAX_DEPTH:
            self.errors.append("protection nested too deeply: inner layers not opened")
            self._leaf(part, layer)
            return
        try:
            if content_type == "multipart/encrypted":
                self._pgp_mime_encrypted(part, layer)
            elif content_type == "multipart/signed":
                self._multipart_signed(part, raw, layer)
            elif content_type in _SMIME_MIME_TYPES or (
                content_type == "application/octet-stream"
                and (part.get_filename() or "").lower().endswith(".p7m")
            ):
                self._smime_opaque(part, layer)
            elif part.is_multipart() and content_type != "message/rfc822":
                for child in part.iter_parts():
                    self.walk(child, raw, layer)
            else:
                self._leaf(part, layer)
        except CryptoTimeoutError as exc:
            self.errors.append(f"{content_type}: {exc}")
            self._leaf(part, layer)

    # -- PGP/MIME ----------------------------------------------------------------------------

    def _pgp_mime_encrypted(self, part: MIMEPart, layer: Layer) -> None:
        children = list(part.iter_parts())
        body = children[1] if len(children) > 1 else None
        ciphertext = body.get_payload(decode=True) if body is not None else None
        if not isinstance(ciphertext, bytes) or not looks_like_pgp_message(ciphertext):
            self.errors.append("multipart/encrypted without an OpenPGP message")
            return
        self._pgp_message(ciphertext, layer, inline_charset=None, filename=None)

    def _pgp_message(
        self,
        ciphertext: bytes,
        layer: Layer,
        *,
        inline_charset: str | None,
        filename: str | None,
        mime: bool = True,
    ) -> None:
        """Decrypt (and verify) one OpenPGP message. ``mime``: the plaintext is a MIME entity
        (PGP/MIME); otherwise it is the text of an inline part or an attachment's content."""
        if self.keys.gnupghome is None:
            self.decryptions.append(
                DecryptionCheck(
                    Method.PGP,
                    DecryptionVerdict.NO_KEY,
                    ciphertext,
                    None,
                    "no GnuPG home configured",
                )
            )
            return
        try:
            result = pgp_inbound.decrypt_or_verify(
                self.keys.gnupghome,
                ciphertext,
                passphrase=self.keys.pgp_passphrase,
                binary=self.keys.gpg_binary,
                timeout=self.keys.timeout,
            )
        except CryptoOperationError as exc:
            self.errors.append(f"OpenPGP: {exc}")
            return
        encrypted = result.decryption is not DecryptStatus.NOT_ENCRYPTED
        if encrypted:
            self.decryptions.append(verdicts.pgp_decryption_check(result, ciphertext))
        checks = [self._pgp_check(sig) for sig in result.signatures]
        self.signatures += checks
        if result.plaintext is None:
            return
        inner = Layer(
            encrypted=layer.encrypted or encrypted,
            signed=layer.signed or any(c.good for c in checks),
            method=Method.PGP,
            depth=layer.depth + 1,
        )
        if mime:
            self.walk(parse_entity(result.plaintext), result.plaintext, inner)
        elif filename is not None:
            self._add("application/octet-stream", result.plaintext, filename, None, True, inner)
        else:
            self._inline_text(result.plaintext, inline_charset, inner)

    def _pgp_check(self, signature: pgp_inbound.PgpSignature) -> SignatureCheck:
        assert self.keys.gnupghome is not None
        return verdicts.pgp_signature_check(
            signature, self.from_address, self.keys.gnupghome, self.keys.gpg_binary
        )

    # -- multipart/signed (PGP/MIME and S/MIME detached) -------------------------------------

    def _multipart_signed(self, part: MIMEPart, raw: bytes, layer: Layer) -> None:
        children = list(part.iter_parts())
        boundary = part.get_boundary()
        if len(children) < 2 or boundary is None:
            self.errors.append("multipart/signed without a signature part")
            for child in children:
                self.walk(child, raw, layer)
            return
        signed_part, signature_part = children[0], children[1]
        content = signed_content(raw, boundary)
        signature = signature_part.get_payload(decode=True)
        sig_type = signature_part.get_content_type()
        protocol = (part.get_param("protocol") or "").__str__().lower()
        check: SignatureCheck | None = None
        if content is None or not isinstance(signature, bytes):
            self.errors.append("multipart/signed: the signed part cannot be located")
        elif sig_type in _PGP_SIGNATURE_TYPES or protocol == "application/pgp-signature":
            check = self._verify_pgp_detached(content, signature)
        elif sig_type in _SMIME_SIGNATURE_TYPES or "pkcs7-signature" in protocol:
            verification = smime_inbound.verify_detached(
                content,
                signature,
                self.keys.smime_ca,
                openssl=self.keys.openssl_binary,
                timeout=self.keys.timeout,
            )
            check = self._smime_check(verification)
        else:
            self.errors.append(f"multipart/signed with unknown protocol {protocol[:60]!r}")
        inner = replace(layer, signed=layer.signed or (check is not None and check.good))
        if check is not None:
            inner = replace(inner, method=check.method)
        self.walk(signed_part, content if content is not None else raw, inner)

    def _verify_pgp_detached(self, content: bytes, signature: bytes) -> SignatureCheck | None:
        if self.keys.gnupghome is None:
            self.errors.append("PGP signature not checked: no GnuPG home configured")
            return None
        found = pgp_inbound.verify_detached(
            self.keys.gnupghome,
            content,
            signature,
            binary=self.keys.gpg_binary,
            timeout=self.keys.timeout,
        )
        if not found:
            self.errors.append("PGP signature could not be read")
            return None
        checks = [self._pgp_check(sig) for sig in found]
        self.signatures += checks
        return next((c for c in checks if c.good), checks[0])

    # -- S/MIME application/pkcs7-mime -------------------------------------------------------

    def _smime_opaque(self, part: MIMEPart, layer: Layer) -> None:
        der = part.get_payload(decode=True)
        if not isinstance(der, bytes) or not der:
            self.errors.append("empty application/pkcs7-mime part")
            return
        kind = smime_inbound.cms_kind(der)
        if kind is CmsKind.SIGNED:
            verification = smime_inbound.verify_opaque(
                der,
                self.keys.smime_ca,
                openssl=self.keys.openssl_binary,
                timeout=self.keys.timeout,
            )
            check = self._smime_check(verification)
            content = verification.content
            if content is None:
                content = smime_inbound.extract_opaque_content(
                    der, openssl=self.keys.openssl_binary
                )
            if content is None:
                return
            inner = Layer(
                layer.encrypted, layer.signed or check.good, Method.SMIME, layer.depth + 1
            )
            self.walk(parse_entity(content), content, inner)
            return
        if kind is CmsKind.UNKNOWN:
            self.errors.append("application/pkcs7-mime holds no CMS object the hub reads")
            self._leaf(part, layer)
            return
        if self.keys.smime_key is None or self.keys.smime_cert is None:
            self.decryptions.append(
                DecryptionCheck(
                    Method.SMIME, DecryptionVerdict.NO_KEY, der, None, "no S/MIME key configured"
                )
            )
            return
        try:
            plaintext = smime_inbound.decrypt(
                der,
                self.keys.smime_key,
                self.keys.smime_cert,
                password=self.keys.smime_key_password,
                openssl=self.keys.openssl_binary,
                timeout=self.keys.timeout,
            )
        except CryptoOperationError as exc:
            self.decryptions.append(
                DecryptionCheck(Method.SMIME, DecryptionVerdict.FAILED, der, None, str(exc))
            )
            return
        # AuthEnvelopedData carries a GCM tag; CBC EnvelopedData has no integrity of its own.
        self.decryptions.append(
            DecryptionCheck(
                Method.SMIME,
                DecryptionVerdict.DECRYPTED,
                der,
                kind is CmsKind.AUTH_ENVELOPED,
                kind.value,
            )
        )
        inner = Layer(True, layer.signed, Method.SMIME, layer.depth + 1)
        self.walk(parse_entity(plaintext), plaintext, inner)

    def _smime_check(self, verification: smime_inbound.SmimeVerification) -> SignatureCheck:
        check = verdicts.smime_signature_check(verification, self.from_address)
        self.signatures.append(check)
        if verification.signer is not None and verification.status is not SmimeSigStatus.INVALID:
            self.learnt.append(keys_learnt.smime_certificate_key(verification.signer))
        return check

    # -- leaves ------------------------------------------------------------------------------

    def _leaf(self, part: MIMEPart, layer: Layer) -> None:
        content_type = part.get_content_type()
        if content_type in _NOT_CONTENT:
            return
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if content_type == "message/rfc822" or part.is_multipart():
            payload = (
                part.as_bytes()
                if content_type != "message/rfc822"
                else b"".join(sub.as_bytes() for sub in part.iter_parts())
            )
        else:
            decoded = part.get_payload(decode=True)
            payload = decoded if isinstance(decoded, bytes) else b""
        charset = part.get_content_charset()
        if content_type == "application/pgp-keys":
            self.learnt += keys_learnt.pgp_keys_from_bytes(payload, "attachment", self.keys)
        is_attachment = disposition == "attachment" or filename is not None
        lower = (filename or "").lower()
        if lower.endswith(_ENCRYPTED_SUFFIXES) and looks_like_pgp_message(payload):
            self._pgp_message(
                payload,
                layer,
                inline_charset=None,
                filename=filename[:-4] if filename else None,
                mime=False,
            )
            return
        if content_type == "text/plain" and not is_attachment and pgp_inline.has_armor(payload):
            self._inline_text(payload, charset, layer)
            return
        if not content_type.startswith("text/") and not content_type.startswith("multipart/"):
            is_attachment = True
        self._add(content_type, payload, filename, charset, is_attachment, layer)

    def _inline_text(self, data: bytes, charset: str | None, layer: Layer) -> None:
        """A text part with inline OpenPGP: each block opened, the text around kept apart."""
        if layer.depth > MAX_DEPTH:
            self._add("text/plain", data, None, charset, False, layer)
            return
        for segment in pgp_inline.split_armor(data):
            if segment.kind == "text":
                self._add("text/plain", segment.data, None, charset, False, layer)
                continue
            before = len(self.parts)
            self._pgp_message(
                segment.data, layer, inline_charset=charset, filename=None, mime=False
            )
            if segment.kind == "signed" and len(self.parts) == before:
                # Not verifiable: show the block as the unsigned text it is.
                self._add("text/plain", segment.data, None, charset, False, layer)

    def _add(
        self,
        content_type: str,
        payload: bytes,
        filename: str | None,
        charset: str | None,
        is_attachment: bool,
        layer: Layer,
    ) -> None:
        self.parts.append(
            ProtectedPart(
                content_type=content_type,
                payload=payload,
                filename=filename,
                charset=charset,
                is_attachment=is_attachment,
                encrypted=layer.encrypted,
                signed=layer.signed,
                method=layer.method,
            )
        )
