"""Fault test: ``shopdesk serve`` is SIGKILLed in the middle of a burst of Telegram webhook updates.

The server runs as a real process on a SQLite file, replying to the loopback Bot API fake. A burst
of updates is posted as Telegram does (several connections, the secret header); after the first
acknowledged ones the server is killed, with messages still unprocessed and replies still in the
outbox. It is started again, and every update that got no 200 is delivered again, as Telegram
redelivers (some of them were committed just before the kill: those are the duplicates the
dedupe must catch). Then every update is stored once, answered by one bot turn, and every reply
sent; a reply can reach Telegram twice only if it was in flight at the kill (Telegram has no
idempotency key). No timing is asserted: every wait is bounded, generously.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.bench.servers import WEBHOOK_SECRET, ServerProcess, start_shopdesk
from tests.fakes.telegram import FakeTelegram, make_message_update, start_fake

pytestmark = pytest.mark.slow

CHATS = 48
KILL_AFTER = 12  # acknowledged updates before the kill
FIRST_CHAT = 7_000_000
OUTBOX_BATCH = 50  # inbox.outbox.OutboxDispatcher's batch: at most this many sends are in flight


async def _bot_ready(server: ServerProcess, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{server.url}/healthz") as resp:
                    if (await resp.json()).get("bot") == "ready":
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"the bot was not ready within {timeout:.0f}s:\n{server.log_tail()}")


def _read(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _outbound_by_chat(db: Path) -> dict[str, list[str]]:
    rows = _read(db, "SELECT c.external_id, m.text FROM message m JOIN conversation v ON v.id = m.conversation_id "
                     "JOIN contact c ON c.id = v.contact_id WHERE m.direction = 'out' AND NOT m.is_internal "
                     "ORDER BY m.id")
    out: dict[str, list[str]] = {}
    for chat, text in rows:
        out.setdefault(str(chat), []).append(text)
    return out


async def _settled(db: Path, fake: FakeTelegram, timeout: float = 120.0) -> None:
    """Every stored inbound message processed, every outbox row sent, every chat answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (unprocessed,), = _read(db, "SELECT count(*) FROM message WHERE direction = 'in' AND NOT processed")
        (pending,), = _read(db, "SELECT count(*) FROM outbox WHERE status = 'pending'")
        answered = {m["chat"]["id"] for m in fake.sent_messages()}
        if not unprocessed and not pending and len(answered) >= CHATS:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not settled within {timeout:.0f}s: {unprocessed} unprocessed, {pending} pending, "
                         f"{len(answered)} of {CHATS} chats answered")


async def _post(http: aiohttp.ClientSession, server: ServerProcess, update: dict[str, Any]) -> bool:
    try:
        async with http.post(f"{server.url}/webhooks/telegram", json=update,
                             headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}) as resp:
            await resp.read()
            return resp.status == 200
    except (TimeoutError, aiohttp.ClientError):
        return False


async def test_sigkill_mid_burst_loses_and_repeats_nothing(tmp_path: Path) -> None:
    fake = FakeTelegram()
    runner, base = await start_fake(fake.app)
    fake.base_url = base
    db = tmp_path / "shop.db"
    url = f"sqlite+aiosqlite:///{db}"
    server: ServerProcess | None = None
    try:
        server = await start_shopdesk("kill-1", url, tmp_path, fake.ptb_base_url, token=fake.token, timeout=180)
        await _bot_ready(server)
        update_ids = itertools.count(1)
        updates = [make_message_update(next(update_ids), FIRST_CHAT + i, "hello", language_code="en")
                   for i in range(CHATS)]

        # the burst, over 4 connections; the server dies right after the KILL_AFTER-th 200
        acked: set[int] = set()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for update in updates:
            queue.put_nowait(update)
        killed = asyncio.Event()
        first = server

        async def deliverer(http: aiohttp.ClientSession) -> None:
            while not queue.empty() and not killed.is_set():
                update = queue.get_nowait()
                if await _post(http, first, update) and not killed.is_set():
                    acked.add(update["update_id"])
                    if len(acked) >= KILL_AFTER:
                        first.proc.kill()  # SIGKILL: no shutdown, no flush, no goodbye
                        killed.set()

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await asyncio.gather(*(deliverer(http) for _ in range(4)))
        assert killed.is_set()
        first.proc.wait(30)
        unacked = [u for u in updates if u["update_id"] not in acked]
        assert unacked  # the kill came mid-burst

        # Telegram delivers again everything that got no 200, until it does
        server = await start_shopdesk("kill-2", url, tmp_path, fake.ptb_base_url, token=fake.token, timeout=180)
        await _bot_ready(server)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            for update in unacked:
                for _attempt in range(20):
                    if await _post(http, server, update):
                        break
                    await asyncio.sleep(0.5)
                else:
                    raise AssertionError(f"update {update['update_id']} was never acknowledged:\n{server.log_tail()}")
        await _settled(db, fake)

        # every update stored exactly once, and read by the bot
        inbound = _read(db, "SELECT dedupe_key, processed FROM message WHERE direction = 'in'")
        keys = [key for key, _ in inbound]
        assert len(keys) == len(set(keys)) == CHATS
        assert {key.rsplit(":", 1)[1] for key in keys} == {str(u["update_id"]) for u in updates}
        assert all(processed for _, processed in inbound)
        # answered once: every chat got the same single turn (a second turn would add replies)
        outbound = _outbound_by_chat(db)
        assert set(outbound) == {str(FIRST_CHAT + i) for i in range(CHATS)}
        turns = {tuple(texts) for texts in outbound.values()}
        assert len(turns) == 1 and next(iter(turns))
        assert _read(db, "SELECT DISTINCT status FROM outbox") == [("sent",)]
        # and sent: each reply reached Telegram, a repeat only for a send in flight at the kill
        duplicates = 0
        for chat, texts in outbound.items():
            received = [m.get("text", "") for m in fake.sent_messages(int(chat))]
            collapsed = [t for i, t in enumerate(received) if i == 0 or t != received[i - 1]]
            assert collapsed == texts, chat
            duplicates += len(received) - len(texts)
        assert duplicates <= OUTBOX_BATCH
    finally:
        if server is not None:
            server.stop()
        await runner.cleanup()
