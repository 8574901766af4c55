"""Secret files: created with mode 0600, never overwritten, never printed."""

from __future__ import annotations

import os
from pathlib import Path

from hub.crypto.at_rest import generate_key

SECRET_MODE = 0o600
#: The files :func:`generate_secret_files` writes, with the (section, setting) that reads each.
SECRET_FILES = {
    "at_rest_keys": ("security", "at_rest_keys_file"),
    "lookup_key": ("security", "lookup_key_file"),
    "reply_token_key": ("security", "reply_token_key_file"),
    "web_session_secret": ("web", "session_secret_file"),
}


def write_secret(path: Path, content: str | bytes) -> None:
    """Create ``path`` with mode 0600; fail with FileExistsError if it exists (O_EXCL)."""
    data = content.encode("ascii") if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    try:
        os.fchmod(fd, SECRET_MODE)  # whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def secret_paths(directory: Path) -> dict[str, Path]:
    return {name: directory / name for name in SECRET_FILES}


def generate_secret_files(directory: Path) -> dict[str, Path]:
    """Write a new at-rest key ("k1"), lookup key and reply-token key into ``directory``.

    The directory is created with mode 0700. Raises FileExistsError naming the first file that
    already exists; nothing is written then.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = secret_paths(directory.resolve())
    for path in paths.values():
        if path.exists():
            raise FileExistsError(str(path))
    contents = {
        "at_rest_keys": f"k1:{generate_key()}\n",
        "lookup_key": f"{generate_key()}\n",
        "reply_token_key": f"{generate_key()}\n",
        "web_session_secret": f"{generate_key()}\n",
    }
    for name, path in paths.items():
        write_secret(path, contents[name])
    return paths


def config_sections(paths: dict[str, Path]) -> dict[str, list[str]]:
    """The TOML lines, per section, that point the configuration at the secret files."""
    sections: dict[str, list[str]] = {"security": ['at_rest_active_key = "k1"']}
    for name, (section, setting) in SECRET_FILES.items():
        sections.setdefault(section, []).append(f'{setting} = "{paths[name]}"')
    return sections
