"""Classification inside the async service: a process pool whose workers load the models once.

spaCy inference and the extraction rules are CPU-bound, so they never run on the event loop. Each
worker process builds one :class:`~hub.nlp.model.Classifier` in its initializer and keeps it for its
lifetime (the per-process slot below is the standard initializer pattern, not shared state).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.nlp.fields import Claim
from hub.nlp.model import Classification, Classifier

# One Classifier per worker process, set by _init_worker in that process only.
_worker_classifier: list[Classifier] = []


def _init_worker(models_dir: Path | None) -> None:
    _worker_classifier.append(Classifier.load(models_dir))


def _classify_batch(
    items: list[tuple[str, datetime | None, Claim | None]],
) -> list[Classification]:
    classifier = _worker_classifier[0]
    return [classifier.classify(text, received, claim) for text, received, claim in items]


class ClassifierPool:
    """``async with ClassifierPool(models_dir, workers=2) as pool: await pool.classify(...)``."""

    def __init__(self, models_dir: Path | None = None, workers: int = 1) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=workers, initializer=_init_worker, initargs=(models_dir,)
        )

    async def classify_many(
        self, items: list[tuple[str, datetime | None, Claim | None]], batch_size: int = 64
    ) -> list[Classification]:
        loop = asyncio.get_running_loop()
        batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
        results = await asyncio.gather(
            *(loop.run_in_executor(self._executor, _classify_batch, b) for b in batches)
        )
        return [c for batch in results for c in batch]

    async def classify(
        self, text: str, received: datetime | None = None, claim: Claim | None = None
    ) -> Classification:
        return (await self.classify_many([(text, received, claim)]))[0]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def __aenter__(self) -> ClassifierPool:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.close)


__all__ = ["ClassifierPool"]
