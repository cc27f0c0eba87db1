"""PostgreSQL: a bot turn reads its message under the conversation's lock, so a turn that waited
for another process's turn on the same message sees it processed (and does not answer again).
Several processes can reach one message: a sweep after a database error or a process gone submits
every unprocessed message, also those another process has queued."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from bot.pipeline import _BATCH_ROWS, _BATCH_ROWS_PG, _TURN_ROWS
from inbox.actions.message_record import message_record
from inbox.messages import InboundMessage
from inbox.models import Channel
from shopdesk.db import create_engine, session_maker


@pytest.mark.parametrize("batch", [False, True, "array"], ids=["one turn", "micro-batch", "micro-batch, ids as an array"])
async def test_a_turn_that_waited_for_the_lock_sees_the_message_processed(pg_url: str, batch: bool | str) -> None:
    engine = create_engine(pg_url)
    try:
        sessions = session_maker(engine)
        recorded = await message_record(sessions, InboundMessage(
            channel=Channel.telegram, dedupe_key="lock:1", contact_external_id="900", text="hi"))
        statement, params = ((_BATCH_ROWS_PG if batch == "array" else _BATCH_ROWS, {"b_ids": [recorded.message_id]})
                             if batch else (_TURN_ROWS, {"b_id": recorded.message_id}))
        async with sessions() as first, sessions() as second:
            assert not (await first.exec(_TURN_ROWS, params={"b_id": recorded.message_id})).one()[0].processed
            await first.exec(sa.text("UPDATE message SET processed = true WHERE id = :id"),
                             params={"id": recorded.message_id})
            waiting = asyncio.create_task(second.exec(statement, params=params))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the conversation is locked by the first turn
            await first.commit()
            row = (await waiting).one()
            second.expunge_all()
            assert row[0].processed  # the latest version, not the one its snapshot saw
    finally:
        await engine.dispose()
