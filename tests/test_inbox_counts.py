"""The inbox's counts kept on write (migration 0019, ``inbox.queries.counts``), on SQLite and
PostgreSQL: whoever changes a conversation (an action, plain SQL, a delete), the kept groups
equal a fresh grouped count of the conversations under the access rule; on PostgreSQL the
reader's fold leaves one row per group and the same sums."""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from inbox.models import Agent, Channel, Conversation, ConversationCount, Team
from inbox.queries import counts as counts_module
from inbox.queries.access import check_access
from inbox.queries.conversations import count_conversations
from inbox.queries.counts import count_groups
from inbox.queries.triage import TRIAGE_VIEWS, in_view, triage_counts
from tests.web_helpers import add_agent, customer_says, fast_hashing  # noqa: F401  (autouse fixture)


async def _fresh(sessions: Any, agent: Agent) -> dict[tuple[str, str, int | None], int]:
    """(status, owner, assignee) -> conversations ``agent`` may see, from every conversation."""
    out: dict[tuple[str, str, int | None], int] = {}
    async with sessions() as db:
        for c in (await db.exec(select(Conversation))).all():
            if check_access(agent, c):
                key = (str(getattr(c.status, "value", c.status)), str(getattr(c.owner, "value", c.owner)), c.assignee_id)
                out[key] = out.get(key, 0) + 1
    return out


async def _kept(sessions: Any, agent: Agent) -> dict[tuple[str, str, int | None], int]:
    async with sessions() as db:
        return {(g.status.value, g.owner.value, g.assignee_id): g.n for g in await count_groups(db, agent)}


async def _kept_rows(sessions: Any) -> int:
    async with sessions() as db:
        return int((await db.exec(sa.select(sa.func.count()).select_from(ConversationCount))).scalar_one())  # type: ignore[call-overload]


async def test_kept_counts_follow_every_writer(sessions: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counts_module, "FOLD_AFTER", 20)  # PostgreSQL: fold often
    rng = random.Random(19)
    async with sessions() as db:
        team = Team(name="north")
        db.add(team)
        await db.commit()
        team_id = team.id
    admin = await add_agent(sessions, admin=True)
    bo = await add_agent(sessions, "bo@shop.test", name="Bo")
    cy = await add_agent(sessions, "cy@shop.test", name="Cy", team_id=team_id)
    agents = [admin, bo, cy]
    ids = [(await customer_says(sessions, f"hello {n}", contact=f"visitor-counts-{n:04d}")).conversation_id
           for n in range(24)]
    for agent in agents:
        assert await _kept(sessions, agent) == await _fresh(sessions, agent)
    for step in range(120):
        cid = rng.choice(ids)
        column, value = rng.choice([
            ("status", rng.choice(["open", "pending", "snoozed", "resolved"])),
            ("owner", rng.choice(["bot", "agent"])),
            ("assignee_id", rng.choice([None, admin.id, bo.id, cy.id])),
            ("team_id", rng.choice([None, team_id])),
            ("priority", rng.choice(["low", "urgent"])),  # not a counted column: nothing to add
        ])
        async with sessions() as db:
            if column == "status" and value != "resolved":  # one active conversation per contact
                contact = (await db.get(Conversation, cid)).contact_id  # type: ignore[union-attr]
                others = (await db.exec(select(Conversation.id).where(
                    Conversation.contact_id == contact, Conversation.status != "resolved",  # type: ignore[arg-type]
                    Conversation.id != cid))).all()  # type: ignore[arg-type]
                if others:
                    continue
            await db.exec(sa.update(Conversation).where(Conversation.id == cid).values({column: value}))  # type: ignore[call-overload, arg-type]
            await db.commit()
        if step % 40 == 39:
            for agent in agents:
                assert await _kept(sessions, agent) == await _fresh(sessions, agent), step
    # a rolled-back change leaves the counts alone; a delete takes its conversation out
    async with sessions() as db:
        await db.exec(sa.update(Conversation).values(status="pending"))  # type: ignore[call-overload]
        await db.rollback()
    async with sessions() as db:  # two more (resolved) conversations with nothing attached, then deleted
        first = await db.get(Conversation, ids[0])
        extra = [Conversation(contact_id=first.contact_id, channel=first.channel, status="resolved",  # type: ignore[union-attr]
                              owner="agent", assignee_id=bo.id) for _ in range(2)]
        db.add_all(extra)
        await db.commit()
        gone = [c.id for c in extra]
    for agent in agents:
        assert await _kept(sessions, agent) == await _fresh(sessions, agent)
    async with sessions() as db:
        await db.exec(sa.delete(Conversation).where(Conversation.id.in_(gone)))  # type: ignore[call-overload, union-attr]
        await db.commit()
    for agent in agents:
        assert await _kept(sessions, agent) == await _fresh(sessions, agent)
        async with sessions() as db:
            triage = await triage_counts(db, agent)
            rows = (await db.exec(select(Conversation))).all()
        assert triage == {v: sum(1 for c in rows if in_view(v, agent, c)) for v in TRIAGE_VIEWS}
    groups = len(await _fresh(sessions, admin))
    if db_url.startswith("postgresql"):
        async with sessions() as db:
            await count_groups(db, admin)  # the read that folds
        # folded: about one row per (status, owner, assignee, team), however many changes were made
        assert await _kept_rows(sessions) <= 2 * groups + 20 + 2
    else:
        assert await _kept_rows(sessions) <= 2 * groups + 2  # one row per group, updated in place
    assert await _kept(sessions, admin) == await _fresh(sessions, admin)


async def test_filtered_counts_are_counted_from_the_conversations(sessions: Any) -> None:
    """A filter besides the status (here the channel) cannot use the kept counts: the numbers
    are the grouped count of the matching conversations."""
    admin = await add_agent(sessions, admin=True)
    for n in range(5):
        await customer_says(sessions, f"hi {n}", contact=f"visitor-filter-{n}",
                            channel=Channel.telegram if n < 2 else Channel.webchat)
    async with sessions() as db:
        everything = await count_conversations(db, admin, status=None)
        telegram = await count_conversations(db, admin, status=None, channel="telegram")
        webchat = await count_conversations(db, admin, status=None, channel="webchat")
    assert (everything["all"], telegram["all"], webchat["all"]) == (5, 2, 3)
    assert telegram["open"] == 2 and webchat["open"] == 3
