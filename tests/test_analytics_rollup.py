"""The daily rollup (``conversation_daily``, kept by triggers) stays equal to a fresh count from
the conversations after any sequence of real changes, on SQLite and PostgreSQL; the report reads
the same numbers from it as from the conversations; a zone change falls back, then rebuilds."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from inbox.actions.analytics_rebuild import analytics_rebuild, ensure_analytics_rollup
from inbox.actions.base import write_audit
from inbox.actions.contact_link import contact_link
from inbox.actions.conversation_assign import conversation_assign
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.conversation_handback import conversation_handback
from inbox.actions.conversation_status import conversation_status
from inbox.actions.customer_erase import customer_erase
from inbox.actions.customer_link import ensure_profile
from inbox.actions.customer_merge import customer_merge
from inbox.actions.message_send import agent_reply
from inbox.analytics import metrics
from inbox.analytics.period import parse_query
from inbox.analytics.report import build_report
from inbox.analytics.rollup import (
    fresh_counts,
    fresh_responses,
    rollup_counts,
    rollup_cube,
    rollup_durations,
    rollup_responses,
    rollup_zone,
)
from inbox.models import Agent, AuditEvent, Channel, Contact, Conversation, ConversationStatus, Role
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from tests.analytics_data import FIRST, LAST, NOW
from tests.analytics_data import seed as seed_dataset
from tests.ordersvc_builders import make_customer
from tests.web_helpers import customer_says

INTENTS = ("track_order", "start_return", "cancel_order", None)


async def _check(sessions: Any, when: str) -> None:
    async with sessions() as s:
        rolled, fresh = await rollup_counts(s), await fresh_counts(s)
        rolled_times, fresh_times = await rollup_responses(s), await fresh_responses(s)
    assert rolled == fresh, f"after {when}: rollup {rolled} != fresh {fresh}"
    assert rolled_times == fresh_times, f"after {when}: response times {rolled_times} != {fresh_times}"


async def _same_durations(s: Any, query: Any) -> None:
    rolled = await rollup_durations(s, query, metrics.RANKS)
    assert rolled is not None
    live = await metrics.response_durations(s, query, live=True)
    assert set(rolled) == set(live)
    for key, value in live.items():
        got = rolled[key]
        assert (got.count, got.p50, got.p90) == (value.count, value.p50, value.p90), key
        assert got.mean == pytest.approx(value.mean), key


async def test_the_migration_backfills_and_the_dataset_reads_the_same_both_ways(sessions: Any) -> None:
    async with sessions() as s:
        assert await rollup_zone(s) == "UTC"
        await seed_dataset(s)
        await s.commit()
    await _check(sessions, "the dataset")
    query = parse_query({"from": FIRST, "to": LAST}, now=NOW, timezone="UTC")
    async with sessions() as s:
        rolled = await metrics.conversation_cubes(s, query)
        live = await metrics.conversation_cubes(s, query, live=True)
        assert await rollup_cube(s, query, query.period) is not None  # the report reads the rollup
        await _same_durations(s, query)
        for channel in ("telegram", "webchat"):
            await _same_durations(s, parse_query({"from": FIRST, "to": LAST, "channel": channel}, now=NOW,
                                                 timezone="UTC"))
    for a, b in zip(rolled, live):
        assert sorted(a.rows, key=str) == sorted(b.rows, key=str)
    assert sum(r[3] for r in rolled[0].rows) == 6 and sum(r[4] for r in rolled[0].rows) == 2  # c1 and c6


async def test_random_changes_keep_the_rollup_equal_to_a_fresh_count(sessions: Any, tmp_path: Path) -> None:
    rng = random.Random(20261202)
    async with sessions() as s:
        agents = [Agent(email=f"a{n}@shop.test", name=f"A{n}", password_hash="x", role=Role.admin) for n in range(2)]
        s.add_all(agents)
        await s.commit()
        agent_ids = [a.id for a in agents]
    conversations: list[int] = []
    for n in range(8):
        channel = Channel.telegram if n % 3 == 0 else Channel.webchat
        result = await customer_says(sessions, f"hello {n}", contact=f"visitor-r{n:02d}", key=f"r{n}", channel=channel)
        conversations.append(result.conversation_id)
    await _check(sessions, "opening")
    # two people with profiles, for the merge and the erasure
    emails = ("rollup.one@example.com", "rollup.two@example.com")
    async with sessions() as s:
        profiles = []
        for n, email in enumerate(emails):
            customer = await make_customer(s, email=email, first_name="R", last_name=str(n))
            contact = (await s.exec(select(Contact).where(col(Contact.external_id) == f"visitor-r{n:02d}"))).one()
            await contact_link(s, contact, customer.id)
            profiles.append((await ensure_profile(s, contact, agent=await s.get(Agent, agent_ids[0]))).id)
        await s.commit()

    async def step(kind: str, cid: int) -> None:
        async with sessions() as s:
            conv = await s.get(Conversation, cid)
            assert conv is not None
            agent = await s.get(Agent, rng.choice(agent_ids))
            assert agent is not None
            try:
                if kind == "resolve":
                    await conversation_status(s, conv, ConversationStatus.resolved, by=agent)
                elif kind == "reopen":
                    await conversation_status(s, conv, ConversationStatus.open, by=agent)
                elif kind == "pending":
                    await conversation_status(s, conv, ConversationStatus.pending, by=agent)
                elif kind == "assign":
                    await conversation_assign(s, conv, agent, by=agent)
                elif kind == "unassign":
                    await conversation_assign(s, conv, None, by=agent)
                elif kind == "handback":
                    await conversation_handback(s, conv, agent)
                elif kind == "escalate":
                    await conversation_escalate(s, conv, priority="high", summary="needs a person", reason="asked")
                elif kind == "reply":
                    await agent_reply(s, conv, agent, "On it.")
                elif kind == "intent":  # the bot's turn writes the intent with a Core UPDATE
                    await s.exec(sa.update(Conversation).where(col(Conversation.id) == cid).values(  # type: ignore[call-overload]
                        last_intent=rng.choice(INTENTS)))
                elif kind == "bot_resolves":  # the bot resolves alone: no person involved
                    await s.exec(sa.update(Conversation).where(col(Conversation.id) == cid).values(  # type: ignore[call-overload]
                        status=ConversationStatus.resolved, resolved_at=utcnow(), first_response_at=None,
                        assignee_id=None))
                elif kind == "unescalate":  # an escalation's audit rows removed (a repair, a test)
                    await s.exec(sa.delete(AuditEvent).where(  # type: ignore[call-overload]
                        col(AuditEvent.conversation_id) == cid, col(AuditEvent.action) == "conversation.escalated"))
                elif kind == "backdate":  # imported history: the opening moves to another day
                    await s.exec(sa.update(Conversation).where(col(Conversation.id) == cid).values(  # type: ignore[call-overload]
                        created_at=conv.created_at - timedelta(days=rng.randint(1, 40), hours=rng.randint(0, 23))))
                await s.commit()
            except Refused:
                await s.rollback()

    kinds = ("resolve", "reopen", "pending", "assign", "unassign", "handback", "escalate", "reply", "intent",
             "bot_resolves", "unescalate", "backdate")
    for n in range(70):
        kind = rng.choice(kinds)
        await step(kind, rng.choice(conversations))
        await _check(sessions, f"step {n} ({kind})")
        if n == 20:  # status back and forth on one conversation
            for kind in ("bot_resolves", "reopen", "bot_resolves", "escalate", "reopen", "bot_resolves",
                         "unescalate", "resolve", "reopen"):
                await step(kind, conversations[1])
                await _check(sessions, f"back and forth ({kind})")
    # a merge of the two profiles, then the erasure of one person by the privacy code
    async with sessions() as s:
        await customer_merge(s, profiles[1], profiles[0], agent=await s.get(Agent, agent_ids[0]))
        await s.commit()
    await _check(sessions, "the merge")
    async with sessions() as s:
        erasure = await customer_erase(s, emails[0], files_dir=tmp_path / "files", actor="cli")
        await s.commit()
    assert erasure is not None
    await _check(sessions, "the erasure")
    # a new conversation after all that, and a rolled-back change leaves nothing behind
    await customer_says(sessions, "hello again", contact="visitor-r99", key="r99")
    async with sessions() as s:
        conv = await s.get(Conversation, conversations[2])
        assert conv is not None
        conv.resolved_at, conv.last_intent = utcnow(), "cancel_order"
        s.add(conv)
        write_audit(s, conv.id, "conversation.escalated", actor="bot")
        await s.flush()
        await s.rollback()
    await _check(sessions, "a new conversation and a rollback")


async def test_another_zone_falls_back_to_the_conversations_until_rebuilt(sessions: Any) -> None:
    async with sessions() as s:
        await seed_dataset(s)
        await s.commit()
    # Auckland: 13 hours ahead in November, so late-evening UTC openings land on the next day
    query = parse_query({"from": FIRST, "to": LAST}, now=NOW, timezone="Pacific/Auckland")
    async with sessions() as s:
        assert await rollup_cube(s, query, query.period) is None
        live_report = await build_report(s, query, NOW)
        assert await ensure_analytics_rollup(s, "Pacific/Auckland") is True
        await s.commit()
    async with sessions() as s:
        assert await rollup_zone(s) == "Pacific/Auckland"
        assert await ensure_analytics_rollup(s, "Pacific/Auckland") is False
        assert await rollup_cube(s, query, query.period) is not None
        rolled_report = await build_report(s, query, NOW)
        await _same_durations(s, query)
        live = await metrics.conversation_cubes(s, query, live=True)
        rolled = await metrics.conversation_cubes(s, query)
    for a, b in zip(rolled, live):
        assert sorted(a.rows, key=str) == sorted(b.rows, key=str)
    for key in ("conversations_by_day", "conversations_by_intent", "automation_by_intent", "automation_by_day",
                "kpis", "wismo_late", "response_times"):
        assert rolled_report.tables[key].rows == live_report.tables[key].rows, key
    await _check(sessions, "the rebuild")
    # the triggers count new conversations in the new zone as well
    await customer_says(sessions, "kia ora", contact="visitor-nz", key="nz1")
    await _check(sessions, "a conversation after the rebuild")


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
async def test_daylight_saving_and_odd_offsets_count_like_the_live_query(sessions: Any, zone: str) -> None:
    """Openings around the zone's changes of offset land on the same local day in both counts."""
    async with sessions() as s:
        await analytics_rebuild(s, zone)
        await s.commit()
    for n, hours in enumerate(range(0, 24 * 14, 5)):
        opened = NOW.replace(month=3, day=1) + timedelta(hours=hours, minutes=17 * n % 60)
        result = await customer_says(sessions, f"m{n}", contact=f"visitor-dst{n:03d}", key=f"dst{n}")
        async with sessions() as s:
            await s.exec(sa.update(Conversation).where(col(Conversation.id) == result.conversation_id)  # type: ignore[call-overload]
                         .values(created_at=opened, status=ConversationStatus.resolved, resolved_at=opened))
            await s.commit()
    for n, hours in enumerate(range(0, 24 * 14, 7)):  # and around the autumn change
        opened = NOW.replace(month=10, day=25) + timedelta(hours=hours)
        result = await customer_says(sessions, f"o{n}", contact=f"visitor-dsto{n:03d}", key=f"dsto{n}")
        async with sessions() as s:
            await s.exec(sa.update(Conversation).where(col(Conversation.id) == result.conversation_id)  # type: ignore[call-overload]
                         .values(created_at=opened))
            await s.commit()
    await _check(sessions, zone)
    for first, last in (("2026-03-01", "2026-03-20"), ("2026-10-20", "2026-11-10")):
        query = parse_query({"from": first, "to": last}, now=NOW, timezone=zone)
        async with sessions() as s:
            rolled = await metrics.conversation_cubes(s, query)
            live = await metrics.conversation_cubes(s, query, live=True)
            await _same_durations(s, query)
        for a, b in zip(rolled, live):
            assert sorted(a.rows, key=str) == sorted(b.rows, key=str), (zone, first)


async def test_an_unknown_zone_is_refused_and_changes_nothing(sessions: Any) -> None:
    async with sessions() as s:
        with pytest.raises(Refused) as refused:
            await analytics_rebuild(s, "Mars/Olympus_Mons")
        assert refused.value.status == 400
        await s.rollback()
        assert await rollup_zone(s) == "UTC"


async def test_the_cli_checks_and_rebuilds(db_url: str, tmp_path: Path, sessions: Any) -> None:
    from tests.test_cli import Cli, ok, one_line_error

    async with sessions() as s:
        await seed_dataset(s)
        await s.commit()
    cli = Cli(tmp_path, {"SHOPDESK_DATABASE_URL": db_url})
    assert "differing: 0; response-time counts differing: 0" in ok(cli("analytics", "check"))
    # the shop moved to Berlin: the check says the rollup counts in the old zone until rebuilt
    berlin = {"SHOPDESK_SHOP_TIMEZONE": "Europe/Berlin"}
    assert cli("analytics", "check", **berlin).returncode == 1
    assert "rebuilt in Europe/Berlin" in ok(cli("analytics", "rebuild", **berlin))
    assert "counting days in: Europe/Berlin" in ok(cli("analytics", "check", **berlin))
    one_line_error(cli("analytics", "rebuild", "--timezone", "Mars/Olympus_Mons"), 2, "Unknown time zone")
    async with sessions() as s:
        assert await rollup_zone(s) == "Europe/Berlin"
        # a corrupted count is found
        await s.exec(sa.text("UPDATE conversation_daily SET conversations = conversations + 1 "  # type: ignore[call-overload]
                             "WHERE day = (SELECT min(day) FROM conversation_daily)"))
        await s.commit()
    assert "conversation counts differing: 1;" in cli("analytics", "check", **berlin).stdout
    ok(cli("analytics", "rebuild", **berlin))
    ok(cli("analytics", "check", **berlin))
