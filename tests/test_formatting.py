"""shopbase.formatting: amounts, dates, times and relative times in the reader's locale, and the
places that use it (bot replies, inbox pages, canned responses, Slack blocks, the shop page)."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
from babel import Locale

from shopbase.formatting import (
    LANGUAGE_LOCALES,
    format_age,
    format_date,
    format_datetime,
    format_money,
    format_number,
    format_percent,
    format_relative,
    format_time,
    install_filters,
    language_from_header,
    locale_for,
)

NBSP = "\xa0"
AMOUNT = Decimal("1234.56")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _plain(text: str) -> str:
    """Babel's no-break spaces as plain spaces, so expectations stay readable."""
    return text.replace(NBSP, " ").replace("\u202f", " ")


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("lang", "currency", "expected"),
    [
        ("en", "USD", "$1,234.56"),
        ("es", "EUR", "1.234,56 €"),
        ("es", "USD", "1.234,56 US$"),
        ("ru", "RUB", "1 234,56 ₽"),
        ("ru", "EUR", "1 234,56 €"),
        ("vi", "VND", "1.235 ₫"),  # the dong has no minor unit: no decimals
        ("en", "VND", "₫1,235"),
        ("zh-Hans", "CNY", "¥1,234.56"),
        ("zh-Hans", "JPY", "JP¥1,235"),  # nor has the yen
        ("zh-Hant", "TWD", "$1,234.56"),
        ("zh-Hant", "JPY", "¥1,235"),
        ("en", "JPY", "¥1,235"),
    ],
)
def test_money_in_each_language(lang: str, currency: str, expected: str) -> None:
    assert _plain(format_money(AMOUNT, currency, lang)) == expected


def test_money_takes_babel_locales_locale_objects_and_odd_input() -> None:
    assert format_money(AMOUNT, "EUR", "es_ES") == format_money(AMOUNT, "EUR", Locale.parse("es_ES"))
    assert format_money("19.9", "usd", "en") == "$19.90"  # a string amount, a lower-case code
    assert format_money(5, "USD", None) == "$5.00"  # no locale: English
    assert format_money(AMOUNT, "USD", "xx-nowhere") == "$1,234.56"
    assert format_money(None, "USD", "en") == ""
    assert format_money("not a number", "USD", "en") == "not a number"
    assert format_money(Decimal("NaN"), "USD", "en") == "NaN"
    assert format_money(Decimal("2.5"), "XYZ", "en")  # an unknown code still gives text, never an error


def test_locale_mapping_is_the_documented_one() -> None:
    assert LANGUAGE_LOCALES == {"en": "en_US", "es": "es_ES", "ru": "ru_RU", "vi": "vi_VN",
                                "zh-Hans": "zh_Hans_CN", "zh-Hant": "zh_Hant_TW"}
    assert str(locale_for("zh-Hant")) == "zh_Hant_TW" and str(locale_for("zh-hans")) == "zh_Hans_CN"
    assert str(locale_for("pt-BR")) == "pt_BR" and str(locale_for("")) == "en_US"
    assert locale_for("es") is locale_for("es")  # parsed once


def test_numbers_and_percentages() -> None:
    assert format_number(Decimal("1234567.5"), "en") == "1,234,567.5"
    assert _plain(format_number(Decimal("1234567.5"), "ru")) == "1 234 567,5"
    assert format_number(Decimal("1234567.5"), "es") == "1.234.567,5"
    assert format_percent(Decimal("0.87"), "en") == "87%"
    assert _plain(format_percent(Decimal("0.87"), "es")) == "87 %"
    assert format_number(None, "en") == ""


# --------------------------------------------------------------------------- dates and times


def test_a_date_in_russian() -> None:
    assert _plain(format_date(date(2026, 12, 2), "ru")) == "2 дек. 2026 г."
    assert _plain(format_date(date(2026, 12, 2), "ru", format="long")) == "2 декабря 2026 г."


def test_dates_are_taken_in_the_readers_time_zone() -> None:
    late = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    assert format_date(late, "en") == "Dec 2, 2026"
    assert format_date(late, "en", "Asia/Shanghai") == "Dec 3, 2026"  # already the 3rd in Shanghai
    assert format_date(late, "zh-Hans", "Asia/Shanghai") == "2026年12月3日"
    assert format_date(late, "es", "Not/AZone") == "2 dic 2026"  # an unknown zone is UTC


def test_times_and_datetimes() -> None:
    moment = datetime(2026, 12, 2, 18, 4, 59, tzinfo=UTC)
    assert _plain(format_time(moment, "en")) == "6:04 PM"
    assert format_time(moment, "ru", "Europe/Moscow") == "21:04"
    assert _plain(format_datetime(moment, "en")) == "Dec 2, 2026, 6:04 PM"  # to the minute
    assert format_datetime(moment, "es", "Europe/Madrid") == "2 dic 2026, 19:04"
    assert _plain(format_datetime(moment, "en", "Europe/Madrid", with_zone=True)) == "Dec 2, 2026, 7:04 PM GMT+01:00"
    assert format_datetime(None, "en") == "" and format_time(None, "en") == "" and format_date(None, "en") == ""


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("en", "3 hours ago"), ("es", "hace 3 horas"), ("ru", "3 часа назад"), ("vi", "3 giờ trước"),
     ("zh-Hans", "3小时前"), ("zh-Hant", "3 小時前")],
)
def test_relative_time_in_each_language(lang: str, expected: str) -> None:
    assert format_relative(NOW - timedelta(hours=3), lang, now=NOW) == expected


def test_relative_time_edges() -> None:
    assert format_relative(NOW - timedelta(seconds=10), "en", now=NOW) == "now"
    assert format_relative(NOW - timedelta(seconds=10), "es", now=NOW) == "ahora"
    assert format_relative(NOW + timedelta(days=2), "en", now=NOW) == "in 2 days"
    assert format_relative(NOW - timedelta(days=30), "en", now=NOW) == "Nov 2, 2026"  # a date after a week
    assert format_relative(NOW - timedelta(days=30), "en", now=NOW, date_after=None) == "1 month ago"
    assert format_relative(datetime(2026, 12, 2, 9, 0), "en", now=NOW) == "3 hours ago"  # naive is UTC
    assert format_age(NOW - timedelta(minutes=5), "en", now=NOW) == "5m"
    assert format_age(NOW - timedelta(hours=3), "ru", now=NOW) == "3 ч"
    assert format_age(NOW - timedelta(days=30), "en", now=NOW) == "Nov 2"
    assert format_age(NOW - timedelta(days=30), "zh-Hans", now=NOW) == "11月2日"


def test_accept_language_picks_one_of_our_languages() -> None:
    assert language_from_header("zh-TW,zh;q=0.8,en;q=0.5", "en") == "zh-Hant"
    assert language_from_header("zh-CN", "en") == "zh-Hans"
    assert language_from_header("fr-FR, es-MX;q=0.9, en;q=0.8", "en") == "es"
    assert language_from_header("fr-FR", "ru") == "ru"
    assert language_from_header("", "vi") == "vi" and language_from_header(None) == "en"
    assert language_from_header("en;q=oops, ru;q=0.1", "vi") == "ru"
    assert language_from_header("x" * 5000, "en") == "en"


def test_cached_money_costs_little() -> None:
    """The bot formats amounts on its hot path: a repeated amount is served from the cache."""
    locale = "es"
    format_money(AMOUNT, "EUR", locale)
    start = time.perf_counter()
    for _ in range(2000):
        format_money(AMOUNT, "EUR", locale)
    per_call = (time.perf_counter() - start) / 2000
    assert per_call < 0.001  # generous: ~2 µs measured, Babel's uncached ~60 µs


# --------------------------------------------------------------------------- Jinja filters


def _env() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    install_filters(env)
    return env


def test_filters_read_locale_and_timezone_from_the_context() -> None:
    template = _env().from_string("{{ total|money(currency) }} · {{ placed|day }} · {{ placed|moment }} · {{ n|number }}")
    values = {"total": AMOUNT, "currency": "EUR", "placed": datetime(2026, 12, 2, 23, 30, tzinfo=UTC), "n": 12345}
    assert _plain(template.render(locale="es", timezone="Europe/Madrid", **values)) == (
        "1.234,56 € · 3 dic 2026 · 3 dic 2026, 0:30 · 12.345")
    assert _plain(template.render(locale="zh-Hans", timezone="Asia/Shanghai", **values)) == (
        "€1,234.56 · 2026年12月3日 · 2026年12月3日 07:30 · 12,345")
    assert _plain(template.render(**values)) == "€1,234.56 · Dec 2, 2026 · Dec 2, 2026, 11:30 PM · 12,345"


def test_an_explicit_locale_or_zone_wins_over_the_context() -> None:
    template = _env().from_string("{{ x|money('USD', locale='ru') }} {{ d|day('Asia/Tokyo') }}")
    out = template.render(locale="en", timezone="UTC", x=Decimal("5"), d=datetime(2026, 1, 1, 20, tzinfo=UTC))
    assert _plain(out) == "5,00 $ Jan 2, 2026"


# --------------------------------------------------------------------------- reply templates


def test_reply_templates_format_for_the_customers_language() -> None:
    from inbox.replies import render_reply

    items = [
        {"kind": "refund", "amount": Decimal("1234.50"), "currency": "CNY", "order_name": "#1001",
         "at": datetime(2025, 5, 3, 10, tzinfo=UTC)},
        {"kind": "store_credit", "amount": Decimal("20000"), "currency": "VND", "code": "SC-1"},
    ]
    zh = render_reply("refunds_list", "zh-Hans", items=items, tz="Asia/Shanghai")
    assert "退款 ¥1,234.50 (订单 #1001), 退款日期 2025年5月3日" in zh
    assert "店铺余额 ₫20,000" in zh
    es = render_reply("refunds_list", "es", items=items, tz="Europe/Madrid")
    assert "Reembolso de 1.234,50\xa0CNY (del pedido #1001), emitido el 3 may 2025" in es
    assert "Saldo de tienda 20.000\xa0₫" in es


# --------------------------------------------------------------------------- Slack blocks


def test_slack_order_card_in_the_shops_language() -> None:
    from bot.connectors.slack import blocks

    order = {"name": "#1001", "placed_at": "2026-12-02T23:30:00Z", "total_price": "1234.50", "currency": "EUR",
             "financial_status": "paid", "fulfillment_status": "unfulfilled", "customer": {"name": "Lan"}}
    es = json.dumps(blocks.order_card(order, locale="es", tz="Europe/Madrid"), ensure_ascii=False)
    assert "1.234,50\xa0€" in es and "3 dic 2026" in es
    ru = _plain(json.dumps(blocks.order_card(order, locale="ru", tz="UTC"), ensure_ascii=False))
    assert "1 234,50 €" in ru and "2 дек. 2026 г." in ru
    en = json.dumps(blocks.order_card({**order, "placed_at": None, "total_price": None}), ensure_ascii=False)
    assert "—" in en  # missing values stay a dash, never an error
    _text, alert = blocks.return_approval_alert(
        rma_id=1, rma_number="R1", order_name="#1001", resolution="refund", method="mail",
        amount=Decimal("150000"), currency="VND", items=[], reason_notes=[], inbox_url=None, locale="vi")
    assert "150.000\xa0₫" in json.dumps(alert, ensure_ascii=False)


# --------------------------------------------------------------------------- the agent's locale


def test_the_agents_locale_is_their_language_else_english() -> None:
    from inbox.web.rendering import agent_locale

    assert agent_locale(SimpleNamespace(language="ru")) == "ru"
    assert agent_locale(SimpleNamespace(language=None)) == "en"
    assert agent_locale(SimpleNamespace()) == "en"  # before agents have a language preference
    assert agent_locale(None) == "en"


# --------------------------------------------------------------------------- through the product


async def _refund_for(sessions: Any, currency: str) -> None:
    from ordersvc.models import Refund
    from tests.ordersvc_builders import make_customer, make_order

    async with sessions() as session:
        customer = await make_customer(session, email="lan@example.com")
        order, _ = await make_order(session, name="#1001", customer=customer, email="lan@example.com",
                                    currency=currency)
        session.add(Refund(order_id=order.id, external_id="r-1", amount=Decimal("1234.50"), currency=currency,
                           processed_at=datetime(2025, 5, 3, 10, tzinfo=UTC)))
        await session.commit()


@pytest.mark.parametrize(
    ("lang", "currency", "question", "expected"),
    [
        ("zh-Hans", "CNY", "我的退款在哪里？", "退款 ¥1,234.50 (订单 #1001), 退款日期 2025年5月3日"),
        ("es", "EUR", "¿Dónde está mi reembolso?", "Reembolso de 1.234,50 € (del pedido #1001), emitido el 3 may 2025"),
        ("vi", "VND", "tiền hoàn của tôi đâu?", "Hoàn tiền 1.234 ₫ (cho đơn #1001)"),  # no decimals for the dong
    ],
)
async def test_a_bot_reply_writes_the_amount_in_the_customers_language(
        sessions: Any, settings: Any, lang: str, currency: str, question: str, expected: str) -> None:
    from bot_chat import Chat

    await _refund_for(sessions, currency)
    chat = Chat(sessions, settings, lang=lang)
    await chat.send(question)
    await chat.send("#1001")
    await chat.send("lan@example.com")
    assert expected in _plain(chat.text), chat.text


async def test_an_inbox_page_shows_amounts_and_dates_in_the_agents_locale(
        aiohttp_client: Any, sessions: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from inbox.actions.agent_language import agent_language
    from inbox.actions.contact_link import contact_link
    from inbox.models import Agent, Contact
    from tests.ordersvc_builders import make_customer, make_order, make_shipment
    from tests.web_helpers import add_agent, build_web_app, customer_says, login

    web = build_web_app(sessions)
    client = await aiohttp_client(web.app)
    agent = await add_agent(sessions)
    rec = await customer_says(sessions, "where is it")
    async with sessions() as db:
        customer = await make_customer(db)
        order, lines = await make_order(db, [{"sku": "TEE-M", "quantity": 2, "unit_price": "617.25"}],
                                        customer=customer, name="#1001", currency="EUR")
        shipment = await make_shipment(db, order, lines=[(lines[0], 1)])
        shipment.eta = datetime(2031, 3, 4, 20, 0, tzinfo=UTC)
        db.add(shipment)
        await contact_link(db, await db.get(Contact, rec.contact_id), customer.id)
        await db.commit()
    await login(client)
    url = f"/inbox/c/{rec.conversation_id}/fragments/sidebar"

    english = await (await client.get(url)).text()
    assert "€1,234.50" in english and "Mar 4, 2031" in english

    async def choose(language: str) -> None:  # the agent's UI language (their profile's choice)
        async with sessions() as db:
            agent_language(db, await db.get(Agent, agent.id), language)
            await db.commit()

    await choose("es")
    spanish = _plain(await (await client.get(url)).text())
    assert "1.234,50 €" in spanish and "4 mar 2031" in spanish and "€1,234.50" not in spanish
    await choose("zh-Hant")
    chinese = await (await client.get(url)).text()
    assert "€1,234.50" in chinese and "2031年3月4日" in chinese


async def test_canned_responses_write_amounts_for_the_conversations_language(sessions: Any) -> None:
    from inbox.actions.contact_link import contact_link
    from inbox.models import Contact, Conversation
    from inbox.web.canned import canned_context, render_canned
    from tests.ordersvc_builders import make_customer, make_order
    from tests.web_helpers import customer_says

    rec = await customer_says(sessions, "где мой заказ")
    async with sessions() as db:
        customer = await make_customer(db)
        await make_order(db, [{"sku": "TEE-M", "quantity": 1, "unit_price": "1234.5"}], customer=customer,
                         name="#1001", currency="RUB", placed_at=datetime(2026, 12, 2, 22, 30, tzinfo=UTC))
        await contact_link(db, await db.get(Contact, rec.contact_id), customer.id)
        conversation = await db.get(Conversation, rec.conversation_id)
        conversation.language = "ru"
        context = await canned_context(db, conversation, timezone="Europe/Moscow")
    body = "Заказ {{ order.name }} на {{ order.total }} от {{ order.placed_at }}; бонус {{ 500|money('RUB') }}"
    assert _plain(render_canned(body, context)) == "Заказ #1001 на 1 234,50 ₽ от 3 дек. 2026 г.; бонус 500,00 ₽"


async def test_the_demo_shop_shows_prices_in_the_visitors_language(aiohttp_client: Any, sessions: Any) -> None:
    from tests.web_helpers import build_web_app

    client = await aiohttp_client(build_web_app(sessions).app)
    english = await (await client.get("/shop")).text()
    assert "$89.00" in english
    spanish = _plain(await (await client.get("/shop", headers={"Accept-Language": "es-ES,es;q=0.9"})).text())
    assert "89,00 US$" in spanish


def test_invoices_give_dates_in_the_shops_time_zone_and_amounts_in_the_customers_locale() -> None:
    from io import BytesIO

    from pypdf import PdfReader

    from ordersvc.documents import ShopInfo
    from ordersvc.invoices import render_invoice
    from ordersvc.models import Order, OrderLine

    order = Order(id=7, external_id="7", name="#2001", placed_at=datetime(2026, 12, 2, 23, 30, tzinfo=UTC),
                  currency="EUR", subtotal_price=Decimal("1234.56"), total_shipping=Decimal("0"),
                  total_tax=Decimal("0"), total_price=Decimal("1234.56"))
    lines = [OrderLine(id=9, order_id=7, sku="TEE-M", title="T-shirt", quantity=1, unit_price=Decimal("1234.56"))]

    def text(shop: ShopInfo, locale: str) -> str:
        pdf = render_invoice(order, None, lines, shop, locale, issued_at=order.placed_at)
        return _plain(" ".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages))

    assert "December 2, 2026" in text(ShopInfo(name="Shop"), "en")
    tokyo = text(ShopInfo(name="Shop", timezone="Asia/Tokyo"), "en")
    assert "December 3, 2026" in tokyo and "December 2, 2026" not in tokyo and "€1,234.56" in tokyo
    assert "1.234,56 €" in text(ShopInfo(name="Shop", timezone="Europe/Madrid"), "es")
