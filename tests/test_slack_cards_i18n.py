"""The Slack escalation card and the return-approval card in the shop's language
(``SHOPDESK_DEFAULT_LANGUAGE``), posted through the real Slack sender to the loopback fake, and
the cards' lines after a button (claimed, approved) in that language too."""

from __future__ import annotations

from typing import Any

from bot.connectors.slack import blocks as sb
from ordersvc.models import ReturnAuthorization, RmaStatus
from tests.db_helpers import eventually
from tests.fakes import slack as fs
from tests.fakes.slack import FakeSlack
from tests.ordersvc_builders import make_customer, make_order, make_shipment
from tests.test_slack import (  # noqa: F401  (fake is a fixture)
    ALERTS,
    add_agent,
    buttons,
    customer_conversation,
    escalate,
    fake,
    make_env,
    make_rma,
    slack_settings,
    texts,
)


def _fields(message: dict[str, Any]) -> list[str]:
    return [f["text"] for b in message["blocks"] if b["type"] == "section" for f in b.get("fields", [])]


def _sections(message: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b)


def _labels(message: dict[str, Any]) -> dict[str, str]:
    return {action: button["text"]["text"] for action, button in buttons(message).items()}


async def test_escalation_card_in_russian_and_its_claimed_line(aiohttp_client: Any, fake: FakeSlack,  # noqa: F811
                                                               settings: Any, sessions: Any) -> None:
    env = await make_env(aiohttp_client, fake, slack_settings(settings, fake, default_language="ru"), sessions)
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    async with env.sessions() as s:
        customer = await make_customer(s, first_name="Lan", email="lan@example.com")
        order, lines = await make_order(s, name="#1001", customer=customer)
        await make_shipment(s, order, lines=[(lines[0], 1)])
        await s.commit()
    conversation_id = await customer_conversation(env.sessions, name="Lan <!here>")
    alert = await escalate(env, conversation_id, order_id=order.id)

    assert alert["blocks"][0]["text"]["text"] == f"Нужен человек: разговор #{conversation_id}"
    fields = _fields(alert)
    assert "*Клиент*\nLan &lt;!here&gt;" in fields  # translated label, customer text still escaped
    assert "*Приоритет*\nВысокий" in fields and "*Намерение*\nЖалоба" in fields and "*Канал*\nTelegram" in fields
    assert "*Заказ*\n#1001" in fields  # the order card's labels too
    body = texts(alert)
    sections = _sections(alert)
    assert "*Сводка бота*\nreason: complaint; parcel lost" in sections
    assert "*Товары*\n" in sections and "*Отправления*\n" in sections and ": Info received" not in sections
    assert "Никто не взял." in body and "`note:`" in body
    assert _labels(alert) == {sb.ACTION_CLAIM: "Взять", sb.ACTION_RESOLVE: "Решить",
                              sb.ACTION_OPEN: "Открыть во входящих"}
    for english in ("Needs a person", "Customer", "Priority", "Unclaimed", "Fulfilment", "Shipments"):
        assert english not in body, english
    assert "Разговор #" in alert["text"] and "Высокий" in alert["text"]  # the notification's fallback

    resp = await env.post(fs.block_actions_body(sb.ACTION_CLAIM, str(conversation_id), "U0ANA", ALERTS, alert["ts"]))
    assert resp.status == 200
    await eventually(lambda: _updated(fake))
    await env.idle()
    updated = fake.posted_messages(ALERTS)[0]
    assert "Взят в работу (назначен: Ana (<@U0ANA>))." in texts(updated) and "Claimed" not in texts(updated)


async def _updated(slack: FakeSlack) -> bool:
    return any("Взят в работу" in texts(m) for m in slack.posted_messages(ALERTS))


async def test_return_approval_card_in_spanish_and_its_decision(aiohttp_client: Any, fake: FakeSlack,  # noqa: F811
                                                                settings: Any, sessions: Any) -> None:
    env = await make_env(aiohttp_client, fake, slack_settings(settings, fake, default_language="es"), sessions)
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions)
    rma = await make_rma(env.sessions)
    await env.alert(conversation_id, {"kind": "return_approval", "rma_id": rma.id})
    await env.idle()
    [alert] = [m for m in fake.posted_messages(ALERTS) if not m.get("thread_ts")]

    assert alert["text"] == "La devolución R5005-1 de #5005 espera aprobación"
    assert alert["blocks"][0]["text"]["text"] == "Devolución pendiente de aprobación: R5005-1"
    fields = _fields(alert)
    assert "*Pedido*\n#5005" in fields and "*Importe*\n20,00\xa0US$" in fields
    assert "*Método*\nCorreo postal" in fields and "*Artículos*" in texts(alert) and "*Notas del cliente*" in texts(alert)
    assert _labels(alert)[sb.ACTION_APPROVE_RETURN] == "Aprobar"
    assert _labels(alert)[sb.ACTION_REJECT_RETURN] == "Rechazar"
    assert "arrived torn" in texts(alert)  # the customer's own words stay as written
    for english in ("Return waiting", "Amount", "Approve", "Reject", "Customer's notes", "Customer’s notes"):
        assert english not in texts(alert), english

    await env.post(fs.block_actions_body(sb.ACTION_APPROVE_RETURN, str(rma.id), "U0ANA", ALERTS, alert["ts"],
                                         message_blocks=alert["blocks"]))

    async def decided() -> bool:
        async with env.sessions() as s:
            row = await s.get(ReturnAuthorization, rma.id)
            return row is not None and row.status == RmaStatus.label_issued and bool(fake.calls_for("chat.update"))
    await eventually(decided)
    updated = fake.posted_messages(ALERTS)[0]
    assert buttons(updated) == {} and "Aprobada por Ana" in texts(updated) and "Approved" not in texts(updated)
