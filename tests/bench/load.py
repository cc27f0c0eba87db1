"""Load on one server: the widget socket or the Telegram webhook, closed loop or open loop.

Pairing replies with messages. Every customer (a widget socket, or a Telegram chat) keeps a
FIFO of its messages still waiting for an answer; the next bot reply to that customer answers
the oldest one (the bot answers each of the benchmark's messages with exactly one reply, see
``texts``, and keeps per-conversation order). A reply nobody waits for is counted as
``extra``; a message refused by the server (an error frame, a non-200 webhook answer) is an
``error`` and never waits.

* Closed loop: ``clients`` customers-at-a-keyboard, each sending its next message only after
  the previous one was answered (rotating over a few conversations of its own, so that no
  widget socket goes over the widget's per-socket allowance). Throughput = answered / time.
* Open loop: messages leave on a fixed schedule (``rate`` per second) whatever the server
  does, spread over ``rate × spacing`` customers; latency is counted from the *scheduled*
  time, so a client that falls behind cannot hide the server's queueing. After the schedule,
  replies are awaited up to ``drain`` seconds; what is still missing then is ``lost``.

Every wait is bounded; nothing here can hang a run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from tests.bench.texts import CUSTOMER_TURNS, LANGUAGES
from tests.fakes.telegram import make_message_update

__all__ = ["Router", "Stats", "TelegramTarget", "WidgetTarget", "closed_loop", "first_answer", "open_loop", "percentile"]

now = time.perf_counter


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100, nearest rank) of ``values``, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


@dataclass
class Stats:
    """One measured phase."""

    phase: str
    offered: float | None = None
    sent: int = 0
    answered: int = 0
    errors: int = 0
    late: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)
    started: float = 0.0
    ended: float = 0.0
    closed: bool = False
    note: str = ""
    window_end: float | None = None  # closed loop: no new messages after this
    last_answer: float = 0.0
    cpu_started: float = field(default_factory=time.process_time)
    cpu_ended: float = 0.0

    @property
    def waiting(self) -> int:
        return self.sent - self.answered - self.errors - self.late

    def close(self) -> None:
        self.ended = now()
        self.cpu_ended = time.process_time()
        self.closed = True

    def summary(self) -> dict[str, Any]:
        elapsed = max(1e-9, (self.ended or now()) - self.started)
        rate = self.answered / elapsed
        if self.window_end is not None and self.last_answer:
            # closed loop: every answer, over the time until the last one (the server stays
            # busy until then; counting only the window would miss answers slower than it)
            rate = self.answered / max(1e-9, self.last_answer - self.started)
        p50, p99 = percentile(self.latencies, 50), percentile(self.latencies, 99)
        return {
            "phase": self.phase,
            "offered_per_s": self.offered,
            "seconds": round(elapsed, 2),
            "sent": self.sent,
            "answered": self.answered,
            "answered_per_s": round(rate, 1),
            "errors": self.errors,
            "lost": self.sent - self.answered - self.errors,
            "p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 1) if self.latencies else None,
            # the load generator's own CPU use: near 100 %, the figures are bounded by it, not the server
            "client_cpu_pct": round(100 * (self.cpu_ended - self.cpu_started) / elapsed) if self.closed else None,
            "note": self.note,
        }


class _Entry:
    __slots__ = ("t0", "stats", "fut", "tag")

    def __init__(self, t0: float, stats: Stats, fut: asyncio.Future[None] | None, tag: str) -> None:
        self.t0, self.stats, self.fut, self.tag = t0, stats, fut, tag


class Router:
    """The per-customer FIFOs of messages waiting for a reply."""

    def __init__(self) -> None:
        self.queues: dict[Any, deque[_Entry]] = {}
        self.extra = 0
        self.outstanding = 0
        self._tags = itertools.count(1)

    def expect(self, key: Any, t0: float, stats: Stats, fut: asyncio.Future[None] | None = None) -> _Entry:
        entry = _Entry(t0, stats, fut, f"b{next(self._tags)}")
        self.queues.setdefault(key, deque()).append(entry)
        self.outstanding += 1
        stats.sent += 1
        return entry

    def arrived(self, key: Any, at: float) -> None:
        queue = self.queues.get(key)
        if not queue:
            self.extra += 1
            return
        entry = queue.popleft()
        if not queue:
            del self.queues[key]
        self.outstanding -= 1
        if entry.stats.closed:
            entry.stats.late += 1
        else:
            stats = entry.stats
            stats.answered += 1
            stats.latencies.append(at - entry.t0)
            stats.last_answer = max(stats.last_answer, at)
        if entry.fut is not None and not entry.fut.done():
            entry.fut.set_result(None)

    def failed(self, key: Any, entry: _Entry | None = None, tag: str | None = None) -> None:
        """The server refused this message: no reply will come for it."""
        queue = self.queues.get(key)
        if not queue:
            return
        found = entry if entry is not None else next((e for e in queue if e.tag == tag), None)
        if found is None or found not in queue:
            return
        queue.remove(found)
        if not queue:
            del self.queues[key]
        self.outstanding -= 1
        found.stats.errors += 1
        if found.fut is not None and not found.fut.done():
            found.fut.set_result(None)

    async def settle(self, timeout: float) -> bool:
        """Wait until every message sent so far was answered (or refused); False on timeout."""
        deadline = now() + timeout
        while self.outstanding > 0 and now() < deadline:
            await asyncio.sleep(0.05)
        return self.outstanding == 0


class Target(Protocol):
    path: str
    keys: list[Any]

    async def send(self, key: Any, entry: _Entry) -> bool: ...


def _text(key_index: int, turn: int) -> tuple[str, str]:
    lang = LANGUAGES[key_index % len(LANGUAGES)]
    turns = CUSTOMER_TURNS[lang]
    return lang, turns[turn % len(turns)]


class WidgetTarget:
    """Customers on ``/widget/ws``: one visitor per socket; ``open()`` connects them (hello,
    history) before anything is measured."""

    path = "widget"

    def __init__(self, base_url: str | list[str], router: Router) -> None:
        bases = [base_url] if isinstance(base_url, str) else base_url
        self.urls = [b + "/widget/ws" for b in bases]  # customers spread over several processes
        self.url = self.urls[0]
        self.router = router
        self.keys: list[int] = []
        self._sockets: dict[int, aiohttp.ClientWebSocketResponse] = {}
        self._turns: dict[int, int] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self.refused: list[str] = []

    async def open(self, count: int, *, timeout: float = 60.0, concurrency: int = 32) -> None:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                           timeout=aiohttp.ClientTimeout(total=None, connect=10))
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with gate:
                assert self._http is not None
                ws = await self._http.ws_connect(self.urls[index % len(self.urls)], heartbeat=None, autoping=True)
                lang, _ = _text(index, 0)
                await ws.send_str(json.dumps({"type": "hello", "lang": lang}))
                while True:
                    msg = await ws.receive(timeout=10)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        raise RuntimeError(f"widget socket closed during hello ({msg.type.name})")
                    if json.loads(msg.data).get("type") == "history":
                        break
                self._sockets[index] = ws
                self.keys.append(index)
                self._readers.append(asyncio.create_task(self._read(index, ws)))

        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), timeout)
        self.keys.sort()

    async def _read(self, key: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            arrived = now()
            frame = json.loads(msg.data)
            kind = frame.get("type")
            if kind == "message" and frame.get("author") != "customer":
                self.router.arrived(key, arrived)
            elif kind == "error":
                if len(self.refused) < 5:
                    self.refused.append(str(frame.get("message", ""))[:120])
                self.router.failed(key, tag=frame.get("client_id"))

    async def send(self, key: int, entry: _Entry) -> bool:
        turn = self._turns.get(key, 0)
        self._turns[key] = turn + 1
        _, text = _text(key, turn)
        try:
            await self._sockets[key].send_str(json.dumps({"type": "message", "text": text, "client_id": entry.tag}))
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            self.router.failed(key, entry)
            return False
        return True

    async def close(self) -> None:
        for ws in self._sockets.values():
            await ws.close()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._http is not None:
            await self._http.close()


class TelegramTarget:
    """Customers as Telegram chats: updates POSTed to the webhook with the secret header (at most
    ``connections`` at once, as Telegram itself delivers with a bounded number of connections);
    the replies reach the fake Bot API, which calls ``router.arrived``."""

    path = "telegram"

    def __init__(self, base_url: str | list[str], router: Router, secret: str, *, customers: int,
                 connections: int = 100, first_chat: int = 10_000_000) -> None:
        bases = [base_url] if isinstance(base_url, str) else base_url
        self.urls = [b + "/webhooks/telegram" for b in bases]  # chats spread over several processes
        self.url = self.urls[0]
        self.router = router
        self.headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        self.keys = [first_chat + i for i in range(customers)]
        self.first_chat = first_chat
        self._turns: dict[int, int] = {}
        self._update_ids = itertools.count(1)
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                           timeout=aiohttp.ClientTimeout(total=30))
        self.refused: list[str] = []

    async def open(self, count: int, **_: Any) -> None:
        """Nothing to connect: a chat exists from its first update."""

    async def send(self, key: int, entry: _Entry) -> bool:
        turn = self._turns.get(key, 0)
        self._turns[key] = turn + 1
        lang, text = _text(key - self.first_chat, turn)
        update = make_message_update(next(self._update_ids), key, text, language_code=lang.lower())
        try:
            async with self._http.post(self.urls[key % len(self.urls)], json=update, headers=self.headers) as resp:
                await resp.read()
                ok = resp.status == 200
                if not ok and len(self.refused) < 5:
                    self.refused.append(f"HTTP {resp.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            ok = False
            if len(self.refused) < 5:
                self.refused.append(type(exc).__name__)
        if not ok:
            self.router.failed(key, entry)
        return ok

    async def close(self) -> None:
        await self._http.close()


async def closed_loop(target: Target, router: Router, *, clients: int, duration: float, bound: float,
                      grace: float, phase: str = "closed") -> Stats:
    """``clients`` customers, each waiting (at most ``bound`` s) for the answer before its next
    message, for ``duration`` s; then the messages still in flight get ``grace`` s more. msg/s is
    every answer over the time to the last one. A customer whose answer did not come within
    ``bound`` stops (its answer must not pair with a later message)."""
    stats = Stats(phase)
    loop = asyncio.get_running_loop()
    groups = [list(target.keys[i::clients]) for i in range(min(clients, len(target.keys)))]
    stats.started = now()
    deadline = stats.window_end = stats.started + duration

    async def customer(keys: list[Any]) -> None:
        turn = 0
        while keys and now() < deadline:
            key = keys[turn % len(keys)]
            turn += 1
            fut: asyncio.Future[None] = loop.create_future()
            entry = router.expect(key, now(), stats, fut)
            if not await target.send(key, entry):
                await asyncio.sleep(0.5)  # refused (say, over the widget's allowance): back off
                continue
            try:
                await asyncio.wait_for(fut, bound)
            except TimeoutError:
                keys.remove(key)

    tasks = [asyncio.create_task(customer(g)) for g in groups]
    _, pending = await asyncio.wait(tasks, timeout=duration + grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stats.close()
    if stats.waiting:
        stats.note = f"{stats.waiting} still in flight {grace:g}s after the window"
    return stats


async def first_answer(target: Target, router: Router, *, bound: float) -> float | None:
    """Seconds until one message is answered (the server may say it is up before its models are
    loaded: this is when it can really answer), or None after ``bound`` s."""
    stats = Stats("first answer")
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = now()
    entry = router.expect(target.keys[0], started, stats, fut)
    if not await target.send(target.keys[0], entry):
        return None
    try:
        await asyncio.wait_for(fut, bound)
    except TimeoutError:
        return None
    return now() - started


async def open_loop(target: Target, router: Router, *, rate: float, duration: float, drain: float,
                    customers: int, phase: str | None = None) -> Stats:
    """``rate`` messages per second for ``duration`` s over the first ``customers`` keys, then up
    to ``drain`` s for the answers."""
    stats = Stats(phase or f"open {rate:g}/s", offered=rate)
    keys = target.keys[: max(1, customers)]
    count = max(1, int(rate * duration))
    tasks: set[asyncio.Task[bool]] = set()
    stats.started = start = now() + 0.02
    for i in range(count):
        due = start + i / rate
        delay = due - now()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        elif i % 50 == 0:
            await asyncio.sleep(0)  # behind schedule: still let replies in
        key = keys[i % len(keys)]
        entry = router.expect(key, due, stats)
        task = asyncio.create_task(target.send(key, entry))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    deadline = now() + drain
    while stats.waiting > 0 and now() < deadline:
        await asyncio.sleep(0.02)
    stats.close()
    if stats.waiting > 0:
        stats.note = f"{stats.waiting} not answered within {drain:g}s after the last send"
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats

