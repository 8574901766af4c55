"""A private Dovecot (IMAP with STARTTLS, IMAPS, LMTP on loopback ports), started without systemd.

Used by ``hub demo`` as the hub's inbox and by the tests as their IMAP server. One instance lives
in a directory of its own with a self-signed certificate and one passwd-file user (uid 65534,
because Dovecot refuses uid 0). It is started with ``dovecot -c CONF`` (the master daemonizes)
and stopped with ``doveadm stop``; stopping waits until ``master.pid`` is gone, so a new start
never races the old master. Messages are delivered by LMTP, as an MTA would deliver them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

USER = "hub"
MAIL_UID = 65534
START_TIMEOUT = 15.0


class DovecotMissingError(RuntimeError):
    """The ``dovecot``/``doveadm`` binaries are not installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, instance: str, imap: int, imaps: int, lmtp: int) -> str:
    return f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = {instance}
log_path = {root}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
shutdown_clients = yes
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 100
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
protocol lmtp {{
  auth_username_format = %Ln
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
"""


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None and shutil.which("doveadm") is not None


@dataclass
class DovecotServer:
    """A private Dovecot instance in ``root``: ``create()`` makes and starts one."""

    root: Path
    imap_port: int
    imaps_port: int
    lmtp_port: int
    instance: str
    password: str
    user: str = USER

    @property
    def conf(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def cafile(self) -> Path:
        return self.root / "cert.pem"

    @property
    def pidfile(self) -> Path:
        return self.root / "run" / "master.pid"

    @classmethod
    def create(
        cls, *, password: str | None = None, parent: Path | None = None, prefix: str = "hub"
    ) -> Self:
        """Start a new instance in a new directory under ``parent`` (default: the temp dir).

        Dovecot's auth and mail processes run as other users, so every directory above the
        passwd file and the mailbox must be searchable: a 0700 parent (pytest's tmp dirs)
        is not, hence the system temp dir by default.
        """
        if not dovecot_available():
            raise DovecotMissingError(
                "Dovecot is not installed: apt-get install -y dovecot-imapd dovecot-lmtpd "
                "(scripts/dev.sh installs it)"
            )
        root = Path(tempfile.mkdtemp(prefix=f"{prefix}-dovecot-", dir=parent))
        root.chmod(0o711)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        secret = password if password is not None else secrets.token_urlsafe(18)
        mail = root / "mail" / USER
        mail.mkdir(parents=True)
        passwd = root / "passwd"
        passwd.write_text(f"{USER}:{{PLAIN}}{secret}:{MAIL_UID}:{MAIL_UID}::{mail}\n", "utf-8")
        for path in [root / "mail", mail]:
            os.chown(path, MAIL_UID, MAIL_UID)
        instance = f"{prefix}-{secrets.token_hex(4)}"
        server = cls(root, free_port(), free_port(), free_port(), instance, secret)
        server.conf.write_text(
            _config(root, instance, server.imap_port, server.imaps_port, server.lmtp_port),
            encoding="utf-8",
        )
        server.start()
        return server

    def start(self) -> None:
        """Start the master and wait until the IMAP port accepts connections."""
        # the daemon keeps inherited pipes open: never capture its output
        subprocess.run(
            ["dovecot", "-c", str(self.conf)],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.imap_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"Dovecot did not start; see {self.root / 'dovecot.log'}")

    def stop(self) -> None:
        """``doveadm stop``, then wait until ``master.pid`` is gone (it takes 1-3 s)."""
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], check=False, capture_output=True)
        deadline = time.monotonic() + START_TIMEOUT
        while self.pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pidfile.exists():
            raise RuntimeError(f"Dovecot did not stop within {START_TIMEOUT:.0f} s")

    def destroy(self) -> None:
        """Stop the server and remove its directory (mailbox included)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(
            ["doveadm", "-c", str(self.conf), *args],
            input=stdin,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)}: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    def deliver(self, *messages: bytes, sender: str = "sender@example.org") -> None:
        """Deliver into INBOX the way an MTA would: LMTP, one connection for all of them
        (Dovecot adds Return-Path, Delivered-To and Received)."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            for message in messages:
                lmtp.sendmail(sender, [self.user], message)

    def count(self, mailbox: str = "INBOX") -> int:
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", self.user, "messages", mailbox)
        return int(out.strip().split("=", 1)[1])
