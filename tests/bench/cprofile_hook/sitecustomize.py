"""Profiles the event loop's thread of the server under ``tests.bench.fixed_cost --cprofile`` (on
its PYTHONPATH only, never installed): SIGUSR2 starts a fresh ``cProfile`` of the main thread
(timed with ``process_time``: CPU, which a loaded machine leaves alone),
SIGUSR1 stops it and writes ``$BENCH_CPROFILE.<pid>`` (pstats). Never together with the stage
trace or the statement count (same signals)."""

from __future__ import annotations

import cProfile
import os
import signal
import time
from typing import Any

if os.environ.get("BENCH_CPROFILE"):
    _profile: list[cProfile.Profile] = []

    def _start(*_: Any) -> None:
        _profile[:] = [cProfile.Profile(time.process_time)]  # CPU, not wall: the machine is shared
        _profile[0].enable()

    def _dump(*_: Any) -> None:
        if _profile:
            _profile[0].disable()
            _profile[0].dump_stats(f"{os.environ['BENCH_CPROFILE']}.{os.getpid()}")

    signal.signal(signal.SIGUSR2, _start)
    signal.signal(signal.SIGUSR1, _dump)
