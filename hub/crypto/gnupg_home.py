"""A GnuPG home whose path is short enough for gpg-agent's sockets.

Unless ``/run/user/<uid>`` exists, GnuPG puts the agent's sockets inside the home directory,
and a Unix socket path may not exceed 107 bytes: a home deep inside a data directory (or a
test's temporary directory) then fails with "No agent running". Such a home is reached through
a short symbolic link in the temporary directory instead, owned by us and checked before use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

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
