"""Alert texts in the reader's language: the notifications page in the agent's UI language and
the words ``describe`` gives Slack in the shop's language (``SHOPDESK_DEFAULT_LANGUAGE``); the
Slack side through the real sender is in tests/test_slack.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import select

from bot.connectors.slack.blocks import shipment_alert
from inbox.alerts.runner import AlertRunner
from inbox.alerts.text import describe
from inbox.models import Agent
from tests.ordersvc_builders import make_level, make_warehouse
from tests.web_helpers import add_agent, build_web_app, fast_hashing, login  # noqa: F401

LATE = {"order_name": "#1001", "eta": "2026-12-01T10:00:00+00:00",
        "shipments": [{"carrier": "UPS", "tracking_number": "1Z999", "status": "in_transit"}]}


@pytest.mark.parametrize(("locale", "title", "status"), [
    ("en", "Late shipment: #1001", "In transit"),
    ("es", "Envío con retraso: #1001", "En tránsito"),
    ("ru_RU", "Задерживается отправление: #1001", "В пути"),
    ("vi", "Giao hàng trễ: #1001", None),
    ("zh-Hans", "延迟发货：#1001", None),
    ("zh_Hant_TW", "延遲出貨：#1001", None),
    ("de_DE", "Late shipment: #1001", "In transit"),  # not one of ours: English
])
def test_describe_speaks_the_readers_language(locale: str, title: str, status: str | None) -> None:
    said = describe("late_shipment", LATE, locale=locale, tz="UTC")
    assert said.title == title
    if status:
        assert said.lines[0] == f"UPS 1Z999: {status}"
    assert "2026" in said.lines[1]


def test_every_kind_is_translated_with_its_numbers() -> None:
    spike = describe("return_spike", {"product_key": "tee", "title": "Tee", "reason": "too_small", "units": 3,
                                      "days": 7}, locale="ru")
    assert spike.title == "Всплеск возвратов: Tee" and spike.button == "Открыть возвраты товара"
    assert spike.lines == ["3 возвращено с причиной «Мал» за 7 дн."]  # the reason is the catalog's label
    stock = describe("low_stock", {"sku": "MUG", "warehouse": "MAIN", "available": 1200, "on_hand": 1200,
                                   "reserved": 0, "safety_stock": 5}, locale="es")
    assert stock.title == "Poco stock: MUG en MAIN"
    assert stock.lines == ["Disponibles 1.200 (en almacén 1.200, reservados 0), stock de seguridad 5"]
    breach = describe("sla_breach", {"kind": "first", "due_at": "2026-12-02T09:30:00+00:00", "customer": "Lan"},
                      locale="zh-Hant", conversation_id=7)
    assert breach.title == "首次回覆已逾時（SLA）：對話 #7" and breach.lines[0] == "顧客：Lan" and breach.button == "開啟對話"
    assert breach.lines[1].startswith("首次回覆截止時間：") and "2026" in breach.lines[1]
    later = describe("sla_breach", {"kind": "next", "due_at": "2026-12-02T09:30:00+00:00"}, locale="ru", conversation_id=7)
    assert later.title == "Просрочен следующий ответ (SLA): разговор #7"
    assert later.lines[0].startswith("Следующий ответ нужно было дать до: ")
    digest = describe("daily_digest", {"day": "2026-12-02", "new_conversations": 4}, locale="vi")
    assert digest.title.startswith("Tóm tắt hằng ngày") and digest.lines[0] == "Cuộc trò chuyện mới: 4"
    assert describe("escalation", {"priority": "high"}, locale="ru", conversation_id=3).lines[1] == "Приоритет: Высокий"


def test_slack_shipment_alert_is_in_the_shops_language() -> None:
    text, blocks = shipment_alert("shipment_exception", order_name="#1001", shipments=LATE["shipments"], order=None,
                                  inbox_url="https://shop.example/inbox/c/1", locale="es")
    assert text == "Problema con el envío: #1001"
    assert blocks[0]["text"]["text"] == "Problema con el envío: #1001"
    assert "En tránsito" in blocks[1]["text"]["text"]
    assert blocks[-1]["elements"][0]["text"]["text"] == "Abrir en la bandeja"


async def test_notifications_page_is_in_the_agents_language(aiohttp_client: Any, sessions: Any) -> None:
    client = await aiohttp_client(build_web_app(sessions).app)
    await add_agent(sessions)
    async with sessions() as db:
        agent = (await db.exec(select(Agent))).one()
        agent.language = "ru"
        db.add(agent)
        main = await make_warehouse(db, "MAIN")
        await make_level(db, main, "MUG", on_hand=0)
        await db.commit()
    await AlertRunner(sessions).run_once(datetime.now(UTC))
    await login(client)
    page = await (await client.get("/inbox/notifications")).text()
    assert "Мало на складе: MUG" in page and "Low stock" not in page
