"""A token bucket per recipient domain: how fast the relay may send to one domain.

Large mailbox providers throttle or block senders that deliver too fast; the bucket holds
``burst`` tokens and refills at ``rate_per_minute``. A message whose domain has no token is not
sent in this pass: the relay puts it back with the time at which a token will be there, and it
does not count as an attempt. The buckets live in one relay process: with N relays the
aggregate rate is at most N times the configured one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float
    #: tokens promised to messages already put back for later (spaces their retry times)
    deferred: int = 0


@dataclass
class DomainRateLimiter:
    rate_per_minute: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.rate_per_minute > 0

    def _bucket(self, domain: str) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(domain)
        if bucket is None:
            bucket = self._buckets[domain] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            refill = (now - bucket.updated) * self.rate_per_minute / 60.0
            bucket.tokens = min(float(self.burst), bucket.tokens + refill)
            bucket.updated = now
        return bucket

    def try_acquire(self, domain: str) -> float:
        """Take a token for ``domain``: 0.0 if one was taken, else seconds until one is there.

        Successive refusals in one pass return growing waits (one token interval apart), so the
        messages put back do not all come due at the same moment.
        """
        if not self.enabled:
            return 0.0
        bucket = self._bucket(domain)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        interval = 60.0 / self.rate_per_minute
        missing = 1.0 - bucket.tokens
        bucket.deferred += 1
        return missing * interval + (bucket.deferred - 1) * interval

    def end_pass(self) -> None:
        """Forget the refusals of the pass that ended (the put-back rows carry their times)."""
        for bucket in self._buckets.values():
            bucket.deferred = 0
