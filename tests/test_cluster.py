"""Several processes on one PostgreSQL (shopdesk.cluster): events fan out over LISTEN/NOTIFY,
and exactly one process runs the periodic jobs, handing over when it dies.

Each "process" here is its own bus, engine and connections in this test process: what they
share is only the PostgreSQL server, exactly as between two ``shopdesk serve`` processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inbox.events import Event, EventBus, collect
from shopdesk.cluster import Leadership, PgNotifyFanout, asyncpg_dsn, is_postgres
from shopdesk.db import create_engine, session_maker


async def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), timeout)


async def _terminate_others(dsn: str, application_name_like: str = "%") -> int:
    """pg_terminate_backend every other connection to this database (a dropped route, a
    restarted pooler): returns how many were cut."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE $1",
            application_name_like))
    finally:
        await conn.close()


def test_urls() -> None:
    assert is_postgres("postgresql+asyncpg://u@h:5/db")
    assert not is_postgres("sqlite+aiosqlite:///x.db")
    assert asyncpg_dsn("postgresql+asyncpg://u:p%40ss@h:5/db") == "postgresql://u:p%40ss@h:5/db"


async def test_events_reach_the_other_process_once_in_order(pg_url: str) -> None:
    dsn = asyncpg_dsn(pg_url)
    engine = create_engine(pg_url)
    bus_a, bus_b = EventBus(), EventBus()
    fan_a, fan_b = PgNotifyFanout(dsn, bus_a), PgNotifyFanout(dsn, bus_b)
    await fan_a.start()
    await fan_b.start()
    try:
        await _until(lambda: fan_a.peers == {fan_b.origin})  # b's announcement reached a
        sessions = session_maker(engine)
        bus_a.bind(sessions)
        seen_a: list[Event] = []
        seen_b: list[Event] = []
        bus_a.subscribe(seen_a.append)
        bus_b.subscribe(seen_b.append)

        # one commit with many events (more than fit in one NOTIFY), then a second commit
        async with sessions() as s:
            for i in range(300):
                collect(s, Event("message.created", i, {"message_id": i, "preview": "x" * 40}))
            await s.commit()
        async with sessions() as s:
            collect(s, Event("conversation.updated", 1000, {"status": "resolved"}))
            await s.commit()
        await bus_a.wait_idle()

        await _until(lambda: len(seen_b) == 301)
        assert [e.conversation_id for e in seen_b] == [*range(300), 1000]
        assert seen_b == seen_a  # the same events, in the same order
        assert fan_a.sent >= 2  # 301 events of ~100 bytes need several notifications
        await asyncio.sleep(0.3)
        assert len(seen_a) == 301  # this process saw its own events once, not again from NOTIFY
        assert len(seen_b) == 301

        # a rolled-back write announces nothing, anywhere
        async with sessions() as s:
            collect(s, Event("message.created", 5000, {}))
            await s.rollback()
        await bus_a.wait_idle()
        await asyncio.sleep(0.3)
        assert all(e.conversation_id != 5000 for e in seen_a + seen_b)
    finally:
        await fan_a.stop()
        await fan_b.stop()
        await engine.dispose()


async def test_a_process_alone_sends_nothing_and_one_that_starts_later_hears_events(pg_url: str) -> None:
    """No NOTIFY while nobody else listens; a process that starts later announces itself, so the
    first one sends to it at once (its own periodic look at the peers is an hour away here),
    and the newcomer knows the first one from its own look at start."""
    dsn = asyncpg_dsn(pg_url)
    bus_a, bus_b = EventBus(), EventBus()
    fan_a = PgNotifyFanout(dsn, bus_a, peer_interval=3600)
    fan_b = PgNotifyFanout(dsn, bus_b, peer_interval=3600)
    await fan_a.start()
    try:
        assert fan_a.peers == set()
        for n in range(5):
            await bus_a.publish(Event("presence", n, {}))
        await asyncio.sleep(0.2)
        assert (fan_a.sent, fan_a.skipped) == (0, 5)

        seen_b: list[Event] = []
        bus_b.subscribe(seen_b.append)
        await fan_b.start()
        assert fan_b.peers == {fan_a.origin}
        await _until(lambda: fan_a.peers == {fan_b.origin})
        await bus_a.publish(Event("presence", 100, {}))
        await _until(lambda: len(seen_b) == 1)
        assert seen_b[0].conversation_id == 100 and fan_a.sent == 1
    finally:
        await fan_a.stop()
        await fan_b.stop()


async def test_events_close_together_share_one_notification(pg_url: str) -> None:
    """The first event after a quiet moment goes at once; those that follow within
    ``min_interval`` (separate commits under load) wait and go together, in order."""
    dsn = asyncpg_dsn(pg_url)
    bus_a, bus_b = EventBus(), EventBus()
    fan_a = PgNotifyFanout(dsn, bus_a, min_interval=0.5)
    fan_b = PgNotifyFanout(dsn, bus_b)
    await fan_a.start()
    await fan_b.start()
    try:
        await _until(lambda: fan_a.peers == {fan_b.origin})
        seen_b: list[Event] = []
        bus_b.subscribe(seen_b.append)
        await bus_a.publish(Event("presence", 0, {}))
        await _until(lambda: len(seen_b) == 1)
        for n in range(1, 5):
            await bus_a.publish(Event("presence", n, {}))
            await asyncio.sleep(0)
        await _until(lambda: len(seen_b) == 5)
        assert [e.conversation_id for e in seen_b] == [0, 1, 2, 3, 4]
        assert fan_a.sent == 2 and fan_b.received == 2
    finally:
        await fan_a.stop()
        await fan_b.stop()


async def test_a_peer_that_stops_is_no_longer_sent_to(pg_url: str) -> None:
    dsn = asyncpg_dsn(pg_url)
    bus_a, bus_b = EventBus(), EventBus()
    fan_a = PgNotifyFanout(dsn, bus_a, peer_interval=0.1)
    fan_b = PgNotifyFanout(dsn, bus_b)
    await fan_a.start()
    await fan_b.start()
    try:
        await _until(lambda: fan_a.peers == {fan_b.origin})
        await fan_b.stop()
        await _until(lambda: not fan_a.peers)
        sent = fan_a.sent
        await bus_a.publish(Event("presence", 1, {}))
        await asyncio.sleep(0.2)
        assert fan_a.sent == sent and fan_a.skipped == 1
    finally:
        await fan_a.stop()
        await fan_b.stop()


async def test_a_listener_cut_off_reconnects_and_hears_later_events(pg_url: str) -> None:
    dsn = asyncpg_dsn(pg_url)
    bus_a, bus_b = EventBus(), EventBus()
    fan_a = PgNotifyFanout(dsn, bus_a, reconnect_delay=0.05)
    fan_b = PgNotifyFanout(dsn, bus_b, reconnect_delay=0.05)
    await fan_a.start()
    await fan_b.start()
    try:
        seen_b: list[Event] = []
        bus_b.subscribe(seen_b.append)
        assert await _terminate_others(dsn) >= 2  # both listeners (and any sender) cut

        async def publish_until_heard() -> None:
            n = 0
            while not seen_b:
                n += 1
                await bus_a.publish(Event("presence", n, {}))
                await asyncio.sleep(0.1)

        await asyncio.wait_for(publish_until_heard(), 20)
        assert seen_b[0].type == "presence"
    finally:
        await fan_a.stop()
        await fan_b.stop()


async def test_a_malformed_notification_is_ignored(pg_url: str) -> None:
    import asyncpg

    dsn = asyncpg_dsn(pg_url)
    bus = EventBus()
    fan = PgNotifyFanout(dsn, bus)
    await fan.start()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    conn = await asyncpg.connect(dsn)
    try:
        for payload in ("not json", '{"o": "x", "e": "nope"}', '{"o": "x", "e": [{"no": "type"}]}',
                        '{"o": "x", "e": [{"type": "presence", "conversation_id": 3, "data": {}}]}'):
            await conn.execute("SELECT pg_notify('shopdesk_events', $1)", payload)
        await _until(lambda: len(seen) == 1)
        assert seen[0] == Event("presence", 3, {})
    finally:
        await conn.close()
        await fan.stop()


async def test_one_process_runs_the_periodic_jobs_and_another_takes_over(pg_url: str) -> None:
    dsn = asyncpg_dsn(pg_url)
    first, second = Leadership(dsn, retry=0.1), Leadership(dsn, retry=0.1)
    await first.start()
    await second.start()
    try:
        assert first.is_leader and not second.is_leader
        await asyncio.sleep(0.4)  # several retries: still one leader
        assert first.is_leader and not second.is_leader

        await first.stop()  # a clean shutdown hands over
        await _until(lambda: second.is_leader)
        assert not first.is_leader

        # the leader's connection dies (the process was killed, or the network cut):
        # it stops leading, and a waiting process takes over
        third = Leadership(dsn, retry=0.1)
        await third.start()
        try:
            assert not third.is_leader
            import asyncpg

            admin = await asyncpg.connect(dsn)
            try:
                pids = await admin.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
                assert len(pids) == 1
                await admin.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
            finally:
                await admin.close()
            await _until(lambda: not second.is_leader)
            await _until(lambda: second.is_leader != third.is_leader and (second.is_leader or third.is_leader))
        finally:
            await third.stop()
    finally:
        await first.stop()
        await second.stop()


async def test_sqlite_has_one_process_that_always_leads() -> None:
    only = Leadership(None)
    await only.start()
    assert only.is_leader and only()
    await only.stop()
    assert only.is_leader


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path) -> Callable[[str], Any]:
    from shopdesk.settings import load_settings

    def make(name: str, **extra: Any) -> Any:
        return load_settings(database_url=pg_url, secret_key="test-secret-key-0123456789abcdef0123456789",
                             data_dir=tmp_path / name, shopify_webhook_secret="shpss_test_secret", **extra)

    return make


async def test_two_servers_on_one_database_share_events_and_elect_one_job_runner(
    aiohttp_client: Any, pg_settings: Callable[[str], Any]
) -> None:
    """Two whole servers: a widget message written through one is announced in the other
    (where an agent's live view would refresh), and only one of them runs the periodic jobs."""
    from shopdesk.app import RUNTIME, build_app

    app_a, app_b = build_app(pg_settings("a")), build_app(pg_settings("b", db_pool_size=4, db_max_overflow=2))
    client_a = await aiohttp_client(app_a)
    await aiohttp_client(app_b)
    run_a, run_b = app_a[RUNTIME], app_b[RUNTIME]
    # SHOPDESK_DB_POOL_SIZE + SHOPDESK_DB_MAX_OVERFLOW, all kept once opened (tests/test_pgpool.py)
    assert (run_a.engine.pool.size(), run_b.engine.pool.size()) == (30, 6)
    assert sorted([run_a.leadership.is_leader, run_b.leadership.is_leader]) == [False, True]
    assert run_a.alerts.should_run() != run_b.alerts.should_run()
    assert run_a.pipeline.should_run_periodic() != run_b.pipeline.should_run_periodic()

    heard: list[Event] = []
    run_b.bus.subscribe(heard.append)
    # only the other server delivers replies: the customer's socket is here, the sender there.
    # The replies name this server (the one that wrote them, shopdesk.cluster.NodeAffinity): with
    # its dispatcher stopped, the other server takes them once they are overdue
    run_b.affinity.overdue = 0.5
    run_b.dispatcher.poll_interval = 0.5
    await run_a.dispatcher.stop()
    await asyncio.wait_for(run_a.bot_ready.wait(), 180)
    ws = await client_a.ws_connect("/widget/ws")
    try:
        await ws.send_json({"type": "hello", "lang": "en"})
        await ws.send_json({"type": "message", "text": "hi", "client_id": "c1"})
        await _until(lambda: any(e.type == "message.created" for e in heard))
        created = next(e for e in heard if e.type == "message.created")
        assert created.conversation_id is not None

        async def bot_reply() -> dict[str, Any]:
            while True:
                frame = await ws.receive_json()
                if frame.get("type") == "message" and frame.get("author") == "bot":
                    return dict(frame)

        reply = await asyncio.wait_for(bot_reply(), 60)
        assert reply["text"] and reply["quick_replies"]  # the greeting's menu, sent by the other server
        assert any(e.type == "webchat.frame" for e in heard)
    finally:
        await ws.close()


async def test_a_long_reply_crosses_processes_without_its_text_and_is_read_back(sessions: Any) -> None:
    """A frame whose text is too long for a NOTIFY payload travels as ids; the receiving
    process's hub reads the text from the stored message before pushing it."""
    from inbox.actions.message_record import message_record
    from inbox.messages import InboundMessage
    from inbox.models import Channel, Contact
    from inbox.web.webchat.send import WEBCHAT_FRAME, VisitorHub, WebchatSender

    long_text = ("Ваш заказ уже в пути. " * 60).strip()
    result = await message_record(sessions, InboundMessage(
        channel=Channel.webchat, dedupe_key="v-long:1", contact_external_id="visitorLongText0123456", text=long_text))

    class Socket:
        def __init__(self) -> None:
            self.frames: list[str] = []

        async def send_str(self, data: str) -> None:
            self.frames.append(data)

    wire: list[Event] = []

    class Wire:  # the other process's bus, as the fan-out would deliver to it
        async def send(self, event: Event) -> None:
            wire.append(Event.from_json(event.to_json()))

    here_hub, there_hub = VisitorHub(sessions), VisitorHub(sessions)
    sock = Socket()
    there_hub.add("visitorLongText0123456", sock)  # type: ignore[arg-type]
    bus = EventBus(transport=Wire())
    bus.subscribe(here_hub.on_event)
    sender = WebchatSender(sessions, here_hub, bus)

    from inbox.messages import OutboundPayload

    async with sessions() as db:
        from sqlmodel import select

        contact = (await db.exec(select(Contact).where(Contact.external_id == "visitorLongText0123456"))).one()
    payload = OutboundPayload(text=long_text, message_id=result.message_id, author="customer")
    await sender.send(contact, payload)
    assert len(wire) == 1 and wire[0].type == WEBCHAT_FRAME
    assert "text" not in wire[0].data["frame"]  # not carried
    await there_hub.on_event(wire[0])
    import json

    assert len(sock.frames) == 1
    pushed = json.loads(sock.frames[0])
    assert pushed["text"] == long_text and pushed["id"] == result.message_id


async def test_one_bot_batch_at_a_time_unless_configured_and_never_over_half_the_pool(
    aiohttp_client: Any, pg_settings: Callable[[str], Any]
) -> None:
    """A batch's fixed cost is most of a message's: one batch at a time (the messages arriving
    meanwhile form the next, bigger one) unless SHOPDESK_BOT_BATCHES says otherwise, and batches
    never take more than half the pool (webhooks and the outbox must not wait behind them)."""
    from shopdesk.app import RUNTIME, build_app

    apps = [build_app(pg_settings("default")), build_app(pg_settings("four", bot_batches=4)),
            build_app(pg_settings("small", bot_batches=8, db_pool_size=4, db_max_overflow=2))]
    for app in apps:
        await aiohttp_client(app)
    assert [app[RUNTIME].worker.concurrency for app in apps] == [1, 4, 2]
