"""A private Dovecot instance for the tests: IMAP (STARTTLS), IMAPS and LMTP on loopback ports.

One instance per test session lives in a temporary directory with a self-signed certificate and
one passwd-file user (uid 65534, because Dovecot refuses uid 0). Helpers deliver messages (LMTP
with the standard library, or IMAP APPEND), empty or recreate mailboxes with ``doveadm``, and
stop and start the server to simulate an outage.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER = "hub"
PASSWORD = "secret-imap-pass"
MAIL_UID = 65534


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


@dataclass
class Dovecot:
    """A running private Dovecot; ``stop()``/``start()`` simulate an outage."""

    root: Path
    imap_port: int
    imaps_port: int
    lmtp_port: int
    instance: str

    user: str = USER
    password: str = PASSWORD

    @property
    def conf(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def cafile(self) -> Path:
        return self.root / "cert.pem"

    @classmethod
    def create(cls) -> Dovecot:
        """Start a new instance in a new directory under the system temp dir.

        Dovecot's auth and mail processes run as other users, so every directory above the
        passwd file and the mailbox must be searchable: pytest's 0700 tmp dirs are not.
        """
        if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
            raise RuntimeError(
                "the IMAP tests need Dovecot: apt-get install -y dovecot-imapd dovecot-lmtpd "
                "(scripts/dev.sh installs it)"
            )
        root = Path(tempfile.mkdtemp(prefix="hub-dovecot-"))
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
        mail = root / "mail" / USER
        mail.mkdir(parents=True)
        (root / "passwd").write_text(
            f"{USER}:{{PLAIN}}{PASSWORD}:{MAIL_UID}:{MAIL_UID}::{mail}\n", encoding="utf-8"
        )
        for path in [root / "mail", mail]:
            os.chown(path, MAIL_UID, MAIL_UID)
        instance = f"hub-test-{secrets.token_hex(4)}"
        server = cls(root, free_port(), free_port(), free_port(), instance)
        server.conf.write_text(
            _config(root, instance, server.imap_port, server.imaps_port, server.lmtp_port),
            encoding="utf-8",
        )
        server.start()
        return server

    def _pidfile(self) -> Path:
        return self.root / "run" / "master.pid"

    def start(self) -> None:
        # the daemon keeps inherited pipes open: never capture its output
        subprocess.run(
            ["dovecot", "-c", str(self.conf)],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.imap_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"Dovecot did not start; see {self.root / 'dovecot.log'}")

    def session_pids(self) -> list[int]:
        """The imap processes serving this instance's clients (``dovecot-<instance>/imap``)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            except OSError:
                continue
            if title.startswith(f"dovecot-{self.instance}/imap".encode()) and b"login" not in title:
                found.append(int(entry.name))
        return found

    def cut_connections(self) -> int:
        """Kill the processes serving IMAP clients: every client connection drops at once."""
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        """Stop the server; imap processes serving clients survive ``doveadm stop``, so they
        are killed too: to a client it looks like the server went away."""
        self.cut_connections()
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], check=False, capture_output=True)
        deadline = time.monotonic() + 15
        while self._pidfile().exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._pidfile().exists():
            raise RuntimeError("Dovecot did not stop within 15 s")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

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

    def deliver(self, *messages: bytes) -> None:
        """Deliver into INBOX the way an MTA would: LMTP, one connection for all of them
        (Dovecot adds Return-Path, Delivered-To and Received)."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            for message in messages:
                lmtp.sendmail("sender@example.org", [USER], message)

    def save(self, message: bytes, mailbox: str = "INBOX") -> None:
        """Store the exact bytes in ``mailbox`` (no headers added)."""
        self.doveadm("save", "-u", USER, "-m", mailbox, stdin=message)

    def create_mailbox(self, name: str) -> None:
        self.doveadm("mailbox", "create", "-u", USER, name)

    def mailboxes(self) -> list[str]:
        return self.doveadm("mailbox", "list", "-u", USER).split()

    def reset(self) -> None:
        """Delete every mailbox but INBOX and empty INBOX: a clean account for the next test."""
        for name in self.mailboxes():
            if name != "INBOX":
                self.doveadm("mailbox", "delete", "-u", USER, "-s", name)
        self.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "all")

    def recreate_inbox(self) -> None:
        """Give INBOX a new UIDVALIDITY, keeping its messages (as after a server migration)."""
        self.doveadm(
            "mailbox", "update", "-u", USER, "--uid-validity", str(self.uidvalidity() + 7), "INBOX"
        )

    def uidvalidity(self, mailbox: str = "INBOX") -> int:
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", USER, "uidvalidity", mailbox)
        return int(out.strip().split("=", 1)[1])

    def flags(self, mailbox: str = "INBOX") -> dict[int, str]:
        """UID -> the flags string of every message in ``mailbox``."""
        out = self.doveadm("-f", "tab", "fetch", "-u", USER, "uid flags", "mailbox", mailbox)
        result: dict[int, str] = {}
        for line in out.splitlines()[1:]:
            uid, _, flags = line.partition("\t")
            result[int(uid)] = flags
        return result

    def count(self, mailbox: str = "INBOX") -> int:
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", USER, "messages", mailbox)
        return int(out.strip().split("=", 1)[1])
