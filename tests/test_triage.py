"""Triage (issue 14) on SQLite and PostgreSQL: the work-queue views and their counts (also after
1,000 random changes, compared with a fresh count), the one triage order and its pages, the
counts' index use (EXPLAIN), bulk actions (all or nothing, one audit row each, optimistic
concurrency), saved views and notification switches."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from inbox.actions.conversation_assign import conversation_assign, conversation_claim
from inbox.actions.conversation_bulk import conversation_bulk
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.conversation_handback import conversation_handback
from inbox.actions.conversation_priority import conversation_priority
from inbox.actions.conversation_status import conversation_status
from inbox.models import Agent, AgentPreference, AuditEvent, Conversation, SavedView, Team
from inbox.queries.access import access_condition
from inbox.queries.conversations import list_conversations
from inbox.queries.triage import TRIAGE_VIEWS, in_view, state_token, triage_condition, triage_counts
from shopbase.refusal import Refused
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    WebApp,
    add_agent,
    build_web_app,
    csrf_from,
    customer_says,
    fast_hashing,
    login,
)


@pytest.fixture
def web_app(sessions: Any) -> WebApp:
    return build_web_app(sessions)


@pytest.fixture
async def client(aiohttp_client: Any, web_app: WebApp) -> Any:
    return await aiohttp_client(web_app.app)


async def post(client: Any, url: str, token: str, data: Any = (), **kw: Any) -> Any:
    pairs = [("csrf_token", token), *(data.items() if isinstance(data, dict) else data), *kw.items()]
    return await client.post(url, data=pairs, allow_redirects=False, headers={"Accept": "application/json"})


_POLICY = datetime.min  # "whatever the SLA policy sets when the bot hands over"


async def _conversation(sessions: Any, n: int, *, priority: str | None = None,
                        sla: datetime | None = _POLICY) -> int:
    """A conversation; with ``priority`` handed over to people; ``sla`` overrides the clock the
    SLA policy starts on the hand-over (None: no clock)."""
    rec = await customer_says(sessions, f"hello {n}", contact=f"visitor-triage-{n:06d}", name=f"Customer {n}")
    if priority is not None or sla is not _POLICY:
        async with sessions() as db:
            conv = await db.get(Conversation, rec.conversation_id)
            if priority is not None:
                await conversation_escalate(db, conv, priority=priority, summary="", reason="test")
            if sla is not _POLICY:
                conv.sla_due_at = sla
                db.add(conv)
            await db.commit()
    return rec.conversation_id


async def _fresh_counts(sessions: Any, agent: Agent) -> dict[str, int]:
    """The counts by reading every conversation and applying the rule in Python."""
    async with sessions() as db:
        rows = (await db.exec(select(Conversation))).all()
    return {view: sum(1 for c in rows if in_view(view, agent, c)) for view in TRIAGE_VIEWS}


# --------------------------------------------------------------------------- views, counts, order


async def test_views_counts_and_triage_order(sessions: Any) -> None:
    ana = await add_agent(sessions, admin=True)
    now = datetime.now(UTC)
    bot = await _conversation(sessions, 1)
    normal_old = await _conversation(sessions, 2, priority="normal")
    urgent = await _conversation(sessions, 3, priority="urgent")
    high_late = await _conversation(sessions, 4, priority="high", sla=now + timedelta(hours=5))
    high_soon = await _conversation(sessions, 5, priority="high", sla=now + timedelta(minutes=5))
    high_none = await _conversation(sessions, 6, priority="high", sla=None)
    mine = await _conversation(sessions, 7, priority="low")
    waiting = await _conversation(sessions, 8, priority="normal")
    snoozed = await _conversation(sessions, 9)
    done = await _conversation(sessions, 10)
    async with sessions() as db:
        agent = await db.get(Agent, ana.id)
        await conversation_assign(db, await db.get(Conversation, mine), agent, by=agent)
        await conversation_status(db, await db.get(Conversation, waiting), "pending", by=agent)
        await conversation_status(db, await db.get(Conversation, snoozed), "snoozed", by=agent,
                                  snoozed_until=now + timedelta(days=1))
        await conversation_status(db, await db.get(Conversation, done), "resolved", by=agent)
        await db.commit()

    async with sessions() as db:
        counts = await triage_counts(db, ana)
        # "mine" and "unassigned" keep the list's status filter (the page's default: open)
        lists = {v: [r.id for r in await list_conversations(db, ana, view=v,  # type: ignore[arg-type]
                                                             status="open" if v in ("mine", "unassigned") else None)]
                 for v in TRIAGE_VIEWS}
    assert counts == {"human": 6, "bot": 1, "mine": 1, "unassigned": 5, "waiting": 1, "snoozed": 1, "resolved": 1}
    assert counts == await _fresh_counts(sessions, ana)
    # priority first; within "high": the SLA due soonest, then later, then none (nulls last)
    assert lists["human"] == [urgent, high_soon, high_late, high_none, normal_old, mine]
    assert lists["unassigned"] == [urgent, high_soon, high_late, high_none, normal_old]
    assert lists["bot"] == [bot] and lists["mine"] == [mine]
    assert lists["waiting"] == [waiting] and lists["snoozed"] == [snoozed] and lists["resolved"] == [done]

    # keyset pages walk the same order
    async with sessions() as db:
        pages: list[int] = []
        before = None
        while page := await list_conversations(db, ana, view="human", limit=2, before=before):
            pages += [r.id for r in page]
            before = page[-1].cursor
    assert pages == lists["human"]


async def test_counts_follow_the_access_rule(sessions: Any) -> None:
    async with sessions() as db:
        team = Team(name="returns")
        db.add(team)
        await db.commit()
        team_id = team.id
    ana = await add_agent(sessions, team_id=team_id)
    bo = await add_agent(sessions, "bo@shop.test", name="Bo")
    theirs = await _conversation(sessions, 1, priority="high")
    await _conversation(sessions, 2, priority="high")
    async with sessions() as db:
        conv = await db.get(Conversation, theirs)
        conv.team_id = team_id
        db.add(conv)
        await db.commit()
    async with sessions() as db:
        assert (await triage_counts(db, ana))["human"] == 2
        assert (await triage_counts(db, bo))["human"] == 1
    for agent in (ana, bo):
        async with sessions() as db:
            counted = await triage_counts(db, agent)
        assert counted == await _fresh_counts(sessions, agent)


async def test_live_counts_match_a_fresh_count_after_1000_random_changes(sessions: Any, client: Any) -> None:
    rng = random.Random(14)
    async with sessions() as db:
        team = Team(name="vip")
        db.add(team)
        await db.commit()
        team_id = team.id
    ana = await add_agent(sessions, admin=True)
    bo = await add_agent(sessions, "bo@shop.test", name="Bo")
    cy = await add_agent(sessions, "cy@shop.test", name="Cy", team_id=team_id)
    agents = [ana, bo, cy]
    ids = [await _conversation(sessions, n) for n in range(30)]
    async with sessions() as db:
        for cid in ids[:8]:
            conv = await db.get(Conversation, cid)
            conv.team_id = team_id
            db.add(conv)
        await db.commit()
    await login(client, "bo@shop.test")
    now = datetime.now(UTC)
    for step in range(1000):
        cid = rng.choice(ids)
        kind = rng.choice(["assign", "claim", "status", "priority", "escalate", "handback", "message", "resolve"])
        async with sessions() as db:
            conv = await db.get(Conversation, cid)
            who = await db.get(Agent, rng.choice(agents).id)
            try:
                if kind == "assign":
                    target = rng.choice([None, *agents])
                    await conversation_assign(db, conv, await db.get(Agent, target.id) if target else None, by=who)
                elif kind == "claim":
                    await conversation_claim(db, conv, who)
                elif kind == "status":
                    status = rng.choice(["open", "pending", "snoozed", "resolved"])
                    await conversation_status(db, conv, status, by=who,
                                              snoozed_until=now + timedelta(days=1) if status == "snoozed" else None)
                elif kind == "priority":
                    await conversation_priority(db, conv, rng.choice(["low", "normal", "high", "urgent"]), by=who)
                elif kind == "escalate":
                    await conversation_escalate(db, conv, priority=rng.choice(["normal", "high"]), summary="",
                                                reason="test")
                elif kind == "handback":
                    await conversation_handback(db, conv, who)
                elif kind == "resolve":
                    await conversation_status(db, conv, "resolved", by=who)
                await db.commit()
            except Refused:
                await db.rollback()
        if kind == "message":  # a new message: may open a new conversation for a resolved contact
            rec = await customer_says(sessions, f"again {step}", contact=f"visitor-triage-{ids.index(cid):06d}",
                                      key=f"random-{step}")
            if rec.conversation_id not in ids:
                ids.append(rec.conversation_id)
        if step % 250 == 249:
            for agent in agents:
                async with sessions() as db:
                    counted = await triage_counts(db, agent)
                assert counted == await _fresh_counts(sessions, agent), step
    # what every open tab of Bo reads after the last event
    state = await (await client.get("/inbox/triage/state")).json()
    assert state["counts"] == await _fresh_counts(sessions, bo)
    for agent in agents:
        async with sessions() as db:
            counted = await triage_counts(db, agent)
            listed = {v: len(await list_conversations(db, agent, view=v, limit=200,  # type: ignore[arg-type]
                                                      status="open" if v in ("mine", "unassigned") else None))
                      for v in TRIAGE_VIEWS}
        assert counted == await _fresh_counts(sessions, agent)
        assert listed == counted  # the tab's number is the length of its list


async def test_counts_read_the_triage_index(sessions: Any, engine: Any) -> None:
    ana = await add_agent(sessions, "ana@shop.test")
    async with sessions() as db:
        dialect = db.get_bind().dialect.name
        for view in TRIAGE_VIEWS:
            stmt = (sa.select(sa.func.count()).select_from(Conversation.__table__)  # type: ignore[attr-defined]
                    .where(triage_condition(view, ana, counting=True), access_condition(ana)))
            sql = str(stmt.compile(dialect=db.get_bind().dialect, compile_kwargs={"literal_binds": True}))
            if dialect == "sqlite":
                rows = (await db.exec(sa.text(f"EXPLAIN QUERY PLAN {sql}"))).all()  # type: ignore[call-overload]
                plan = " | ".join(str(r[-1]) for r in rows)
                assert "INDEX" in plan and all(not str(r[-1]).startswith("SCAN") for r in rows), (view, plan)
            else:
                await db.exec(sa.text("SET LOCAL enable_seqscan = off"))  # type: ignore[call-overload]
                plan = " ".join(str(r[0]) for r in (await db.exec(sa.text(f"EXPLAIN {sql}"))).all())  # type: ignore[call-overload]
                assert "ix_conversation" in plan and "Seq Scan" not in plan, (view, plan)


# --------------------------------------------------------------------------- bulk actions


async def _tokens(sessions: Any, ids: list[int]) -> dict[int, str]:
    async with sessions() as db:
        return {cid: state_token(await db.get(Conversation, cid)) for cid in ids}


async def test_bulk_changes_all_with_one_audit_row_each(sessions: Any, client: Any, web_app: WebApp) -> None:
    ana = await add_agent(sessions, admin=True)
    bo = await add_agent(sessions, "bo@shop.test", name="Bo")
    ids = [await _conversation(sessions, n, priority="normal") for n in range(3)]
    token = await login(client)
    selection = [("c", f"{cid}:{tok}") for cid, tok in (await _tokens(sessions, ids)).items()]

    resp = await post(client, "/inbox/bulk", token, [*selection, ("op", "assign"), ("agent_id", str(bo.id))])
    assert resp.status == 200, await resp.text()
    assert (await resp.json()) == {"changed": 3}
    async with sessions() as db:
        convs = [await db.get(Conversation, cid) for cid in ids]
        audits = (await db.exec(select(AuditEvent.conversation_id).where(
            col(AuditEvent.action) == "conversation.assigned"))).all()
    assert all(c.assignee_id == bo.id for c in convs)
    assert sorted(audits) == sorted(ids)  # one audit entry per conversation
    await web_app.bus.wait_idle()
    assert {e.conversation_id for e in web_app.events if e.type == "conversation.assigned"} == set(ids)

    for op, extra, check in [
        ("priority", {"priority": "urgent"}, lambda c: c.priority == "urgent"),
        ("label", {"label": "VIP "}, lambda c: c.labels == ["vip"]),
        ("unlabel", {"label": "vip"}, lambda c: c.labels == []),
        ("status", {"status": "pending"}, lambda c: c.status == "pending"),
        ("snooze", {"snoozed_until": (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="minutes")[:16],
                    "tz_offset": "0"}, lambda c: c.status == "snoozed" and c.snoozed_until is not None),
        ("resolve", {}, lambda c: c.status == "resolved"),
    ]:
        selection = [("c", f"{cid}:{tok}") for cid, tok in (await _tokens(sessions, ids)).items()]
        resp = await post(client, "/inbox/bulk", token, [*selection, ("op", op), *extra.items()])
        assert resp.status == 200, (op, await resp.text())
        async with sessions() as db:
            assert all([check(await db.get(Conversation, cid)) for cid in ids]), op
    async with sessions() as db:
        rows = (await db.exec(select(AuditEvent.conversation_id, AuditEvent.action).where(
            col(AuditEvent.agent_id) == ana.id))).all()
    per_conversation = {cid: [a for c, a in rows if c == cid] for cid in ids}
    assert all(len(actions) == 7 for actions in per_conversation.values()), per_conversation


async def test_bulk_refuses_when_someone_changed_a_selected_conversation(sessions: Any, client: Any) -> None:
    await add_agent(sessions, admin=True)
    bo = await add_agent(sessions, "bo@shop.test", name="Bo")
    ids = [await _conversation(sessions, n, priority="normal") for n in range(3)]
    token = await login(client)
    seen = await _tokens(sessions, ids)  # the list as Ana's page rendered it
    async with sessions() as db:  # meanwhile Bo takes the second one
        await conversation_claim(db, await db.get(Conversation, ids[1]), await db.get(Agent, bo.id))
        await db.commit()
    await customer_says(sessions, "a new message changes nothing agents set", contact="visitor-triage-000002",
                        key="late")
    resp = await post(client, "/inbox/bulk", token, [*(("c", f"{c}:{t}") for c, t in seen.items()),
                                                      ("op", "resolve")])
    assert resp.status == 409
    message = (await resp.json())["error"]
    assert f"#{ids[1]}" in message and "Nothing was changed" in message
    async with sessions() as db:
        assert all([(await db.get(Conversation, cid)).status == "open" for cid in ids])
        assert (await db.exec(select(AuditEvent).where(col(AuditEvent.action) == "conversation.status"))).all() == []

    # a token for the wrong state of a conversation that was not changed is refused the same way
    resp = await post(client, "/inbox/bulk", token, [("c", f"{ids[0]}:0000"), ("op", "resolve")])
    assert resp.status == 409


async def test_bulk_bad_input_is_a_clear_4xx_and_changes_nothing(sessions: Any, client: Any) -> None:
    async with sessions() as db:
        team = Team(name="other")
        db.add(team)
        await db.commit()
        team_id = team.id
    await add_agent(sessions)
    ids = [await _conversation(sessions, n) for n in range(2)]
    async with sessions() as db:
        conv = await db.get(Conversation, ids[1])
        conv.team_id = team_id  # not Ana's team: she cannot see it
        db.add(conv)
        await db.commit()
    token = await login(client)
    tokens = await _tokens(sessions, ids)
    ok = ("c", f"{ids[0]}:{tokens[ids[0]]}")
    cases = [
        ([ok, ("op", "explode")], 400),
        ([("op", "resolve")], 400),
        ([("c", "abc"), ("op", "resolve")], 400),
        ([("c", f"{ids[0]}:"), ("op", "resolve")], 400),
        ([("c", "99999999999:x"), ("op", "resolve")], 400),
        ([ok, ("op", "priority"), ("priority", "meh")], 400),
        ([ok, ("op", "label"), ("label", "   ")], 400),
        ([ok, ("op", "snooze"), ("snoozed_until", "2001-01-01T00:00")], 400),
        ([ok, ("op", "snooze"), ("snoozed_until", "soon")], 400),
        ([ok, ("op", "assign"), ("agent_id", "4242")], 400),
        ([ok, ("c", f"{ids[1]}:{tokens[ids[1]]}"), ("op", "resolve")], 404),
        ([("c", f"123456:{tokens[ids[0]]}"), ("op", "resolve")], 404),
        ([*(("c", f"{n}:x") for n in range(1, 300)), ("op", "resolve")], 400),
    ]
    for data, status in cases:
        resp = await post(client, "/inbox/bulk", token, data)
        assert resp.status == status, (data[:3], await resp.text())
        assert "error" in await resp.json()
    async with sessions() as db:
        assert all([(await db.get(Conversation, cid)).status == "open" for cid in ids])


async def test_bulk_is_all_or_nothing_when_one_change_is_refused(sessions: Any) -> None:
    ana = await add_agent(sessions, admin=True)
    first = await _conversation(sessions, 1)
    second = await _conversation(sessions, 2)
    async with sessions() as db:
        agent = await db.get(Agent, ana.id)
        conv = await db.get(Conversation, second)
        await conversation_status(db, conv, "resolved", by=agent)
        conv.resolved_at = conv.updated_at = datetime.now(UTC) - timedelta(days=10)  # long done: a new message opens a new one
        db.add(conv)
        await db.commit()
    replacement = (await customer_says(sessions, "new question", contact="visitor-triage-000002", key="n")).conversation_id
    assert replacement != second
    async with sessions() as db:
        agent = await db.get(Agent, ana.id)
        selection = {cid: state_token(await db.get(Conversation, cid)) for cid in (first, second)}
        with pytest.raises(Refused) as refused:  # re-opening the second: its customer has another active one
            await conversation_bulk(db, agent, selection, "status", value="open")
        await db.rollback()
    assert refused.value.code == "other_active"
    async with sessions() as db:
        assert (await db.get(Conversation, first)).status == "open"
        assert (await db.get(Conversation, second)).status == "resolved"


# --------------------------------------------------------------------------- saved views, switches, pages


async def test_saved_views_per_agent(sessions: Any, client: Any, aiohttp_client: Any, web_app: WebApp) -> None:
    ana = await add_agent(sessions)
    await add_agent(sessions, "bo@shop.test", name="Bo")
    await _conversation(sessions, 1, priority="high")
    token = await login(client)
    resp = await post(client, "/inbox/views", token, name="Urgent telegram", list="view=human&priority=urgent&channel=telegram")
    assert resp.status == 303
    resp = await post(client, "/inbox/views", token, name="Urgent telegram", list="view=human&priority=high")
    assert resp.status == 303  # the same name replaces the filters
    async with sessions() as db:
        views = (await db.exec(select(SavedView))).all()
    assert [(v.agent_id, v.name, v.query) for v in views] == [(ana.id, "Urgent telegram", "view=human&priority=high")]
    body = await (await client.get("/inbox")).text()
    assert 'href="/inbox?view=human&amp;priority=high"' in body and "Urgent telegram" in body

    for data, status in [({"name": "", "list": "view=human"}, 400), ({"name": "x", "list": "view=nope"}, 400),
                         ({"name": "x", "list": "priority=extreme"}, 400)]:
        assert (await post(client, "/inbox/views", token, **data)).status == status

    other = await aiohttp_client(web_app.app)
    other_token = await login(other, "bo@shop.test")
    assert "Urgent telegram" not in await (await other.get("/inbox")).text()
    assert (await post(other, f"/inbox/views/{views[0].id}/delete", other_token)).status == 404
    assert (await post(client, f"/inbox/views/{views[0].id}/delete", token)).status == 303
    async with sessions() as db:
        assert (await db.exec(select(SavedView))).all() == []


async def test_notification_switches_are_stored_per_agent(sessions: Any, client: Any) -> None:
    ana = await add_agent(sessions)
    token = await login(client)
    assert (await (await client.get("/inbox/triage/state")).json())["prefs"] == {"sound": False, "desktop": False}
    resp = await post(client, "/inbox/triage/prefs", token, notify_desktop="1")
    assert (await resp.json())["prefs"] == {"sound": False, "desktop": True}
    resp = await post(client, "/inbox/triage/prefs", token, notify_sound="1", notify_desktop="0")
    assert (await resp.json())["prefs"] == {"sound": True, "desktop": False}
    async with sessions() as db:
        row = await db.get(AgentPreference, ana.id)
    assert row is not None and row.notify_sound and not row.notify_desktop
    assert (await client.post("/inbox/triage/prefs", data={"notify_sound": "1"})).status == 403  # no CSRF token


async def test_triage_pages_render_with_counts_and_tokens(sessions: Any, client: Any) -> None:
    ana = await add_agent(sessions, admin=True)
    first = await _conversation(sessions, 1, priority="high")
    await _conversation(sessions, 2)
    done = await _conversation(sessions, 3)
    async with sessions() as db:
        await conversation_status(db, await db.get(Conversation, done), "resolved", by=await db.get(Agent, ana.id))
        await db.commit()
    token = await login(client)
    for view in TRIAGE_VIEWS:
        resp = await client.get(f"/inbox?view={view}")
        assert resp.status == 200, view
    body = await (await client.get("/inbox?view=human")).text()
    assert 'data-count="human">1<' in body and 'data-count="bot">1<' in body
    assert 'data-count="all">2<' in body and 'data-count="resolved">1<' in body  # "All": open ones, as on /inbox
    token_of = (await _tokens(sessions, [first]))[first]
    assert f'value="{first}:{token_of}"' in body
    assert 'id="f-status"' not in body  # the view fixes the status
    assert 'id="f-status"' in await (await client.get("/inbox?view=mine")).text()
    assert (await client.get("/inbox?view=everything")).status == 400
    assert (await client.get("/inbox?view=human&before=garbage")).status == 400
    # without script the bar is a plain form: the change, then back to the same list
    resp = await client.post("/inbox/bulk", data=[("csrf_token", token), ("list", "view=human"),
                                                  ("c", f"{first}:{token_of}"), ("op", "priority"),
                                                  ("priority", "urgent")], allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/inbox?view=human"
    async with sessions() as db:
        assert (await db.get(Conversation, first)).priority == "urgent"
    assert csrf_from(body)
