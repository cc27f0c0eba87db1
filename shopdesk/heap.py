"""The cyclic garbage collector, settled once the server has loaded what it keeps for life.

A started server holds ~250,000 objects that live as long as the process: the language models'
tables, SQLAlchemy's mapped classes and compiled statements, the templates, Babel's locale data.
CPython's collector walks them again at every older-generation collection, and with the default
thresholds (700 allocations for a young collection) a busy server collects about 40 times a
second: measured on the closed-loop benchmark (`python -m tests.bench.closed_repeat`), 4–5 % of
the server's CPU went to the collector.

:func:`settle` runs once, after the models are loaded: one full collection, then
``gc.freeze()`` moves every surviving object into the permanent generation that collections
skip, and the young generation's threshold is raised to :data:`YOUNG_THRESHOLD`. A request's
objects are freed by reference counting as it finishes, so the young generation's count (objects
allocated minus objects freed) rarely reaches the threshold; garbage cycles still get collected
once that many accumulate. Measured: the collector's share went from 0.45 s per 10 s to under
0.01 s, with the same object count (no growth) round after round.

Only ``shopdesk serve`` settles the heap; tests and the command-line tools keep the defaults
(a frozen object in a test process would outlive its test).
"""

from __future__ import annotations

import asyncio
import gc
import logging

__all__ = ["OLDER_THRESHOLDS", "YOUNG_THRESHOLD", "settle", "settle_when"]

log = logging.getLogger(__name__)

#: allocations (net of frees) that trigger a young collection; CPython's default is 700
YOUNG_THRESHOLD = 7000
#: young collections per middle one, middle per old (CPython's defaults are 10 and 10)
OLDER_THRESHOLDS = (10, 10)


def settle() -> int:
    """Collect, freeze what survives and raise the young threshold. Returns the number of
    objects frozen (``gc.get_freeze_count()``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    frozen = gc.get_freeze_count()
    log.info("heap settled: %d long-lived objects frozen out of the collector's walks", frozen)
    return frozen


async def settle_when(ready: asyncio.Event) -> None:
    """Settle the heap once ``ready`` is set (the language models are loaded)."""
    await ready.wait()
    settle()
