"""The tests' private Dovecot: :class:`hub.demo.dovecot.DovecotServer` plus test-only helpers.

One instance per test session (see the ``dovecot_server`` fixture). Beyond the server itself
(start, stop, LMTP delivery), the tests store exact bytes with ``doveadm save``, empty or
recreate mailboxes, read flags, and cut client connections to simulate an outage.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from hub.demo.dovecot import USER, DovecotServer, free_port

__all__ = ["PASSWORD", "USER", "Dovecot", "free_port"]

PASSWORD = "secret-imap-pass"


class Dovecot(DovecotServer):
    """A running private Dovecot; ``stop()``/``start()`` simulate an outage."""

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
        super().stop()

    def restart(self) -> None:
        self.stop()
        self.start()

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
