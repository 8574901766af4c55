"""The keys and trust anchors the hub opens and checks incoming mail with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr


@dataclass(frozen=True)
class InboundKeys:
    """Where the hub's decryption keys and the trust anchors live.

    ``gnupghome`` holds the hub's secret OpenPGP key and the debtors' public keys (signatures
    are checked against those); ``smime_key``/``smime_cert`` are the hub's S/MIME key and
    certificate (PEM files); ``smime_ca`` the CA bundle that S/MIME signer chains must end in.
    Any of them may be missing: that layer is then reported as not openable or untrusted.
    """

    gnupghome: Path | None = None
    pgp_passphrase: SecretStr | None = None
    smime_key: Path | None = None
    smime_cert: Path | None = None
    smime_key_password: SecretStr | None = None
    smime_ca: Path | None = None
    gpg_binary: str = "gpg"
    openssl_binary: str = "openssl"
    timeout: float = 60.0
