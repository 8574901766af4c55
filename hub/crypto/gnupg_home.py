"""A GnuPG home: a path short enough for gpg-agent's sockets, and the agent's life in it.

Unless ``/run/user/<uid>`` exists, GnuPG puts the agent's sockets inside the home directory,
and a Unix socket path may not exceed 107 bytes: a home deep inside a data directory (or a
test's temporary directory) then fails with "No agent running". Such a home is reached through
a short symbolic link in the temporary directory instead, owned by us and checked before use.

Each home starts its own gpg-agent, which would outlive the process: :func:`stop_agent` stops
it, :func:`configure_agent` sets its work factor (and restarts it to take effect).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

from hub.crypto.errors import CryptoOperationError

log = logging.getLogger(__name__)

#: room for the longest socket name GnuPG creates, "S.gpg-agent.browser", and a separator
_SOCKET_ROOM = 21
_MAX_SOCKET_PATH = 107


def short_home(home: Path) -> Path:
    """``home`` itself when its sockets fit, else a private short link to it."""
    real = home.resolve()
    if len(os.fsencode(str(real))) + _SOCKET_ROOM <= _MAX_SOCKET_PATH:
        return real
    digest = hashlib.sha256(os.fsencode(str(real))).hexdigest()[:16]
    link = Path(tempfile.gettempdir()) / f"hub-gpg-{os.getuid()}-{digest}"
    with contextlib.suppress(FileExistsError):
        os.symlink(real, link)
    info = os.lstat(link)
    if info.st_uid != os.getuid() or not link.is_symlink() or link.resolve() != real:
        raise PermissionError(f"{link} exists and is not our link to the GnuPG home")
    return link


def stop_agent(home: Path, timeout: float) -> None:
    """Stop the gpg-agent of ``home`` and wait, at most 3 s, until it has gone."""
    try:
        socket = subprocess.run(
            ["gpgconf", "--homedir", str(home), "--list-dirs", "agent-socket"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        ).stdout.strip()
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        log.warning("could not stop the gpg-agent of %s", home)
        return
    deadline = time.monotonic() + 3.0
    while socket and os.path.exists(socket) and time.monotonic() < deadline:
        time.sleep(0.02)


def configure_agent(home: Path, s2k_count: int, timeout: float) -> None:
    """Set the agent's ``s2k-count`` for ``home``; a running agent is stopped, since it reads
    its configuration only when it starts."""
    if not 65536 <= s2k_count <= 65011712:
        raise CryptoOperationError("s2k_count must lie between 65536 and 65011712")
    conf = home / "gpg-agent.conf"
    wanted = f"s2k-count {s2k_count}\n"
    if conf.exists() and conf.read_text() == wanted:
        return
    conf.write_text(wanted)
    conf.chmod(0o600)
    stop_agent(home, timeout)
