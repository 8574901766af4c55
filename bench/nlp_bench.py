"""Replies classified per second on one core (language, intent, detail, field extraction) and the
p50/p99 latency of one reply, over the evaluation split in nlp_models/assets/eval.

Usage: .venv/bin/python bench/nlp_bench.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from hub.nlp.fields import Claim
from hub.nlp.model import Classifier

EVAL = Path(__file__).resolve().parents[1] / "nlp_models" / "assets" / "eval"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # really one core, whatever the libraries would use
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    t0 = time.perf_counter()
    classifier = Classifier.load()
    load_s = time.perf_counter() - t0
    records = []
    for lang in ("en", "de", "da"):
        for line in (EVAL / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                claim = Claim(Decimal(str(r["claim"]["amount"])), r["claim"]["currency"], None)
                records.append((r["text"], datetime.fromisoformat(r["received"]), claim))
    latencies = []
    start = time.perf_counter()
    for _ in range(args.repeat):
        for text, received, claim in records:
            t = time.perf_counter()
            classifier.classify(text, received, claim)
            latencies.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"model load {load_s:.2f} s; {len(latencies)} replies in {total:.2f} s: "
        f"{len(latencies) / total:.0f} replies/s on one core; "
        f"p50 {statistics.median(latencies) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
