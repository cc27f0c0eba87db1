"""Several ``shopdesk serve`` processes on one PostgreSQL: event fan-out and one job runner.

Two pieces, both only for PostgreSQL (SQLite is the one-process embedded default and needs
neither):

* :class:`PgNotifyFanout` is the :class:`inbox.events.EventTransport` that carries every
  committed event to the other processes. The bus delivers an event to its own process's
  subscribers first (no round trip for the common case), then hands it here: events are
  batched into ``NOTIFY shopdesk_events, '{"o": <origin>, "e": [<event>, ...]}'`` on a
  connection of their own, and a listening connection in every process delivers the events of
  the *other* origins to that process's bus, in the order they were sent. The payload holds
  what :meth:`Event.to_json` holds: ids and short previews, never a whole message
  (PostgreSQL caps a payload at 8,000 bytes; a batch is split well below that, and a single
  event too large for it is dropped with a warning, since the live view re-reads the database).
  **One channel per process** (*helper pgstmts*): the events go on ``shopdesk_events_<origin>``
  of each peer (one ``pg_notify`` per peer in one statement), so a NOTIFY wakes only the
  processes it is for, not its sender's own listener (before: every listener, its sender's
  included, read every NOTIFY in a transaction of its own); ``shopdesk_events`` carries the
  announcements (and still delivers events sent to it). Like the in-process bus, this is best
  effort: an event sent while a listener was reconnecting is missed by that process; what
  agents see is always re-read from the database, and the outbox dispatcher polls as well as
  listening.

  **Only when someone listens.** A process alone on the database sends no NOTIFY at all (each
  one is a transaction of its own, and every listening backend wakes for it). The peers are
  the other listening connections (``application_name`` ``shopdesk-node:…`` in
  ``pg_stat_activity``), read when the listener connects and every ``peer_interval`` seconds
  (the read doubles as the listener's keep-alive), and learnt at once from any notification
  of another origin. A process that starts announces itself with an empty batch right after
  its ``LISTEN`` and its own read of the peers, so no window is left: a peer that read
  ``pg_stat_activity`` before the newcomer connected hears the announcement, and one that
  read it later sees the newcomer's connection. A peer that disappears is dropped at the next
  read (until then a few batches go to nobody, which costs what it always did). NOTIFYs are at
  least ``min_interval`` (100 ms) apart: under load the events of several commits share one.

* :class:`NodeAffinity` keeps a customer's replies in the process that wrote them. A widget
  visitor's socket is open on one process; the message it sends is recorded and answered
  there (``on_inbound`` hands it to that process's worker), and the reply row carries that
  process's name (``outbox.node``, set from the engine's execution option). Only that
  process's dispatcher claims it, so the reply reaches the socket without a trip through
  NOTIFY and no other dispatcher races for it. Another process takes such a row when its
  process is gone (no connection with its ``application_name`` in ``pg_stat_activity``: the
  listening connection of :class:`PgNotifyFanout` is the sign of life) or when the row is
  overdue by ``overdue`` seconds (a process alive but stuck). Rows in flight keep the outbox's
  lease, so exactly-once and per-conversation order are the outbox's as before. The
  dispatchers are woken by their own process's events only; a reply sent elsewhere that a
  row of ours waited for (same conversation) wakes ours. When a process disappears, the
  others sweep for its unprocessed inbound messages and claimable replies at once.

* :class:`Leadership` elects the one process that runs the periodic jobs (snooze wake-ups,
  alert rules, SLA timers): the holder of a session-level PostgreSQL advisory lock on a
  connection of its own. When that process dies its connection closes, the lock is released,
  and another process takes it within ``retry`` seconds. Jobs that claim their rows with
  ``FOR UPDATE SKIP LOCKED`` (the outbox, proactive shipment updates) run in every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.events import Event, EventBus, EventType
from inbox.models import NODE_OPTION, OutboxMessage

__all__ = ["CHANNEL", "LEADER_LOCK_KEY", "NODE_APP_PREFIX", "Leadership", "NodeAffinity", "PgNotifyFanout",
           "asyncpg_dsn", "is_postgres", "peer_channel"]

log = logging.getLogger(__name__)

CHANNEL = "shopdesk_events"
#: the advisory lock of the periodic jobs' runner ("shopdesk" as a number; any constant would do)
LEADER_LOCK_KEY = 0x73686F7064657368 & 0x7FFFFFFFFFFFFFFF
#: stay well below PostgreSQL's 8,000-byte NOTIFY payload limit
MAX_PAYLOAD = 7000
#: the ``application_name`` of a process's listening connection is this plus its node name: the
#: other processes read ``pg_stat_activity`` to know it is alive
NODE_APP_PREFIX = "shopdesk-node:"


def is_postgres(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL (``postgresql+asyncpg://…``) as a DSN asyncpg connects with."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _connect(dsn: str, application_name: str | None = None) -> Any:
    import asyncpg

    if application_name is None:
        return await asyncpg.connect(dsn)
    return await asyncpg.connect(dsn, server_settings={"application_name": application_name})


#: what an origin looks like (``uuid4().hex[:12]``; anything else named in a payload is not a peer)
_ORIGIN = re.compile(r"^[0-9A-Za-z]{1,32}$")


def peer_channel(origin: str) -> str:
    """The channel a process (by its origin) hears its peers' events on."""
    return f"{CHANNEL}_{origin}"


#: one NOTIFY per peer (``$1``: their channels), in ONE statement and transaction of the sender
_NOTIFY_PEERS = "SELECT pg_notify(c, $2) FROM unnest($1::text[]) AS c"

#: the other processes' listening connections (``$1``: the name prefix and ``%``, ``$2``: where the origin starts)
_PEERS = ("SELECT substr(application_name, $2) FROM pg_stat_activity "
          "WHERE datname = current_database() AND application_name LIKE $1 AND pid <> pg_backend_pid()")


class PgNotifyFanout:
    """Fan-out of committed events to the other processes over LISTEN/NOTIFY."""

    def __init__(self, dsn: str, bus: EventBus, *, reconnect_delay: float = 1.0,
                 peer_interval: float = 5.0, min_interval: float = 0.1) -> None:
        self.dsn = dsn
        self.bus = bus
        self.origin = uuid.uuid4().hex[:12]
        #: the events for this process come on a channel of its own (``peer_channel``): a NOTIFY
        #: wakes only the processes it is for, never its sender's own listener
        self.channel = peer_channel(self.origin)
        self._own_prefix = '{"o":' + json.dumps(self.origin) + ","
        self.reconnect_delay = reconnect_delay
        self.peer_interval = peer_interval
        #: NOTIFYs are at least this far apart (seconds): under load the events of several commits
        #: share one (each NOTIFY is a transaction of the sender and one of every process it
        #: wakes); an event after a quiet moment goes at once
        self.min_interval = min_interval
        self._last_notify = 0.0
        #: the other processes listening (their origins), see "Only when someone listens"
        self.peers: set[str] = set()
        self._pending: deque[dict[str, Any]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._sender: Any = None
        self._listener: Any = None
        self._listen_task: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self._deliverer: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._lost = asyncio.Event()
        self._closing = False
        self.sent = 0
        self.received = 0
        self.skipped = 0  # events not sent: no other process was listening
        #: called with each event another process sent, before this process's subscribers get it
        self.on_remote: Callable[[Event], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (waits for the first connection, so events sent after this are seen) and
        become the bus's transport."""
        self._closing = False
        self._deliverer = asyncio.create_task(self._deliver_loop(), name="event-fanout-deliver")
        self._listen_task = asyncio.create_task(self._listen_loop(), name="event-fanout-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout=10)
        self.bus.transport = self

    async def stop(self) -> None:
        self._closing = True
        if self.bus.transport is self:
            self.bus.transport = None
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        for task in (self._listen_task, self._deliverer):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._listen_task, self._deliverer) if t is not None),
                             return_exceptions=True)
        for conn in (self._sender, self._listener):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
        self._sender = self._listener = None

    # -- sending --------------------------------------------------------------------------

    async def send(self, event: Event) -> None:
        """Queue ``event`` for the other processes; a task sends what has gathered in one NOTIFY."""
        if self._closing:
            return
        if not self.peers:
            self.skipped += 1
            return
        self._pending.append(event.to_json())
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="event-fanout-send")

    def _batches(self) -> list[str]:
        payloads: list[str] = []
        batch: list[str] = []
        size = 0
        head = len(json.dumps({"o": self.origin, "e": []}))
        while self._pending:
            raw = json.dumps(self._pending.popleft(), separators=(",", ":"), default=str)
            if len(raw.encode()) + head > MAX_PAYLOAD:
                log.warning("an event of %d bytes is too large to fan out; other processes miss it", len(raw))
                continue
            if batch and size + len(raw.encode()) + head > MAX_PAYLOAD:
                payloads.append(self._payload(batch))
                batch, size = [], 0
            batch.append(raw)
            size += len(raw.encode()) + 1
        if batch:
            payloads.append(self._payload(batch))
        return payloads

    def _payload(self, batch: list[str]) -> str:
        return '{"o":' + json.dumps(self.origin) + ',"e":[' + ",".join(batch) + "]}"

    async def _flush(self) -> None:
        # one NOTIFY per commit group: let the bus's pump queue every event of the commit(s)
        # that just ended (its subscribers may take a few loop turns) before sending
        queued = -1
        for _ in range(8):
            if len(self._pending) == queued:
                break
            queued = len(self._pending)
            await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        while self._pending:
            wait = self._last_notify + self.min_interval - loop.time()
            if wait > 0 and not self._closing:
                await asyncio.sleep(wait)
            self._last_notify = loop.time()
            payloads = self._batches()
            for payload in payloads:
                for attempt in (1, 2):
                    try:
                        if self._sender is None or self._sender.is_closed():
                            self._sender = await _connect(self.dsn)
                        await self._sender.execute(_NOTIFY_PEERS, sorted(peer_channel(p) for p in self.peers),
                                                   payload)
                        self.sent += 1
                        break
                    except Exception as exc:
                        self._sender = None
                        if attempt == 2:
                            log.warning("event fan-out: NOTIFY failed (%s); other processes miss one batch",
                                        type(exc).__name__)

    # -- receiving ------------------------------------------------------------------------

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(self._own_prefix):
            return  # our own batch (every listener hears every NOTIFY): not worth parsing
        try:
            raw = json.loads(payload)
            origin = raw.get("o")
            if origin == self.origin:
                return  # our own events were delivered here before they were sent
            if isinstance(origin, str) and _ORIGIN.match(origin):
                self.peers.add(origin)  # a newcomer's announcement, or a peer we had not seen yet
            events = raw.get("e")
            if isinstance(events, list) and events:
                self.received += 1
                self._inbox.put_nowait(events)
        except (ValueError, AttributeError):
            log.warning("event fan-out: an unreadable notification was ignored")

    async def _deliver_loop(self) -> None:
        while True:
            events = await self._inbox.get()
            for raw in events:
                try:
                    event = Event.from_json(raw)
                except (KeyError, TypeError, ValueError):
                    log.warning("event fan-out: an unreadable event was ignored")
                    continue
                if self.on_remote is not None:
                    try:
                        self.on_remote(event)
                    except Exception:
                        log.exception("event fan-out: the remote-event hook failed on %s", event.type)
                await self.bus.deliver(event, remote=True)

    def _on_lost(self, _conn: Any) -> None:
        self._lost.set()

    async def _read_peers(self, conn: Any) -> None:
        rows = await conn.fetch(_PEERS, NODE_APP_PREFIX + "%", len(NODE_APP_PREFIX) + 1)
        self.peers = {str(r[0]) for r in rows if r[0] and r[0] != self.origin and _ORIGIN.match(str(r[0]))}

    async def _listen_loop(self) -> None:
        while not self._closing:
            try:
                conn = await _connect(self.dsn, NODE_APP_PREFIX + self.origin)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event fan-out: cannot listen (%s); retrying in %.0fs", type(exc).__name__,
                            self.reconnect_delay)
                await asyncio.sleep(self.reconnect_delay)
                continue
            self._listener = conn
            self._lost.clear()
            try:
                conn.add_termination_listener(self._on_lost)
                await conn.add_listener(CHANNEL, self._on_notify)  # announcements (and older senders)
                await conn.add_listener(self.channel, self._on_notify)  # events for this process
                # in this order (see "Only when someone listens"): LISTEN, read the peers, announce
                await self._read_peers(conn)
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, self._payload([]))
                self._listening.set()
                while not self._closing:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), timeout=self.peer_interval)
                    if self._lost.is_set() or conn.is_closed():
                        break
                    # also the keep-alive: a connection can die silently (a restarted server, a dropped route)
                    await self._read_peers(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event fan-out: listening connection lost (%s); reconnecting", type(exc).__name__)
            finally:
                self._listener = None
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            if not self._closing:
                await asyncio.sleep(self.reconnect_delay)


_ACTIVITY = sa.table("pg_stat_activity", sa.column("application_name"))
#: the names of the processes alive now (each one's listening connection)
_LIVE_NODES = sa.select(sa.func.substr(_ACTIVITY.c.application_name, len(NODE_APP_PREFIX) + 1)).where(
    _ACTIVITY.c.application_name.like(NODE_APP_PREFIX + "%"))
#: how many conversations with replies of ours waiting are remembered (a backstop: rows leave on delivery)
_MAX_TRACKED = 10_000


class NodeAffinity:
    """A customer's replies are sent by the process that wrote them; see the module docstring.

    It is the outbox dispatcher's :class:`inbox.outbox.ClaimAffinity`; ``install(engine)`` makes
    the engine name this process on the outbox rows it writes; ``start()`` watches which
    processes are alive and calls ``on_node_gone`` when one disappears.
    """

    def __init__(self, node: str, *, overdue: float = 10.0, watch_interval: float = 5.0) -> None:
        self.node = node
        self.overdue = overdue
        self.watch_interval = watch_interval
        #: wakes this process's dispatcher (set when the dispatcher is built)
        self.wake: Callable[[], None] | None = None
        #: called when another process disappears: sweep for its unprocessed messages, claim its replies
        self.on_node_gone: list[Callable[[], Awaitable[Any] | None]] = []
        self._waiting: dict[int, set[int]] = {}  # conversation id -> our outbox rows not yet delivered
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.nodes: set[str] | None = None  # the processes seen alive at the last look

    # -- the claim ------------------------------------------------------------------------

    def condition(self) -> Any:
        node = col(OutboxMessage.node)
        return sa.or_(
            node.is_(None),
            node == sa.bindparam("b_node"),
            col(OutboxMessage.next_attempt_at) < sa.bindparam("b_overdue"),
            node.not_in(_LIVE_NODES),
        )

    def params(self, now: datetime) -> dict[str, Any]:
        return {"b_node": self.node, "b_overdue": now - timedelta(seconds=self.overdue)}

    # -- wiring ---------------------------------------------------------------------------

    def install(self, engine: AsyncEngine) -> None:
        """Outbox rows written through ``engine`` name this process (``inbox.models.NODE_OPTION``)."""
        engine.sync_engine.update_execution_options(**{NODE_OPTION: self.node})

    def follow(self, bus: EventBus) -> None:
        """Track this process's replies that are not delivered yet (this process's events only)."""
        if self._unsubscribe is None:
            self._unsubscribe = bus.subscribe(self._on_local, remote=False)

    def _on_local(self, event: Event) -> None:
        conversation_id, outbox_id = event.conversation_id, event.data.get("outbox_id")
        if not isinstance(conversation_id, int) or not isinstance(outbox_id, int):
            return
        if event.type == EventType.message_created and event.data.get("direction") == "out":
            if conversation_id not in self._waiting and len(self._waiting) >= _MAX_TRACKED:
                self._waiting.pop(next(iter(self._waiting)))
            self._waiting.setdefault(conversation_id, set()).add(outbox_id)
        elif event.type == EventType.message_delivery:
            self._forget(conversation_id, outbox_id)

    def on_remote(self, event: Event) -> None:
        """Another process delivered a reply: if a reply of ours in that conversation waited for
        it (per-conversation order), wake our dispatcher; our own row taken over is forgotten."""
        if event.type != EventType.message_delivery or not isinstance(event.conversation_id, int):
            return
        outbox_id = event.data.get("outbox_id")
        if isinstance(outbox_id, int):
            self._forget(event.conversation_id, outbox_id)
        if self._waiting.get(event.conversation_id) and self.wake is not None:
            self.wake()

    def _forget(self, conversation_id: int, outbox_id: int) -> None:
        rows = self._waiting.get(conversation_id)
        if rows is not None:
            rows.discard(outbox_id)
            if not rows:
                del self._waiting[conversation_id]

    # -- who is alive ---------------------------------------------------------------------

    async def start(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="cluster-node-watch")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None

    async def look(self) -> set[str]:
        """The processes alive now; calls ``on_node_gone`` when one seen before is missing."""
        assert self._sessions is not None
        async with self._sessions() as db:
            conn = await db.connection()
            alive = {str(n) for n in (await conn.execute(_LIVE_NODES)).scalars() if n}
        gone = (self.nodes or set()) - alive - {self.node}
        self.nodes = alive
        if gone:
            log.info("cluster: %d other process(es) gone; taking over their messages and replies", len(gone))
            for callback in self.on_node_gone:
                try:
                    result = callback()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception as exc:
                    log.warning("cluster: a take-over step failed (%s)", type(exc).__name__)
        return alive

    async def _watch(self) -> None:
        while True:
            try:
                await self.look()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cluster: cannot see which processes are alive (%s)", type(exc).__name__)
            await asyncio.sleep(self.watch_interval)


class Leadership:
    """Which process runs the periodic jobs: the holder of a PostgreSQL advisory lock.

    Without a DSN (SQLite: one process) this process always leads. ``is_leader`` is read by
    the jobs before each run; a process that loses its connection stops leading at once.
    """

    def __init__(self, dsn: str | None, *, key: int = LEADER_LOCK_KEY, retry: float = 5.0) -> None:
        self.dsn = dsn
        self.key = key
        self.retry = retry
        self._leading = dsn is None
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.changed = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._leading

    def __call__(self) -> bool:
        return self._leading

    async def start(self) -> None:
        if self.dsn is None:
            return
        await self._try_once()
        self._task = asyncio.create_task(self._run(), name="job-leadership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._release()

    def _set(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            log.info("periodic jobs: this process %s", "now runs them" if leading else "no longer runs them")
            self.changed.set()

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if self.dsn is not None:
            self._set(False)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)  # closing the session releases its advisory lock

    async def _try_once(self) -> None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await _connect(self.dsn or "")
                self._lost.clear()
                self._conn.add_termination_listener(lambda _c: self._lost.set())
            got = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key)
            self._set(bool(got))
            if not got:  # do not hold an idle connection while another process leads
                await self._release()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("periodic jobs: cannot reach the database to elect a runner (%s)", type(exc).__name__)
            await self._release()

    async def _run(self) -> None:
        while True:
            if self._leading and self._conn is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), timeout=self.retry)
                try:
                    if self._lost.is_set() or self._conn.is_closed():
                        raise ConnectionError("connection closed")
                    await self._conn.execute("SELECT 1")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("periodic jobs: lost the runner's connection (%s)", type(exc).__name__)
                    await self._release()
            else:
                await asyncio.sleep(self.retry)
                await self._try_once()
