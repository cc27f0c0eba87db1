"""The inbox's counts (one grouped query) agree with its lists, for every view, status and filter."""

from __future__ import annotations

import pytest

from inbox.actions.message_note import message_note
from inbox.models import Conversation, ConversationStatus
from inbox.queries.conversations import VIEWS, count_conversations, known_intents, list_conversations
from tests.test_inbox_store import make_agent, seed_inbox


@pytest.mark.parametrize("extra", [{}, {"channel": "telegram"}, {"priority": "urgent"}, {"label": "vip"}, {"q": "parcel"}])
async def test_counts_equal_the_lists(sessions, extra):
    seeded = await seed_inbox(sessions)
    other = await make_agent(sessions, "other@example.test", name="Other")
    agents = [seeded["me"], other]
    for agent in agents:
        async with sessions() as s:
            for view in VIEWS:
                for status in [None, *(st.value for st in ConversationStatus)]:
                    counts = await count_conversations(s, agent, view=view, status=status, **extra)
                    for v in VIEWS:
                        listed = await list_conversations(s, agent, view=v, status=status, limit=200, **extra)
                        assert counts[v] == len(listed), (agent.email, view, status, v, extra)
                    for st in ConversationStatus:
                        listed = await list_conversations(s, agent, view=view, status=st.value, limit=200, **extra)
                        assert counts[st.value] == len(listed), (agent.email, view, status, st, extra)


async def test_preview_is_the_last_message_that_is_not_internal(sessions):
    seeded = await seed_inbox(sessions)
    me = seeded["me"]
    async with sessions() as s:
        conv = await s.get(Conversation, seeded["bot"])
        for n in range(3):
            await message_note(s, conv, me, f"note {n}")
        await s.commit()
    async with sessions() as s:
        rows = {r.id: r for r in await list_conversations(s, me, view="all", status=None)}
    assert rows[seeded["bot"]].preview == "what are your opening hours" and rows[seeded["bot"]].unread
    assert rows[seeded["mine"]].preview == "x" * 140


async def test_known_intents_are_the_distinct_values_in_order(sessions):
    seeded = await seed_inbox(sessions)
    async with sessions() as s:
        for key, intent in (("urgent", "start_return"), ("mine", "greeting"), ("bot", "start_return"), ("done", None)):
            conv = await s.get(Conversation, seeded[key])
            conv.last_intent = intent
        await s.commit()
    async with sessions() as s:
        assert await known_intents(s) == ["greeting", "start_return", "track_order"]
        assert await known_intents(s, limit=2) == ["greeting", "start_return"]
