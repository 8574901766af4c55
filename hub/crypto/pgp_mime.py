"""The PGP/MIME envelope (RFC 3156 section 4): ``multipart/encrypted`` around an OpenPGP message.

Pure MIME, no gpg: :class:`~hub.crypto.pgp.PgpKeystore` produces the ASCII-armored message and
puts it in this envelope.
"""

from __future__ import annotations

from email.message import EmailMessage


def pgp_mime_envelope(armored: bytes) -> EmailMessage:
    """The RFC 3156 ``multipart/encrypted`` body around an ASCII-armored OpenPGP message."""
    outer = EmailMessage()
    outer["Content-Type"] = 'multipart/encrypted; protocol="application/pgp-encrypted"'
    outer.preamble = "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)"
    control = EmailMessage()
    control.set_content(
        b"Version: 1\n", maintype="application", subtype="pgp-encrypted", cte="7bit"
    )
    control["Content-Description"] = "PGP/MIME version identification"
    body = EmailMessage()
    body.set_content(
        armored,
        maintype="application",
        subtype="octet-stream",
        cte="7bit",
        disposition="inline",
        filename="encrypted.asc",
    )
    body["Content-Description"] = "OpenPGP encrypted message"
    outer.attach(control)
    outer.attach(body)
    return outer
