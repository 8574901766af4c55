"""Running the ``gpg`` binary: one command line, its failures as the hub's errors.

Shared by outgoing (:mod:`hub.crypto.pgp`) and incoming (:mod:`hub.crypto.pgp_inbound`) OpenPGP:
every call runs in batch mode with GnuPG's machine-readable status lines (``doc/DETAILS``) on
stderr, a hang is a :class:`~hub.crypto.errors.CryptoTimeoutError` and a missing binary a
:class:`~hub.crypto.errors.CryptoOperationError`. Also the small checks both sides apply before
gpg sees anything: fingerprints, passphrases, and the status codes that may be shown.

Everything blocks (a subprocess); callers in an event loop use :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from hub.crypto.errors import CryptoOperationError, CryptoTimeoutError

STATUS_PREFIX = "[GNUPG:] "
#: The options of a key listing that :func:`~hub.crypto.pgp_keys.parse_colon_listing` reads.
COLON_LISTING = ("--with-colons", "--fixed-list-mode", "--with-fingerprint", "--with-fingerprint")
_FINGERPRINT = re.compile(r"^[0-9A-F]{40}$|^[0-9A-F]{64}$")
#: status codes that explain a failure and carry no key material and no user id
_SHOWN_CODES = ("ERROR", "FAILURE", "INV_RECP", "INV_SGNR", "BAD_PASSPHRASE", "KEYEXPIRED")


def run_gpg(
    binary: str,
    home: Path,
    args: Sequence[str],
    stdin: bytes = b"",
    *,
    timeout: float,
    options: Sequence[str] = (),
    pass_fds: Sequence[int] = (),
) -> subprocess.CompletedProcess[bytes]:
    """``gpg --homedir HOME --batch --no-tty --status-fd 2 OPTIONS ARGS`` with ``stdin``."""
    command = [
        binary,
        "--homedir",
        str(home),
        "--batch",
        "--no-tty",
        "--status-fd",
        "2",
        *options,
        *args,
    ]
    try:
        return subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
            pass_fds=tuple(pass_fds),
        )
    except subprocess.TimeoutExpired as exc:
        raise CryptoTimeoutError(f"gpg did not finish within {timeout:.0f} s") from exc
    except OSError as exc:
        raise CryptoOperationError(f"cannot run {binary}: {exc.strerror}") from exc


def check_fingerprint(fpr: str) -> str:
    """A full v4 or v5 fingerprint in upper case (spaces dropped), else CryptoOperationError."""
    value = fpr.replace(" ", "").upper()
    if not _FINGERPRINT.match(value):
        raise CryptoOperationError("an OpenPGP key must be named by its full fingerprint")
    return value


def short_fingerprint(fpr: str) -> str:
    """The last 16 hex digits: enough to find a key in a log, not a secret anyway."""
    return fpr[-16:]


def passphrase_line(passphrase: SecretStr, error: type[Exception] = CryptoOperationError) -> str:
    """The passphrase as gpg reads it from a file descriptor: one line, so none inside it."""
    secret = passphrase.get_secret_value()
    if "\n" in secret or "\r" in secret:
        raise error("a key passphrase cannot contain a line break")
    return secret


def failure_codes(stderr: str | None) -> str:
    """gpg's machine-readable error codes (``ERROR``, ``FAILURE``, ``INV_*``, ...): no key
    material, no user ids, so they may appear in an exception and a log."""
    codes = [
        line.removeprefix(STATUS_PREFIX)
        for line in (stderr or "").splitlines()
        if line.startswith(STATUS_PREFIX) and line.split()[1] in _SHOWN_CODES
    ]
    return f" [{'; '.join(codes[:4])}]" if codes else ""
