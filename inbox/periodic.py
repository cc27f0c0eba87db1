"""A job that runs every ``interval`` seconds in the background of the app (alert rules, SLA
breaches): ``start()`` / ``stop()``, the first run one interval after start, a failed run logged
and retried at the next tick, and ``should_run()`` asked before each run (several processes on
one PostgreSQL: only the elected one runs it, ``shopdesk.cluster.Leadership``).
Subclasses implement ``run_once()``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["PeriodicJob"]

log = logging.getLogger(__name__)


class PeriodicJob:
    #: the background task's name, and what a failure is logged as
    name = "periodic job"

    def __init__(self, *, interval: float, should_run: Callable[[], bool] = lambda: True) -> None:
        self.interval = interval
        self.should_run = should_run
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> Any:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.should_run():
                continue
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; trying again at the next tick", self.name)
