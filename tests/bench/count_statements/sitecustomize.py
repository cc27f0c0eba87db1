"""Counts the SQL statements of the server under ``tests.bench.per_message`` (on its PYTHONPATH
only, never installed): SIGUSR2 starts the count afresh, SIGUSR1 writes it to
``$BENCH_COUNT_STATEMENTS.<pid>`` (count, tab, statement; executemany marked ``[many]``)."""

from __future__ import annotations

import collections
import os
import signal
from typing import Any

if os.environ.get("BENCH_COUNT_STATEMENTS"):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _counts: collections.Counter[str] = collections.Counter()

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, executemany: bool) -> None:
        _counts[" ".join(statement.split())[:160] + (" [many]" if executemany else "")] += 1

    def _dump(*_: Any) -> None:
        with open(f"{os.environ['BENCH_COUNT_STATEMENTS']}.{os.getpid()}", "w") as out:
            out.writelines(f"{n}\t{s}\n" for s, n in _counts.most_common())

    signal.signal(signal.SIGUSR1, _dump)
    signal.signal(signal.SIGUSR2, lambda *_: _counts.clear())
