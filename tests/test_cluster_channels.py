"""Several processes on one PostgreSQL: a NOTIFY goes to the channels of the processes it is for
(``shopdesk.cluster.peer_channel``), in one statement, and wakes no other listener — its sender's
own included (issue 16, helper pgstmts). Each "process" is its own bus and connections here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from inbox.events import Event, EventBus
from shopdesk.cluster import CHANNEL, PgNotifyFanout, asyncpg_dsn, peer_channel


async def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


async def _overhear(dsn: str, channels: list[str]) -> tuple[Any, list[tuple[str, str]]]:
    """A bare listening connection: what is notified on ``channels``."""
    import asyncpg

    heard: list[tuple[str, str]] = []
    conn = await asyncpg.connect(dsn)
    for channel in channels:
        await conn.add_listener(channel, lambda _c, _p, ch, payload: heard.append((ch, payload)))
    return conn, heard


async def test_events_go_to_each_peer_channel_in_one_notify_and_wake_nobody_else(pg_url: str) -> None:
    dsn = asyncpg_dsn(pg_url)
    buses = [EventBus() for _ in range(3)]
    fans = [PgNotifyFanout(dsn, bus, peer_interval=3600) for bus in buses]
    a, b, c = fans
    seen: list[list[Event]] = [[], [], []]
    for bus, got in zip(buses, seen, strict=True):
        bus.subscribe(got.append)
    spy = None
    try:
        for fan in fans:
            await fan.start()
        await _until(lambda: all(f.peers == {g.origin for g in fans} - {f.origin} for f in fans))
        # the broadcast channel and a's own: a's events must not be notified there
        spy, overheard = await _overhear(dsn, [CHANNEL, peer_channel(a.origin)])
        await asyncio.sleep(0.2)
        overheard.clear()
        sent = a.sent
        for n in range(3):
            await buses[0].publish(Event("presence", n, {}))
        await _until(lambda: len(seen[1]) == 3 and len(seen[2]) == 3)
        assert [e.conversation_id for e in seen[1]] == [e.conversation_id for e in seen[2]] == [0, 1, 2]
        assert a.sent - sent == 1  # one statement notified both peers
        await asyncio.sleep(0.3)
        assert overheard == []  # neither the broadcast channel nor the sender's own channel was woken
        assert len(seen[0]) == 3  # a saw its own events once, locally
        # and the other way round: b's events reach a and c
        await buses[1].publish(Event("presence", 10, {}))
        await _until(lambda: any(e.conversation_id == 10 for e in seen[0])
                     and any(e.conversation_id == 10 for e in seen[2]))
    finally:
        if spy is not None:
            await spy.close()
        for fan in fans:
            await fan.stop()


async def test_an_origin_that_cannot_be_a_channel_is_not_taken_for_a_peer(pg_url: str) -> None:
    import asyncpg

    dsn = asyncpg_dsn(pg_url)
    bus = EventBus()
    fan = PgNotifyFanout(dsn, bus)
    seen: list[Event] = []
    bus.subscribe(seen.append)
    await fan.start()
    conn = await asyncpg.connect(dsn)
    try:
        event = '{"type": "presence", "conversation_id": 7, "data": {}}'
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, '{"o": "' + "x" * 80 + '", "e": [' + event + "]}")
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, '{"o": "bad origin!", "e": [' + event + "]}")
        await _until(lambda: len(seen) == 2)  # the events are still delivered ...
        assert fan.peers == set()  # ... but no NOTIFY will be sent to such a "peer" (a too long channel fails it)
    finally:
        await conn.close()
        await fan.stop()
