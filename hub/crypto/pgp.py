"""OpenPGP for outgoing mail: one GnuPG home, its keys, and PGP/MIME (RFC 3156) protection.

:class:`PgpKeystore` wraps one ``GNUPGHOME`` (created with mode 0700). It imports debtors'
public keys and the hub's own secret key, lists them as :class:`~hub.crypto.pgp_keys.PgpKeyInfo`,
chooses the key for an address (:func:`~hub.crypto.pgp_keys.choose_key`), exports a minimal key
for Autocrypt, and signs and encrypts the inner MIME entity of a message into a
``multipart/encrypted; protocol="application/pgp-encrypted"`` body.

Encryption and signing go through python-gnupg. Every result's ``ok`` is checked: python-gnupg
reports an unusable recipient as ``ok=False`` without raising. Imported keys are untrusted in
GnuPG's web of trust, so encryption uses ``--trust-model always``: the hub has already applied
its own rules (valid, unexpired, unrevoked, encryption-capable, address in a user id) when it
chose the key. Key listing, filtered export and secret-key import call ``gpg`` directly: python-
gnupg's listing merges user ids of different keys, it cannot pass export filters, and it logs the
first bytes of imported key material at debug level.

The envelope is :func:`hub.crypto.pgp_mime.pgp_mime_envelope`, running gpg and the checks shared
with incoming mail are :mod:`hub.crypto.gpg_process`, the agent's life is
:mod:`hub.crypto.gnupg_home`.

All methods block (they run gpg); the ``a*`` coroutines run them in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

import gnupg
from pydantic import SecretStr

from hub.crypto.errors import CryptoOperationError, KeyImportError
from hub.crypto.gnupg_home import configure_agent, short_home, stop_agent
from hub.crypto.gpg_process import (
    COLON_LISTING,
    check_fingerprint,
    failure_codes,
    passphrase_line,
    run_gpg,
    short_fingerprint,
)
from hub.crypto.mime_parts import canonical_bytes
from hub.crypto.pgp_keys import PgpKeyInfo, choose_key, parse_colon_listing
from hub.crypto.pgp_mime import pgp_mime_envelope

log = logging.getLogger(__name__)

#: Larger key files are refused before gpg sees them (a debtor's key is a few KB).
MAX_KEY_BYTES = 1024 * 1024
_ADDRESS = re.compile(r"^[^\s@|&\"'<>]+@[^\s@|&\"'<>]+$")


class PgpKeystore:
    """The keys in one GnuPG home, and the operations on them.

    ``home`` is created (mode 0700) if missing. Call :meth:`close` (or use ``with``) to stop the
    gpg-agent that GnuPG starts for the home.

    ``s2k_count`` sets the gpg-agent's ``s2k-count`` for this home: the work factor with which
    the agent protects the hub's secret key on disk, paid again on *every* signature. GnuPG's
    calibrated default cost 700-800 ms per signature on the 2-core machine (a bare sign+encrypt
    costs about 13 ms); ``65536`` (the minimum) brings it to about 35 ms. Lower it only when the
    passphrase is a long random secret, which makes the work factor pointless anyway.
    """

    def __init__(
        self,
        home: Path,
        *,
        gpg_binary: str = "gpg",
        timeout: float = 60.0,
        s2k_count: int | None = None,
    ) -> None:
        self.home = home
        self._binary = gpg_binary
        self._timeout = timeout
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        # the path gpg sees: short enough for the agent's sockets
        self.home = short_home(home)
        if s2k_count is not None:
            configure_agent(self.home, s2k_count, self._timeout)
        self._gpg = gnupg.GPG(gpgbinary=gpg_binary, gnupghome=str(self.home), encoding="utf-8")

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop this home's gpg-agent (it would otherwise outlive the process) and wait, at
        most 3 s, until it has gone."""
        stop_agent(self.home, self._timeout)

    def __enter__(self) -> PgpKeystore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- running gpg directly ----------------------------------------------------------------

    def _run(self, args: Sequence[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return run_gpg(self._binary, self.home, args, stdin, timeout=self._timeout)

    # -- keys --------------------------------------------------------------------------------

    def list_keys(
        self, *, fingerprints: Sequence[str] = (), secret: bool = False
    ) -> list[PgpKeyInfo]:
        """The keys in this home (only ``fingerprints`` if given; only secret keys if ``secret``).

        Each key's ``has_secret`` says whether its secret key is present.
        """
        names = [check_fingerprint(f) for f in fingerprints]
        listing = COLON_LISTING
        secret_run = self._run([*listing, "--list-secret-keys", *names])
        secret_keys = parse_colon_listing(secret_run.stdout.decode("utf-8", "replace"))
        if secret:
            return secret_keys
        with_secret = {key.fingerprint for key in secret_keys}
        public_run = self._run([*listing, "--list-keys", *names])
        if public_run.returncode != 0 and names and not public_run.stdout:
            return []
        keys = parse_colon_listing(public_run.stdout.decode("utf-8", "replace"))
        return [replace(key, has_secret=key.fingerprint in with_secret) for key in keys]

    def key(self, fingerprint: str) -> PgpKeyInfo | None:
        """The key with this fingerprint, or None."""
        found = self.list_keys(fingerprints=[fingerprint])
        return found[0] if found else None

    def import_key(self, data: bytes | str) -> tuple[PgpKeyInfo, ...]:
        """Import public key(s), armored or binary, and return their facts.

        Raises :class:`KeyImportError` (a ``UserError``) when the data holds no usable OpenPGP
        key; the message never quotes the data.
        """
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if not raw.strip():
            raise KeyImportError("the key file is empty")
        if len(raw) > MAX_KEY_BYTES:
            raise KeyImportError(f"the key file is larger than {MAX_KEY_BYTES} bytes")
        result = self._gpg.import_keys(raw)
        fingerprints = sorted({f for f in result.fingerprints if f})
        if not fingerprints:
            reason = "no OpenPGP public key found in it"
            if result.count:
                reason = f"gpg read {result.count} key(s) but imported none"
            raise KeyImportError(f"the key file cannot be imported: {reason}")
        log.info(
            "imported OpenPGP key(s) %s", ", ".join(short_fingerprint(f) for f in fingerprints)
        )
        return tuple(self.list_keys(fingerprints=fingerprints))

    def import_secret_key(
        self, data: bytes | str, passphrase: SecretStr | None = None
    ) -> tuple[PgpKeyInfo, ...]:
        """Import the hub's own secret key (armored or binary); its passphrase if it has one.

        A test signature is made with each signing key, so a wrong passphrase fails here with
        :class:`KeyImportError` rather than at the first reminder.
        """
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if not raw.strip():
            raise KeyImportError("the secret key file is empty")
        args = ["--import"]
        stdin = raw
        if passphrase is not None:
            secret = passphrase_line(passphrase, KeyImportError)
            args = ["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import"]
            stdin = secret.encode("utf-8") + b"\n" + raw
        done = self._run(args, stdin)
        status = done.stderr.decode("utf-8", "replace")
        fingerprints = sorted(set(re.findall(r"IMPORT_OK \d+ ([0-9A-F]{40,64})", status)))
        if not fingerprints:
            raise KeyImportError("the secret key file cannot be imported: no OpenPGP key in it")
        keys = self.list_keys(fingerprints=fingerprints)
        if not any(key.has_secret for key in keys):
            raise KeyImportError("the key file holds no secret key")
        # One signature now proves the passphrase and lets the agent convert the key to its own
        # protection once, before concurrent senders all try to unlock it for the first time.
        for key in keys:
            if key.has_secret and key.can_sign():
                try:
                    self.sign_detached(b"hub key check", key.fingerprint, passphrase)
                except CryptoOperationError as exc:
                    raise KeyImportError(
                        f"the secret key {short_fingerprint(key.fingerprint)} was imported but "
                        "cannot sign (wrong passphrase?)"
                    ) from exc
        log.info(
            "imported secret OpenPGP key(s) %s",
            ", ".join(short_fingerprint(f) for f in fingerprints),
        )
        return tuple(keys)

    def key_for_address(self, address: str, now: datetime | None = None) -> PgpKeyInfo | None:
        """The key to encrypt to ``address``: see :func:`~hub.crypto.pgp_keys.choose_key`."""
        return choose_key(self.list_keys(), address, now)

    def export_public_key(self, fingerprint: str, *, armor: bool = False) -> bytes:
        """The whole public key (``export-minimal``: no third-party signatures)."""
        args = ["--export-options", "export-minimal"]
        if armor:
            args.append("--armor")
        done = self._run([*args, "--export", check_fingerprint(fingerprint)])
        if done.returncode != 0 or not done.stdout:
            raise CryptoOperationError(f"no public key {short_fingerprint(fingerprint)} to export")
        return done.stdout

    def export_minimal_key(self, fingerprint: str, address: str) -> bytes:
        """A minimal binary public key for Autocrypt (Level 1, section 2.1.1).

        Only the primary key, the user id carrying ``address`` with its self-signature, and the
        encryption subkeys that are neither expired nor revoked.
        """
        if not _ADDRESS.match(address):
            raise CryptoOperationError("not a plain email address")
        done = self._run(
            [
                "--export-options",
                "export-minimal",
                "--export-filter",
                f"keep-uid=mbox = {address.lower()}",
                "--export-filter",
                "drop-subkey=usage !~ e || expired -t || revoked -t",
                "--export",
                check_fingerprint(fingerprint),
            ]
        )
        if done.returncode != 0 or not done.stdout:
            raise CryptoOperationError(
                f"key {short_fingerprint(fingerprint)} cannot be exported for Autocrypt"
            )
        return done.stdout

    # -- signing and encryption --------------------------------------------------------------

    @staticmethod
    def _passphrase(passphrase: SecretStr | None) -> str | None:
        return None if passphrase is None else passphrase_line(passphrase)

    def encrypt_and_sign(
        self,
        data: bytes,
        recipient_fpr: str,
        signer_fpr: str,
        passphrase: SecretStr | None,
        *,
        also_encrypt_to: Sequence[str] = (),
    ) -> bytes:
        """``data`` signed by ``signer_fpr`` and encrypted to ``recipient_fpr``, ASCII-armored.

        Raises :class:`CryptoOperationError` whenever gpg did not produce a signed and
        encrypted message (unknown or unusable recipient, missing secret key, wrong passphrase).
        """
        recipients = [check_fingerprint(recipient_fpr)]
        recipients += [check_fingerprint(f) for f in also_encrypt_to]
        signer = check_fingerprint(signer_fpr)
        # "--local-user FPR!" and not python-gnupg's "--default-key FPR": with the latter, gpg
        # silently signs with another secret key when FPR has none.
        result = self._gpg.encrypt(
            data,
            recipients,
            sign=True,
            passphrase=self._passphrase(passphrase),
            always_trust=True,
            armor=True,
            extra_args=["--local-user", f"{signer}!"],
        )
        signed = "[GNUPG:] SIG_CREATED " in (result.stderr or "")
        if not result.ok or result.returncode != 0 or not result.data or not signed:
            raise CryptoOperationError(
                f"gpg could not sign with {short_fingerprint(signer)} and encrypt to "
                f"{short_fingerprint(recipients[0])}: {result.status or 'no output'}"
                + (f" ({result.status_detail})" if result.status_detail else "")
                + failure_codes(result.stderr)
            )
        armored: bytes = result.data
        if not armored.startswith(b"-----BEGIN PGP MESSAGE-----"):
            raise CryptoOperationError("gpg returned something that is not an OpenPGP message")
        return armored

    def sign_detached(self, data: bytes, signer_fpr: str, passphrase: SecretStr | None) -> bytes:
        """An ASCII-armored detached signature over ``data`` (for RFC 3156 multipart/signed)."""
        signer = check_fingerprint(signer_fpr)
        result = self._gpg.sign(
            data,
            passphrase=self._passphrase(passphrase),
            detach=True,
            extra_args=["--local-user", f"{signer}!", "--digest-algo", "SHA256"],
        )
        if not result or result.returncode != 0 or not result.data:
            raise CryptoOperationError(
                f"gpg could not sign with {short_fingerprint(signer)}: "
                f"{result.status or 'no output'}" + failure_codes(result.stderr)
            )
        signature: bytes = result.data
        return signature

    def protect_pgp_mime(
        self,
        inner: EmailMessage,
        recipient_fpr: str,
        signer_fpr: str,
        passphrase: SecretStr | None,
        *,
        also_encrypt_to: Sequence[str] = (),
    ) -> EmailMessage:
        """RFC 3156 section 6.2: ``inner`` signed and encrypted as one OpenPGP message.

        ``inner`` is the MIME entity to protect (see :func:`hub.crypto.mime_parts.inner_entity`);
        it is encrypted in canonical CRLF form. The result is the
        ``multipart/encrypted; protocol="application/pgp-encrypted"`` body without envelope
        headers: put them on with :func:`hub.crypto.mime_parts.copy_outer_headers`.
        """
        armored = self.encrypt_and_sign(
            canonical_bytes(inner),
            recipient_fpr,
            signer_fpr,
            passphrase,
            also_encrypt_to=also_encrypt_to,
        )
        return pgp_mime_envelope(armored)

    # -- async wrappers ----------------------------------------------------------------------

    async def aimport_key(self, data: bytes | str) -> tuple[PgpKeyInfo, ...]:
        """:meth:`import_key` in a worker thread."""
        return await asyncio.to_thread(self.import_key, data)

    async def alist_keys(
        self, *, fingerprints: Sequence[str] = (), secret: bool = False
    ) -> list[PgpKeyInfo]:
        """:meth:`list_keys` in a worker thread."""
        return await asyncio.to_thread(self.list_keys, fingerprints=fingerprints, secret=secret)

    async def akey_for_address(
        self, address: str, now: datetime | None = None
    ) -> PgpKeyInfo | None:
        """:meth:`key_for_address` in a worker thread."""
        return await asyncio.to_thread(self.key_for_address, address, now)

    async def aexport_minimal_key(self, fingerprint: str, address: str) -> bytes:
        """:meth:`export_minimal_key` in a worker thread."""
        return await asyncio.to_thread(self.export_minimal_key, fingerprint, address)

    async def aprotect_pgp_mime(
        self,
        inner: EmailMessage,
        recipient_fpr: str,
        signer_fpr: str,
        passphrase: SecretStr | None,
        *,
        also_encrypt_to: Sequence[str] = (),
    ) -> EmailMessage:
        """:meth:`protect_pgp_mime` in a worker thread."""
        return await asyncio.to_thread(
            self.protect_pgp_mime,
            inner,
            recipient_fpr,
            signer_fpr,
            passphrase,
            also_encrypt_to=also_encrypt_to,
        )
