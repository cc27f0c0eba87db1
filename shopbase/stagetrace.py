"""Debug-only timestamps of the stages of a customer message (``tests/bench/stages.py``).

Off unless the server starts with ``BENCH_STAGE_TRACE=<file>``; then every hot-path stage
appends ``(stage, key, time.perf_counter())`` to a list in memory (no I/O on the hot path) and
the list is written to ``<file>.<pid>`` as tab-separated lines at exit or on ``SIGUSR1``
(``reset()``, on ``SIGUSR2``, empties it; the same signals as ``tests/bench/count_statements``,
so never both in one server). Off, a stage costs one global lookup and a falsy test.

``perf_counter`` is CLOCK_MONOTONIC on Linux: one clock for every process on the machine, so
the load generator's own timestamps can be laid beside the server's.

Each stage also stamps ``time.thread_time()`` of the thread that runs it (the event loop's: on
SQLite every statement runs on it too): the loop's CPU spent between two stages of a message is
the work done ahead of it, a figure that a loaded machine (which stretches wall time) leaves alone.

Stages (the key): ``received``/``recorded`` (inbound message id; ``received`` is when the
handler got the frame or the webhook's body), ``committed`` (inbound id, its group commit
done), ``routed`` (inbound id, the worker looked it up), ``turn`` (inbound id, its micro-batch
started), ``answered`` (inbound id, the batch committed), ``claimed``/``sent`` (conversation id:
the outbox row of a reply claimed, the platform's send returned); ``conv`` (inbound id →
conversation id, to pair the outbox's rows with the messages they answer).
"""

from __future__ import annotations

import atexit
import os
import signal
import time
from contextvars import ContextVar
from typing import Any

__all__ = ["ENABLED", "arrived", "mark", "mark_many", "recorded"]

_PATH = os.environ.get("BENCH_STAGE_TRACE", "")
#: tested on the hot path before anything else is done
ENABLED = bool(_PATH)
_events: list[tuple[str, int, float, float]] = []
now = time.perf_counter
cpu = time.thread_time  # the event loop's thread: its CPU clock advances only while it works


#: when the current request's handler got the message (set by ``arrived``)
_ARRIVED: ContextVar[tuple[float, float] | None] = ContextVar("shopdesk_stage_arrived", default=None)


def arrived() -> None:
    """The handler got a customer's message (its id is known only once it is recorded)."""
    _ARRIVED.set((now(), cpu()))


def recorded(message_id: int, conversation_id: int) -> None:
    """The message is recorded and its handler runs again."""
    at, used = now(), cpu()
    got, got_used = _ARRIVED.get() or (at, used)
    _events.append(("received", int(message_id), got, got_used))
    _events.append(("recorded", int(message_id), at, used))
    _events.append(("conv", int(message_id), float(conversation_id), 0.0))


def mark(stage: str, key: int) -> None:
    _events.append((stage, int(key), now(), cpu()))


def mark_many(stage: str, keys: Any) -> None:
    at, used = now(), cpu()
    _events.extend((stage, int(key), at, used) for key in keys)


def dump(*_: Any) -> None:
    with open(f"{_PATH}.{os.getpid()}", "w") as out:
        out.writelines(f"{stage}\t{key}\t{at!r}\t{used!r}\n" for stage, key, at, used in _events)


def reset(*_: Any) -> None:
    _events.clear()


if ENABLED:
    atexit.register(dump)
    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGUSR2, reset)
