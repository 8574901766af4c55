"""OpenPGP for incoming mail: decrypt, verify and read keys, judged only from gpg's status lines.

Every call runs ``gpg --status-fd`` and reads the machine-readable ``[GNUPG:]`` lines (GnuPG's
``doc/DETAILS``); the human text on stderr is never parsed. Three functions, bytes in, verdict
out:

* :func:`decrypt_or_verify` runs ``gpg --decrypt`` on an OpenPGP message (encrypted, signed,
  both, or an RFC 4880 section 7 cleartext-signed block) and returns the plaintext with the
  signatures found inside.
* :func:`verify_detached` checks a detached signature (RFC 3156 ``multipart/signed``).
* :func:`show_keys` reads the facts of public key material without importing it.

EFAIL: gpg 2.2 writes the plaintext of a message *without* integrity protection (no MDC, no
AEAD) to stdout before it reports ``DECRYPTION_FAILED``. The plaintext is therefore only
returned when the status lines say ``DECRYPTION_OKAY`` together with ``GOODMDC`` (or an AEAD
mode); otherwise it is dropped and the verdict says why.

No network: ``--disable-dirmngr`` and no key retrieval. Everything blocks (a subprocess); callers
in an event loop use :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import enum
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from hub.crypto.errors import CryptoOperationError
from hub.crypto.gpg_process import COLON_LISTING, STATUS_PREFIX, passphrase_line, run_gpg
from hub.crypto.pgp_keys import PgpKeyInfo, parse_colon_listing

#: Larger messages are refused before gpg sees them.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class SigStatus(enum.StrEnum):
    """What gpg said about one signature (DETAILS: GOODSIG, BADSIG, ERRSIG, ...)."""

    GOOD = "good"
    BAD = "bad"
    NO_PUBLIC_KEY = "no_public_key"
    EXPIRED_KEY = "expired_key"
    REVOKED_KEY = "revoked_key"
    EXPIRED_SIGNATURE = "expired_signature"
    ERROR = "error"


class DecryptStatus(enum.StrEnum):
    """The outcome of a decryption."""

    OK = "ok"
    NOT_ENCRYPTED = "not_encrypted"
    NO_SECRET_KEY = "no_secret_key"  # noqa: S105 - a verdict, not a secret
    BAD_PASSPHRASE = "bad_passphrase"  # noqa: S105 - a verdict, not a secret
    NO_INTEGRITY = "refused_no_integrity_protection"
    FAILED = "failed"


@dataclass(frozen=True)
class PgpSignature:
    """One signature as gpg reported it."""

    status: SigStatus
    #: Long key id of the signing (sub)key, from GOODSIG/BADSIG/ERRSIG.
    key_id: str | None = None
    #: Fingerprint of the primary key (VALIDSIG, last field), when the signature is good.
    primary_fingerprint: str | None = None
    #: GnuPG's trust in the key (TRUST_UNDEFINED, TRUST_FULLY, ...), without the prefix.
    trust: str | None = None

    @property
    def valid(self) -> bool:
        """True when the signature is mathematically good and made by an unexpired,
        unrevoked key."""
        return self.status is SigStatus.GOOD and self.primary_fingerprint is not None

    @property
    def trusted(self) -> bool:
        """True when the key has full or ultimate validity in this GnuPG home."""
        return self.valid and self.trust in {"FULLY", "ULTIMATE"}


@dataclass(frozen=True)
class PgpResult:
    """What ``gpg --decrypt`` produced: plaintext (or None) and the signatures inside."""

    decryption: DecryptStatus
    plaintext: bytes | None
    signatures: tuple[PgpSignature, ...] = ()
    #: True when encrypted with integrity protection (MDC or AEAD), False when without, None
    #: when not encrypted or unknown.
    integrity_protected: bool | None = None
    #: The OpenPGP literal data's file name (PLAINTEXT status), if any.
    literal_filename: str | None = None
    #: Status keywords that explain a failure (ERROR, FAILURE, NO_SECKEY, ...): no key
    #: material, no user ids.
    errors: tuple[str, ...] = field(default=())


def _status_lines(stderr: bytes) -> list[list[str]]:
    lines = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith(STATUS_PREFIX):
            lines.append(line[len(STATUS_PREFIX) :].split(" "))
    return lines


def _run_gpg(
    home: Path,
    args: Sequence[str],
    stdin: bytes,
    *,
    passphrase: SecretStr | None = None,
    binary: str = "gpg",
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run gpg with status lines on stderr; the passphrase travels through a pipe of its own."""
    if len(stdin) > MAX_MESSAGE_BYTES:
        raise CryptoOperationError("the OpenPGP data is too large")
    options = ["--disable-dirmngr", "--no-auto-key-locate", "--pinentry-mode", "loopback"]
    read_fd = write_fd = -1
    fds: tuple[int, ...] = ()
    if passphrase is not None:
        secret = passphrase_line(passphrase)
        read_fd, write_fd = os.pipe()
        os.write(write_fd, secret.encode("utf-8") + b"\n")  # fits the pipe buffer
        os.close(write_fd)
        options += ["--passphrase-fd", str(read_fd)]
        fds = (read_fd,)
    try:
        return run_gpg(binary, home, args, stdin, timeout=timeout, options=options, pass_fds=fds)
    finally:
        if read_fd >= 0:
            os.close(read_fd)


def parse_signatures(status: list[list[str]]) -> tuple[PgpSignature, ...]:
    """The signatures in a status-line stream; each starts at NEWSIG (or the first result)."""
    found: list[dict[str, str | SigStatus | None]] = []
    current: dict[str, str | SigStatus | None] | None = None
    results = {
        "GOODSIG": SigStatus.GOOD,
        "BADSIG": SigStatus.BAD,
        "EXPSIG": SigStatus.EXPIRED_SIGNATURE,
        "EXPKEYSIG": SigStatus.EXPIRED_KEY,
        "REVKEYSIG": SigStatus.REVOKED_KEY,
        "ERRSIG": SigStatus.ERROR,
    }
    for words in status:
        keyword = words[0]
        if keyword == "NEWSIG":
            current = {}
            found.append(current)
        elif keyword in results:
            if current is None or "status" in current:
                current = {}
                found.append(current)
            current["status"] = results[keyword]
            current["key_id"] = words[1] if len(words) > 1 else None
            # ERRSIG field 6: 9 = missing public key (DETAILS).
            if keyword == "ERRSIG" and len(words) > 6 and words[6] == "9":
                current["status"] = SigStatus.NO_PUBLIC_KEY
        elif keyword == "NO_PUBKEY" and current is not None:
            current["status"] = SigStatus.NO_PUBLIC_KEY
        elif keyword == "VALIDSIG" and current is not None and len(words) > 10:
            current["primary"] = words[10]
        elif keyword.startswith("TRUST_") and current is not None:
            current["trust"] = keyword.removeprefix("TRUST_")
    signatures = []
    for item in found:
        status_value = item.get("status")
        if not isinstance(status_value, SigStatus):
            continue
        primary = item.get("primary")
        key_id = item.get("key_id")
        trust = item.get("trust")
        signatures.append(
            PgpSignature(
                status=status_value,
                key_id=key_id if isinstance(key_id, str) else None,
                primary_fingerprint=primary if isinstance(primary, str) else None,
                trust=trust if isinstance(trust, str) else None,
            )
        )
    return tuple(signatures)


def _errors(status: list[list[str]]) -> tuple[str, ...]:
    keep = {"ERROR", "FAILURE", "NO_SECKEY", "BAD_PASSPHRASE", "NODATA", "BADMDC", "NO_PUBKEY"}
    return tuple(" ".join(words[:3]) for words in status if words[0] in keep)[:8]


def interpret_decryption(
    stdout: bytes, status: list[list[str]]
) -> tuple[DecryptStatus, bytes | None, bool | None]:
    """Decide from the status lines whether ``stdout`` may be used (see the module docstring)."""
    keywords = {words[0] for words in status}
    encrypted = bool(keywords & {"BEGIN_DECRYPTION", "ENC_TO", "DECRYPTION_FAILED", "NO_SECKEY"})
    if not encrypted:
        if "PLAINTEXT" in keywords or "NEWSIG" in keywords or "GOODSIG" in keywords:
            return DecryptStatus.NOT_ENCRYPTED, stdout, None
        return DecryptStatus.FAILED, None, None
    aead = False
    mdc_method: str | None = None
    for words in status:
        if words[0] == "DECRYPTION_INFO" and len(words) > 1:
            mdc_method = words[1]
            aead = len(words) > 3 and words[3] not in {"", "0"}
    integrity = ("GOODMDC" in keywords or aead) and "BADMDC" not in keywords
    if mdc_method == "0" and not aead:
        return DecryptStatus.NO_INTEGRITY, None, False
    if "DECRYPTION_OKAY" in keywords and integrity and "DECRYPTION_FAILED" not in keywords:
        return DecryptStatus.OK, stdout, True
    if "BAD_PASSPHRASE" in keywords:
        return DecryptStatus.BAD_PASSPHRASE, None, None
    if "NO_SECKEY" in keywords and "DECRYPTION_OKAY" not in keywords:
        return DecryptStatus.NO_SECRET_KEY, None, None
    if "DECRYPTION_OKAY" in keywords and not integrity:
        return DecryptStatus.NO_INTEGRITY, None, False
    return DecryptStatus.FAILED, None, None


def decrypt_or_verify(
    home: Path,
    data: bytes,
    *,
    passphrase: SecretStr | None = None,
    binary: str = "gpg",
    timeout: float = 60.0,
) -> PgpResult:
    """``gpg --decrypt`` of an OpenPGP message or cleartext-signed block, judged by status."""
    done = _run_gpg(
        home,
        ["--output", "-", "--decrypt"],
        data,
        passphrase=passphrase,
        binary=binary,
        timeout=timeout,
    )
    status = _status_lines(done.stderr)
    decryption, plaintext, integrity = interpret_decryption(done.stdout, status)
    literal = next((w[3] for w in status if w[0] == "PLAINTEXT" and len(w) > 3 and w[3]), None)
    return PgpResult(
        decryption=decryption,
        plaintext=plaintext,
        signatures=parse_signatures(status),
        integrity_protected=integrity,
        literal_filename=literal,
        errors=_errors(status),
    )


def verify_detached(
    home: Path, data: bytes, signature: bytes, *, binary: str = "gpg", timeout: float = 60.0
) -> tuple[PgpSignature, ...]:
    """Check a detached ``signature`` over exactly ``data`` (the data travels through stdin;
    the signature, public by nature, through a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="hub-pgpsig-") as workdir:
        sig_path = Path(workdir) / "signature.asc"
        sig_path.write_bytes(signature)
        done = _run_gpg(
            home, ["--verify", str(sig_path), "-"], data, binary=binary, timeout=timeout
        )
    return parse_signatures(_status_lines(done.stderr))


def show_keys(home: Path, key_data: bytes, *, binary: str = "gpg") -> list[PgpKeyInfo]:
    """The keys in ``key_data`` (armored or binary), read without importing them."""
    done = _run_gpg(
        home,
        [
            *COLON_LISTING,
            "--import-options",
            "show-only",
            "--import",
        ],
        key_data,
        binary=binary,
    )
    return parse_colon_listing(done.stdout.decode("utf-8", "replace"))


def list_public_key(home: Path, fingerprint: str, *, binary: str = "gpg") -> PgpKeyInfo | None:
    """The public key with this primary fingerprint in ``home``, or None."""
    if not fingerprint.isalnum():
        return None
    done = _run_gpg(
        home,
        [
            *COLON_LISTING,
            "--list-keys",
            fingerprint,
        ],
        b"",
        binary=binary,
    )
    keys = parse_colon_listing(done.stdout.decode("utf-8", "replace"))
    return keys[0] if keys else None
