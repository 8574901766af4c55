"""Messages per second for the hub's outgoing-mail crypto, beside the bare cost of the same crypto.

    .venv/bin/python bench/crypto_bench.py [--count 100] [--concurrency 4]

Rows:
* PGP/MIME: split + sign+encrypt through python-gnupg + RFC 3156 body + serialise, against the
  ``gpg --sign --encrypt`` command line on the same canonical bytes (one process per message).
  Once with the gpg-agent's default s2k-count and once with ``s2k_count=65536``.
* S/MIME CBC: sign + AES-256-CBC envelope + MIME, against ``cryptography`` alone (detached
  signature + EnvelopedData on the same bytes, no MIME).
* S/MIME GCM: sign + ``openssl cms -encrypt -aes-256-gcm`` + MIME, against one bare
  ``openssl cms`` encrypt call on the same signed bytes.
With ``--concurrency N`` each hub row is repeated with N coroutines through the async wrappers.
Keys and certificates are generated on the fly in temporary directories.
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs7,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from hub.crypto.mime_parts import canonical_bytes, copy_outer_headers, inner_entity
from hub.crypto.pgp import PgpKeystore
from hub.crypto.smime import protect_smime, signed_bytes

PASSPHRASE = "bench passphrase"


def message(index: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Hub Collections <hub@collect.example>"
    msg["To"] = "Alice Debtor <alice@debtor.example>"
    msg["Subject"] = f"Zahlungserinnerung – Forderung 2024-{index:04d}"
    msg["Message-ID"] = f"<r{index}.bench@collect.example>"
    msg["Auto-Submitted"] = "auto-generated"
    text = "Sehr geehrte Frau Debtor, bitte zahlen Sie 1.250,00 € bis zum 1.12.2026.\n" * 30
    msg.set_content(text)
    msg.add_alternative(f"<p>{text}</p>", subtype="html")
    return msg


def rate(count: int, work: Callable[[int], object]) -> float:
    work(0)  # warm-up: agent start, key conversion, imports
    start = time.perf_counter()
    for i in range(count):
        work(i)
    return count / (time.perf_counter() - start)


def rate_async(count: int, concurrency: int, work: Callable[[int], Awaitable[object]]) -> float:
    async def run() -> float:
        await work(0)
        queue = iter(range(count))

        async def worker() -> None:
            for i in queue:
                await work(i)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - start)

    return asyncio.run(run())


def gpg(home: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--status-fd", "2", *args],
        input=stdin,
        capture_output=True,
        check=True,
    )


def make_pgp_keys(world: Path) -> tuple[str, str, bytes, bytes]:
    pw = ["--pinentry-mode", "loopback", "--passphrase"]
    fprs = []
    for uid, secret in (
        ("Hub <hub@collect.example>", PASSPHRASE),
        ("Alice <alice@debtor.example>", ""),
    ):
        out = gpg(world, *pw, secret, "--quick-gen-key", uid, "ed25519", "sign", "1y").stderr
        match = re.search(rb"KEY_CREATED [BP] ([0-9A-F]{40})", out)
        assert match
        fpr = match.group(1).decode()
        gpg(world, *pw, secret, "--quick-add-key", fpr, "cv25519", "encr", "1y")
        fprs.append(fpr)
    hub_secret = gpg(world, *pw, PASSPHRASE, "--export-secret-keys", fprs[0]).stdout
    alice_public = gpg(world, "--export", fprs[1]).stdout
    return fprs[0], fprs[1], hub_secret, alice_public


def bench_pgp(count: int, concurrency: int) -> list[tuple[str, float, float]]:
    rows: list[tuple[str, float, float]] = []
    world = Path(tempfile.mkdtemp(prefix="bench-gpg-world-"))
    world.chmod(0o700)
    hub_fpr, alice_fpr, hub_secret, alice_public = make_pgp_keys(world)
    canonical = canonical_bytes(inner_entity(message(0)))

    for label, s2k in (("default s2k", None), ("s2k-count 65536", 65536)):
        home = Path(tempfile.mkdtemp(prefix="bench-gpg-"))
        with PgpKeystore(home, s2k_count=s2k) as store:
            store.import_secret_key(hub_secret, SecretStr(PASSPHRASE))
            store.import_key(alice_public)
            secret = SecretStr(PASSPHRASE)

            def hub(i: int, store: PgpKeystore = store, secret: SecretStr = secret) -> bytes:
                plain = message(i)
                body = store.protect_pgp_mime(inner_entity(plain), alice_fpr, hub_fpr, secret)
                return copy_outer_headers(plain, body).as_bytes(policy=email.policy.SMTP)

            def bare(_: int, home: Path = home) -> bytes:
                return gpg(
                    home,
                    *("--pinentry-mode", "loopback", "--passphrase", PASSPHRASE),
                    *("--trust-model", "always", "--local-user", f"{hub_fpr}!"),
                    *("--recipient", alice_fpr, "--sign", "--encrypt", "--armor"),
                    stdin=canonical,
                ).stdout

            n = count if s2k else max(10, count // 10)
            hub_rate = rate(n, hub)
            rows.append((f"PGP/MIME sign+encrypt ({label})", hub_rate, rate(n, bare)))
            if concurrency > 1:

                async def hub_async(
                    i: int, store: PgpKeystore = store, secret: SecretStr = secret
                ) -> bytes:
                    plain = message(i)
                    body = await store.aprotect_pgp_mime(
                        inner_entity(plain), alice_fpr, hub_fpr, secret
                    )
                    return copy_outer_headers(plain, body).as_bytes(policy=email.policy.SMTP)

                rows.append(
                    (
                        f"PGP/MIME ({label}), {concurrency} coroutines",
                        rate_async(n, concurrency, hub_async),
                        0.0,
                    )
                )
        shutil.rmtree(home, ignore_errors=True)
    subprocess.run(["gpgconf", "--homedir", str(world), "--kill", "gpg-agent"], check=False)
    shutil.rmtree(world, ignore_errors=True)
    return rows


def make_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    addr: str,
) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, addr)])
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(addr)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def bench_smime(count: int, concurrency: int) -> list[tuple[str, float, float]]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer_cert = make_cert(ca_key, signer_key, "hub@collect.example")
    recipient_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    recipient_cert = make_cert(ca_key, recipient_key, "alice@debtor.example")
    signer_pem = signer_cert.public_bytes(Encoding.PEM)
    key_pem = signer_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    recipient_pem = recipient_cert.public_bytes(Encoding.PEM)
    canonical = canonical_bytes(inner_entity(message(0)))
    signed = signed_bytes(inner_entity(message(0)), signer_cert, signer_key)
    rows: list[tuple[str, float, float]] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-smime-"))
    (workdir / "rcpt.pem").write_bytes(recipient_pem)

    def hub_pem(i: int) -> bytes:
        # The trap: loading an RSA private key from PEM runs cryptography's key check (~35 ms).
        plain = message(i)
        body = protect_smime(inner_entity(plain), recipient_pem, signer_pem, key_pem, False)
        return copy_outer_headers(plain, body).as_bytes(policy=email.policy.SMTP)

    rows.append(("S/MIME CBC, key passed as PEM on every call (do not)", rate(20, hub_pem), 0.0))

    for aead in (False, True):

        def hub(i: int, aead: bool = aead) -> bytes:
            # As the hub should: certificate and key objects loaded once, at start.
            plain = message(i)
            body = protect_smime(inner_entity(plain), recipient_cert, signer_cert, signer_key, aead)
            return copy_outer_headers(plain, body).as_bytes(policy=email.policy.SMTP)

        if aead:

            def bare(_: int) -> bytes:
                return subprocess.run(
                    [
                        *("openssl", "cms", "-encrypt", "-binary", "-outform", "DER"),
                        *("-aes-256-gcm", "-recip", str(workdir / "rcpt.pem")),
                        *("-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"),
                        *("-keyopt", "rsa_mgf1_md:sha256"),
                    ],
                    input=signed,
                    capture_output=True,
                    check=True,
                ).stdout

            label, baseline = "S/MIME sign+AES-256-GCM (openssl cms)", "bare openssl cms encrypt"
        else:

            def bare(_: int) -> bytes:
                signature = (
                    pkcs7.PKCS7SignatureBuilder()
                    .set_data(canonical)
                    .add_signer(signer_cert, signer_key, hashes.SHA256())
                    .sign(
                        Encoding.DER,
                        [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
                    )
                )
                envelope = (
                    pkcs7.PKCS7EnvelopeBuilder()
                    .set_data(canonical + signature)
                    .add_recipient(recipient_cert)
                    .set_content_encryption_algorithm(algorithms.AES256)
                    .encrypt(Encoding.DER, [pkcs7.PKCS7Options.Binary])
                )
                return envelope

            label, baseline = "S/MIME sign+AES-256-CBC", "cryptography sign+envelope alone"
        rows.append((f"{label} [vs {baseline}]", rate(count, hub), rate(count, bare)))
        if concurrency > 1:
            from hub.crypto.smime import aprotect_smime

            async def hub_async(i: int, aead: bool = aead) -> bytes:
                plain = message(i)
                body = await aprotect_smime(
                    inner_entity(plain), recipient_cert, signer_cert, signer_key, aead
                )
                return copy_outer_headers(plain, body).as_bytes(policy=email.policy.SMTP)

            rows.append(
                (
                    f"{label}, {concurrency} coroutines",
                    rate_async(count, concurrency, hub_async),
                    0.0,
                )
            )
    shutil.rmtree(workdir, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="messages per row")
    parser.add_argument("--concurrency", type=int, default=4, help="coroutines for async rows")
    args = parser.parse_args()
    size = len(canonical_bytes(inner_entity(message(0))))
    print(f"inner entity: {size} bytes; {args.count} messages per row\n")
    rows = bench_pgp(args.count, args.concurrency) + bench_smime(args.count, args.concurrency)
    print(f"{'what':<72} {'hub msg/s':>10} {'bare/s':>9} {'ratio':>7}")
    for label, hub_rate, bare_rate in rows:
        if bare_rate:
            ratio = f"{hub_rate / bare_rate:.2f}"
            print(f"{label:<72} {hub_rate:>10.1f} {bare_rate:>9.1f} {ratio:>7}")
        else:
            print(f"{label:<72} {hub_rate:>10.1f} {'':>9} {'':>7}")


if __name__ == "__main__":
    main()
