"""``hub inspect FILE...``: open each message as the hub would and print one JSON object each.

Decrypts and verifies with the keys given as options (nothing from the configuration, no
database). Passphrase files must be readable by their owner only (mode 0600), like every
secret file of the hub. A message that cannot be read is reported in its JSON object; the
command never stops at one bad file.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from hub.crypto.pgp import PgpKeystore
from hub.errors import UserError
from hub.inbound.unprotect import InboundKeys, Unprotected, unprotect

#: A message larger than this is reported, not read.
MAX_FILE_BYTES = 64 * 1024 * 1024


def _read_secret(path: Path | None, option: str) -> SecretStr | None:
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError as exc:
        raise UserError(f"{option}: cannot read {path}: {exc.strerror}") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(
            f"{option}: {path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
    return SecretStr(path.read_text(encoding="utf-8").rstrip("\r\n"))


def report(file: str, result: Unprotected) -> dict[str, Any]:
    """The JSON object ``hub inspect`` prints for one message."""
    best = result.best_signature
    return {
        "file": file,
        "message_id": result.message_id,
        "subject": result.subject,
        "from": {"name": result.from_name, "address": result.from_address},
        "text": result.text_body(),
        "unencrypted_text": result.unencrypted_text() or None,
        "attachments": [
            {
                "filename": part.filename,
                "content_type": part.content_type,
                "size": part.size,
                "sha256": part.sha256,
                "encrypted": part.encrypted,
                "signed": part.signed,
            }
            for part in result.attachments()
        ],
        "unencrypted_parts": [
            {"content_type": part.content_type, "filename": part.filename, "size": part.size}
            for part in result.unencrypted_parts()
        ],
        "crypto": {
            "method": result.method.value if result.method else None,
            "encrypted": result.encrypted,
            "decrypted": result.decrypted,
            "integrity_protected": result.integrity_protected,
            "signed": result.signed,
            "signature_valid": result.signature_valid,
            "signature_verdict": best.verdict.value if best else None,
            "signer": best.signer if best else None,
            "signer_matches_from": best.matches_from if best else None,
            "trusted": best.trusted if best else None,
            "decryptions": [d.verdict.value for d in result.decryptions],
            "signatures": [s.verdict.value for s in result.signatures],
            "errors": list(result.errors)
            + [d.detail for d in result.decryptions if d.verdict.value != "decrypted"],
        },
        "learnt_keys": [
            {
                "kind": key.kind,
                "fingerprint": key.fingerprint,
                "addresses": list(key.addresses),
                "source": key.source,
            }
            for key in result.learnt_keys
        ],
    }


def _inspect_one(path: Path, keys: InboundKeys) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return {"file": str(path), "error": f"larger than {MAX_FILE_BYTES} bytes"}
        raw = path.read_bytes()
    except OSError as exc:
        return {"file": str(path), "error": f"cannot read: {exc.strerror}"}
    try:
        return report(str(path), unprotect(raw, keys))
    except Exception as exc:  # one broken message must not stop the others
        return {"file": str(path), "error": f"{type(exc).__name__}: {exc}"}


@click.command("inspect")
@click.option(
    "--gnupghome",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="GnuPG home with the hub's secret key and the senders' public keys.",
)
@click.option(
    "--pgp-passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File (mode 0600) with the passphrase of the hub's OpenPGP key.",
)
@click.option(
    "--smime-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The hub's S/MIME private key (PEM).",
)
@click.option(
    "--smime-cert",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The hub's S/MIME certificate (PEM).",
)
@click.option(
    "--smime-key-password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File (mode 0600) with the password of the S/MIME key.",
)
@click.option(
    "--smime-ca",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="CA bundle (PEM) that S/MIME signers must chain to.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def inspect(
    gnupghome: Path | None,
    pgp_passphrase_file: Path | None,
    smime_key: Path | None,
    smime_cert: Path | None,
    smime_key_password_file: Path | None,
    smime_ca: Path | None,
    files: tuple[Path, ...],
) -> None:
    """Decrypt and verify each message FILE and print one JSON object per file."""
    try:
        keys = InboundKeys(
            gnupghome=gnupghome,
            pgp_passphrase=_read_secret(pgp_passphrase_file, "--pgp-passphrase-file"),
            smime_key=smime_key,
            smime_cert=smime_cert,
            smime_key_password=_read_secret(smime_key_password_file, "--smime-key-password-file"),
            smime_ca=smime_ca,
        )
    except UserError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        for path in files:
            click.echo(json.dumps(_inspect_one(path, keys), ensure_ascii=False))
    finally:
        if gnupghome is not None:
            PgpKeystore(gnupghome).close()
