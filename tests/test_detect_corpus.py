"""Detection against the real sisimai corpus: 629 bounces, auto-replies and ARF reports from
real mail servers, with sisimai's own verdicts as the expectation (``expected.json``).

The corpus lives outside the repository (``../shared/corpora/sisimai``); the test is skipped
when it is absent. The floors below sit just under what was measured, so a regression fails.
Known, deliberate disagreements with sisimai's labels:

* sisimai calls "550 user unknown" answered after DATA (or behind a filter) ``filtered``, a
  soft bounce; the hub keeps it a dead address (``userunknown``, hard);
* ``expected.json`` lists one recipient per file even where the report names two or more
  (``lhost-opensmtpd-02``: two failed addresses, two lines), so the exact recipient count match
  cannot reach 100%;
* ``maildir/not/rb-issue-368-bug.eml`` is a mailbox-full notice from a postmaster to a VERP
  address; sisimai's tests keep it as a regression case it must not parse, the hub reads it as
  the soft bounce it is.
"""

from __future__ import annotations

import email
import email.policy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hub.inbound.detect import Detection, Kind, detect

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "sisimai"


@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    # the corpus sits beside the repo in CI: missing, it is a failure, never a skip
    if not (CORPUS / "expected.json").is_file():
        pytest.fail(f"the sisimai corpus is missing at {CORPUS}")


NOT_BOUNCE_REASONS = {"vacation", "feedback", "delivered"}
#: the non-bounces that must stay non-bounces (see the module docstring for the third)
STRICT_NOT_BOUNCES = ("is-not-bounce-01.eml", "is-not-bounce-02.eml")


def _detect(path: Path) -> Detection:
    return detect(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))


@dataclass
class Score:
    """Counts of agreements with the corpus labels, per category."""

    counts: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, ok: bool) -> None:
        hit_total = self.counts.setdefault(name, [0, 0])
        hit_total[0] += int(ok)
        hit_total[1] += 1

    def rate(self, name: str) -> float:
        hit, total = self.counts[name]
        return hit / total

    def report(self) -> str:
        return "\n".join(
            f"{name:32} {hit:4}/{total:<4} {hit / total:7.2%}"
            for name, (hit, total) in self.counts.items()
        )


def _labelled() -> list[tuple[str, list[dict[str, Any]]]]:
    data = json.loads((CORPUS / "expected.json").read_text())
    cases: dict[str, list[dict[str, Any]]] = {c["file"]: c["expected"] for c in data["cases"]}
    for copy in sorted((CORPUS / "maildir" / "dos").glob("*.eml")):
        original = f"maildir/bsd/{copy.name}"
        if original in cases:
            cases[f"maildir/dos/{copy.name}"] = cases[original]
    return sorted(cases.items())


def _score() -> tuple[Score, int, float]:
    score = Score()
    data = json.loads((CORPUS / "expected.json").read_text())
    count = 0
    started = time.perf_counter()
    for rel, expected in _labelled():
        found = _detect(CORPUS / rel)
        count += 1
        label = expected[0]
        reason = label["reason"]
        is_bounce = reason not in NOT_BOUNCE_REASONS
        score.add("bounce vs not", (found.kind is Kind.BOUNCE) == is_bounce)
        if reason == "vacation":
            score.add("auto-reply (vacation)", found.kind is Kind.AUTO_REPLY)
        if reason == "feedback":
            score.add("feedback report", found.kind is Kind.FEEDBACK_REPORT)
            score.add(
                "feedback type",
                found.feedback is not None
                and found.feedback.feedback_type == label["feedback_type"],
            )
        if reason == "delivered":
            score.add("delivery report", found.kind is Kind.DELIVERY_REPORT)
        told_apart = (found.kind is Kind.BOUNCE) == is_bounce and (
            not is_bounce or (found.bounce is not None and bool(found.bounce.recipients))
        )
        score.add("told apart, with recipients", told_apart)
        if not is_bounce:
            continue
        bounce = found.bounce
        recipients = bounce.recipients if bounce is not None else ()
        score.add("recipient count", len(recipients) == len(expected))
        score.add("recipient found", bool(recipients))
        first = recipients[0] if recipients else None
        if label["status"]:
            score.add(
                "status class (5 vs 4)",
                first is not None and first.status[:1] == label["status"][:1],
            )
        score.add("hard/soft", first is not None and first.hard == label["hard_bounce"])
        score.add("reason label", first is not None and first.reason == reason)
        score.add("original Message-ID", bounce is not None and bool(bounce.original_message_id))
    for item in data["unlabeled_files"]:
        found = _detect(CORPUS / item["file"])
        count += 1
        category = item["category_by_filename"]
        expected_kind = (
            Kind.BOUNCE
            if category == "bounce"
            else Kind.FEEDBACK_REPORT
            if category.startswith("feedback")
            else Kind.AUTO_REPLY
        )
        score.add("unlabelled files: kind", found.kind is expected_kind)
    for path in sorted((CORPUS / "maildir" / "not").glob("*.eml")):
        found = _detect(path)
        count += 1
        if path.name in STRICT_NOT_BOUNCES:
            score.add("non-bounces not bounces", found.kind is not Kind.BOUNCE)
    return score, count, time.perf_counter() - started


def test_corpus_figures() -> None:
    score, count, seconds = _score()
    print(f"\nsisimai corpus: {count} messages in {seconds:.2f} s ({count / seconds:.0f} msg/s)")
    print(score.report())
    floors = {
        "bounce vs not": 0.99,
        "told apart, with recipients": 0.98,
        "auto-reply (vacation)": 1.0,
        "feedback report": 0.99,
        "feedback type": 0.99,
        "delivery report": 0.99,
        "recipient count": 0.935,
        "recipient found": 0.98,
        "status class (5 vs 4)": 0.96,
        "hard/soft": 0.83,
        "original Message-ID": 0.87,
        "unlabelled files: kind": 0.97,
        "non-bounces not bounces": 1.0,
    }
    below = {n: f"{score.rate(n):.4f} < {f}" for n, f in floors.items() if score.rate(n) < f}
    assert not below, below
    # parsing included; the whole corpus must take a few seconds at most
    assert seconds < 20, seconds


def test_corpus_never_crashes_and_explains() -> None:
    """Every file in the corpus gets a verdict with one entry per rule, and a decided kind
    names the rule that decided it."""
    paths = sorted((CORPUS / "maildir").rglob("*.eml"))
    assert len(paths) > 700
    for path in paths:
        found = _detect(path)
        assert len(found.rules) == 6, path
        if found.kind is not Kind.REPLY:
            assert found.decided_by is not None, path


def test_crlf_copies_agree_with_lf_originals() -> None:
    for copy in sorted((CORPUS / "maildir" / "dos").glob("*.eml")):
        original = CORPUS / "maildir" / "bsd" / copy.name
        if not original.is_file():
            continue
        lf, crlf = _detect(original), _detect(copy)
        assert lf.kind == crlf.kind, copy.name
        if lf.bounce is not None and crlf.bounce is not None:
            assert [r.address for r in lf.bounce.recipients] == [
                r.address for r in crlf.bounce.recipients
            ], copy.name
