"""Step 6 of the story of one message: deliver the outbox, in order, with retries.

Rows are written by ``inbox.actions.message_send`` in the transaction that produced them; the
:class:`OutboxDispatcher` sends them through the channel's registered
:class:`~inbox.channels.Sender`:

* **Order.** Only the oldest pending row of a conversation is ever claimed; a later row waits
  while an earlier one is pending (in flight, waiting for ``retry_after``, or backing off).
* **Claims with a lease.** A row is claimed by setting ``claimed_until`` (PostgreSQL selects
  candidates ``FOR UPDATE SKIP LOCKED``; on both databases the claim is a conditional UPDATE,
  so two dispatchers never claim the same row). The send happens outside any transaction;
  the result is committed afterwards. The send is bounded by ``send_timeout`` < lease.
* **Crash window: at-least-once.** If the process dies after the platform accepted a
  message but before "sent" is committed, that one row is sent again after the lease
  expires (Telegram has no idempotency key, so the customer may see that message twice).
  Nothing is lost, and a row marked sent is never sent again.
* **Retries.** :class:`~inbox.channels.RetryLater` schedules the next attempt exactly
  ``seconds`` later (never earlier). Any other exception (and a send timeout) backs off
  exponentially with jitter. After ``max_attempts`` attempts the row is undeliverable.
* **Permanent failures.** :class:`~inbox.channels.PermanentFailure` makes the row
  undeliverable at once; ``blocked=True`` also sets ``Contact.undeliverable_at``. The
  message's ``delivery_status`` becomes "sent" or "undeliverable", an audit row is written
  and a ``message.delivery`` event tells the agents.
* **Channels without a sender** (e.g. Slack disabled) are not dispatched: their rows stay
  pending until a sender is registered and the dispatcher is woken or polls again.

Error texts stored in ``last_error`` and logged are the connector's own reasons or exception
class names only: exception messages of HTTP clients may contain URLs with bot tokens.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from inbox.actions.base import write_audit
from inbox.channels import PermanentFailure, RetryLater, SenderRegistry
from inbox.events import Event, EventBus, EventType, collect
from inbox.messages import OutboundPayload
from inbox.models import Channel, Contact, Message, OutboxMessage, OutboxStatus
from shopbase.clock import utcnow

__all__ = ["OutboxDispatcher", "backoff_seconds"]

log = logging.getLogger(__name__)


def backoff_seconds(attempt: int, *, base: float = 2.0, cap: float = 600.0) -> float:
    """Delay after the ``attempt``-th failure: exponential, capped, with "equal jitter"
    (between half and all of the exponential value)."""
    exp = min(cap, base * (2 ** max(0, attempt - 1)))
    return exp / 2 + random.uniform(0, exp / 2)


@dataclass(frozen=True)
class _Claimed:
    id: int
    message_id: int | None
    conversation_id: int
    contact_id: int
    channel: Channel
    payload: dict[str, Any]
    attempts: int


class OutboxDispatcher:
    """Delivers pending outbox rows; see the module docstring.

    ``start()`` runs the loop as a task; ``wake()`` makes it look now (it also wakes itself
    on every committed outbound ``message.created`` event of ``bus``); ``stop()`` lets
    in-flight sends finish (up to ``timeout``) and then cancels. ``run_once()`` delivers
    everything that is due right now and returns how many send attempts it made.

    Creating a dispatcher binds ``bus`` to ``sessions`` (``EventBus.bind``) so that every
    write made through that session factory publishes its events after commit.
    """

    def __init__(
        self,
        sessions: Any,
        senders: SenderRegistry,
        bus: EventBus,
        *,
        lease_seconds: float = 60.0,
        send_timeout: float = 30.0,
        max_attempts: int = 8,
        base_backoff: float = 2.0,
        max_backoff: float = 600.0,
        batch_size: int = 50,
        concurrency: int = 8,
        poll_interval: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if send_timeout >= lease_seconds:
            raise ValueError("send_timeout must be shorter than lease_seconds")
        self.sessions = sessions
        self.senders = senders
        self.bus = bus
        self.lease_seconds = lease_seconds
        self.send_timeout = send_timeout
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.clock = clock
        self._semaphore = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._unsubscribe: Callable[[], None] | None = None
        bus.bind(sessions)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox-dispatcher")

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            log.warning("outbox dispatcher did not stop within %.1fs; in-flight sends are abandoned "
                        "(their rows are retried when the lease expires)", timeout)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception:
            log.exception("outbox dispatcher ended with an error")

    def wake(self) -> None:
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        if event.type == EventType.message_created and event.data.get("direction") == "out" \
                and not event.data.get("is_internal"):
            self.wake()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_once()
                delay = await self._next_due_in()
                failures = 0
            except Exception:
                failures += 1
                delay = min(self.poll_interval, 0.5 * 2**failures)
                log.exception("outbox dispatcher round failed; retrying in %.1fs", delay)
            if self._stopping:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, delay))
            except TimeoutError:
                pass

    # -- one round --------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Send every row that is due now (conversation heads, round after round)."""
        attempts = 0
        for _round in range(100):
            if self._stopping:
                break
            claimed = await self._claim()
            if not claimed:
                break
            await asyncio.gather(*(self._deliver(row) for row in claimed))
            attempts += len(claimed)
        return attempts

    def _due_heads(self) -> list[Any]:
        earlier = aliased(OutboxMessage)
        blocked = (
            sa.select(earlier.id)
            .where(
                earlier.conversation_id == OutboxMessage.conversation_id,
                earlier.status == OutboxStatus.pending,
                earlier.id < OutboxMessage.id,
            )
            .exists()
        )
        return [
            OutboxMessage.status == OutboxStatus.pending,
            col(OutboxMessage.channel).in_(list(self.senders.keys())),
            ~blocked,
        ]

    async def _claim(self) -> list[_Claimed]:
        if not self.senders:
            return []
        now = self.clock()
        lease_end = now + timedelta(seconds=self.lease_seconds)
        claim_free = sa.or_(col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) < now)
        async with self.sessions() as session:
            candidates = (
                await session.exec(
                    select(OutboxMessage)
                    .where(*self._due_heads(), col(OutboxMessage.next_attempt_at) <= now, claim_free)
                    .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True, of=OutboxMessage)  # ignored by SQLite
                )
            ).all()
            claimed: list[_Claimed] = []
            for row in candidates:
                result = await session.exec(
                    sa.update(OutboxMessage)
                    .where(col(OutboxMessage.id) == row.id, OutboxMessage.status == OutboxStatus.pending, claim_free)
                    .values(claimed_until=lease_end)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:
                    claimed.append(
                        _Claimed(row.id, row.message_id, row.conversation_id, row.contact_id,  # type: ignore[arg-type]
                                 Channel(row.channel), dict(row.payload or {}), row.attempts)
                    )
            await session.commit()
        return claimed

    async def _next_due_in(self) -> float:
        """Seconds until the next head row becomes due (capped at ``poll_interval``)."""
        if not self.senders:
            return self.poll_interval
        now = self.clock()
        due_at = sa.case(
            (sa.and_(col(OutboxMessage.claimed_until).is_not(None),
                     col(OutboxMessage.claimed_until) > col(OutboxMessage.next_attempt_at)),
             col(OutboxMessage.claimed_until)),
            else_=col(OutboxMessage.next_attempt_at),
        )
        async with self.sessions() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage.next_attempt_at, OutboxMessage.claimed_until)
                    .where(*self._due_heads())
                    .order_by(due_at)
                    .limit(1)
                )
            ).all()
        if not rows:
            return self.poll_interval
        next_attempt_at, claimed_until = rows[0]
        due = max(next_attempt_at, claimed_until) if claimed_until is not None else next_attempt_at
        return max(0.0, min(self.poll_interval, (due - now).total_seconds()))

    # -- one row ----------------------------------------------------------------------------

    async def _deliver(self, row: _Claimed) -> None:
        async with self._semaphore:
            sender = self.senders.get(row.channel)
            async with self.sessions() as session:
                contact = await session.get(Contact, row.contact_id)
            if sender is None:  # unregistered since the claim: leave it pending
                await self._release(row)
                return
            if contact is None:
                await self._give_up(row, "contact is gone", blocked=False)
                return
            payload = OutboundPayload.from_json(row.payload)
            try:
                platform_id = await asyncio.wait_for(sender.send(contact, payload), timeout=self.send_timeout)
            except RetryLater as exc:
                await self._retry(row, exc.seconds, exc.reason or "retry later")
            except PermanentFailure as exc:
                await self._give_up(row, exc.reason or "permanent failure", blocked=exc.blocked)
            except TimeoutError:
                await self._retry(row, None, "send timed out")
            except Exception as exc:
                log.warning("send failed (%s) for outbox %s, message %s, conversation %s",
                            type(exc).__name__, row.id, row.message_id, row.conversation_id)
                await self._retry(row, None, type(exc).__name__)
            else:
                await self._mark_sent(row, platform_id)

    async def _release(self, row: _Claimed) -> None:
        async with self.sessions() as session:
            await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id, OutboxMessage.status == OutboxStatus.pending)
                .values(claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def _mark_sent(self, row: _Claimed, platform_id: Any) -> None:
        now = self.clock()
        platform_ref = str(platform_id)[:128] if platform_id is not None else None
        async with self.sessions() as session:
            result = await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id, OutboxMessage.status == OutboxStatus.pending)
                .values(status=OutboxStatus.sent, sent_at=now, channel_message_id=platform_ref,
                        claimed_until=None, attempts=row.attempts + 1, last_error=None)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                await session.rollback()
                return
            if row.message_id is not None:
                await session.exec(
                    sa.update(Message)
                    .where(col(Message.id) == row.message_id)
                    .values(delivery_status="sent", channel_message_id=platform_ref)
                    .execution_options(synchronize_session=False)
                )
            collect(session, Event(EventType.message_delivery.value, row.conversation_id,
                                   {"message_id": row.message_id, "outbox_id": row.id, "status": "sent"}))
            await session.commit()
        log.debug("sent outbox %s (message %s, conversation %s)", row.id, row.message_id, row.conversation_id)

    async def _retry(self, row: _Claimed, seconds: float | None, reason: str) -> None:
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            await self._give_up(row, f"gave up after {attempts} attempts: {reason}", blocked=False)
            return
        delay = seconds if seconds is not None else backoff_seconds(attempts, base=self.base_backoff,
                                                                   cap=self.max_backoff)
        now = self.clock()
        async with self.sessions() as session:
            await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id, OutboxMessage.status == OutboxStatus.pending)
                .values(attempts=attempts, next_attempt_at=now + timedelta(seconds=delay), claimed_until=None,
                        last_error=reason[:500])
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        log.info("outbox %s (message %s, conversation %s) retries in %.2fs after attempt %d",
                 row.id, row.message_id, row.conversation_id, delay, attempts)

    async def _give_up(self, row: _Claimed, reason: str, *, blocked: bool) -> None:
        now = self.clock()
        reason = reason[:500]
        async with self.sessions() as session:
            result = await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id, OutboxMessage.status == OutboxStatus.pending)
                .values(status=OutboxStatus.undeliverable, attempts=row.attempts + 1, claimed_until=None,
                        last_error=reason)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                await session.rollback()
                return
            if row.message_id is not None:
                await session.exec(
                    sa.update(Message)
                    .where(col(Message.id) == row.message_id)
                    .values(delivery_status="undeliverable")
                    .execution_options(synchronize_session=False)
                )
            if blocked:
                await session.exec(
                    sa.update(Contact)
                    .where(col(Contact.id) == row.contact_id)
                    .values(undeliverable_at=now)
                    .execution_options(synchronize_session=False)
                )
            write_audit(session, row.conversation_id, "message.undeliverable", actor="system",
                        detail={"message_id": row.message_id, "outbox_id": row.id, "reason": reason,
                                "blocked": blocked}, now=now)
            collect(session, Event(EventType.message_delivery.value, row.conversation_id,
                                   {"message_id": row.message_id, "outbox_id": row.id, "status": "undeliverable",
                                    "reason": reason, "blocked": blocked}))
            await session.commit()
        log.warning("outbox %s (message %s, conversation %s) is undeliverable%s",
                    row.id, row.message_id, row.conversation_id, " (recipient blocked us)" if blocked else "")
