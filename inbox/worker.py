"""Runs the bot on recorded inbound messages, off the webhook's request path.

:class:`InboundWorker` takes message ids (``submit``, called after ``message_record``
committed, and ``sweep``, which finds every unprocessed inbound message) and calls
``processor(message_id)``:

* **per conversation, one at a time, oldest first** — a conversation's messages are never
  processed concurrently, so the dialog state is never raced; different conversations run
  in parallel;
* **bounded** — at most ``concurrency`` messages are processed at once;
* **failures** are logged with the message id only (no text, no emails) and the message is
  left unprocessed; the periodic sweep (every ``sweep_interval`` seconds) offers it again,
  up to ``max_failures`` times per process lifetime;
* **the database unavailable** (a lost connection, a restart: ``shopbase.dberrors``) is not
  the message's failure and is not counted: the worker sweeps again after ``retry_delay``
  seconds, doubling up to ``sweep_interval`` while the database stays away, so the service
  resumes by itself seconds after the database is back;
* ``start()`` sweeps once (a crash or restart loses nothing); ``stop()`` lets the messages
  in flight finish, and queued ones simply stay unprocessed for the next start.

The processor owns the transaction that stores the effects and marks the message processed
(``inbox.actions.message_mark_processed``); it should itself skip a message that is already processed.

**Micro-batches** (``batch``, the server's ``Pipeline.process_many``): each conversation's
runner hands its next message to a batcher instead of calling ``processor``; the batcher takes
every message handed in on the same loop turn (one per conversation, at most ``batch_size``,
in conversation-id order) and calls ``batch(ids)`` once, which processes them in one
transaction and returns each message's outcome; outcomes are booked exactly as ``processor``'s
(failures counted, a database outage retried in per-conversation order). At most
``concurrency`` batches run at once.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Message
from inbox.queries.messages import unprocessed_message_ids
from shopbase import stagetrace
from shopbase.dberrors import is_database_unavailable

__all__ = ["InboundWorker"]

log = logging.getLogger(__name__)


_ROUTE = select(Message.id, Message.conversation_id, Message.processed).where(
    col(Message.id).in_(sa.bindparam("b_ids", expanding=True))
)


#: a batched message's outcome when the worker stopped before the message ran
_NOT_RUN = object()


class InboundWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        processor: Callable[[int], Awaitable[None]],
        *,
        concurrency: int = 8,
        sweep_interval: float | None = 300.0,
        max_failures: int = 5,
        ready: asyncio.Event | None = None,
        retry_delay: float = 1.0,
        batch: Callable[[list[int]], Awaitable[dict[int, Exception | None]]] | None = None,
        batch_size: int = 32,
    ) -> None:
        self.sessions = sessions
        self.processor = processor
        #: micro-batching (see the module docstring): ``batch(ids)`` processes the ready messages
        #: of different conversations together and gives each one's outcome (None or its error)
        self.batch = batch
        self.batch_size = max(1, batch_size)
        self._batch_queue: list[tuple[int, int, asyncio.Future[Exception | None | object]]] = []
        self._batcher: asyncio.Task[None] | None = None
        self._batch_tasks: set[asyncio.Task[None]] = set()
        self.sweep_interval = sweep_interval
        self.max_failures = max_failures
        #: set when the processor can run (the language models are loaded); until then messages
        #: are accepted and queued, and the webhooks answer at once
        self.ready = ready
        self._concurrency = concurrency
        self._semaphore = asyncio.Semaphore(concurrency)
        self._incoming: list[int] = []
        self._incoming_ready = asyncio.Event()
        self._known: set[int] = set()  # queued or in flight
        self._queues: dict[int, list[int]] = {}  # conversation id -> heap of message ids
        self._runners: dict[int, asyncio.Task[None]] = {}
        self._failures: dict[int, int] = {}
        self._router: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._routing = 0
        self._stopping = False
        self.retry_delay = retry_delay
        self._next_retry = retry_delay
        self._retry_task: asyncio.Task[None] | None = None

    # -- public ----------------------------------------------------------------------------

    def submit(self, message_id: int, conversation_id: int | None = None) -> None:
        """Queue one inbound message (ignored if it is already queued or in flight).

        ``conversation_id``: the caller just recorded the message (it is not processed): it goes
        straight to its conversation's queue, without the router's look-up, when nothing submitted
        earlier is still being looked up (an earlier message of the conversation could be among
        those, and must not be overtaken) and the processor can run."""
        if self._stopping or message_id in self._known:
            return
        if self._failures.get(message_id, 0) >= self.max_failures:
            return
        self._known.add(message_id)
        if (conversation_id is not None and not self._incoming and not self._routing
                and (self.ready is None or self.ready.is_set())):
            if stagetrace.ENABLED:
                stagetrace.mark("routed", message_id)
            self._enqueue(int(message_id), int(conversation_id))
            return
        self._incoming.append(int(message_id))
        self._incoming_ready.set()
        self._ensure_router()

    async def sweep(self) -> int:
        """Submit every unprocessed inbound message; returns how many were newly queued."""
        async with self.sessions() as session:
            ids = await unprocessed_message_ids(session)
        before = len(self._known)
        for message_id in ids:
            self.submit(message_id)
        return len(self._known) - before

    async def start(self) -> None:
        self._stopping = False
        self._ensure_router()
        await self.sweep()
        if self.sweep_interval and (self._sweeper is None or self._sweeper.done()):
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_periodically(), name="inbound-sweep")

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work; wait (up to ``timeout``) for the messages being processed."""
        self._stopping = True
        self._incoming_ready.set()
        background = [t for t in (self._sweeper, self._router, self._retry_task) if t is not None]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        self._sweeper = self._router = self._retry_task = None
        runners = list(self._runners.values())
        if runners:
            done, pending = await asyncio.wait(runners, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("inbound worker stopped with %d conversation(s) still processing", len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        batching = [t for t in (self._batcher, *self._batch_tasks) if t is not None]
        for task in batching:
            task.cancel()
        await asyncio.gather(*batching, return_exceptions=True)
        self._batcher = None
        self._batch_tasks.clear()
        self._semaphore = asyncio.Semaphore(self._concurrency)  # a batch cancelled before it began kept its slot
        for _, _, waiter in self._batch_queue:
            if not waiter.done():
                waiter.set_result(_NOT_RUN)
        self._batch_queue.clear()
        self._incoming.clear()
        self._queues.clear()
        self._known.clear()

    async def join(self) -> None:
        """Wait until everything submitted so far has been processed (tests, drains)."""
        while self._incoming or self._routing or self._runners:
            waiting = list(self._runners.values())
            if waiting:
                await asyncio.gather(*waiting, return_exceptions=True)
            else:
                await asyncio.sleep(0.005)

    @property
    def in_flight(self) -> int:
        return len(self._known)

    @property
    def concurrency(self) -> int:
        """Batches (or, without batching, messages) processed at once."""
        return self._concurrency

    # -- internals -------------------------------------------------------------------------

    def _ensure_router(self) -> None:
        if self._stopping:
            return
        if self._router is None or self._router.done():
            self._router = asyncio.get_running_loop().create_task(self._route(), name="inbound-router")

    async def _route(self) -> None:
        """Look up the conversations of submitted ids (in submission order, batched)."""
        if self.ready is not None:
            await self.ready.wait()
        while not self._stopping:
            if not self._incoming:
                self._incoming_ready.clear()
                await self._incoming_ready.wait()
                continue
            batch, self._incoming = self._incoming, []
            self._routing = len(batch)
            try:
                async with self.sessions() as session:
                    rows = (await session.exec(_ROUTE, params={"b_ids": batch})).all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("looking up %d inbound message(s) failed (%s); they wait for the next sweep",
                          len(batch), type(exc).__name__)
                self._known.difference_update(batch)
                self._routing = 0
                await asyncio.sleep(0.5)
                continue
            found = {int(mid): (int(cid), bool(done)) for mid, cid, done in rows if mid is not None}
            if stagetrace.ENABLED:
                stagetrace.mark_many("routed", batch)
            for message_id in batch:
                conversation_id, processed = found.get(message_id, (0, True))
                if processed:
                    self._known.discard(message_id)
                    continue
                self._enqueue(message_id, conversation_id)
            self._routing = 0

    def _enqueue(self, message_id: int, conversation_id: int) -> None:
        queue = self._queues.setdefault(conversation_id, [])
        heapq.heappush(queue, message_id)
        if conversation_id not in self._runners:
            # a new runner's first message goes to the batcher now rather than when the runner
            # first runs: one loop turn less before its batch starts
            first = None
            if self.batch is not None:
                head = heapq.heappop(queue)
                first = (head, self._hand_in(conversation_id, head))
            self._runners[conversation_id] = asyncio.get_running_loop().create_task(
                self._drain(conversation_id, first), name=f"inbound-conversation-{conversation_id}"
            )

    async def _drain(self, conversation_id: int,
                     first: tuple[int, asyncio.Future[Exception | None | object]] | None = None) -> None:
        """Process the conversation's queued messages one after the other (``first``: its first
        message, already handed to the batcher, and the future of its outcome)."""
        try:
            while not self._stopping:
                handed: asyncio.Future[Exception | None | object] | None = None
                if first is not None:
                    (message_id, handed), first = first, None
                else:
                    queue = self._queues.get(conversation_id)
                    if not queue:
                        break
                    message_id = heapq.heappop(queue)
                try:
                    if self.batch is not None:
                        outcome = await (handed if handed is not None else self._batched(conversation_id, message_id))
                        if outcome is _NOT_RUN:
                            break
                        assert outcome is None or isinstance(outcome, Exception)
                        done = self._settle(message_id, outcome)
                    else:
                        async with self._semaphore:
                            if self._stopping:
                                break
                            done = await self._process(message_id)
                finally:
                    self._known.discard(message_id)
                if not done:
                    # the database is away: the conversation's later messages must not overtake
                    # this one; the retry sweep queues them all again, in order
                    for later in self._queues.pop(conversation_id, []):
                        self._known.discard(later)
                    break
        finally:
            # no await between the emptiness check above and here: nothing can slip in
            if self._runners.get(conversation_id) is asyncio.current_task():
                del self._runners[conversation_id]
            if not self._queues.get(conversation_id):
                self._queues.pop(conversation_id, None)

    async def _process(self, message_id: int) -> bool:
        """Run the processor; False when the database was unavailable (to be retried)."""
        try:
            await self.processor(message_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._settle(message_id, exc)
        return self._settle(message_id, None)

    def _settle(self, message_id: int, error: Exception | None) -> bool:
        """Book one message's outcome; False when the database was unavailable (to be retried)."""
        if error is None:
            self._failures.pop(message_id, None)
            self._next_retry = self.retry_delay  # the database answers again
            return True
        if is_database_unavailable(error):
            log.warning("inbound message %s waits for the database (%s); trying again shortly",
                        message_id, type(error).__name__)
            self._retry_soon()
            return False
        failures = self._failures[message_id] = self._failures.get(message_id, 0) + 1
        log.error("processing inbound message %s failed (%s, failure %d); left for the next sweep",
                  message_id, type(error).__name__, failures)
        log.debug("traceback for inbound message %s", message_id, exc_info=error)
        return True

    # -- micro-batches -----------------------------------------------------------------------

    async def _batched(self, conversation_id: int, message_id: int) -> Exception | None | object:
        """Hand the conversation's next message to the batcher; its outcome (``_NOT_RUN`` when
        the worker stopped before it ran)."""
        if self._stopping:
            return _NOT_RUN
        return await self._hand_in(conversation_id, message_id)

    def _hand_in(self, conversation_id: int, message_id: int) -> asyncio.Future[Exception | None | object]:
        """Queue one message for the next micro-batch; the future of its outcome."""
        waiter: asyncio.Future[Exception | None | object] = asyncio.get_running_loop().create_future()
        self._batch_queue.append((conversation_id, message_id, waiter))
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.get_running_loop().create_task(self._gather_batches(), name="inbound-batcher")
        return waiter

    async def _gather_batches(self) -> None:
        """Start batches of the queued messages (each conversation has at most one queued: its
        runner waits for the outcome before the next), at most ``concurrency`` batches at once."""
        # no extra loop turn first: this task was created by the first runner that handed a message
        # in, so every runner that was ready on that loop turn has handed its message in by now
        while self._batch_queue and not self._stopping:
            await self._semaphore.acquire()
            if not self._batch_queue or self._stopping:
                self._semaphore.release()
                break
            items, self._batch_queue = self._batch_queue[:self.batch_size], self._batch_queue[self.batch_size:]
            task = asyncio.get_running_loop().create_task(self._run_batch(items), name="inbound-batch")
            self._batch_tasks.add(task)
            task.add_done_callback(self._batch_tasks.discard)
            await asyncio.sleep(0)

    async def _run_batch(self, items: list[tuple[int, int, asyncio.Future[Exception | None | object]]]) -> None:
        assert self.batch is not None
        items.sort(key=lambda item: item[0])  # conversation order: the row locks are always taken in one order
        outcomes: dict[int, Exception | None] = {}
        if stagetrace.ENABLED:
            stagetrace.mark_many("turn", (message_id for _, message_id, _ in items))
        try:
            outcomes = await self.batch([message_id for _, message_id, _ in items])
        except asyncio.CancelledError:
            for _, _, waiter in items:
                if not waiter.done():
                    waiter.set_result(_NOT_RUN)
            raise
        except Exception as exc:  # the batch function's own failure: every message of it failed
            outcomes = dict.fromkeys((message_id for _, message_id, _ in items), exc)
        finally:
            self._semaphore.release()
        for _, message_id, waiter in items:
            if not waiter.done():
                waiter.set_result(outcomes.get(message_id))

    def _retry_soon(self) -> None:
        """Sweep again after the current back-off (one pending retry at a time)."""
        if self._stopping or (self._retry_task is not None and not self._retry_task.done()):
            return
        delay = self._next_retry
        limit = self.sweep_interval or 300.0
        self._next_retry = min(delay * 2, limit)

        async def later() -> None:
            await asyncio.sleep(delay)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("inbound sweep failed (%s); trying again later", type(exc).__name__)
                self._retry_task = None
                self._retry_soon()

        self._retry_task = asyncio.get_running_loop().create_task(later(), name="inbound-retry")

    async def _sweep_periodically(self) -> None:
        assert self.sweep_interval
        while not self._stopping:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("inbound sweep failed (%s)", type(exc).__name__)
