"""A caller of a record group that goes away (its webhook or socket cancelled while it waits)
cancels neither the group's commit nor the other callers' answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col, select

from inbox.actions.message_record import GROUPS, message_record
from inbox.actions.message_record_group import record_in_groups
from inbox.messages import InboundMessage
from inbox.models import Channel, Message


@pytest.fixture
def grouped(sessions: Any) -> Any:
    record_in_groups(sessions)
    yield
    GROUPS.pop(sessions, None)


def msg(key: str, contact: str, text: str) -> InboundMessage:
    return InboundMessage(Channel.telegram, key, contact, text)


@pytest.mark.parametrize("alone", [True, False])
async def test_a_cancelled_caller_leaves_the_group_and_its_own_message_recorded(sessions: Any, grouped: None,
                                                                                alone: bool) -> None:
    await message_record(sessions, msg("k0", "c1", "hello"))  # a known customer: the common case
    gone = asyncio.create_task(message_record(sessions, msg("k1", "c1", "first")))
    others = [asyncio.create_task(message_record(sessions, msg(f"k{i}", f"c{i}", f"text {i}")))
              for i in range(2, 2 if alone else 5)]
    await asyncio.sleep(0)  # every caller has handed its message in; the group's task has started
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    async with asyncio.timeout(10):
        results = await asyncio.gather(*others)
        group = GROUPS[sessions]
        while group._flusher is not None and not group._flusher.done():  # the commit goes on
            await asyncio.sleep(0.01)
    assert all(not r.duplicate for r in results)
    async with sessions() as s:
        texts = list((await s.exec(select(Message.text).order_by(col(Message.id)))).all())
    # the cancelled caller's message was committed with the group (its sender may deliver it again:
    # the dedupe key makes that a duplicate)
    assert texts == ["hello", "first", *(f"text {i}" for i in range(2, 2 if alone else 5))]
    again = await message_record(sessions, msg("k1", "c1", "first"))
    assert again.duplicate
