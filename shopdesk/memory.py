"""Giving freed memory back to the system (glibc only; nothing happens on another C library).

glibc's malloc keeps freed memory in its arenas for the next allocations: after loading the
language models (the model files' bytes, lingua's decompression buffers) and after a burst of
traffic (request bodies, rows, replies of hundreds of conversations at once) the server's
resident memory stays at its high-water mark although Python has freed the objects. A large
freed block also raises malloc's mmap threshold, so later large buffers stay in the heap too.
``malloc_trim(0)`` returns the free pages (measured: ~30 MB after loading the models, 8–10 MB
after the benchmark's open-loop bursts; about 3 ms when there is that much to return, 0.2 ms
when there is nothing).

:class:`MemoryTrimmer` checks every ``interval`` seconds how much malloc holds free
(``mallinfo2``, ~0.2 ms) and trims when that is at least ``threshold`` bytes, in a worker thread
so the event loop never waits for it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from typing import Any

__all__ = ["MemoryTrimmer", "free_in_malloc", "return_free_memory"]

log = logging.getLogger(__name__)

#: the default check period and the free memory (bytes) worth a trim
TRIM_INTERVAL = 10.0
TRIM_THRESHOLD = 8 * 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    info = getattr(libc, "mallinfo2", None)  # glibc ≥ 2.33
    if info is not None:
        info.argtypes = []
        info.restype = _MallInfo2
    return libc


_LIBC = _load_libc()


def return_free_memory() -> bool:
    """``malloc_trim(0)``: give malloc's free pages back to the system. True when some were."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


def free_in_malloc() -> int | None:
    """Bytes malloc holds free in its arenas (``mallinfo2().fordblks``), or None when unknown."""
    info = getattr(_LIBC, "mallinfo2", None)
    if info is None:
        return None
    return int(info().fordblks)


class MemoryTrimmer:
    """The periodic trim (see the module's docstring); ``start()`` / ``stop()`` in the app's
    lifecycle. Without glibc it does nothing."""

    def __init__(self, *, interval: float = TRIM_INTERVAL, threshold: int = TRIM_THRESHOLD) -> None:
        self.interval = interval
        self.threshold = threshold
        self.trims = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if _LIBC is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="memory-trim")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def check(self) -> bool:
        """Trim now if malloc holds at least ``threshold`` bytes free (always, when it cannot
        tell). True when it trimmed."""
        free = free_in_malloc()
        if free is not None and free < self.threshold:
            return False
        await asyncio.to_thread(return_free_memory)
        self.trims += 1
        log.debug("returned free memory to the system", extra={"free_bytes": free})
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # pragma: no cover - a failed trim must not stop the server
                log.warning("memory trim failed", exc_info=True)
