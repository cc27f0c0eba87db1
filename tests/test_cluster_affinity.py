"""Several processes on one PostgreSQL: a customer's reply is sent by the process that wrote it
(``shopdesk.cluster.NodeAffinity``), and taken over when that process is gone or stuck.

Each "process" is its own engine, bus and dispatcher in this test process; whether a process is
alive is what PostgreSQL says (a connection named ``shopdesk-node:<name>``), as between two
``shopdesk serve`` processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from inbox.actions.message_answer import message_answer
from inbox.actions.message_record import message_record
from inbox.actions.message_send import message_send
from inbox.channels import SenderRegistry
from inbox.events import Event, EventBus, EventType
from inbox.messages import InboundMessage, OutboundPayload
from inbox.models import Author, Channel, Conversation, Message, OutboxMessage, OutboxStatus
from inbox.outbox import OutboxDispatcher
from shopdesk.cluster import NODE_APP_PREFIX, NodeAffinity, asyncpg_dsn
from shopdesk.db import create_engine, session_maker
from tests.test_outbox import Clock, FakeSender


class Process:
    """One server's engine, bus, affinity and dispatcher (with a sender that records)."""

    def __init__(self, url: str, node: str, **dispatcher: Any) -> None:
        self.engine = create_engine(url)
        self.sessions = session_maker(self.engine)
        self.bus = EventBus()
        self.bus.bind(self.sessions)
        self.affinity = NodeAffinity(node, overdue=10.0)
        self.affinity.install(self.engine)
        self.affinity.follow(self.bus)
        self.sender = FakeSender()
        registry = SenderRegistry()
        registry.register(self.sender)
        self.dispatcher = OutboxDispatcher(self.sessions, registry, self.bus, affinity=self.affinity, **dispatcher)
        self.affinity.wake = self.dispatcher.wake

    async def close(self) -> None:
        await self.dispatcher.stop()
        await self.affinity.stop()
        await self.engine.dispose()


class SignOfLife:
    """What makes a process alive for the others: its listening connection's name."""

    def __init__(self, url: str, node: str) -> None:
        self.dsn, self.node, self.conn = asyncpg_dsn(url), node, None

    async def __aenter__(self) -> SignOfLife:
        import asyncpg

        self.conn = await asyncpg.connect(self.dsn, server_settings={"application_name": NODE_APP_PREFIX + self.node})
        return self

    async def die(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    async def __aexit__(self, *exc: object) -> None:
        await self.die()


@pytest.fixture
async def processes(pg_url: str) -> AsyncIterator[Callable[..., Process]]:
    made: list[Process] = []

    def make(node: str, **dispatcher: Any) -> Process:
        made.append(Process(pg_url, node, **dispatcher))
        return made[-1]

    yield make
    for process in made:
        await process.close()


async def _conversation(sessions: Any, contact: str) -> int:
    r = await message_record(sessions, InboundMessage(Channel.telegram, f"{contact}-in", contact, "hi"))
    return r.conversation_id


async def _reply(process: Process, conversation_id: int, *texts: str) -> None:
    async with process.sessions() as s:
        conv = await s.get(Conversation, conversation_id)
        assert conv is not None
        for text in texts:
            message_send(s, conv, OutboundPayload(text), author=Author.bot)
        await s.commit()


async def _rows(sessions: Any) -> list[OutboxMessage]:
    async with sessions() as s:
        return list((await s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


async def test_a_reply_names_the_process_that_wrote_it_and_a_notice_names_none(pg_url: str, processes: Any) -> None:
    a = processes("nodea")
    conv_id = await _conversation(a.sessions, "c1")
    await _reply(a, conv_id, "through the unit of work")  # message_send: the ORM
    async with a.sessions() as s:  # message_answer: the bot's Core INSERTs
        conv = await s.get(Conversation, conv_id)
        inbound = (await s.exec(select(Message).where(Message.conversation_id == conv_id))).first()
        assert conv is not None and inbound is not None
        await message_answer(s, conv, inbound, replies=[OutboundPayload("through a Core insert")], bot_state={},
                             language="en", intent="greeting")
        s.add(OutboxMessage(conversation_id=conv_id, contact_id=None, channel=Channel.slack, payload={"kind": "x"}))
        await s.commit()
    plain = session_maker(create_engine(pg_url))  # a process outside the cluster (the CLI)
    await _reply(type("P", (), {"sessions": plain})(), conv_id, "written by the command line")  # type: ignore[arg-type]
    rows = await _rows(a.sessions)
    assert [(r.payload.get("text"), r.node) for r in rows] == [
        ("through the unit of work", "nodea"), ("through a Core insert", "nodea"), (None, None),
        ("written by the command line", None)]


async def test_only_the_writing_process_sends_its_replies_while_it_lives(pg_url: str, processes: Any) -> None:
    a, b = processes("nodea"), processes("nodeb")
    conv_id = await _conversation(a.sessions, "c1")
    await _reply(a, conv_id, "one", "two")
    async with SignOfLife(pg_url, "nodea"):
        assert await b.dispatcher.run_once() == 0
        assert await b.dispatcher._next_due_in() == b.dispatcher.poll_interval  # nothing for b: it sleeps
        assert await a.dispatcher.run_once() == 2
    assert a.sender.texts == ["one", "two"] and b.sender.texts == []
    assert all(r.status == OutboxStatus.sent for r in await _rows(a.sessions))


async def test_the_replies_of_a_process_that_died_are_taken_over_at_once(pg_url: str, processes: Any) -> None:
    a, b = processes("nodea"), processes("nodeb")
    gone: list[str] = []
    b.affinity.on_node_gone.append(lambda: gone.append("swept"))
    await b.affinity.start(b.sessions)
    conv_id = await _conversation(a.sessions, "c1")
    other = await _conversation(a.sessions, "c2")
    await _reply(a, conv_id, "one", "two", "three")
    await _reply(b, other, "b's own")
    life = SignOfLife(pg_url, "nodea")
    await life.__aenter__()
    try:
        assert NODE_APP_PREFIX and "nodea" in await b.affinity.look()
        assert await b.dispatcher.run_once() == 1  # its own reply only
        await life.die()  # the process is killed: its connection goes with it
        assert "nodea" not in await b.affinity.look()
        assert gone == ["swept"]  # the others sweep for its messages and wake their dispatchers
        assert await b.dispatcher.run_once() == 3  # no lease to wait for: the rows were never claimed
    finally:
        await life.die()
    assert b.sender.texts == ["b's own", "one", "two", "three"]  # once each, in order
    assert a.sender.texts == []


async def test_the_overdue_replies_of_a_stuck_process_are_taken_over(pg_url: str, processes: Any) -> None:
    clock = Clock()
    a, b = processes("nodea"), processes("nodeb", clock=clock)
    conv_id = await _conversation(a.sessions, "c1")
    await _reply(a, conv_id, "one")
    async with SignOfLife(pg_url, "nodea"):  # alive, but its dispatcher does not send
        assert await b.dispatcher.run_once() == 0
        clock.offset = timedelta(seconds=b.affinity.overdue + 1)
        assert await b.dispatcher.run_once() == 1
    assert b.sender.texts == ["one"]


async def test_a_row_in_flight_keeps_its_lease_whoever_owns_it(pg_url: str, processes: Any) -> None:
    """The owner claimed it and is sending when it dies: the others wait for the lease, as before."""
    a, b = processes("nodea", lease_seconds=30), processes("nodeb")
    conv_id = await _conversation(a.sessions, "c1")
    await _reply(a, conv_id, "one")
    claimed = await a.dispatcher._claim()  # claimed, then the process dies before sending
    assert [row.id for row in claimed]
    assert await b.dispatcher.run_once() == 0  # a dead owner (no sign of life), but the lease holds
    assert b.sender.texts == []


async def test_a_reply_delivered_elsewhere_wakes_the_process_whose_reply_waited_for_it() -> None:
    affinity = NodeAffinity("nodea")
    woken: list[int] = []
    affinity.wake = lambda: woken.append(1)
    bus = EventBus()
    affinity.follow(bus)
    created = Event(EventType.message_created.value, 7, {"outbox_id": 70, "direction": "out", "message_id": 1})
    await bus.deliver(created)
    await bus.deliver(Event(EventType.message_created.value, 8, {"outbox_id": 80, "direction": "in"}))
    await bus.deliver(created, remote=True)  # another process's reply: not ours to track
    affinity.on_remote(Event(EventType.message_delivery.value, 9, {"outbox_id": 90, "status": "sent"}))
    assert woken == []  # nothing of ours waits in conversation 9
    affinity.on_remote(Event(EventType.message_delivery.value, 7, {"outbox_id": 69, "status": "sent"}))
    assert woken == [1]  # ours (70) waited behind 69 in conversation 7
    await bus.deliver(Event(EventType.message_delivery.value, 7, {"outbox_id": 70, "status": "sent"}))
    affinity.on_remote(Event(EventType.message_delivery.value, 7, {"outbox_id": 71, "status": "sent"}))
    assert woken == [1]  # ours was delivered: nothing waits any more


async def test_a_dispatcher_with_an_affinity_is_woken_by_its_own_process_only(sessions: Any) -> None:
    bus = EventBus()
    dispatcher = OutboxDispatcher(sessions, SenderRegistry(), bus, affinity=NodeAffinity("nodea"))
    plain = OutboxDispatcher(sessions, SenderRegistry(), bus)
    dispatcher.start()
    plain.start()
    try:
        created = Event(EventType.message_created.value, 1, {"direction": "out", "is_internal": False})
        for d in (dispatcher, plain):
            d._wake.clear()
        await bus.deliver(created, remote=True)
        assert not dispatcher._wake.is_set() and plain._wake.is_set()
        await bus.deliver(created)
        assert dispatcher._wake.is_set()
    finally:
        await dispatcher.stop()
        await plain.stop()


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path) -> Callable[..., Any]:
    from shopdesk.settings import load_settings

    def make(name: str, **extra: Any) -> Any:
        return load_settings(database_url=pg_url, secret_key="test-secret-key-0123456789abcdef0123456789",
                             data_dir=tmp_path / name, shopify_webhook_secret="shpss_test_secret", **extra)

    return make


async def test_two_servers_answer_a_widget_visitor_from_the_server_holding_its_socket(
    aiohttp_client: Any, pg_settings: Callable[..., Any]
) -> None:
    """The common case needs no hop between processes: the server holding the socket records the
    message, runs the turn and sends the reply; the other one sends nothing."""
    from shopdesk.app import RUNTIME, build_app

    app_a, app_b = build_app(pg_settings("a")), build_app(pg_settings("b", db_pool_size=4, db_max_overflow=2))
    client_a = await aiohttp_client(app_a)
    await aiohttp_client(app_b)
    run_a, run_b = app_a[RUNTIME], app_b[RUNTIME]
    sent_by_b: list[str] = []
    webchat_b = run_b.senders.get(Channel.webchat)
    original = webchat_b.send

    async def recording(contact: Any, payload: OutboundPayload) -> Any:
        sent_by_b.append(payload.text)
        return await original(contact, payload)

    webchat_b.send = recording
    await asyncio.wait_for(run_a.bot_ready.wait(), 180)
    ws = await client_a.ws_connect("/widget/ws")
    try:
        await ws.send_json({"type": "hello", "lang": "en"})
        for i, text in enumerate(("hi", "where is my order")):
            await ws.send_json({"type": "message", "text": text, "client_id": f"c{i}"})

            async def bot_reply() -> dict[str, Any]:
                while True:
                    frame = await ws.receive_json()
                    if frame.get("type") == "message" and frame.get("author") == "bot":
                        return dict(frame)

            assert (await asyncio.wait_for(bot_reply(), 60))["text"]
    finally:
        await ws.close()
    await run_a.dispatcher.wait_idle()
    rows = await _rows(run_a.sessions)
    assert rows and {r.node for r in rows} == {run_a.affinity.node}
    assert all(r.status == OutboxStatus.sent for r in rows)
    assert sent_by_b == []
