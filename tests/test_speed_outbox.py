"""A restarted sole server releases the claims of the dead one: its replies go out at once, not
when the lease runs out (``OutboxDispatcher.release_claims``)."""

from __future__ import annotations

import pytest

from inbox.models import OutboxStatus
from inbox.outbox import OutboxDispatcher
from tests.test_outbox import (  # noqa: F401  (fixtures)
    SimulatedCrash,
    all_sent,
    conversation_with,
    outbox_rows,
    sender,
    senders,
)


async def test_released_claims_are_sent_at_once_keeping_order(sessions, senders, sender, bus):  # noqa: F811
    await conversation_with(sessions, "c1", "m1", "m2", "m3")
    sender.script["m2"] = [SimulatedCrash()]
    crashed = OutboxDispatcher(sessions, senders, bus, lease_seconds=60)
    with pytest.raises(SimulatedCrash):
        await crashed.run_once()
    assert await OutboxDispatcher(sessions, senders, bus).run_once() == 0  # m2 leased by the dead one

    restarted = OutboxDispatcher(sessions, senders, bus)
    assert await restarted.release_claims() == 1
    assert await restarted.run_once() == 2  # within the lease: no clock moved
    assert sender.texts == ["m1", "m2", "m2", "m3"]  # m2 twice: the one row in flight at the crash
    assert await all_sent(sessions)
    assert await restarted.release_claims() == 0
    assert [r.status for r in await outbox_rows(sessions)] == [OutboxStatus.sent] * 3
