"""Events: written, committed, then announced.

A write collects its events on the session (:func:`collect` / :meth:`EventBus.collect`); they
are published only after that session's transaction commits (SQLAlchemy ``after_commit`` on
``session.sync_session``) and silently dropped when it rolls back or is closed uncommitted.
Events collected inside a SAVEPOINT that rolls back are dropped too.

Store functions do not take a bus: the bus is found through the session. Bind it once to the
session factory with :meth:`EventBus.bind` (the outbox dispatcher does this for the
factory it is given), so every session made by that factory carries it in ``session.info``.

Publication is asynchronous: the ``after_commit`` hook only queues the events; a pump task on
the running loop publishes them in commit order. A subscriber's exception is logged and never
reaches the publisher or the other subscribers.

``EventBus.transport`` is the seam for fan-out across processes: :meth:`EventBus.publish`
delivers to this process's subscribers, then, when a transport is set, hands the event to it
for the other processes. On PostgreSQL the server sets ``shopdesk.cluster.PgNotifyFanout``,
which sends batches with ``NOTIFY shopdesk_events`` and calls :meth:`EventBus.deliver` with
:meth:`Event.from_json` in every *other* process. Event data is therefore JSON-safe and kept
small (previews, ids; never full texts).
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = [
    "Event",
    "EventType",
    "EventBus",
    "EventTransport",
    "Subscriber",
    "collect",
    "pending_events",
]

log = logging.getLogger(__name__)

_EVENTS_KEY = "shopdesk.pending_events"
_BUS_KEY = "shopdesk.event_bus"
_warned_unbound = False


class EventType(enum.StrEnum):
    message_created = "message.created"
    message_delivery = "message.delivery"
    conversation_updated = "conversation.updated"
    conversation_assigned = "conversation.assigned"
    conversation_escalated = "conversation.escalated"
    contact_updated = "contact.updated"
    presence = "presence"
    alert = "alert"
    #: an agent asked for the dispute evidence bundle in the conversation's Slack thread
    evidence_shared = "evidence.shared"
    notifications_read = "notifications.read"
    #: a customer profile changed (merge, un-merge, note, tags): ``data["profile_ids"]``; the
    #: agents' open profile pages and sidebars re-read it
    customer_updated = "customer.updated"


@dataclass(frozen=True)
class Event:
    type: str
    conversation_id: int | None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": str(self.type), "conversation_id": self.conversation_id, "data": self.data}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Event:
        return cls(type=str(raw["type"]), conversation_id=raw.get("conversation_id"), data=dict(raw.get("data") or {}))


Subscriber = Callable[[Event], Awaitable[None] | None]
#: an event, or a function building it at commit time (when flushed rows have their ids)
EventSource = Event | Callable[[], Event]
# collect() works on a sync Session (migrations, scripts) and on an AsyncSession alike
AnySession = Session | SAAsyncSession


class EventTransport(Protocol):
    """Carries published events to the other processes' :meth:`EventBus.deliver`."""

    async def send(self, event: Event) -> None: ...


def _sync_session(session: AnySession) -> Session:
    sync = getattr(session, "sync_session", session)
    if not isinstance(sync, Session):
        raise TypeError("collect() needs a SQLAlchemy Session or AsyncSession")
    return sync


def _is_within(tag: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while tag is not None:
        if tag is ended:
            return True
        tag = tag.parent
    return False


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT was released: its events now belong to the enclosing transaction
    items: list[tuple[SessionTransaction | None, EventSource]] = session.info.pop(_EVENTS_KEY, [])
    if not items:
        return
    bus: EventBus | None = session.info.get(_BUS_KEY)
    if bus is None:
        global _warned_unbound
        level = logging.DEBUG if _warned_unbound else logging.INFO
        _warned_unbound = True
        log.log(level, "no event bus bound to this session (EventBus.bind): %d event(s) dropped", len(items))
        return
    events: list[Event] = []
    for _tag, source in items:
        try:
            events.append(source() if callable(source) else source)
        except Exception:
            log.exception("building an event after commit failed")
    bus._enqueue(events)


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    items = session.info.get(_EVENTS_KEY)
    if not items:
        return
    if previous.nested:
        session.info[_EVENTS_KEY] = [(tag, ev) for tag, ev in items if not _is_within(tag, previous)]
    else:
        session.info.pop(_EVENTS_KEY, None)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_EVENTS_KEY, None)


_hooked = False


def _hook(sync: Session) -> None:
    """The transaction hooks, listened to once on the Session class (every subclass and every
    session): a listener on each session instance cost more than the rest of ``collect``.
    Sessions that collected nothing find no pending events and return at once."""
    global _hooked
    if _hooked:
        return
    sa_event.listen(Session, "after_commit", _after_commit)
    sa_event.listen(Session, "after_soft_rollback", _after_soft_rollback)
    sa_event.listen(Session, "after_transaction_end", _after_transaction_end)
    _hooked = True


def collect(session: AnySession, event: EventSource) -> None:
    """Queue ``event`` to be published after ``session`` commits (dropped on rollback).

    ``event`` may be a zero-argument function returning the Event; it runs right after the
    commit, so it can read ids of rows that were only flushed by that commit.
    """
    sync = _sync_session(session)
    _hook(sync)
    if not sync.in_transaction():
        sync.begin()  # so that the end of this transaction (commit or not) is always seen
    sync.info.setdefault(_EVENTS_KEY, []).append((sync.get_nested_transaction(), event))


def pending_events(session: AnySession) -> list[EventSource]:
    """Events collected on ``session`` and not yet published (for tests and debugging)."""
    return [ev for _tag, ev in _sync_session(session).info.get(_EVENTS_KEY, [])]


class EventBus:
    """In-process publish/subscribe with after-commit collection; see the module docstring."""

    def __init__(self, transport: EventTransport | None = None) -> None:
        self.transport = transport
        self._subscribers: list[Subscriber] = []
        self._local_only: set[int] = set()  # id() of subscribers that want this process's events only
        self._queue: deque[Event] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- subscribing and publishing -------------------------------------------------------

    def subscribe(self, callback: Subscriber, *, remote: bool = True) -> Callable[[], None]:
        """Call ``callback(event)`` (sync or async) for every event; returns ``unsubscribe``.
        ``remote=False``: only this process's own events, not those another process sent
        through the transport (``deliver(event, remote=True)``)."""
        self._subscribers.append(callback)
        if not remote:
            self._local_only.add(id(callback))

        def unsubscribe() -> None:
            try:
                self._subscribers.remove(callback)
            except ValueError:
                pass
            if callback not in self._subscribers:
                self._local_only.discard(id(callback))

        return unsubscribe

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` here, then send it to the other processes through the transport."""
        await self.deliver(event)
        if self.transport is None:
            return
        try:
            await self.transport.send(event)
        except Exception:
            log.exception("event transport failed for %s (conversation %s)", event.type, event.conversation_id)

    async def deliver(self, event: Event, *, remote: bool = False) -> None:
        """Hand ``event`` to this process's subscribers; their errors are logged, never raised.
        ``remote``: the event comes from another process (the transport's receiving side)."""
        for callback in list(self._subscribers):
            if remote and id(callback) in self._local_only:
                continue
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event subscriber %r failed on %s (conversation %s)",
                              getattr(callback, "__qualname__", callback), event.type, event.conversation_id)

    # -- after-commit collection ----------------------------------------------------------

    def bind(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Make every session from the ``async_sessionmaker`` ``sessions`` carry this bus."""
        info = dict(sessions.kw.get("info") or {})
        info[_BUS_KEY] = self
        sessions.configure(info=info)

    def attach(self, session: AnySession) -> None:
        """Make this one session carry this bus (for sessions not made by a bound factory)."""
        _sync_session(session).info[_BUS_KEY] = self

    def collect(self, session: AnySession, event: EventSource) -> None:
        """Like :func:`collect`, and binds this bus to ``session`` if it has none."""
        _sync_session(session).info.setdefault(_BUS_KEY, self)
        collect(session, event)

    def _enqueue(self, events: list[Event]) -> None:
        """Called from ``after_commit`` (on the loop's thread, inside the session's greenlet)."""
        if not events:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            if self._loop is not None and self._loop.is_running():
                self._loop.call_soon_threadsafe(self._enqueue, events)
            else:
                log.warning("no running event loop: %d event(s) dropped", len(events))
            return
        self._loop = loop
        self._queue.extend(events)
        if self._pump is None or self._pump.done() or self._pump.get_loop() is not loop:
            self._pump = loop.create_task(self._drain(), name="event-bus-pump")

    async def _drain(self) -> None:
        while self._queue:
            event = self._queue.popleft()
            try:
                await self.publish(event)
            except Exception:  # publish already guards; this keeps the pump alive regardless
                log.exception("publishing %s failed", event.type)

    async def wait_idle(self) -> None:
        """Wait until every event committed so far has been published."""
        await asyncio.sleep(0)
        while self._pump is not None and not self._pump.done():
            await asyncio.shield(self._pump)
            await asyncio.sleep(0)
