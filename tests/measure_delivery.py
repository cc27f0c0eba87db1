"""Measure duplicates with a slow Bot API (issue 16): a measurement, not part of the suite.

Run explicitly (its name does not start with ``test_``, so the suite never collects it):

    .venv/bin/python -m pytest tests/measure_delivery.py -n 0 -s -q -k sqlite

100 customers each get one reply while the loopback Bot API (``tests/fakes/telegram.py``, the
real wire format; python-telegram-bot's real client) takes every sendMessage at once but answers
only after 20 s, as in the issue. It runs twice: with the default read timeout
(``SHOPDESK_TELEGRAM_READ_TIMEOUT``, 60 s: the slow answer arrives) and with the old 15 s (the
answer never arrives in time: the outcome is unknown). It prints the messages each customer
received and how the outbox rows ended.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from inbox.messages import OutboundPayload
from inbox.models import OutboxMessage
from tests.db_helpers import rows
from tests.fakes.telegram import FakeTelegram
from tests.test_telegram import _conversation, _reply, make_env, tg_settings

CUSTOMERS = 100
ANSWER_AFTER = 20.0


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeTelegram:
    tg = FakeTelegram()
    server = await aiohttp_server(tg.app)
    tg.base_url = str(server.make_url("")).rstrip("/")
    return tg


@pytest.mark.parametrize("read_timeout", [60.0, 15.0])
async def test_measure_slow_bot_api(aiohttp_client: Any, fake: FakeTelegram, settings: Any, sessions: Any,
                                    read_timeout: float) -> None:
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake, telegram_read_timeout=read_timeout,
                                                           telegram_connection_pool_size=128),
                         sessions, concurrency=CUSTOMERS, send_timeout=read_timeout + 60)
    for i in range(CUSTOMERS):
        conversation_id = await _conversation(env, chat=5000 + i, update_id=9000 + i)
        await _reply(sessions, conversation_id, OutboundPayload(f"your order {i} has shipped"))
    fake.answer_after("sendMessage", ANSWER_AFTER)
    started = time.monotonic()
    env.dispatcher.start()
    try:
        await env.dispatcher.wait_idle(timeout=ANSWER_AFTER + read_timeout + 120)
    finally:
        await env.dispatcher.stop()
    elapsed = time.monotonic() - started
    received = Counter(m["chat"]["id"] for m in fake.sent_messages())
    statuses = Counter(r.status.value for r in await rows(sessions, OutboxMessage))
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    print(f"\nread timeout {read_timeout:g} s, sendMessage answered after {ANSWER_AFTER:g} s, {CUSTOMERS} customers: "
          f"{len(received)} received, {duplicates} duplicates, {len(fake.calls_for('sendMessage'))} sendMessage calls, "
          f"outbox {dict(statuses)}, {elapsed:.1f} s")
    assert duplicates == 0
    await asyncio.sleep(0)
