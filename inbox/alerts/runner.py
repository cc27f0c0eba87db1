"""The periodic alert evaluation: every ``interval`` seconds, evaluate the enabled rules at
``clock()`` and fire what is new, in one transaction (the Slack notices are written in it).

``run_once(now)`` is the whole job once, for tests and for the CLI; ``start()`` / ``stop()`` run it
as a background task of the app. A failed run is logged and retried at the next tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.alert_fire import alert_fire
from inbox.alerts.config import load_config
from inbox.alerts.rules import evaluate
from inbox.periodic import PeriodicJob
from shopbase.clock import utcnow

__all__ = ["AlertRunner"]

log = logging.getLogger(__name__)


class AlertRunner(PeriodicJob):
    name = "alert-rules"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, timezone: str = "UTC",
                 interval: float = 60.0, clock: Callable[[], datetime] = utcnow,
                 should_run: Callable[[], bool] = lambda: True) -> None:
        super().__init__(interval=interval, should_run=should_run)
        self.sessions = sessions
        self.timezone = timezone
        self.clock = clock

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
