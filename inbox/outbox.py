"""Step 6 of the story of one message: deliver the outbox, in order, with retries.

Rows are written by ``inbox.actions.message_send`` in the transaction that produced them; the
:class:`OutboxDispatcher` sends them through the channel's registered
:class:`~inbox.channels.Sender`:

* **Order.** Only the oldest pending row of a conversation is ever claimed; a later row waits
  while an earlier one is pending (in flight, waiting for ``retry_after``, or backing off).
* **Claims with a short lease, renewed while sending.** A row is claimed by setting
  ``claimed_until`` (PostgreSQL selects candidates ``FOR UPDATE SKIP LOCKED``; on both
  databases the claim is a conditional UPDATE, so two dispatchers never claim the same row).
  The lease is short (``lease_seconds``, 15 s) and a heartbeat renews it for every row whose
  send is still in flight (every ``lease_seconds / 3``), so a slow platform never lets another
  dispatcher take a row that is being sent, and after a crash the rows that were in flight
  are free again within one lease. With several processes a row may name the one that
  wrote it (``node``): only that one claims it while it lives (:class:`ClaimAffinity`,
  ``shopdesk.cluster.NodeAffinity``). A bot's reply that is the head of its stream may be
  inserted already claimed and handed over after its commit (``inbox.outbox_handoff``,
  :meth:`OutboxDispatcher.hand_off`): the same lease, without a claim. The send happens outside
  any transaction; the result is committed afterwards. ``send_timeout`` is only a backstop: the sender's own HTTP timeouts
  are shorter.
* **Crash window: at-least-once.** If the process dies after the platform accepted a
  message but before "sent" is committed, that one row is sent again after the lease
  expires (Telegram has no idempotency key, so the customer may see that message twice).
  Nothing is lost, and a row marked sent is never sent again.
* **Unknown outcomes: at-most-once.** A send that went out but got no answer in time
  (:class:`~inbox.channels.OutcomeUnknown`, e.g. a read timeout, or the ``send_timeout``
  backstop) is NOT sent again: Telegram offers no duplicate check, so a missed message is
  preferred to a double one. The row becomes ``unknown`` (attempt counted, reason in
  ``last_error``), the message's ``delivery_status`` "unknown", an audit row
  ``message.delivery_unknown`` is written and agents see "Not confirmed" on the message.
* **Rate limits delay, they never consume an attempt.** ``RetryLater(seconds,
  rate_limited=True)`` (a 429 and its ``retry_after``) moves the row to exactly ``seconds``
  later without counting an attempt; with ``hold`` the recipient's other pending rows
  (``"recipient"``) or all the channel's pending rows (``"channel"``, a bulk flood wait) are
  moved as well, in the database, so the wait survives a restart. The wait itself is kept too
  (:class:`~inbox.models.DeliveryHold`, ``not_before`` per recipient and per channel): a row
  written later (a reply created after a restart, or by another process) that falls under a
  hold still in force is moved to its end when it is claimed, instead of being sent early.
* **Outcomes are written a few at a time.** A result other than "sent" (a retry, "unknown", an
  undeliverable row) is a transaction of its own, and at most ``result_writers`` (2) of them run
  at once: sends that end together (a hanging Bot API times them all out at one moment) never
  take the connection pool from the webhooks recording customers' messages. "sent" is
  group-committed by one flusher.
* **Retries.** :class:`~inbox.channels.RetryLater` schedules the next attempt exactly
  ``seconds`` later (never earlier; ``None``: backoff). Any other exception backs off
  exponentially with jitter. After ``max_attempts`` attempts the row is undeliverable.
* **Permanent failures.** :class:`~inbox.channels.PermanentFailure` makes the row
  undeliverable at once; ``blocked=True`` also sets ``Contact.undeliverable_at``. The
  message's ``delivery_status`` becomes "sent" or "undeliverable", an audit row is written
  and a ``message.delivery`` event tells the agents.
* **Channels without a sender** (e.g. Slack disabled) are not dispatched: their rows stay
  pending until a sender is registered and the dispatcher is woken or polls again.
* **Notices** (Slack alerts) are rows with no contact, written by :func:`feed_notices` in the
  very transaction whose events they announce (``before_commit``), so a notice survives a
  restart and exists only if that transaction committed. Order is kept per conversation and
  channel (notices about no conversation form one stream per channel), so a Slack outage never
  holds up a customer's replies. A :class:`~inbox.channels.NoticeSender` records finished
  steps in ``notice.progress``, which is stored with the row on every retry: a step that
  reached the platform is not repeated. Notices give up when their sender says so.

Error texts stored in ``last_error`` and logged are the connector's own reasons or exception
class names only: exception messages of HTTP clients may contain URLs with bot tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session, aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox import outbox_pg
from inbox.actions.base import write_audit
from inbox.channels import (
    HOLD_CHANNEL,
    HOLD_RECIPIENT,
    Notice,
    OutcomeUnknown,
    PermanentFailure,
    Recipient,
    RetryLater,
    SenderRegistry,
    is_notice_sender,
    is_sender,
)
from inbox.events import Event, EventBus, EventType, collect, pending_events
from inbox.messages import OutboundPayload
from inbox.models import (
    HOLD_ALL_CONTACTS,
    HOLD_ALL_NOTICES,
    Channel,
    Contact,
    DeliveryHold,
    ExternalThread,
    Message,
    OutboxMessage,
    OutboxStatus,
)
from inbox.outbox_handoff import BornRow, RecipientRow
from shopbase import stagetrace
from shopbase.clock import utcnow

__all__ = ["ClaimAffinity", "NoticeRequest", "NoticeSelector", "OutboxDispatcher", "backoff_seconds", "feed_notices", "pending_count",
           "sent_payload", "take_pending"]

log = logging.getLogger(__name__)


def backoff_seconds(attempt: int, *, base: float = 2.0, cap: float = 600.0) -> float:
    """Delay after the ``attempt``-th failure: exponential, capped, with "equal jitter"
    (between half and all of the exponential value)."""
    exp = min(cap, base * (2 ** max(0, attempt - 1)))
    return exp / 2 + random.uniform(0, exp / 2)


# --------------------------------------------------------------------------- notices


@dataclass(frozen=True)
class NoticeRequest:
    """What a feed wants written for one event: the notice's payload.

    ``follow_up``: only when the conversation is already mirrored on that channel (an
    ``ExternalThread`` of that kind exists, or a notice about it is still pending), e.g. a
    customer's later message copied into an escalation thread.
    """

    payload: dict[str, Any] = field(default_factory=dict)
    follow_up: bool = False


#: maps a collected event to the notice its channel wants, or None (a pure function)
NoticeSelector = Callable[[Event], NoticeRequest | None]

_FEEDS_KEY = "shopdesk.notice_feeds"
_hooked = False


def feed_notices(sessions: async_sessionmaker[AsyncSession], channel: Channel, select_notice: NoticeSelector) -> None:
    """Make every session of the factory ``sessions`` write a notice row on ``channel`` for each
    event it commits that ``select_notice`` maps to a :class:`NoticeRequest` (in the same
    transaction: no commit, no notice)."""
    global _hooked
    info = dict(sessions.kw.get("info") or {})
    feeds = dict(info.get(_FEEDS_KEY) or {})
    feeds[Channel(channel)] = select_notice
    info[_FEEDS_KEY] = feeds
    sessions.configure(info=info)
    if not _hooked:
        sa_event.listen(Session, "before_commit", _write_notices)
        _hooked = True


def notice_feeds(sessions: async_sessionmaker[AsyncSession]) -> dict[Channel, NoticeSelector]:
    return dict((sessions.kw.get("info") or {}).get(_FEEDS_KEY) or {})


def _mirrored(session: Session, channel: Channel, conversation_id: int) -> bool:
    thread = sa.select(col(ExternalThread.id)).where(col(ExternalThread.kind) == channel.value,
                                                col(ExternalThread.conversation_id) == conversation_id)
    waiting = sa.select(col(OutboxMessage.id)).where(col(OutboxMessage.channel) == channel,
                                                col(OutboxMessage.conversation_id) == conversation_id,
                                                col(OutboxMessage.contact_id).is_(None),
                                                col(OutboxMessage.status) == OutboxStatus.pending)
    return session.execute(sa.select(sa.or_(thread.exists(), waiting.exists()))).scalar() is True


def _write_notices(session: Session) -> None:
    """``before_commit``: the notices the feeds want for the events collected on ``session``."""
    feeds: dict[Channel, NoticeSelector] | None = session.info.get(_FEEDS_KEY)
    if not feeds or session.in_nested_transaction():
        return
    sources = pending_events(session)
    if not sources:
        return
    if any(callable(source) for source in sources):
        session.flush()  # event builders read ids of rows this transaction added
    for source in sources:
        try:
            event = source() if callable(source) else source
        except Exception:
            log.exception("building an event for the notice feeds failed")
            continue
        for channel, select_notice in feeds.items():
            try:
                request = select_notice(event)
            except Exception:  # a feed's bug must not fail the transaction that raised the event
                log.exception("the %s notice feed failed on %s", channel.value, event.type)
                continue
            if request is None:
                continue
            conversation_id = event.conversation_id if isinstance(event.conversation_id, int) else None
            if request.follow_up and (conversation_id is None or not _mirrored(session, channel, conversation_id)):
                continue
            session.add(OutboxMessage(conversation_id=conversation_id, contact_id=None, channel=channel,
                                      payload=dict(request.payload)))


async def pending_count(session: AsyncSession, channel: Channel | None = None) -> int:
    """How many rows (of ``channel``) wait to be delivered."""
    query = select(sa.func.count()).select_from(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.pending)
    if channel is not None:
        query = query.where(col(OutboxMessage.channel) == Channel(channel))
    return int((await session.exec(query)).one())


async def take_pending(session: AsyncSession, conversation_id: int) -> list[OutboundPayload]:
    """Deliver in-process: the conversation's pending rows, oldest first, marked sent in the
    caller's transaction (the terminal chat shows them itself; nothing is dispatched)."""
    rows = (
        await session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.conversation_id) == conversation_id, col(OutboxMessage.status) == OutboxStatus.pending)
            .order_by(col(OutboxMessage.id))
        )
    ).all()
    now = utcnow()
    for row in rows:
        row.status = OutboxStatus.sent
        row.sent_at = now
        session.add(row)
    return [OutboundPayload.from_json(row.payload) for row in rows]


async def sent_payload(session: AsyncSession, channel: Channel, contact_external_id: str,
                       channel_message_id: str) -> dict[str, Any] | None:
    """The payload we sent to that contact under the platform's message id (a button's message), or None."""
    payload = (
        await session.exec(
            select(OutboxMessage.payload)
            .join(Contact, col(Contact.id) == col(OutboxMessage.contact_id))
            .where(
                col(Contact.channel) == Channel(channel),
                col(Contact.external_id) == contact_external_id,
                col(OutboxMessage.channel) == Channel(channel),
                col(OutboxMessage.channel_message_id) == channel_message_id,
            )
            .order_by(col(OutboxMessage.id).desc())
            .limit(1)
        )
    ).first()
    return dict(payload) if payload is not None else None


# --------------------------------------------------------------------------- dispatching


class ClaimAffinity(Protocol):
    """Which pending rows this dispatcher may claim now, when several processes share the
    database (``shopdesk.cluster.NodeAffinity``: a row's own process claims it; the others only
    when that process is gone or the row is overdue). With an affinity the dispatcher is woken
    by this process's events only; the affinity wakes it for the others' that concern it."""

    def condition(self) -> Any:
        """A SQL condition on ``OutboxMessage`` (its bind parameters come from ``params``)."""
        ...

    def params(self, now: datetime) -> dict[str, Any]: ...


#: the contact a claimed row goes to, as its :class:`~inbox.channels.Sender` sees it
#: (:class:`~inbox.channels.Recipient`): read with Core, no ORM object per send
_Recipient = RecipientRow


_OUTBOX: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
_CONTACT: sa.Table = Contact.__table__  # type: ignore[attr-defined]
#: what a claim reads of a candidate row (Core rows; ``_apply_holds`` and ``_Claimed`` use these)
_CANDIDATE_COLUMNS = (_OUTBOX.c.id, _OUTBOX.c.message_id, _OUTBOX.c.conversation_id, _OUTBOX.c.contact_id,
                      _OUTBOX.c.channel, _OUTBOX.c.payload, _OUTBOX.c.attempts, _OUTBOX.c.next_attempt_at,
                      _OUTBOX.c.created_at)
#: the columns of ``_Recipient``, in its order
_RECIPIENT_COLUMNS = (_CONTACT.c.id, _CONTACT.c.channel, _CONTACT.c.external_id, _CONTACT.c.display_name,
                      _CONTACT.c.username, _CONTACT.c.language)


@dataclass(frozen=True)
class _Claimed:
    id: int
    message_id: int | None
    conversation_id: int | None
    contact_id: int | None
    channel: Channel
    payload: dict[str, Any]
    attempts: int
    created_at: datetime | None = None
    contact: Recipient | None = None

    @property
    def is_notice(self) -> bool:
        return self.contact_id is None


@functools.cache
def _blocked_by_earlier() -> Any:
    """EXISTS an earlier pending row of the same stream. Built once: an ``aliased()`` entity is
    costly to build and to compile again on every round (it was most of an idle claim)."""
    earlier = aliased(OutboxMessage, name="earlier")
    return (
        sa.select(col(earlier.id))
        .where(
            # one stream per conversation and channel: a Slack outage never holds up a customer's
            # replies; notices about no conversation form one stream of their own
            col(earlier.conversation_id).is_not_distinct_from(col(OutboxMessage.conversation_id)),
            col(earlier.channel) == OutboxMessage.channel,
            # a literal, not a parameter: PostgreSQL's generic plans can then use ix_outbox_pending_stream
            col(earlier.status) == sa.literal_column("'pending'"),
            col(earlier.id) < OutboxMessage.id,
        )
        .exists()
    )


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
        sessions: async_sessionmaker[AsyncSession],
        senders: SenderRegistry,
        bus: EventBus,
        *,
        lease_seconds: float = 15.0,
        send_timeout: float = 120.0,
        heartbeat_seconds: float | None = None,
        max_attempts: int = 8,
        base_backoff: float = 2.0,
        max_backoff: float = 600.0,
        batch_size: int = 50,
        concurrency: int = 8,
        poll_interval: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
        affinity: ClaimAffinity | None = None,
        result_writers: int = 2,
    ) -> None:
        heartbeat = heartbeat_seconds if heartbeat_seconds is not None else lease_seconds / 3
        if not 0 < heartbeat < lease_seconds:
            raise ValueError("heartbeat_seconds must be shorter than lease_seconds")
        self.sessions = sessions
        self.senders = senders
        self.bus = bus
        self.lease_seconds = lease_seconds
        self.send_timeout = send_timeout
        self.heartbeat_seconds = heartbeat
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        if concurrency < 1 or batch_size < 1 or result_writers < 1:
            raise ValueError("concurrency, batch_size and result_writers must be at least 1")
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.clock = clock
        self.affinity = affinity
        self._semaphore = asyncio.Semaphore(concurrency)
        # a send's outcome other than "sent" (retry, unknown, undeliverable, released) is written
        # by at most ``result_writers`` transactions at once: sends that end together (a hanging
        # Bot API times every one of them out at the same moment, a flood wait refuses them all)
        # must not take the whole connection pool from the webhooks that record customers'
        # messages. ("sent" is group-committed by one flusher already.)
        self._result_writes = asyncio.Semaphore(result_writers)
        self._wake = asyncio.Event()
        #: a round waiting for its sends also waits for this: rows committed meanwhile are
        #: claimed at once, not when a send finishes (``wake`` resolves it)
        self._woken: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._unsubscribe: Callable[[], None] | None = None
        self._sent_pending: list[tuple[_Claimed, Any, asyncio.Future[None]]] = []
        self._sent_flusher: asyncio.Future[None] | None = None  # a batch of sent rows is being written
        self._built: dict[str, Any] | None = None
        self._in_flight: dict[int, int] = {}  # outbox id -> sends in flight (the heartbeat renews their lease)
        self._heartbeat: asyncio.Task[None] | None = None
        #: set when a round fails (typically: a send's result could not be written, the database is
        #: away): the claimed rows not sent yet are not sent in that round (see run_once)
        self._halted = False
        #: replies born claimed (``inbox.outbox_handoff``), one chain per conversation in id order,
        #: each with the wake count at the hand-off (see ``_deliver_chain``), waiting for the round
        self._handed: list[tuple[list[_Claimed], int]] = []
        self._handed_rows = 0
        self._wakes = 0  # how many times wake() was called
        #: wakes the loop for a wake() or a hand-off (a hand-off alone needs no claim)
        self._kick = asyncio.Event()
        #: loop time at which a claim is due whatever happens (the next due row, or a poll)
        self._claim_at = 0.0
        #: loop time at which a row this dispatcher rescheduled (a retry) is due at the earliest
        self._retry_at = float("inf")
        self._claims = 0  # claim transactions run (for the loop, and for tests)
        self._backlog = False  # the last claim found as many rows as it asked for
        bus.bind(sessions)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._unsubscribe = self.bus.subscribe(self._on_event, remote=self.affinity is None)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox-dispatcher")

    async def release_claims(self) -> int:
        """Forget the claims on pending rows, so that they are sent now rather than when their
        lease runs out. Only for a process that knows no other dispatcher can run on this
        database (``shopdesk serve`` holding a SQLite file's server lock): the claims are then a
        dead process's, and the one row it had in flight is sent again at once (the at-least-once
        of a crash, see the module notes). ``next_attempt_at`` (a ``retry_after``) is kept."""
        async with self.sessions() as db:
            result = await db.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.status) == OutboxStatus.pending, col(OutboxMessage.claimed_until).is_not(None))
                .values(claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            await db.commit()
        released = int(result.rowcount or 0)
        if released:
            log.info("outbox: released %d claims of a server that stopped without finishing them", released)
        return released

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        self._kick.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        if task is None:
            await self._stop_heartbeat()
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
        finally:
            await self._stop_heartbeat()
            await self._release_handed()

    async def _release_handed(self) -> None:
        """Stopping with replies handed over but not started: their claims go (they are sent by
        whoever runs next, at once rather than after the lease)."""
        handed, self._handed, self._handed_rows = self._handed, [], 0
        ids = [row.id for chain, _ in handed for row in chain]
        if ids:
            try:
                await self._release_ids(ids)
            except Exception as exc:  # their leases run out
                log.warning("releasing %d handed outbox row(s) failed (%s)", len(ids), type(exc).__name__)

    async def _stop_heartbeat(self) -> None:
        beat, self._heartbeat = self._heartbeat, None
        if beat is not None and not beat.done():
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    def wake(self) -> None:
        self._wakes += 1
        self._wake.set()
        self._kick.set()
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    # -- replies born claimed (``inbox.outbox_handoff``) --------------------------------------

    def accepting(self, channel: Channel) -> bool:
        """Whether a reply on ``channel`` may be born claimed by this dispatcher now: it runs,
        sends that channel, has room among the rows it keeps on hand (they wait for a send slot
        in order), and is not behind (its last claim found as many due rows as it asked for:
        then replies queue in the database and are claimed in due order, so a new one never
        overtakes older ones of other conversations by a hand-off), and no wake is waiting for its
        claim (rows committed unclaimed wait in the database: new replies handed over would take
        every send slot they free, and the claim that finds them would never get room)."""
        task = self._task
        return (task is not None and not task.done() and not self._stopping and not self._halted
                and not self._backlog and not self._wake.is_set()
                and len(self._in_flight) + self._handed_rows < max(self.batch_size, 2 * self.concurrency)
                and is_sender(self.senders.get(channel)))

    @property
    def wake_count(self) -> int:
        """How many times :meth:`wake` was called (``BornClaimed`` notes it before its first row)."""
        return self._wakes

    def hand_off(self, rows: list[tuple[BornRow, Recipient | None]], followers: set[int],
                 since: int | None = None) -> None:
        """Rows a committed transaction inserted already claimed by us: send them without a claim
        (in id order per conversation, one after the other). ``followers``: conversations with a
        later row of that transaction that was not born claimed (claimed once these are sent).
        ``since``: the wake count before the transaction wrote them (None: now); a wake after it
        may be a later row of one of their conversations, so a claim follows their sends."""
        wakes = self._wakes if since is None else since
        chains: dict[int, list[_Claimed]] = {}
        for row, recipient in rows:
            chains.setdefault(row.conversation_id, []).append(
                _Claimed(row.id, row.message_id, row.conversation_id, row.contact_id, Channel(row.channel),
                         row.payload, 0, row.created_at, recipient))
        for conversation_id, chain in chains.items():
            # -1: the transaction has a follower of this chain, so claim once it is sent
            self._handed.append((chain, -1 if conversation_id in followers else wakes))
            self._handed_rows += len(chain)
        if stagetrace.ENABLED:
            stagetrace.mark_many("claimed", chains)
        self._kick.set()
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    def _start_handed(self, running: set[asyncio.Future[Any]], chains: set[asyncio.Future[Any]]) -> int:
        if not self._handed:
            return 0
        handed, self._handed, self._handed_rows = self._handed, [], 0
        loop = asyncio.get_running_loop()
        for chain, wakes in handed:
            task = loop.create_task(self._deliver_chain(chain, wakes))
            running.add(task)
            chains.add(task)
        return sum(len(chain) for chain, _ in handed)

    async def _deliver_chain(self, chain: list[_Claimed], wakes: int) -> bool:
        """Send one conversation's rows born claimed, in order, each once the one before is sent;
        True when a claim may find due rows afterwards (a row committed while these were being sent
        may be their follower, or one of them was not sent: the rest is released to the claim)."""
        if any(row.contact is None for row in chain):  # no recipient handed over: the claim reads it
            await self._release_ids([row.id for row in chain])
            return True
        with contextlib.ExitStack() as stack:
            for row in chain:  # every row's lease is renewed until its turn comes
                stack.enter_context(self._sending(row.id))
            for index, row in enumerate(chain):
                if not await self._deliver(row):
                    rest = [later.id for later in chain[index + 1:]]
                    if rest and not self._halted:
                        await self._release_ids(rest)
                    return True
        return self._wakes != wakes

    def _on_event(self, event: Event) -> None:
        if event.type == EventType.message_created and event.data.get("direction") == "out" \
                and not event.data.get("is_internal"):
            if event.data.get("born_claimed"):
                return  # leased by its writer and handed to its dispatcher: nothing to claim
            self.wake()
            return
        for select_notice in notice_feeds(self.sessions).values():
            try:
                if select_notice(event) is not None:
                    self.wake()
                    return
            except Exception:
                log.exception("a notice feed failed on %s", event.type)

    async def wait_idle(self, channel: Channel | None = None, *, timeout: float = 30.0) -> None:
        """Wait until no row (of ``channel``) is pending any more (for tests and shutdown checks)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with self.sessions() as session:
                left = await pending_count(session, channel)
            if not left:
                return
            if loop.time() > deadline:
                raise TimeoutError(f"{left} outbox row(s) still pending")
            self.wake()
            await asyncio.sleep(0.02)

    async def _run(self) -> None:
        failures = 0
        claim = True
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._kick.clear()
            try:
                claims = self._claims
                await self.run_once(claim=claim)
                if claim or self._claims != claims:  # else only rows born claimed went: due times as before
                    self._claim_at = loop.time() + await self._next_due_in()
                    self._retry_at = float("inf")  # the next due row's time includes the retries
                failures = 0
            except Exception:
                failures += 1
                delay = min(self.poll_interval, 0.5 * 2**failures)
                self._claim_at = loop.time() + delay
                log.exception("outbox dispatcher round failed; retrying in %.1fs", delay)
            if self._stopping:
                break
            try:
                async with asyncio.timeout(max(0.01, min(self._claim_at, self._retry_at) - loop.time())):  # no task
                    await self._kick.wait()
            except TimeoutError:
                pass
            claim = self._wake.is_set() or loop.time() >= min(self._claim_at, self._retry_at) or failures > 0

    # -- one round --------------------------------------------------------------------------

    async def run_once(self, *, claim: bool = True) -> int:
        """Send every row that is due now (conversation heads, round after round).

        A pipeline rather than rounds: up to ``max(batch_size, 2 × concurrency)`` claimed rows
        are kept on hand (``concurrency`` of them sending, the rest waiting for a slot), and
        when a quarter of them is done the next batch is claimed in one statement, so one slow
        send never holds up the others and the sends never wait for a claim. A row whose
        conversation has an earlier row still pending is not a head and is not claimed, so
        order per conversation is kept while the earlier one is in flight. Rows committed while
        the round waits for its sends (``wake``) are claimed at once when there is room.

        Replies born claimed (``hand_off``) are sent as they come, without a claim. A claim runs
        only when it may find something (``claim``: at the start; a wake; a claimed row's send
        done, which may free its conversation's next row; a full claim; a row handed over done
        after a wake; the next due time): with only rows born claimed coming, none."""
        attempts = 0
        self._halted = False
        target = max(self.batch_size, 2 * self.concurrency)
        refill = max(1, target // 4)
        running: set[asyncio.Future[Any]] = set()
        chains: set[asyncio.Future[Any]] = set()  # the tasks of rows born claimed
        dirty = claim  # a claim may find due rows
        try:
            loop = asyncio.get_running_loop()
            while not self._stopping:
                attempts += self._start_handed(running, chains)
                if self._wake.is_set() or loop.time() >= min(self._claim_at, self._retry_at):
                    dirty = True
                room = target - len(running)
                if dirty and room < refill:
                    # a claim is due and waits for room: until it has run no reply is born claimed
                    # (accepting), else replies handed over would take every slot a send frees and
                    # the rows waiting in the database would wait as long as the flow lasts
                    self._wake.set()
                # woken (new rows committed) with room: claim now, they can go out at once; with
                # most of the rows on hand still to send they would only wait, so claims stay batched
                if dirty and room >= refill:
                    self._wake.clear()  # what is committed by now, this claim finds
                    dirty = False
                    self._claim_at = loop.time() + self.poll_interval
                    if self._retry_at <= loop.time():
                        self._retry_at = float("inf")  # this claim finds it
                    claimed = await self._claim(room)
                    running.update(loop.create_task(self._deliver(row)) for row in claimed)
                    attempts += len(claimed) + self._start_handed(running, chains)
                    dirty = self._backlog = len(claimed) >= room  # as many as asked: more may be due
                    if not running:
                        break
                    # fewer than asked: nothing more is due until a send finishes (and frees its
                    # conversation's next row)
                    if len(claimed) < room and attempts >= 100 * target:
                        break  # a long run: the loop around looks again at once
                elif not running:
                    break
                waiting: set[asyncio.Future[Any]] = set(running)
                waiter: asyncio.Future[None] | None = None
                if len(running) < self.concurrency:  # a wake can start a claim: wait for it too
                    waiter = self._woken = loop.create_future()
                    if self._wake.is_set() or self._handed:
                        waiter.set_result(None)  # woken during the claim (PostgreSQL: it awaits)
                    waiting.add(waiter)
                try:
                    # not dirty: a claim is due at ``_claim_at`` at the latest (a retry due, a poll)
                    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED,
                                                 timeout=None if dirty else
                                                 max(0.0, min(self._claim_at, self._retry_at) - loop.time()))
                finally:
                    if self._woken is not None:
                        self._woken.cancel()
                    self._woken = None
                running -= done
                failed = [e for t in done if not t.cancelled() and (e := t.exception()) is not None]
                if failed:
                    raise failed[0]
                for task in done:
                    if task is waiter:
                        continue
                    if task in chains:  # rows born claimed: see _deliver_chain
                        chains.discard(task)
                        if task.cancelled() or not task.result():
                            continue
                    # a claimed row's send done (or a chain's after a wake): its conversation's next
                    # row may be due
                    dirty = True
        except asyncio.CancelledError:
            for task in running:  # killed mid-send: the sends die with the round (their leases run out)
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        finally:
            if running:  # an error or a stop: the other sends finish and record their results
                await asyncio.gather(*running, return_exceptions=True)
        return attempts

    def _due_heads(self) -> list[Any]:
        """Pending heads of their streams on a channel we can send (``b_channels``, expanding)."""
        return [
            col(OutboxMessage.status) == OutboxStatus.pending,
            col(OutboxMessage.channel).in_(sa.bindparam("b_channels", expanding=True)),
            ~_blocked_by_earlier(),
        ]

    def _channels(self) -> list[Channel]:
        return [Channel(c) for c in self.senders.keys()]

    def _statements(self) -> dict[str, Any]:
        """The dispatcher's statements, built once (building one costs more than running it)."""
        if self._built is None:
            claim_free = sa.or_(col(OutboxMessage.claimed_until).is_(None),
                                col(OutboxMessage.claimed_until) < sa.bindparam("b_now"))
            mine = [self.affinity.condition()] if self.affinity is not None else []
            due_at = sa.case(
                (sa.and_(col(OutboxMessage.claimed_until).is_not(None),
                         col(OutboxMessage.claimed_until) > col(OutboxMessage.next_attempt_at)),
                 col(OutboxMessage.claimed_until)),
                else_=col(OutboxMessage.next_attempt_at),
            )
            self._built = {
                "candidates": sa.select(*_CANDIDATE_COLUMNS)
                .where(*self._due_heads(), col(OutboxMessage.next_attempt_at) <= sa.bindparam("b_now"), claim_free,
                       *mine)
                .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
                .limit(sa.bindparam("b_limit", type_=sa.Integer))
                .with_for_update(skip_locked=True, of=_OUTBOX),  # ignored by SQLite
                "claim": sa.update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(sa.bindparam("b_ids", expanding=True)),
                       col(OutboxMessage.status) == OutboxStatus.pending, claim_free)
                .values(claimed_until=sa.bindparam("b_lease"))
                .returning(col(OutboxMessage.id))
                .execution_options(synchronize_session=False),
                "contacts": sa.select(*_RECIPIENT_COLUMNS)
                .where(_CONTACT.c.id.in_(sa.bindparam("b_ids", expanding=True))),
                "next_due": select(OutboxMessage.next_attempt_at, OutboxMessage.claimed_until)
                .where(*self._due_heads(), *mine)
                .order_by(due_at)
                .limit(1),
                "still_pending": select(col(OutboxMessage.id))
                .where(col(OutboxMessage.id).in_(sa.bindparam("b_ids", expanding=True)),
                       col(OutboxMessage.status) == OutboxStatus.pending)
                .order_by(col(OutboxMessage.id))  # locks taken in one order (PostgreSQL)
                .with_for_update(),  # ignored by SQLite
                "sent": sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == sa.bindparam("b_id"), col(OutboxMessage.status) == OutboxStatus.pending)
                .values(status=OutboxStatus.sent, sent_at=sa.bindparam("b_now"),
                        channel_message_id=sa.bindparam("b_ref"), claimed_until=None,
                        attempts=sa.bindparam("b_attempts"), last_error=None)
                .execution_options(synchronize_session=False),
                "delivered": sa.update(Message)
                .where(col(Message.id) == sa.bindparam("b_id"))
                .values(delivery_status="sent", channel_message_id=sa.bindparam("b_ref"))
                .execution_options(synchronize_session=False),
            }
            if outbox_pg.is_postgresql(self.sessions):
                self._built["claim_pg"] = outbox_pg.claim_statement(self._built["candidates"], claim_free,
                                                                    _CANDIDATE_COLUMNS, _RECIPIENT_COLUMNS)
        return self._built

    async def _claim(self, limit: int | None = None) -> list[_Claimed]:
        """Claim up to ``limit`` (default ``batch_size``) due heads in one transaction."""
        if not self.senders:
            return []
        self._claims += 1
        limit = max(1, limit if limit is not None else self.batch_size)
        now = self.clock()
        lease_end = now + timedelta(seconds=self.lease_seconds)
        statements = self._statements()
        one = await self._claim_in_one(statements, limit, now, lease_end) if "claim_pg" in statements else None
        if one is not None:
            if stagetrace.ENABLED:
                stagetrace.mark_many("claimed", (row.conversation_id or 0 for row in one if not row.is_notice))
            return one
        async with self.sessions() as session:
            # Core rows, not ORM objects: the claim reads a few columns and builds its own _Claimed
            connection = await session.connection()
            candidates = list(
                await connection.execute(statements["candidates"], {"b_now": now, "b_channels": self._channels(),
                                                                    "b_limit": limit, **self._affinity_params(now)})
            )
            # never a row this dispatcher is still sending: on a starved loop its lease can run out
            # before the heartbeat renews it, and the pipeline claims while sends are in flight
            candidates = [row for row in candidates if row.id not in self._in_flight]
            claimed: list[_Claimed] = []
            if candidates:
                candidates = await self._apply_holds(session, candidates, now)
            if candidates:
                won = set(
                    (
                        await connection.execute(statements["claim"], {
                            "b_ids": [row.id for row in candidates], "b_now": now, "b_lease": lease_end})
                    ).scalars()
                )
                contact_ids = {row.contact_id for row in candidates if row.id in won and row.contact_id is not None}
                contacts = {
                    c[0]: _Recipient(*c)
                    for c in await connection.execute(statements["contacts"], {"b_ids": list(contact_ids)})
                } if contact_ids else {}
                for row in candidates:
                    if row.id in won:
                        claimed.append(
                            _Claimed(row.id, row.message_id, row.conversation_id, row.contact_id,
                                     Channel(row.channel), dict(row.payload or {}), row.attempts, row.created_at,
                                     contacts.get(row.contact_id) if row.contact_id is not None else None)
                        )
            await session.commit()
        if stagetrace.ENABLED:
            stagetrace.mark_many("claimed", (row.conversation_id or 0 for row in claimed if not row.is_notice))
        return claimed

    async def _claim_in_one(self, statements: dict[str, Any], limit: int, now: datetime,
                            lease_end: datetime) -> list[_Claimed] | None:
        """PostgreSQL: the claim as one statement committed as it runs (``outbox_pg.claim_statement``);
        None when a delivery hold is in force (nothing was claimed: ``_claim`` goes the usual way)."""
        async with self.sessions() as session:
            connection = await outbox_pg.autocommit_connection(session)
            rows = list(await connection.execute(statements["claim_pg"], {
                "b_now": now, "b_channels": self._channels(), "b_limit": limit, "b_lease": lease_end,
                "b_in_flight": list(self._in_flight), **self._affinity_params(now)}))
        if not rows or rows[0].held:
            return None
        return [_Claimed(row.id, row.message_id, row.conversation_id, row.contact_id, Channel(row.channel),
                         dict(row.payload or {}), row.attempts, row.created_at,
                         _Recipient(row.r_id, row.r_channel, row.r_external_id, row.r_display_name, row.r_username,
                                    row.r_language) if row.r_id is not None else None)
                for row in rows if row.id is not None]

    def _affinity_params(self, now: datetime) -> dict[str, Any]:
        return self.affinity.params(now) if self.affinity is not None else {}

    async def _apply_holds(self, session: AsyncSession, candidates: list[Any], now: datetime) -> list[Any]:
        """The candidates that no stored hold (:class:`DeliveryHold`) keeps back; the held ones
        are moved to the hold's end (on PostgreSQL they are locked by the candidates' select)."""
        holds = (await session.exec(
            select(DeliveryHold.channel, DeliveryHold.contact_id, DeliveryHold.not_before)
            .where(col(DeliveryHold.not_before) > now)
        )).all()
        if not holds:
            return candidates
        until_by_key = {(channel, contact_id): not_before for channel, contact_id, not_before in holds}
        free: list[Any] = []  # the candidates' Core rows (``_CANDIDATE_COLUMNS``)
        for row in candidates:
            channel = Channel(row.channel).value
            keys = [(channel, HOLD_ALL_NOTICES)] if row.contact_id is None else \
                [(channel, row.contact_id), (channel, HOLD_ALL_CONTACTS)]
            until = max((until_by_key[k] for k in keys if k in until_by_key), default=None)
            if until is None or until <= row.next_attempt_at:
                free.append(row)
                continue
            await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id, col(OutboxMessage.status) == OutboxStatus.pending,
                       col(OutboxMessage.next_attempt_at) < until)
                .values(next_attempt_at=until)
                .execution_options(synchronize_session=False)
            )
            log.debug("outbox %s (message %s, conversation %s) waits until %s: the %s is held",
                     row.id, row.message_id, row.conversation_id, until.isoformat(timespec="seconds"),
                     "recipient" if row.contact_id is not None and (channel, row.contact_id) in until_by_key
                     else "channel")
        return free

    async def _next_due_in(self) -> float:
        """Seconds until the next head row becomes due (capped at ``poll_interval``)."""
        if not self.senders:
            return self.poll_interval
        now = self.clock()
        async with self.sessions() as session:
            rows = (await session.exec(self._statements()["next_due"], params={"b_channels": self._channels(),
                                                                             **self._affinity_params(now)})).all()
        if not rows:
            return self.poll_interval
        next_attempt_at, claimed_until = rows[0]
        due = max(next_attempt_at, claimed_until) if claimed_until is not None else next_attempt_at
        return max(0.0, min(self.poll_interval, (due - now).total_seconds()))

    # -- one row ----------------------------------------------------------------------------

    async def _deliver(self, row: _Claimed) -> bool:
        """True when the row was sent (and marked so). From the claim until its result is
        written the row is ours: the heartbeat renews its lease also while it waits for a slot."""
        # from the claim until its result is written the row is ours: the heartbeat renews its
        # lease also while it waits for a free send slot
        with self._sending(row.id):
            try:
                if row.is_notice:
                    await self._deliver_notice(row)
                    return False  # never handed over: the answer is not used
                return await self._deliver_message(row)
            except Exception:
                # a result could not be written (the database is away): the round's rows claimed
                # but not sent yet stay unsent (their leases run out, they are claimed again), so
                # what goes out twice is at most the sends already under way (``concurrency``),
                # not every row on hand. Set before the next send can take the freed slot.
                self._halted = True
                raise

    async def _deliver_message(self, row: _Claimed) -> bool:
        async with self._semaphore:
            if self._halted:
                return False
            sender = self.senders.get(row.channel)
            contact = row.contact
            if sender is None:  # unregistered since the claim: leave it pending
                await self._release(row)
                return False
            if contact is None:
                await self._give_up(row, "contact is gone", blocked=False)
                return False
            if not is_sender(sender):  # remembered per sender: isinstance of a protocol is slow
                await self._give_up(row, "the channel's sender takes notices only", blocked=False)
                return False
            payload = OutboundPayload.from_json(row.payload, message_id=row.message_id)
            if stagetrace.ENABLED:
                stagetrace.mark("sending", row.conversation_id or 0)
            try:
                # asyncio.timeout, not wait_for: no extra task, so no extra loop turns per send
                async with asyncio.timeout(self.send_timeout):
                    platform_id = await sender.send(contact, payload)
                if stagetrace.ENABLED:
                    stagetrace.mark("sent", row.conversation_id or 0)
            except RetryLater as exc:
                await self._retry(row, exc.seconds, exc.reason or "retry later", rate_limited=exc.rate_limited,
                                  hold=exc.hold)
            except PermanentFailure as exc:
                await self._give_up(row, exc.reason or "permanent failure", blocked=exc.blocked)
            except OutcomeUnknown as exc:
                await self._unknown(row, exc.reason or "no answer from the platform")
            except TimeoutError:  # the backstop: the request may have gone out
                await self._unknown(row, f"no answer within {self.send_timeout:g}s")
            except Exception as exc:
                log.warning("send failed (%s) for outbox %s, message %s, conversation %s",
                            type(exc).__name__, row.id, row.message_id, row.conversation_id)
                await self._retry(row, None, type(exc).__name__)
            else:
                await self._mark_sent(row, platform_id)
                return True
            return False

    async def _deliver_notice(self, row: _Claimed) -> None:
        async with self._semaphore:
            if self._halted:
                return
            sender = self.senders.get(row.channel)
            if sender is None:
                await self._release(row)
                return
            if not is_notice_sender(sender):
                await self._give_up(row, "the channel's sender takes no notices", blocked=False)
                return
            payload = {k: v for k, v in row.payload.items() if k != "progress"}
            notice = Notice(id=row.id, conversation_id=row.conversation_id, payload=payload,
                            attempts=row.attempts, created_at=row.created_at or self.clock(),
                            progress=dict(row.payload.get("progress") or {}))
            try:
                async with asyncio.timeout(self.send_timeout):
                    platform_id = await sender.send_notice(notice)
            except RetryLater as exc:
                await self._retry(row, exc.seconds, exc.reason or "retry later", progress=notice.progress,
                                  rate_limited=exc.rate_limited, hold=exc.hold)
            except PermanentFailure as exc:
                await self._give_up(row, exc.reason or "permanent failure", blocked=False)
            except (TimeoutError, OutcomeUnknown):
                # notices are for the shop's own people: a repeated alert beats a lost one, and the
                # sender's progress keeps the steps that are known to have reached the platform
                await self._retry(row, None, "send timed out", progress=notice.progress)
            except Exception as exc:
                log.warning("notice %s failed (%s), conversation %s", row.id, type(exc).__name__, row.conversation_id)
                await self._retry(row, None, type(exc).__name__, progress=notice.progress)
            else:
                await self._mark_sent(row, platform_id)

    # -- leases of rows being sent --------------------------------------------------------------

    @contextlib.contextmanager
    def _sending(self, row_id: int) -> Iterator[None]:
        """While the block runs, the heartbeat keeps renewing ``row_id``'s lease (renewing it while
        the result is being written is harmless: every result clears the lease or the pending state)."""
        self._in_flight[row_id] = self._in_flight.get(row_id, 0) + 1
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="outbox-lease-heartbeat")
        try:
            yield
        finally:
            left = self._in_flight.get(row_id, 1) - 1
            if left <= 0:
                self._in_flight.pop(row_id, None)
            else:
                self._in_flight[row_id] = left

    async def _beat(self) -> None:
        while self._in_flight:
            await asyncio.sleep(self.heartbeat_seconds)
            ids = list(self._in_flight)
            if not ids:
                return
            try:
                await self._renew(ids)
            except Exception as exc:  # the next beat tries again; the lease is three beats long
                log.warning("renewing the leases of %d outbox row(s) failed (%s)", len(ids), type(exc).__name__)

    async def _renew(self, ids: list[int]) -> None:
        lease_end = self.clock() + timedelta(seconds=self.lease_seconds)
        # a row locked right now is having its result written: it needs no renewal, and the
        # heartbeat never waits for (or deadlocks with) that transaction (SKIP LOCKED; SQLite ignores it)
        ours = (
            sa.select(col(OutboxMessage.id))
            .where(col(OutboxMessage.id).in_(ids), col(OutboxMessage.status) == OutboxStatus.pending,
                   col(OutboxMessage.claimed_until).is_not(None))
            .with_for_update(skip_locked=True)
        )
        async with self.sessions() as session:
            await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(ours.scalar_subquery()))
                .values(claimed_until=lease_end)
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    @contextlib.asynccontextmanager
    async def _result_session(self) -> AsyncIterator[AsyncSession]:
        """A session for writing a send's outcome (see ``result_writers``); the row stays ours
        meanwhile (its lease is renewed while :meth:`_deliver` runs)."""
        async with self._result_writes, self.sessions() as session:
            yield session

    async def _release(self, row: _Claimed) -> None:
        await self._release_ids([row.id])

    async def _release_ids(self, ids: list[int]) -> None:
        async with self._result_session() as session:
            await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(ids), col(OutboxMessage.status) == OutboxStatus.pending)
                .values(claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        self.wake()  # free for a claim now

    async def _mark_sent(self, row: _Claimed, platform_id: Any) -> None:
        """Record a successful send. Sends that finish together are committed together (group
        commit): the first one waits one loop turn and writes the batch, the others join it, and
        each caller returns once its own row is committed (or gets the flush's error)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._sent_pending.append((row, platform_id, done))
        if self._sent_flusher is None or self._sent_flusher.done():
            # the first one flushes the batch itself: no task to start, one loop turn less per send
            # (on a busy loop every turn waits behind all other ready work)
            self._sent_flusher = loop.create_future()
            try:
                await self._flush_sent()
            finally:
                leader, self._sent_flusher = self._sent_flusher, None
                leader.set_result(None)
                if self._sent_pending:  # cut short (cancelled): the others' rows still get written
                    self._sent_flusher = loop.create_task(self._flush_sent(), name="outbox-mark-sent")
        await done

    async def _flush_sent(self) -> None:
        await asyncio.sleep(0)  # let the sends finishing on this loop turn join the batch
        while self._sent_pending:
            batch, self._sent_pending = self._sent_pending, []
            try:
                await self._write_sent([(row, platform_id) for row, platform_id, _ in batch])
            except BaseException as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("mark sent cancelled"))
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _write_sent(self, batch: list[tuple[_Claimed, Any]]) -> None:
        """Record a group of successful sends: one statement finds which are still pending (locked
        on PostgreSQL), one (executemany) marks them sent and one their messages delivered. On
        PostgreSQL the three are one statement, committed as it runs (``inbox.outbox_pg``)."""
        now = self.clock()
        refs = {row.id: str(platform_id)[:128] if platform_id is not None else None for row, platform_id in batch}
        unique = {row.id: row for row, _ in batch}
        statements = self._statements()
        async with self.sessions() as session:
            if outbox_pg.is_postgresql(self.sessions):
                marked = await outbox_pg.mark_sent(await outbox_pg.autocommit_connection(session), [
                    (row.id, refs[row.id], row.attempts + 1) for row in unique.values()], now)
                rows = [row for row in unique.values() if row.id in marked]
            else:
                # a row no longer pending (given up or sent by another dispatcher) has nothing to record
                pending = set((await session.exec(statements["still_pending"], params={"b_ids": list(refs)})).all())
                rows = [row for row in unique.values() if row.id in pending]
                if rows:
                    connection = await session.connection()
                    await connection.execute(statements["sent"], [
                        {"b_id": row.id, "b_now": now, "b_ref": refs[row.id], "b_attempts": row.attempts + 1}
                        for row in rows])
                    delivered = [{"b_id": row.message_id, "b_ref": refs[row.id]} for row in rows
                                 if row.message_id is not None]
                    if delivered:
                        await connection.execute(statements["delivered"], delivered)
            for row in rows:
                if not row.is_notice:
                    collect(session, Event(EventType.message_delivery.value, row.conversation_id,
                                           {"message_id": row.message_id, "outbox_id": row.id, "status": "sent"}))
            await session.commit()  # on PostgreSQL nothing is left to commit: publishes the events
        log.debug("sent %d outbox row(s)", len(rows))

    async def _retry(self, row: _Claimed, seconds: float | None, reason: str,
                     progress: dict[str, Any] | None = None, *, rate_limited: bool = False,
                     hold: str | None = None) -> None:
        attempts = row.attempts if rate_limited else row.attempts + 1  # a rate limit delays, never uses up
        if not rate_limited and attempts >= self.max_attempts and not row.is_notice:  # notices: the sender decides
            await self._give_up(row, f"gave up after {attempts} attempts: {reason}", blocked=False)
            return
        delay = seconds if seconds is not None else backoff_seconds(attempts, base=self.base_backoff,
                                                                   cap=self.max_backoff)
        now = self.clock()
        until = now + timedelta(seconds=delay)
        with contextlib.suppress(RuntimeError):  # the round claims it when due (no claim runs before)
            self._retry_at = min(self._retry_at, asyncio.get_running_loop().time() + delay + 0.01)
        values: dict[str, Any] = {"attempts": attempts, "next_attempt_at": until,
                                  "claimed_until": None, "last_error": reason[:500]}
        if row.is_notice and progress:
            values["payload"] = {**row.payload, "progress": progress}  # finished steps are not repeated
        async with self._result_session() as session:
            await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id, col(OutboxMessage.status) == OutboxStatus.pending)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        if rate_limited and hold in (HOLD_RECIPIENT, HOLD_CHANNEL):
            try:  # its own transaction: it touches other dispatchers' rows (never wait for their locks)
                async with self._result_session() as session:
                    await self._hold(session, row, hold, until)
                    await session.commit()
            except Exception as exc:  # the sender's own memory of the wait still holds them back
                log.warning("holding the %s's other outbox rows failed (%s)", hold, type(exc).__name__)
            else:
                try:  # apart: deleting many rows never makes a hold wait for another's locks
                    async with self._result_session() as session:
                        await _forget_expired_holds(session, now)
                        await session.commit()
                except Exception as exc:
                    log.warning("deleting expired delivery holds failed (%s)", type(exc).__name__)
        if rate_limited:
            log.info("outbox %s (message %s, conversation %s) waits %.2fs: %s%s", row.id, row.message_id,
                     row.conversation_id, delay, reason[:200], f" (holding the {hold})" if hold else "")
        else:
            log.info("outbox %s (message %s, conversation %s) retries in %.2fs after attempt %d",
                     row.id, row.message_id, row.conversation_id, delay, attempts)

    @staticmethod
    async def _hold(session: AsyncSession, row: _Claimed, hold: str, until: datetime) -> None:
        """The platform's wait applies to the recipient's (or the whole channel's) other pending rows
        too: it is written into their ``next_attempt_at``, so it survives a restart. Rows another
        transaction is writing right now (``SKIP LOCKED`` on PostgreSQL) are left alone: they are
        being sent or rescheduled, and two holds never wait for each other's locks."""
        await _store_hold(session, row, hold, until)
        query = sa.select(col(OutboxMessage.id)).where(
            col(OutboxMessage.status) == OutboxStatus.pending,
            col(OutboxMessage.channel) == row.channel,
            col(OutboxMessage.id) != row.id,
            col(OutboxMessage.next_attempt_at) < until,
        )
        if hold == HOLD_RECIPIENT:
            if row.contact_id is None:
                return
            query = query.where(col(OutboxMessage.contact_id) == row.contact_id)
        else:
            query = query.where(col(OutboxMessage.contact_id).is_(None) if row.is_notice
                                else col(OutboxMessage.contact_id).is_not(None))
        held = query.with_for_update(skip_locked=True)  # ignored by SQLite (one writer)
        await session.exec(
            sa.update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(held.scalar_subquery()))
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )

    async def _unknown(self, row: _Claimed, reason: str) -> None:
        """The send may or may not have reached the customer: never send it again (at most once)."""
        now = self.clock()
        reason = f"outcome unknown: {reason}"[:500]
        async with self._result_session() as session:
            result = await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id, col(OutboxMessage.status) == OutboxStatus.pending)
                .values(status=OutboxStatus.unknown, attempts=row.attempts + 1, claimed_until=None,
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
                    .values(delivery_status=OutboxStatus.unknown.value)
                    .execution_options(synchronize_session=False)
                )
            write_audit(session, row.conversation_id, "message.delivery_unknown", actor="system",
                        detail={"message_id": row.message_id, "outbox_id": row.id, "reason": reason}, now=now)
            collect(session, Event(EventType.message_delivery.value, row.conversation_id,
                                   {"message_id": row.message_id, "outbox_id": row.id,
                                    "status": OutboxStatus.unknown.value, "reason": reason}))
            await session.commit()
        log.warning("outbox %s (message %s, conversation %s): %s; not sent again (no duplicate check on %s)",
                    row.id, row.message_id, row.conversation_id, reason, row.channel.value)

    async def _give_up(self, row: _Claimed, reason: str, *, blocked: bool) -> None:
        now = self.clock()
        reason = reason[:500]
        async with self._result_session() as session:
            result = await session.exec(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id, col(OutboxMessage.status) == OutboxStatus.pending)
                .values(status=OutboxStatus.undeliverable, attempts=row.attempts + 1, claimed_until=None,
                        last_error=reason)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                await session.rollback()
                return
            if row.is_notice:
                await session.commit()
                log.warning("notice %s (conversation %s) on %s is undeliverable", row.id, row.conversation_id,
                            row.channel.value)
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


async def _store_hold(session: AsyncSession, row: _Claimed, hold: str, until: datetime) -> None:
    """Remember the wait (:class:`DeliveryHold`); a stored later end is kept."""
    if hold == HOLD_RECIPIENT:
        if row.contact_id is None:
            return
        contact_key = row.contact_id
    else:
        contact_key = HOLD_ALL_NOTICES if row.is_notice else HOLD_ALL_CONTACTS
    builder = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = builder(DeliveryHold).values(channel=row.channel.value, contact_id=contact_key, not_before=until)
    await session.exec(stmt.on_conflict_do_update(
        index_elements=["channel", "contact_id"],
        set_={"not_before": stmt.excluded.not_before},
        where=col(DeliveryHold.not_before) < stmt.excluded.not_before,
    ))


async def _forget_expired_holds(session: AsyncSession, now: datetime) -> None:
    await session.exec(
        sa.delete(DeliveryHold).where(col(DeliveryHold.not_before) < now - timedelta(minutes=1))
        .execution_options(synchronize_session=False)
    )
