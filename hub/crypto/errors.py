"""The errors of the outgoing-mail crypto (PGP/MIME, S/MIME), placed in the hub's hierarchy.

Broken key or certificate material is the user's fault (:class:`~hub.errors.UserError`): the
message says what is wrong and never contains the key itself. A crypto tool that refuses to
work on material we chose (an unusable recipient, a wrong passphrase, a missing signing key) is
:class:`~hub.errors.PermanentError`: retrying will not help. A tool that hangs is temporary.
"""

from __future__ import annotations

from hub.errors import PermanentError, TemporaryError, UserError


class KeyImportError(UserError):
    """An OpenPGP key file is broken, empty or not a key at all; nothing was imported."""


class CertificateError(UserError):
    """An X.509 certificate or private key is broken or cannot be used for S/MIME."""


class CryptoOperationError(PermanentError):
    """gpg or openssl refused to encrypt or sign; no output was produced."""


class CryptoTimeoutError(TemporaryError):
    """gpg or openssl did not finish in time; the operation may succeed later."""
