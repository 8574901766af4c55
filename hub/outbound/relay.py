"""The outbox relay: claim due messages, send them over SMTP, record each outcome.

One pass: release claims whose lease ran out (their relay died), claim a batch, put back what
the per-domain rate limit holds, then send the rest over one SMTP connection (reopened after
any failure) and record each message's outcome in its own short transaction right after its
SMTP transaction ends. The only window for a duplicate is between the server's "250" to our
DATA and that commit: at most one message per connection (at-least-once delivery, as with any
MTA). Nothing is lost: every claimed row ends ``sent``, ``failed`` (with the server's answer in
``last_error`` and a bounce entry on the case), or ``pending`` again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from hub.config import Settings
from hub.errors import TemporaryError
from hub.outbound import claims
from hub.outbound.backoff import RetryPolicy
from hub.outbound.bounce import record_bounce
from hub.outbound.outbox import recipients_of
from hub.outbound.rate_limit import DomainRateLimiter
from hub.outbound.smtp_client import DeliveryResult, Outcome, SmtpConnection, tls_context
from hub.storage.db import Database
from hub.storage.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

#: a relay stops sending from a batch once this share of its lease has passed
LEASE_SAFETY = 0.5


@dataclass
class RelayCounts:
    """What one pass did (claimed = sent + retried + failed + deferred + released)."""

    recovered: int = 0
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    released: int = 0

    def add(self, other: RelayCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class Relay:
    """One relay worker: its identity, its SMTP connection, its rate-limit buckets."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        worker_id: str,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        smtp = settings.smtp
        self.settings = settings
        self.database = database
        self.worker_id = worker_id
        self.policy = RetryPolicy(
            base_seconds=smtp.relay_backoff_base_seconds,
            cap_seconds=smtp.relay_backoff_cap_seconds,
            max_attempts=smtp.relay_max_attempts,
            max_age_seconds=smtp.relay_max_age_seconds,
        )
        self.limiter = DomainRateLimiter(smtp.relay_domain_rate_per_minute, smtp.relay_domain_burst)
        self.rng = rng or random.Random()
        self.clock = clock
        self.connection = SmtpConnection(smtp, tls_context(smtp))

    async def release_own_claims(self) -> int:
        """At start-up: claims held under this worker id belong to a previous life of it."""
        async with self.database.transaction() as session:
            count = await claims.release(
                session,
                worker_id=self.worker_id,
                now=self.clock(),
                count_attempt=True,
                reason="claim left by a relay that stopped (it may have been sent)",
            )
        if count:
            log.warning("relay %s: released %d claims of its previous run", self.worker_id, count)
        return count

    async def run_once(self, stop: asyncio.Event | None = None) -> RelayCounts:
        counts = RelayCounts()
        smtp = self.settings.smtp
        now = self.clock()
        async with self.database.transaction() as session:
            counts.recovered = await claims.recover_expired(
                session, now=now, lease_seconds=smtp.relay_lease_seconds
            )
        if counts.recovered:
            log.warning("relay: released %d expired claims of a stopped relay", counts.recovered)
        async with self.database.transaction() as session:
            ids = await claims.claim_batch(
                session, worker_id=self.worker_id, now=now, limit=smtp.relay_batch_size
            )
        counts.claimed = len(ids)
        if not ids:
            return counts
        claimed_at = now
        async with self.database.sessions() as session:
            rows = await claims.load(session, ids)
        try:
            rows = await self._defer_rate_limited(rows, counts)
            await self._send_batch(rows, claimed_at, counts, stop)
        finally:
            self.limiter.end_pass()
            await self.connection.close(polite=True)
        return counts

    async def _defer_rate_limited(
        self, rows: list[OutboxMessage], counts: RelayCounts
    ) -> list[OutboxMessage]:
        to_send: list[OutboxMessage] = []
        deferred: list[tuple[OutboxMessage, float]] = []
        for row in rows:
            wait = self.limiter.try_acquire(row.recipient_domain)
            if wait > 0:
                deferred.append((row, wait))
            else:
                to_send.append(row)
        if deferred:
            now = self.clock()
            async with self.database.transaction() as session:
                for row, wait in deferred:
                    await claims.mark_retry(
                        session,
                        row_id=row.id,
                        worker_id=self.worker_id,
                        attempts=row.attempts,  # a deferral is not an attempt
                        next_attempt_at=now + timedelta(seconds=wait),
                        error=None,
                    )
            counts.deferred += len(deferred)
            log.info("relay: rate limit put back %d messages", len(deferred))
        return to_send

    async def _send_batch(
        self,
        rows: list[OutboxMessage],
        claimed_at: datetime,
        counts: RelayCounts,
        stop: asyncio.Event | None,
    ) -> None:
        lease_budget = timedelta(seconds=self.settings.smtp.relay_lease_seconds * LEASE_SAFETY)
        connect_failure: DeliveryResult | None = None
        for index, row in enumerate(rows):
            stopping = stop is not None and stop.is_set()
            if stopping or self.clock() - claimed_at > lease_budget:
                rest = [r.id for r in rows[index:]]
                async with self.database.transaction() as session:
                    counts.released += await claims.release(
                        session,
                        worker_id=self.worker_id,
                        now=self.clock(),
                        ids=rest,
                        count_attempt=False,
                    )
                log.info(
                    "relay: %s, gave back %d claims",
                    "stopping" if stopping else "lease running out",
                    len(rest),
                )
                return
            if self.policy.gives_up(row.attempts, row.created_at, self.clock()):
                # e.g. a message whose relay died on it again and again
                result = DeliveryResult(Outcome.TEMPORARY, None, row.last_error or "gave up")
                await self._record(row, result, counts, attempts=row.attempts)
                continue
            if connect_failure is None:
                connect_failure = await self.connection.open()
            if connect_failure is not None:
                # the smart host is unreachable or refuses us: the rest of the batch shares that
                # answer (each still counts an attempt) instead of waiting for a timeout each
                result = connect_failure
            else:
                result = await self.connection.send(
                    row.envelope_from, recipients_of(row), row.message
                )
            await self._record(row, result, counts, attempts=row.attempts + 1)
            if result.outcome is not Outcome.SENT:
                await self.connection.close()  # start clean: reconnect for the next message

    async def _record(
        self, row: OutboxMessage, result: DeliveryResult, counts: RelayCounts, *, attempts: int
    ) -> None:
        now = self.clock()
        tag = f"outbox {row.id} case {row.case_id} message-id {row.message_id}"
        async with self.database.transaction() as session:
            if result.outcome is Outcome.SENT:
                ok = await claims.mark_sent(
                    session, row_id=row.id, worker_id=self.worker_id, now=now, attempts=attempts
                )
                counts.sent += 1
                log.info("relay: sent %s", tag)
            elif result.outcome is Outcome.TEMPORARY and not self.policy.gives_up(
                attempts, row.created_at, now
            ):
                delay = self.policy.delay(attempts, self.rng)
                ok = await claims.mark_retry(
                    session,
                    row_id=row.id,
                    worker_id=self.worker_id,
                    attempts=attempts,
                    next_attempt_at=now + timedelta(seconds=delay),
                    error=result.summary,
                )
                counts.retried += 1
                log.info(
                    "relay: temporary failure %s, retry in %.1fs: %s", tag, delay, result.summary
                )
            else:
                final = "permanent" if result.outcome is Outcome.PERMANENT else "gave_up"
                ok = await claims.mark_failed(
                    session,
                    row_id=row.id,
                    worker_id=self.worker_id,
                    attempts=attempts,
                    error=result.summary,
                )
                if ok:
                    await record_bounce(
                        session,
                        row=row,
                        code=result.code,
                        reply=result.reply,
                        summary=result.summary,
                        final=final,
                        attempts=attempts,
                        actor=f"worker:relay:{self.worker_id}"[:64],
                        now=now,
                    )
                counts.failed += 1
                log.warning("relay: failed (%s) %s: %s", final, tag, result.summary)
        if not ok:
            log.error("relay: %s: the claim was no longer ours; outcome not recorded", tag)

    async def seconds_until_due(self, ceiling: float) -> float:
        """How long to sleep: until the next pending row is due, at most ``ceiling``."""
        async with self.database.sessions() as session:
            due = await claims.next_due(session)
        if due is None:
            return ceiling
        return max(0.0, min(ceiling, (due - self.clock()).total_seconds()))


async def relay_once(
    settings: Settings,
    database: Database,
    worker_id: str,
    *,
    stop: asyncio.Event | None = None,
    rng: random.Random | None = None,
) -> RelayCounts:
    """One pass of a fresh relay (tests, ``hub worker --once``)."""
    return await Relay(settings, database, worker_id, rng=rng).run_once(stop)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_relay(
    settings: Settings, database: Database, stop: asyncio.Event, worker_id: str
) -> None:
    """Relay until ``stop`` is set; the message in flight is finished first."""
    relay = Relay(settings, database, worker_id)
    poll = settings.smtp.relay_poll_interval_seconds
    await relay.release_own_claims()
    log.info("relay %s: started", worker_id)
    while not stop.is_set():
        try:
            counts = await relay.run_once(stop)
            if counts.claimed >= settings.smtp.relay_batch_size:
                continue  # more is waiting: no pause
            wait = await relay.seconds_until_due(poll)
        except (SQLAlchemyError, OSError, TemporaryError) as exc:
            log.error(
                "relay %s: pass failed (%s), retrying in %.0fs", worker_id, type(exc).__name__, poll
            )
            wait = poll
            # give back what this pass still held (at most the one message whose outcome was
            # not recorded may go out twice); if the database is down, the lease does it later
            with contextlib.suppress(SQLAlchemyError, OSError, TemporaryError):
                await relay.release_own_claims()
        await _sleep(stop, max(wait, 0.05))
    log.info("relay %s: stopped", worker_id)
