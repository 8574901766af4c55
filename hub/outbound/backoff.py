"""When to try a temporarily failed message again: exponential backoff with full jitter.

The n-th retry waits ``uniform(0, min(cap, base * 2**(n-1)))`` seconds ("full jitter", as in
the AWS architecture blog's comparison of backoff strategies): the ceiling doubles with every
attempt, and the randomness spreads out relays that failed together so that they do not hammer a
recovering server in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float
    max_attempts: int
    max_age_seconds: float

    def ceiling(self, attempts: int) -> float:
        """The longest wait after the ``attempts``-th failed attempt (1, 2, 3, ...)."""
        exponent = max(attempts - 1, 0)
        if exponent > 60:  # 2**60 * base is past any cap; avoid float overflow
            return self.cap_seconds
        return float(min(self.cap_seconds, self.base_seconds * 2.0**exponent))

    def delay(self, attempts: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempts))

    def gives_up(self, attempts: int, created_at: datetime, now: datetime) -> bool:
        """True when a message that failed ``attempts`` times is not to be tried again."""
        too_old = now - created_at >= timedelta(seconds=self.max_age_seconds)
        return attempts >= self.max_attempts or too_old
