"""``hub inspect`` over every file of the shared imap_tools and sisimai corpora: it never
crashes, exits 0, and prints one valid JSON object with the issue's keys per file.

The corpora live outside the repository (``../shared/corpora``); the test is skipped when they
are absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
HUB = str(Path(sys.executable).parent / "hub")
KEYS = {
    "file", "message_id", "in_reply_to", "references", "from", "to", "subject", "date", "kind",
    "text", "reply_text", "signature", "attachments", "crypto", "bounce", "defects",
}  # fmt: skip
KINDS = {"reply", "auto_reply", "bounce", "read_receipt", "feedback_report"}


def _files() -> list[Path]:
    found = sorted((CORPORA / "imap_tools" / "messages").rglob("*.eml"))
    found += sorted(p for p in (CORPORA / "sisimai" / "maildir").rglob("*") if p.is_file())
    return found


def test_inspect_every_corpus_file() -> None:
    if not (CORPORA / "sisimai").is_dir():
        pytest.fail(f"the shared corpora are missing at {CORPORA}")
    files = _files()
    assert len(files) > 800
    objects: list[dict[str, object]] = []
    for start in range(0, len(files), 300):
        chunk = files[start : start + 300]
        done = subprocess.run(
            [HUB, "inspect", *map(str, chunk)], capture_output=True, timeout=600, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        # not splitlines(): U+2028 and friends appear unescaped inside JSON strings
        lines = done.stdout.decode("utf-8").rstrip("\n").split("\n")
        assert len(lines) == len(chunk)
        objects += [json.loads(line) for line in lines]
    assert [o["file"] for o in objects] == [str(p) for p in files]
    readable = [o for o in objects if "error" not in o]
    assert len(readable) >= len(objects) - 2
    for item in readable:
        assert set(item) >= KEYS, item["file"]
        assert item["kind"] in KINDS, item["file"]
    kinds = {str(o["kind"]) for o in readable}
    assert kinds == KINDS - {"read_receipt"} or kinds == KINDS
    bounces = [o for o in readable if o["kind"] == "bounce"]
    with_recipients = [o for o in bounces if o["bounce"] and o["bounce"]["recipients"]]  # type: ignore[index]
    assert len(with_recipients) >= 0.97 * len(bounces)
