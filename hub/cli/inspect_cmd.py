"""``hub inspect FILE...``: open each message as the hub would and print one JSON object each.

Runs the inbound pipeline's own stages (parse, unprotect, detect, reply text) on each file,
without the database: what is printed is what the hub would store. Decrypts and verifies with
the keys given as options (nothing from the configuration). Passphrase files must be readable
by their owner only (mode 0600), like every secret file of the hub. A message that cannot be
read is reported in its JSON object; the command never stops at one bad file and never exits
non-zero because of a message.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from hub.crypto.pgp import PgpKeystore
from hub.domain.inbound import MailAddress
from hub.domain.understood import Understood
from hub.errors import UserError
from hub.inbound.pipeline import InboundWork, StageEnv, StageFailedError, run_stages
from hub.inbound.readable import attachments
from hub.inbound.understand import understand
from hub.inbound.unprotect import InboundKeys

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


def _address(value: MailAddress | None) -> dict[str, str | None] | None:
    if value is None:
        return None
    return {"name": value.name or None, "address": value.address}


def _crypto(work: InboundWork, understood: Understood | None) -> dict[str, Any]:
    result = work.unprotected
    if result is None or understood is None:
        return {
            "encrypted": False,
            "method": None,
            "decrypted": False,
            "signed": False,
            "signature_valid": False,
            "signer": None,
            "error": None,
        }
    facts = understood.crypto
    best = result.best_signature
    errors = list(result.errors) + [
        d.detail for d in result.decryptions if d.verdict.value != "decrypted"
    ]
    return {
        "encrypted": facts.encrypted,
        "method": facts.method,
        "decrypted": facts.decrypted,
        "signed": facts.signed,
        "signature_valid": facts.signature_valid,
        "signer": understood.signer,
        "error": "; ".join(e for e in errors if e) or None,
        "integrity_protected": facts.integrity_protected,
        "signature_verdict": facts.signature_verdict,
        "signer_matches_from": facts.signer_matches_from,
        "trusted": facts.trusted,
        "decryptions": list(facts.decryptions),
        "signatures": [s.verdict.value for s in result.signatures],
        "errors": errors,
        "refused": facts.refused,
        "signer_fingerprint": best.fingerprint if best else None,
    }


def report(file: str, work: InboundWork, error: str | None = None) -> dict[str, Any]:
    """The JSON object ``hub inspect`` prints for one message: the stages' own results
    (:func:`hub.inbound.understand.understand`, as the pipeline stores them), plus the
    details only a person inspecting a file wants (unencrypted parts, learnt keys, rules).

    ``kind`` is one of reply, auto_reply, bounce, read_receipt, feedback_report: a delivery
    report (``Action: delivered``/``relayed``) is an automatic message never to be answered and
    is reported as ``auto_reply``, with ``detected_kind: "delivery_report"``.
    """
    parsed = work.parsed
    understood = understand(work) if parsed is not None else None
    result = work.unprotected
    out: dict[str, Any] = {
        "file": file,
        "message_id": parsed.message_id if parsed else None,
        "in_reply_to": parsed.in_reply_to if parsed else None,
        "references": list(parsed.references) if parsed else [],
        "from": _address(parsed.from_) if parsed else None,
        "to": [_address(a) for a in parsed.to] if parsed else [],
        "subject": parsed.subject if parsed else None,
        "date": parsed.date.isoformat() if parsed and parsed.date else None,
        "kind": understood.kind.value if understood else None,
        "detected_kind": understood.detected_kind if understood else None,
        "text": work.text,
        "reply_text": understood.reply_text if understood else None,
        "signature": understood.signature if understood else None,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for a in (attachments(parsed, result) if parsed else ())
        ],
        "crypto": _crypto(work, understood),
        "bounce": None,
        "defects": list(parsed.defects) if parsed else [],
    }
    detection = work.detection
    if understood is not None and detection is not None and detection.bounce is not None:
        out["bounce"] = {
            "recipients": list(understood.bounce_recipients),
            "permanent": understood.bounce_permanent,
            "status": understood.bounce_status,
            "original_message_id": detection.bounce.original_message_id,
        }
    if understood is not None:
        out["original_message_id"] = understood.original_message_id
        out["analysis"] = {
            "detection": understood.analysis.get("detection"),
            "reply_text": understood.analysis.get("reply_text"),
            "text_from_html": work.text_from_html,
        }
    if result is not None:
        out["unencrypted_text"] = result.unencrypted_text() or None
        out["unencrypted_parts"] = [
            {"content_type": part.content_type, "filename": part.filename, "size": part.size}
            for part in result.unencrypted_parts()
        ]
        out["learnt_keys"] = [
            {
                "kind": key.kind,
                "fingerprint": key.fingerprint,
                "addresses": list(key.addresses),
                "source": key.source,
            }
            for key in result.learnt_keys
        ]
    if error is not None:
        out["error"] = error
    return out


def inspect_bytes(file: str, raw: bytes, env: StageEnv) -> dict[str, Any]:
    """Run the pipeline's CPU stages on ``raw`` and report; never raises."""
    work = InboundWork(0, raw)
    try:
        work = run_stages(work, env)
    except StageFailedError as failure:
        return report(file, work, f"{failure.reason}: {failure.detail}"[:2000])
    except Exception as exc:  # one broken message must not stop the others
        return report(file, work, f"{type(exc).__name__}: {exc}"[:2000])
    return report(file, work)


def _inspect_one(path: Path, env: StageEnv) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return {"file": str(path), "error": f"larger than {MAX_FILE_BYTES} bytes"}
        raw = path.read_bytes()
    except OSError as exc:
        return {"file": str(path), "error": f"cannot read: {exc.strerror}"}
    try:
        return inspect_bytes(str(path), raw, env)
    except Exception as exc:  # the report itself failed: still one JSON object
        return {"file": str(path), "error": f"{type(exc).__name__}: {exc}"[:2000]}


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
    env = StageEnv(keys=keys)
    try:
        for path in files:
            click.echo(json.dumps(_inspect_one(path, env), ensure_ascii=False))
    finally:
        if gnupghome is not None:
            PgpKeystore(gnupghome).close()
