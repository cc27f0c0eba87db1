"""Customer profiles (CRM) on SQLite and PostgreSQL: verification links channels into one
profile, merge and un-merge (audited; self-merge, cycles and repeats refused), notes, tags, the
profile and sidebar numbers, the list's open-conversation groups, and the web routes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import col, select

from inbox.actions.contact_link import contact_link
from inbox.actions.conversation_status import conversation_status
from inbox.actions.customer_link import ensure_profile
from inbox.actions.customer_merge import customer_merge
from inbox.actions.customer_note import customer_note
from inbox.actions.customer_tags import customer_tags
from inbox.actions.customer_unmerge import customer_unmerge
from inbox.models import (
    Agent,
    AuditEvent,
    Contact,
    Conversation,
    ConversationStatus,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
    CustomerProfile,
)
from inbox.queries.profiles import load_profile, open_groups, profile_id_of_contact, profile_summary
from ordersvc.models import ReturnAuthorization, ReturnLine, ReturnReason
from shopbase.refusal import Refused
from tests.ordersvc_builders import make_customer, make_order
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    add_agent,
    build_web_app,
    customer_says,
    fast_hashing,
    login,
)


async def _contact(sessions: Any, name: str, external: str, *, channel: str = "webchat") -> tuple[int, int]:
    from inbox.models import Channel

    rec = await customer_says(sessions, f"hello from {name}", contact=external, name=name,
                              channel=Channel(channel))
    return rec.contact_id, rec.conversation_id


async def _profile(sessions: Any, contact_id: int, agent: Agent) -> int:
    async with sessions() as s:
        profile = await ensure_profile(s, await s.get(Contact, contact_id), agent=agent)
        await s.commit()
        assert profile.id is not None
        return profile.id


async def _audits(sessions: Any, action: str) -> list[AuditEvent]:
    async with sessions() as s:
        return list((await s.exec(select(AuditEvent).where(AuditEvent.action == action))).all())


async def test_verification_joins_every_channel_of_a_customer_into_one_profile(sessions: Any) -> None:
    tg_contact, _ = await _contact(sessions, "Maria", "tg-1", channel="telegram")
    web_contact, _ = await _contact(sessions, "Web visitor 1A2B", "visitor-1")
    async with sessions() as s:
        customer = await make_customer(s, email="maria@example.com", first_name="Maria", last_name="Garcia")
        await contact_link(s, await s.get(Contact, tg_contact), customer.id)
        await s.commit()
    async with sessions() as s:
        first = await profile_id_of_contact(s, tg_contact)
        assert first is not None and await profile_id_of_contact(s, web_contact) is None
        await contact_link(s, await s.get(Contact, web_contact), customer.id)
        await s.commit()
    async with sessions() as s:
        assert await profile_id_of_contact(s, web_contact) == first
        identities = (await s.exec(select(CustomerIdentity).where(CustomerIdentity.profile_id == first))).all()
        assert {(i.contact_id, i.customer_id, i.via) for i in identities} == {
            (tg_contact, None, "verified"), (web_contact, None, "verified"), (None, customer.id, "verified")}
        # verifying again changes nothing
        await contact_link(s, await s.get(Contact, web_contact), customer.id)
        await s.commit()
        assert len((await s.exec(select(CustomerIdentity))).all()) == 3


async def test_merge_and_unmerge_move_identities_notes_and_tags_back(sessions: Any) -> None:
    agent = await add_agent(sessions)
    a_contact, a_conv = await _contact(sessions, "Maria", "visitor-a")
    b_contact, b_conv = await _contact(sessions, "M. Garcia", "visitor-b")
    a, b = await _profile(sessions, a_contact, agent), await _profile(sessions, b_contact, agent)
    async with sessions() as s:
        await customer_note(s, b, "calls after 6pm", agent=agent)
        await customer_tags(s, b, add=["wholesale", "VIP"], agent=agent)
        await customer_tags(s, a, add=["vip"], agent=agent)
        await s.commit()
    async with sessions() as s:
        merge = await customer_merge(s, b, a, agent=agent)
        await s.commit()
    async with sessions() as s:
        view = await load_profile(s, await s.get(Agent, agent.id), a)
        assert sorted(c.id for c in view.contacts) == sorted([a_contact, b_contact])
        assert sorted(t.conversation_id for t in view.timeline) == sorted([a_conv, b_conv])
        assert [n.body for n in view.notes] == ["calls after 6pm"]
        assert view.profile.tags == ["vip", "wholesale"]
        assert [(m.id, m.source_id) for m in view.merges] == [(merge.id, b)]
        assert (await s.get(CustomerProfile, b)).merged_into_id == a
        assert await open_groups(s, [a_contact, b_contact]) == {a_contact: (a, 2), b_contact: (a, 2)}
    merged = await _audits(sessions, "customer.merged")
    assert [(e.agent_id, e.detail["source_id"], e.detail["target_id"]) for e in merged] == [(agent.id, b, a)]

    async with sessions() as s:
        await customer_unmerge(s, merge.id, agent=agent)
        await s.commit()
    async with sessions() as s:
        assert await profile_id_of_contact(s, b_contact) == b
        assert (await s.get(CustomerProfile, b)).merged_into_id is None
        assert (await s.get(CustomerProfile, a)).tags == ["vip"]
        notes = (await s.exec(select(CustomerNote))).all()
        assert [(n.profile_id, n.body) for n in notes] == [(b, "calls after 6pm")]
        assert (await s.get(CustomerMerge, merge.id)).undone_by_id == agent.id
        assert await open_groups(s, [a_contact, b_contact]) == {}
    assert len(await _audits(sessions, "customer.unmerged")) == 1

    async with sessions() as s:
        with pytest.raises(Refused) as again:
            await customer_unmerge(s, merge.id, agent=agent)
    assert again.value.code == "merge_undone"


async def test_self_merge_cycles_and_merged_profiles_are_refused_and_write_nothing(sessions: Any) -> None:
    agent = await add_agent(sessions)
    ids = [await _profile(sessions, (await _contact(sessions, f"P{i}", f"visitor-{i}"))[0], agent) for i in range(3)]
    a, b, c = ids
    cases: list[tuple[int, int, str, str]] = []
    async with sessions() as s:
        await customer_merge(s, a, b, agent=agent)  # a -> b
        await customer_merge(s, b, c, agent=agent)  # b -> c
        await s.commit()
    cases = [
        (c, c, "merge_self", "A customer cannot be merged into itself."),
        (c, a, "merge_cycle", f"Customer #{a} was merged into customer #{c}; merging #{c} into #{a} would make a"),
        (b, a, "merge_cycle", f"Customer #{a} was merged into customer #{b}; merging #{b} into #{a} would make a"),
        (a, c, "already_merged", f"Customer #{a} is already merged into customer #{b}."),
        (999_999, c, "no_customer", "That customer does not exist."),
    ]
    for source, target, code, message in cases:
        async with sessions() as s:
            with pytest.raises(Refused) as refused:
                await customer_merge(s, source, target, agent=agent)
            await s.rollback()
        assert refused.value.code == code, (source, target)
        assert refused.value.message.startswith(message)
    async with sessions() as s:
        assert len((await s.exec(select(CustomerMerge))).all()) == 2
        first = (await s.exec(select(CustomerMerge).order_by(col(CustomerMerge.id)))).first()
        with pytest.raises(Refused) as blocked:  # a -> b cannot be undone while b is merged into c
            await customer_unmerge(s, first.id, agent=agent)
    assert blocked.value.code == "target_merged"


@pytest.mark.parametrize(("add", "code"), [([], None), (["x" * 41], "tag_too_long")])
async def test_notes_and_tags_check_their_input(sessions: Any, add: list[str], code: str | None) -> None:
    agent = await add_agent(sessions)
    profile = await _profile(sessions, (await _contact(sessions, "P", "visitor-p"))[0], agent)
    async with sessions() as s:
        for body in ("", "   ", "x" * 4001):
            with pytest.raises(Refused):
                await customer_note(s, profile, body, agent=agent)
        if code:
            with pytest.raises(Refused) as refused:
                await customer_tags(s, profile, add=add, agent=agent)
            assert refused.value.code == code
        tags = await customer_tags(s, profile, add=[" vip ", "VIP", "late payer"], agent=agent)
        assert tags == ["vip", "late payer"]
        assert await customer_tags(s, profile, remove=["LATE PAYER"], agent=agent) == ["vip"]
        await s.commit()
    assert len(await _audits(sessions, "customer.tags")) == 2


async def test_profile_and_sidebar_show_lifetime_orders_spend_and_returns(sessions: Any) -> None:
    agent = await add_agent(sessions)
    contact, conv = await _contact(sessions, "Maria", "tg-7", channel="telegram")
    async with sessions() as s:
        customer = await make_customer(s, email="m@example.com")
        order, lines = await make_order(s, customer=customer, name="#1001", total_price=Decimal("100.25"))
        await make_order(s, customer=customer, name="#1002", total_price=Decimal("9.75"))
        await make_order(s, customer=customer, name="#1003", total_price=Decimal("50.00"), currency="EUR")
        from shopbase.clock import utcnow
        await make_order(s, customer=customer, name="#1004", total_price=Decimal("70"), cancelled_at=utcnow())
        rma = ReturnAuthorization(rma_number="RMA-1", order_id=order.id, customer_id=customer.id)
        s.add(rma)
        await s.flush()
        s.add(ReturnLine(rma_id=rma.id, order_line_id=lines[0].id, reason=ReturnReason.too_small))
        await contact_link(s, await s.get(Contact, contact), customer.id)
        await s.commit()
    web_contact, _ = await _contact(sessions, "Web visitor", "visitor-7")
    async with sessions() as s:
        await contact_link(s, await s.get(Contact, web_contact), customer.id)
        conversation = await s.get(Conversation, conv)
        await conversation_status(s, conversation, ConversationStatus.resolved, by=await s.get(Agent, agent.id))
        await s.commit()
    async with sessions() as s:
        summary = await profile_summary(s, await s.get(Agent, agent.id), await s.get(Contact, contact))
    assert summary.order_count == 4
    assert summary.spend == [(Decimal("50.00"), "EUR"), (Decimal("110.00"), "USD")]
    assert [(r.rma_number, r.reasons) for r in summary.returns] == [("RMA-1", ["too_small"])]
    assert (summary.conversation_count, summary.open_count) == (2, 1)


# --------------------------------------------------------------------------- the web routes

async def test_web_profile_routes(sessions: Any, aiohttp_client: Any) -> None:
    web_app = build_web_app(sessions)
    client = await aiohttp_client(web_app.app)
    await add_agent(sessions)
    a_contact, a_conv = await _contact(sessions, "Maria <script>x</script>", "visitor-a")
    _, b_conv = await _contact(sessions, "Other", "visitor-b")
    token = await login(client)

    # a contact without a profile: its page renders, nothing is stored
    page = await client.get(f"/inbox/c/{a_conv}/customer", allow_redirects=False)
    assert page.status == 200
    body = await page.text()
    assert "Maria &lt;script&gt;x&lt;/script&gt;" in body and "<script>x</script>" not in body
    async with sessions() as s:
        assert (await s.exec(select(CustomerProfile))).all() == []

    # a note creates the profile; then the conversation's customer page redirects there
    resp = await client.post(f"/inbox/c/{a_conv}/customer/notes", data={"csrf_token": token, "body": "hi"},
                             allow_redirects=False)
    assert resp.status == 303
    location = resp.headers["Location"]
    assert location.startswith("/inbox/customers/")
    assert (await client.get(f"/inbox/c/{a_conv}/customer", allow_redirects=False)).headers["Location"] == location

    # merge by conversation number; bad input answers 4xx with the message, never 500
    merge = await client.post(f"{location}/merge", data={"csrf_token": token, "other": f"#{b_conv}"},
                              allow_redirects=False)
    assert merge.status == 303
    for other, status, text in ((f"#{a_conv}", 400, "cannot be merged into itself"),
                                ("nobody@example.com", 404, "No customer has that email address."),
                                ("twelve", 400, "Enter a conversation number"),
                                ("#99999", 404, "Conversation not found.")):
        resp = await client.post(f"{location}/merge", data={"csrf_token": token, "other": other})
        assert resp.status == status, other
        assert text in await resp.text()
    # no CSRF token: refused before anything happens
    resp = await client.post(f"{location}/notes", data={"body": "sneaky"}, allow_redirects=False)
    assert resp.status in (400, 403)
    async with sessions() as s:
        assert [n.body for n in (await s.exec(select(CustomerNote))).all()] == ["hi"]
    for url in ("/inbox/customers/999999", "/inbox/customers/abc", "/inbox/c/999999/customer"):
        assert (await client.get(url)).status == 404
    assert (await client.post(f"{location}/nope", data={"csrf_token": token})).status == 404
    profile_html = await (await client.get(location)).text()
    assert f'href="/inbox/c/{a_conv}"' in profile_html and f'href="/inbox/c/{b_conv}"' in profile_html

    # the list shows the "2 open" badge on both rows
    listing = await (await client.get("/inbox")).text()
    assert listing.count("2 open") == 2
    async with sessions() as s:
        merge_id = (await s.exec(select(CustomerMerge.id))).one()
    resp = await client.post(f"/inbox/customers/merges/{merge_id}/unmerge", data={"csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 303
    assert "2 open" not in await (await client.get("/inbox")).text()
    assert a_contact


async def test_migration_0013_gives_verified_contacts_their_profiles(sessions: Any, engine: Any) -> None:
    from tests.test_search import _alembic

    a, _ = await _contact(sessions, "Maria", "tg-a", channel="telegram")
    b, _ = await _contact(sessions, "Maria on the web", "visitor-b")
    c, _ = await _contact(sessions, "Not verified", "visitor-c")
    async with sessions() as s:
        customer = await make_customer(s, email="m@example.com", first_name="Maria", last_name="Garcia")
        for contact_id in (a, b):
            await contact_link(s, await s.get(Contact, contact_id), customer.id)
        await s.commit()
    await _alembic(engine, "downgrade", "0013-1")  # whatever 0013 follows after the merge
    await _alembic(engine, "upgrade", "head")
    async with sessions() as s:
        profiles = (await s.exec(select(CustomerProfile))).all()
        assert [p.display_name for p in profiles] == ["Maria Garcia"]
        assert await profile_id_of_contact(s, a) == await profile_id_of_contact(s, b) == profiles[0].id
        assert await profile_id_of_contact(s, c) is None
        held = (await s.exec(select(CustomerIdentity.customer_id).where(
            col(CustomerIdentity.customer_id).is_not(None)))).all()
        assert held == [customer.id]


async def test_an_agent_sees_only_profiles_with_a_conversation_they_may_see(
        sessions: Any, aiohttp_client: Any) -> None:
    from inbox.models import Team

    web_app = build_web_app(sessions)
    client = await aiohttp_client(web_app.app)
    admin = await add_agent(sessions, "root@shop.test", admin=True)
    async with sessions() as s:
        team = Team(name="Returns desk")
        s.add(team)
        await s.commit()
    await add_agent(sessions, "ben@shop.test", name="Ben")
    contact, conv = await _contact(sessions, "Hidden Person", "visitor-h")
    profile = await _profile(sessions, contact, admin)
    async with sessions() as s:
        conversation = await s.get(Conversation, conv)
        conversation.team_id = team.id
        s.add(conversation)
        await s.commit()
    async with sessions() as s:
        merge_source = await _profile(sessions, (await _contact(sessions, "Visible", "visitor-v"))[0], admin)
        await customer_merge(s, merge_source, profile, agent=await s.get(Agent, admin.id))
        await s.commit()
        merge_id = (await s.exec(select(CustomerMerge.id))).one()
    token = await login(client, "ben@shop.test")
    # the merged-in contact's conversation is visible to Ben: so is the profile
    assert (await client.get(f"/inbox/customers/{profile}")).status == 200
    async with sessions() as s:
        for row in (await s.exec(select(Conversation))).all():
            row.team_id = team.id
            s.add(row)
        await s.commit()
    for url in (f"/inbox/customers/{profile}", f"/inbox/customers/{merge_source}"):
        resp = await client.get(url)
        assert resp.status == 404 and "Hidden Person" not in await resp.text()
    resp = await client.post(f"/inbox/customers/{profile}/notes", data={"csrf_token": token, "body": "x"})
    assert resp.status == 404
    resp = await client.post(f"/inbox/customers/merges/{merge_id}/unmerge", data={"csrf_token": token})
    assert resp.status == 404
    async with sessions() as s:
        assert (await s.exec(select(CustomerNote))).all() == []
        assert (await s.get(CustomerMerge, merge_id)).undone_at is None
