"""Memory probes of the server under ``tests.bench.memory_profile`` (on its PYTHONPATH only, never
installed). ``BENCH_TRACE_MEMORY``: tracemalloc from the first line; SIGUSR1 writes a snapshot to
``$BENCH_TRACE_MEMORY.<pid>.<n>`` (n counts from 1); tracemalloc itself roughly doubles the Python
heap, so RSS figures of a traced run are not comparable with an untraced one.
``BENCH_MALLOC_TRIM``: SIGUSR2 calls glibc's ``malloc_trim(0)`` (how much of the RSS is freed
memory that malloc keeps)."""

from __future__ import annotations

import os
import signal
from typing import Any

if os.environ.get("BENCH_TRACE_MEMORY"):
    import itertools
    import tracemalloc

    tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "1")))
    _numbers = itertools.count(1)

    def _dump(*_: Any) -> None:
        tracemalloc.take_snapshot().dump(f"{os.environ['BENCH_TRACE_MEMORY']}.{os.getpid()}.{next(_numbers)}")

    signal.signal(signal.SIGUSR1, _dump)

if os.environ.get("BENCH_MALLOC_TRIM"):
    import ctypes

    _libc = ctypes.CDLL("libc.so.6")
    signal.signal(signal.SIGUSR2, lambda *_: _libc.malloc_trim(0))
