"""The periodic alert evaluation: every ``interval`` seconds, evaluate the enabled rules at
``clock()`` and fire what is new, in one transaction (the Slack notices are written in it).

``run_once(now)`` is the whole job once, for tests and for the CLI; ``start()`` / ``stop()`` run it
as a background task of the app. A failed run is logged and retried at the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.alert_fire import alert_fire
from inbox.alerts.config import load_config
from inbox.alerts.rules import evaluate
from shopbase.clock import utcnow

__all__ = ["AlertRunner"]

log = logging.getLogger(__name__)


class AlertRunner:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, timezone: str = "UTC",
                 interval: float = 60.0, clock: Callable[[], datetime] = utcnow,
                 should_run: Callable[[], bool] = lambda: True) -> None:
        self.sessions = sessions
        #: several processes on one PostgreSQL: only the elected one evaluates (shopdesk.cluster)
        self.should_run = should_run
        self.timezone = timezone
        self.interval = interval
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> list[int]:
        """Evaluate at ``now`` (default: the clock) and fire; the ids of the alerts that fired."""
        now = now or self.clock()
        async with self.sessions() as session:
            config = await load_config(session)
            findings = await evaluate(session, now, config, timezone=self.timezone)
            fired = await alert_fire(session, findings, now=now)
            await session.commit()
        if fired:
            log.info("alerts: %d fired (%s)", len(fired), ", ".join(sorted({f.rule for f in findings})))
        return fired

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="alert-rules")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)  # the first run one interval after start, then every interval
            if not self.should_run():
                continue
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert evaluation failed; trying again at the next tick")
