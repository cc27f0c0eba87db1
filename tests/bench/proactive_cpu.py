"""CPU of the proactive job per shipment update, one at a time (``shipment_notify``) against
chunks (``shipment_notify_many``): ``python -m tests.bench.proactive_cpu [N]``.

Thread time of this (the event loop's) thread around ``ProactiveJob.run_once`` over N updates
on a migrated SQLite file, so other load on the machine hardly moves the figure (wall-clock
throughput does). Seeded like ``tests/bench/proactive.py``; each variant runs twice.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.proactive import _seed

__all__ = ["notify_cpu_ms"]


async def notify_cpu_ms(n: int, *, bulk: bool) -> float:
    """Milliseconds of CPU per update for one pass of the job over ``n`` due updates."""
    from sqlmodel import select

    from inbox.actions.shipment_notify import shipment_notify, shipment_notify_many
    from inbox.proactive import ProactiveJob
    from ordersvc.models import Shipment
    from ordersvc.shipment_updates import record_tracking_event
    from ordersvc.tracking import ShipmentStatus
    from shopdesk.db import create_engine, migrate, session_maker

    with tempfile.TemporaryDirectory(prefix="shopdesk-bench-notify-") as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'notify.db'}")
        await migrate(engine)
        sessions = session_maker(engine)
        await _seed(sessions, n)
        now = datetime.now(UTC).replace(hour=12)  # daytime: no update is held for quiet hours
        async with sessions() as session:
            for shipment_id in (await session.exec(select(Shipment.id))).all():
                await record_tracking_event(session, shipment_id, occurred_at=now,
                                            status=ShipmentStatus.OUT_FOR_DELIVERY, now=now)
            await session.commit()
        many = functools.partial(shipment_notify_many, shop_timezone="UTC") if bulk else None
        job = ProactiveJob(sessions, functools.partial(shipment_notify, shop_timezone="UTC"), clock=lambda: now,
                           chunk=100 if bulk else 50, batch=n + 1, notify_many=many)
        started = time.thread_time()
        outcomes = await job.run_once(late=False)
        spent = time.thread_time() - started
        await engine.dispose()
    if outcomes != {"sent": n}:
        raise RuntimeError(f"unexpected outcomes {outcomes}")
    return spent * 1000 / n


async def _main(n: int) -> None:
    for bulk in (False, True, False, True):
        label = "in chunks (shipment_notify_many)" if bulk else "one at a time (shipment_notify)"
        print(f"{label}: {await notify_cpu_ms(n, bulk=bulk):.2f} ms CPU per update")


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
