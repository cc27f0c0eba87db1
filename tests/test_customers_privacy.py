"""Privacy: export everything held about a customer, and erase every trace of them (contacts,
messages, outbox payloads, search indexes, audit entries, profiles, orders, files), on SQLite
and PostgreSQL; other customers' data stays."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from inbox.actions.base import write_audit
from inbox.actions.contact_link import contact_link
from inbox.actions.customer_erase import customer_erase, pending_file_removals
from inbox.actions.customer_link import ensure_profile
from inbox.actions.customer_merge import customer_merge
from inbox.actions.customer_note import customer_note
from inbox.actions.customer_tags import customer_tags
from inbox.actions.message_record import message_record
from inbox.actions.message_send import agent_reply
from inbox.messages import InboundMessage
from inbox.models import Agent, Channel, Contact, Conversation, Message, OutboxMessage, Role
from inbox.queries.conversations import list_conversations
from inbox.queries.customer_export import customer_export
from ordersvc.models import Customer, Order, ReturnAuthorization, ReturnLine, ReturnReason
from shopbase.refusal import Refused
from tests.ordersvc_builders import make_customer, make_order
from tests.privacy_scan import find_in_database, find_in_files

EMAIL = "Zuzana.Kowalczyk@Mailbox.test"
NAME = ("Zuzana", "Kowalczyk-Łęcka")
PHONE = "+44 7700 900123"
STREET = "77 Quillfeather Lane"
TG_ID = "tg-zuzana-777"
NEEDLES = [EMAIL, "zuzana.kowalczyk", "Kowalczyk", "Łęcka", PHONE, "900123", "Quillfeather", TG_ID, "zuzakow"]

OTHER_EMAIL = "bruno.ostrander@example.net"
OTHER_STREET = "5 Wexcombe Road"


async def _person(sessions: Any, *, email: str, first: str, last: str, phone: str, street: str, chat: str,
                  username: str, rma: str, agent: Agent) -> dict[str, Any]:
    async with sessions() as s:
        customer = await make_customer(s, email=email, first_name=first, last_name=last, phone=phone)
        address = {"first_name": first, "last_name": last, "address1": street, "city": "Springfield",
                   "zip": "62704", "country_code": "US", "phone": phone}
        order, lines = await make_order(s, customer=customer, name=f"#{rma[-4:]}", email=email, phone=phone,
                                        shipping_address=address, billing_address=address,
                                        total_price=Decimal("42.50"), note=f"leave with {first}")
        rma_row = ReturnAuthorization(rma_number=rma, order_id=order.id, customer_id=customer.id,
                                      note=f"{last} says the zip broke")
        s.add(rma_row)
        await s.flush()
        s.add(ReturnLine(rma_id=rma_row.id, order_line_id=lines[0].id, reason=ReturnReason.defective,
                         reason_note=f"call {phone}"))
        await s.commit()
        ids = {"customer": customer.id, "order": order.id, "rma": rma}
    tg = await message_record(sessions, InboundMessage(
        channel=Channel.telegram, dedupe_key=f"{chat}-1", contact_external_id=chat,
        text=f"Hi, I am {first} {last}, my email is {email} and I live at {street}, phone {phone}",
        display_name=f"{first} {last}", username=username))
    web = await message_record(sessions, InboundMessage(
        channel=Channel.webchat, dedupe_key=f"{chat}-w1", contact_external_id=f"visitor-{chat}",
        text=f"where is my parcel? ({street})", display_name="Web visitor 7F3A"))
    async with sessions() as s:
        contact = await s.get(Contact, tg.contact_id)
        await contact_link(s, contact, ids["customer"])
        conv = await s.get(Conversation, tg.conversation_id)
        conv.summary = f"{first} {last} asked about {email}"
        conv.bot_state = {"flow": "returns", "email": email}
        s.add(conv)
        await agent_reply(s, conv, await s.get(Agent, agent.id), f"Hello {first} {last}, we will call {phone}")
        write_audit(s, conv.id, "test.pii", agent=agent, detail={"email": email, "street": street})
        web_contact = await s.get(Contact, web.contact_id)
        web_profile = await ensure_profile(s, web_contact, agent=agent)
        profile = await ensure_profile(s, contact, agent=agent)
        await customer_note(s, web_profile.id, f"asked us to ring {phone}", agent=agent)
        await customer_tags(s, profile.id, add=["vip", last], agent=agent)
        await customer_merge(s, web_profile.id, profile.id, agent=agent)
        await s.commit()
        ids.update(profile=profile.id, tg=tg.conversation_id, web=web.conversation_id,
                   tg_contact=tg.contact_id, web_contact=web.contact_id)
    return ids


@pytest.fixture
async def world(sessions: Any, tmp_path: Path) -> dict[str, Any]:
    async with sessions() as s:
        agent = Agent(email="ana@shop.test", name="Ana", password_hash="x", role=Role.admin)
        s.add(agent)
        await s.commit()
    zuzana = await _person(sessions, email=EMAIL, first=NAME[0], last=NAME[1], phone=PHONE, street=STREET,
                           chat=TG_ID, username="zuzakow", rma="RMA-ZK-4411", agent=agent)
    bruno = await _person(sessions, email=OTHER_EMAIL, first="Bruno", last="Ostrander", phone="+1 202 555 0188",
                          street=OTHER_STREET, chat="tg-bruno-1", username="bruno_o", rma="RMA-BO-5522", agent=agent)
    files = tmp_path / "data" / "files"  # SHOPDESK_DATA_DIR/files for the CLI test
    for person, text in ((zuzana, f"{NAME[0]} {NAME[1]} {STREET}"), (bruno, f"Bruno Ostrander {OTHER_STREET}")):
        (files / "labels").mkdir(parents=True, exist_ok=True)
        (files / "invoices").mkdir(parents=True, exist_ok=True)
        (files / "labels" / f"{person['rma']}.pdf").write_text(f"%PDF label {text}")
        (files / "invoices" / f"{person['order']}.pdf").write_text(f"%PDF invoice {text}")
        (files / "customers" / str(person["customer"])).mkdir(parents=True)
        (files / "customers" / str(person["customer"]) / "dispute.txt").write_text(text)
    return {"agent": agent, "zuzana": zuzana, "bruno": bruno, "files": files}


async def test_export_holds_everything_about_the_customer(sessions: Any, world: dict[str, Any]) -> None:
    async with sessions() as s:
        report = await customer_export(s, "  zuzana.kowalczyk@MAILBOX.test ", files_dir=world["files"])
    text = json.dumps(report)
    for needle in (EMAIL.lower(), PHONE, STREET, "Kowalczyk", TG_ID, "asked us to ring"):
        assert needle.lower() in text.lower(), needle
    assert "Ostrander" not in text and OTHER_EMAIL not in text and OTHER_STREET not in text
    assert [o["id"] for o in report["order_store"]["orders"]] == [world["zuzana"]["order"]]
    assert report["order_store"]["returns"][0]["lines"][0]["reason"] == "defective"
    assert {c["channel"] for c in report["contacts"]} == {"telegram", "webchat"}
    assert len(report["conversations"]) == 2
    assert any(m["text"].startswith("Hello Zuzana") for c in report["conversations"] for m in c["messages"])
    assert sorted(report["files"]) == sorted([
        f"customers/{world['zuzana']['customer']}/dispute.txt", f"invoices/{world['zuzana']['order']}.pdf",
        "labels/RMA-ZK-4411.pdf"])
    assert report["profiles"][0]["tags"] == ["vip", "Kowalczyk-Łęcka"]


async def test_erase_leaves_no_trace_anywhere_and_keeps_other_customers(
        engine: Any, sessions: Any, world: dict[str, Any]) -> None:
    before = await find_in_database(engine, NEEDLES)
    assert {t for t, _, _ in before} >= {"customer", "shop_order", "contact", "message", "outbox", "audit_event",
                                          "conversation", "customer_profile", "customer_note", "return_authorization"}
    async with sessions() as s:
        erasure = await customer_erase(s, EMAIL.upper(), files_dir=world["files"], actor="cli")
        assert len(pending_file_removals(s)) == 3
        assert all(p.exists() for p in erasure.files)  # not before the commit
        await s.commit()
    assert erasure.counts() == {"customers": 1, "orders": 1, "contacts": 2, "conversations": 2,
                                "messages": erasure.messages, "files": 3}
    assert erasure.messages >= 3
    assert await find_in_database(engine, NEEDLES) == []
    assert find_in_files(world["files"], NEEDLES) == []

    # the other customer's data is all there
    async with sessions() as s:
        bruno = world["bruno"]
        customer = await s.get(Customer, bruno["customer"])
        assert (customer.email, customer.last_name, customer.redacted_at) == (OTHER_EMAIL, "Ostrander", None)
        order = await s.get(Order, bruno["order"])
        assert order.shipping_address["address1"] == OTHER_STREET and order.email == OTHER_EMAIL
        contact = await s.get(Contact, bruno["tg_contact"])
        assert (contact.display_name, contact.external_id, contact.customer_id) == (
            "Bruno Ostrander", "tg-bruno-1", bruno["customer"])
        texts = (await s.exec(select(Message.text).where(Message.conversation_id == bruno["tg"]))).all()
        assert any(OTHER_STREET in t for t in texts) and any("Hello Bruno" in t for t in texts)
        outbox = (await s.exec(select(OutboxMessage).where(OutboxMessage.conversation_id == bruno["tg"]))).all()
        assert any("Hello Bruno" in json.dumps(o.payload) for o in outbox)
        agent = await s.get(Agent, world["agent"].id)
        rows = await list_conversations(s, agent, q="Wexcombe")
        assert sorted(r.id for r in rows) == sorted([bruno["tg"], bruno["web"]])
        # the erased customer's conversations are still there (counts), empty and unsearchable
        assert await list_conversations(s, agent, q="Quillfeather") == []
        erased = await s.get(Contact, world["zuzana"]["tg_contact"])
        assert erased.external_id.startswith("erased-") and erased.customer_id is None
        order = await s.get(Order, world["zuzana"]["order"])
        assert order.total_price == Decimal("42.50") and order.shipping_address is None
    for kept in (f"labels/{bruno['rma']}.pdf", f"invoices/{bruno['order']}.pdf",
                 f"customers/{bruno['customer']}/dispute.txt"):
        assert (world["files"] / kept).exists()

    # a second erase finds nothing more and is harmless
    async with sessions() as s:
        again = await customer_erase(s, EMAIL, files_dir=world["files"])
        await s.commit()
    assert (again.customers, again.contacts, again.files) == (0, 0, [])


async def test_a_rolled_back_erase_removes_no_file_and_changes_nothing(
        sessions: Any, world: dict[str, Any]) -> None:
    async with sessions() as s:
        erasure = await customer_erase(s, EMAIL, files_dir=world["files"])
        await s.rollback()
    assert erasure.files and all(p.exists() for p in erasure.files)
    async with sessions() as s:
        assert (await s.get(Customer, world["zuzana"]["customer"])).email == EMAIL


@pytest.mark.parametrize("bad", ["", "   ", "no-at-sign", "a@b\x00c", "x" * 400 + "@a.b"])
async def test_erase_refuses_a_malformed_email(sessions: Any, bad: str) -> None:
    async with sessions() as s:
        with pytest.raises(Refused) as refused:
            await customer_erase(s, bad)
    assert refused.value.code == "bad_email"


async def test_everyone_erase_for_shop_redact(engine: Any, sessions: Any, world: dict[str, Any]) -> None:
    async with sessions() as s:
        await customer_erase(s, None, everyone=True, files_dir=world["files"], actor="shopify")
        await s.commit()
    needles = [*NEEDLES, OTHER_EMAIL, OTHER_STREET, "Ostrander", "tg-bruno-1"]
    assert await find_in_database(engine, needles) == []
    assert find_in_files(world["files"], needles) == []
    async with sessions() as s:
        assert (await s.exec(select(sa.func.count()).select_from(Order))).one() == 2
        assert (await s.exec(select(sa.func.count()).select_from(Conversation))).one() == 4
        assert (await s.exec(select(Order).where(col(Order.email).is_not(None)))).all() == []


# --------------------------------------------------------------------------- Shopify and the CLI

async def test_shopify_redact_webhooks_erase_after_the_signature(
        engine: Any, sessions: Any, world: dict[str, Any], aiohttp_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    from aiohttp import web

    from inbox.privacy import shopify_privacy_handlers
    from ordersvc.webhooks import setup
    from tests.test_shopify_webhooks import SECRET, Hook

    app = web.Application()
    setup(app, sessions, lambda: [SECRET], privacy=shopify_privacy_handlers(world["files"]))
    hook = Hook(client=await aiohttp_client(app), sessions=sessions, secrets=[SECRET])
    payload = {"shop_id": 954889, "shop_domain": "shopdesk-test.myshopify.com",
               "customer": {"id": 1234, "email": EMAIL, "phone": PHONE}, "orders_to_redact": []}
    assert (await hook.post("customers/redact", payload, signature="bm90LXZhbGlk"))[0] == 401
    assert await find_in_database(engine, NEEDLES) != []
    assert await hook.post("customers/redact", payload, webhook_id="gdpr-1") == (200, {"status": "ok"})
    assert await find_in_database(engine, NEEDLES) == []
    assert find_in_files(world["files"], NEEDLES) == []
    assert await hook.post("customers/redact", payload, webhook_id="gdpr-1") == (200, {"status": "duplicate"})
    assert (await hook.post("customers/redact", {"shop_id": 1, "customer": {}}))[0] == 422

    others = [OTHER_EMAIL, OTHER_STREET, "Ostrander"]
    assert await find_in_database(engine, others) != []
    shop = {"shop_id": 954889, "shop_domain": "shopdesk-test.myshopify.com"}
    assert await hook.post("shop/redact", shop, webhook_id="gdpr-2") == (200, {"status": "ok"})
    assert await find_in_database(engine, others) == []
    assert find_in_files(world["files"], others) == []
    logged = "\n".join(r.getMessage() for r in caplog.records).lower()
    assert "erased" in logged
    for needle in (EMAIL.lower(), "kowalczyk", OTHER_EMAIL, "ostrander", "quillfeather"):
        assert needle not in logged


async def test_cli_exports_and_erases(db_url: str, engine: Any, world: dict[str, Any], tmp_path: Path) -> None:
    from tests.test_cli import Cli, ok, one_line_error

    cli = Cli(tmp_path, {"SHOPDESK_DATABASE_URL": db_url})
    assert cli.data_dir / "files" == world["files"]
    report = json.loads(ok(cli("customers", "export", EMAIL)))
    assert report["order_store"]["customers"][0]["last_name"] == "Kowalczyk-Łęcka"
    assert "labels/RMA-ZK-4411.pdf" in report["files"]
    one_line_error(cli("customers", "erase", "not-an-email", "--yes"), 2, "email")
    assert "aborted" in cli("customers", "erase", EMAIL, stdin="n\n").stderr
    assert await find_in_database(engine, NEEDLES) != []
    out = ok(cli("customers", "erase", EMAIL, "--yes"))
    assert "customers=1" in out and "files=3" in out
    assert await find_in_database(engine, NEEDLES) == []
    assert find_in_files(world["files"], NEEDLES) == []


async def test_an_erasure_empties_the_bots_caches_of_customers_texts(sessions: Any, world: dict[str, Any]) -> None:
    """The bot keeps short customer texts in memory (understanding, request splits, folded
    answers); every process empties them after any erasure (bot.forget.ErasureWatch)."""
    from bot import understand_many
    from bot.dialog import choices, requests
    from bot.forget import ErasureWatch

    watch = ErasureWatch(sessions)
    await watch.check()  # where the audit log stands
    said = f"my email is {EMAIL.lower()}"
    understand_many.analyze_many([(said, "en")])
    requests.split_requests(said + " and where is my order to " + STREET, "en")
    choices.fold(STREET)
    assert choices._fold_cached.cache_info().currsize > 0

    def held() -> list[str]:
        texts = [text for text, _ in understand_many._kept] + list(requests._split_kept)
        return [t for t in texts if EMAIL.lower() in t.lower() or STREET in t]

    assert held()
    assert await watch.check() is False  # nothing erased yet: the caches stay
    assert held()

    async with sessions() as s:
        await customer_erase(s, EMAIL, files_dir=world["files"], actor="cli")
        await s.commit()
    assert await watch.check() is True
    assert held() == [] and choices._fold_cached.cache_info().currsize == 0
    assert await watch.check() is False  # once per erasure
