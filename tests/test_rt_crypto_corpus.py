"""Request Tracker's real-client PGP and S/MIME messages (``../shared/corpora/rt_crypto``).

The corpus stays where it is (never copied into the repository); its test keys are imported into
a temporary GnuPG home. Each message is checked as ``/work/shared/tools/score_rt_crypto.py``
checks ``hub inspect``: subject, decrypted text, signature and signer, attachments, plus the
expected MD5 of binary attachments and the special cases (a quoted inline signature is not a
signature).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from hub.crypto.pgp import PgpKeystore
from hub.inbound.unprotect import InboundKeys, Unprotected, unprotect

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "rt_crypto"
#: What this implementation reaches (of 29): every message.
EXPECTED_PASSES = 29


@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    # the corpus sits beside the repo in CI: missing, it is a failure, never a skip
    if not CORPUS.is_dir():
        pytest.fail(f"the rt_crypto corpus is missing at {CORPUS}")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InboundKeys]:
    home = tmp_path_factory.mktemp("rtgnupg") / "gnupg"
    store = PgpKeystore(home, s2k_count=65536)  # cheap key unlocking: see PgpKeystore
    for name in ("rt-recipient-at-example.com.secret.key", "rt-test-at-example.com.public.key"):
        subprocess.run(
            [
                "gpg",
                "--homedir",
                str(home),
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "rt-test",
                "--import",
                str(CORPUS / "gnupg" / "keys" / name),
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
    smime = CORPUS / "smime" / "keys"
    yield InboundKeys(
        gnupghome=home,
        pgp_passphrase=SecretStr("rt-test"),
        smime_key=smime / "root@example.com.key",
        smime_cert=smime / "root@example.com.crt",
        smime_key_password=SecretStr("123456"),
        smime_ca=smime / "demoCA" / "cacert.pem",
    )
    store.close()


def _problems(case: dict[str, Any], result: Unprotected) -> list[str]:
    why = []
    if result.subject != case["expected_subject"]:
        why.append(f"subject {result.subject!r}")
    if not re.search(case["expected_body_regex"], result.text_body()):
        why.append("body")
    if "encrypted" in case["usage"] and not result.decrypted:
        why.append("not decrypted")
    if "signed" in case["usage"]:
        want = re.search(r"[\w.+-]+@[\w.-]+", case["expected_signer"])
        best = result.best_signature
        if not result.signature_valid or best is None:
            why.append("signature not valid")
        elif want is None or want.group(0) not in (best.signer or ""):
            why.append(f"signer {best.signer!r}")
        elif not best.matches_from:
            why.append("signer does not match From")
    attachments = result.attachments()
    if case["attachment"] != "plain" and not attachments:
        why.append("attachment missing")
    if "expected_attachment_md5" in case:
        sums = {hashlib.md5(a.payload).hexdigest() for a in attachments}  # noqa: S324
        if case["expected_attachment_md5"] not in sums:
            why.append("attachment bytes differ")
    if "expected_attachment_regex" in case and not any(
        re.search(case["expected_attachment_regex"].encode(), a.payload) for a in attachments
    ):
        why.append("attachment text differs")
    return why


def test_rt_crypto_corpus(keys: InboundKeys) -> None:
    expected = json.loads((CORPUS / "expected.json").read_text())
    failures: dict[str, list[str]] = {}
    passed = 0
    for kind in ("pgp", "smime"):
        for case in expected[kind]["cases"]:
            result = unprotect((CORPUS / case["file"]).read_bytes(), keys)
            why = _problems(case, result)
            if why:
                failures[case["file"]] = why
            else:
                passed += 1
    assert failures == {}
    assert passed == EXPECTED_PASSES


def test_special_cases_are_read_without_a_crash(keys: InboundKeys) -> None:
    emails = CORPUS / "gnupg" / "emails"
    quoted = unprotect((emails / "special" / "quoted_inline_signature.txt").read_bytes(), keys)
    assert not quoted.signed and "BEGIN PGP SIGNED MESSAGE" in quoted.text_body()

    favicon = "1e35f1aa90c98ca2bab85c26ae3e1ba7"
    for name in (
        "binary-asc-attach-marked-plain-text.txt",
        "inline-binary-attachment-with-wrap.txt",
    ):
        result = unprotect((emails / "special" / name).read_bytes(), keys)
        assert result.decrypted
        sums = [hashlib.md5(a.payload).hexdigest() for a in result.attachments()]  # noqa: S324
        assert favicon in sums, name

    old = unprotect((emails / "signed_old_style_with_attachment.eml").read_bytes(), keys)
    assert old.signed and {a.filename for a in old.attachments()} >= {"test.txt"}
