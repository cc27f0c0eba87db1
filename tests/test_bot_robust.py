"""The bot understands customers as they really write (issue 9, dialog and entities).

Whole dialogs through the real pipeline on SQLite and PostgreSQL: menus answered in words,
numbers, ordinals, synonyms and typos in six languages; one yes/no at every confirmation;
two failed answers bring a person; answers given early are kept; a real new request puts
the flow aside and it is offered again; corrected order numbers and emails; two requests in
one message; clarifying questions that name the candidates; long order numbers; bad input.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from bot_chat import Chat, days_ago
from ordersvc_builders import make_customer, make_level, make_order, make_shipment, make_warehouse
from sqlmodel import select

from bot.dialog.choices import match, wants_all, yes_no
from bot.nlu.entities import extract_entities
from inbox.models import Owner
from ordersvc.inventory import reserve_order
from ordersvc.models import Customer, FulfillmentStatus, Order, OrderLine, ReturnAuthorization, ReturnLine, Warehouse
from ordersvc.returns import MethodOptions, ReturnPolicy, save_policy

EMAIL = "lan@example.com"
LANGS = ("en", "es", "ru", "vi", "zh-Hans", "zh-Hant")

REASONS = [("Too small", "reason:too_small"), ("Too large", "reason:too_large"), ("Arrived damaged", "reason:damaged"),
           ("Doesn't work", "reason:defective"), ("Not as described", "reason:not_as_described"),
           ("Wrong item", "reason:wrong_item"), ("Changed my mind", "reason:changed_mind"), ("Other reason", "reason:other")]
CONDITIONS = [("Unopened", "condition:unopened"), ("Opened, like new", "condition:like_new"), ("Used", "condition:used"),
              ("Damaged", "condition:damaged")]
RESOLUTIONS = [("Refund", "resolution:refund"), ("Store credit", "resolution:store_credit")]


# --------------------------------------------------------------------------- the matcher itself


@pytest.mark.parametrize("text, options, lang, expected", [
    ("2", REASONS, "en", "reason:too_large"),
    ("2.", REASONS, "en", "reason:too_large"),
    ("#2", REASONS, "en", "reason:too_large"),
    ("number 2", REASONS, "en", "reason:too_large"),
    ("the second one", REASONS, "en", "reason:too_large"),
    ("the first one", REASONS, "en", "reason:too_small"),
    ("last", REASONS, "en", "reason:other"),
    ("второй", REASONS, "ru", "reason:too_large"),
    ("el segundo", REASONS, "es", "reason:too_large"),
    ("第二个", REASONS, "zh-Hans", "reason:too_large"),
    ("第一個", REASONS, "zh-Hant", "reason:too_small"),
    ("cái thứ hai", REASONS, "vi", "reason:too_large"),
    ("like new", CONDITIONS, "en", "condition:like_new"),
    ("it's like new", CONDITIONS, "en", "condition:like_new"),
    ("not opened, still sealed", CONDITIONS, "en", "condition:unopened"),
    ("I'd like a refund please", RESOLUTIONS, "en", "resolution:refund"),
    ("refnd", RESOLUTIONS, "en", "resolution:refund"),  # a typo
    ("слишком маленький", REASONS, "ru", "reason:too_small"),
    ("demasiado pequeño", REASONS, "es", "reason:too_small"),
    ("demasiado pequeno", REASONS, "es", "reason:too_small"),  # no tilde
    ("hoan tien", RESOLUTIONS, "vi", "resolution:refund"),  # no tone marks
    ("太小了", REASONS, "zh-Hans", "reason:too_small"),
    ("banana", REASONS, "en", None),
    ("9", REASONS, "en", None),
    ("I want to talk to a person", REASONS, "en", None),  # Vietnamese "to" (big) is not English "to"
    ("not too small, too large", REASONS, "en", "reason:too_large"),
])
def test_one_matcher_reads_answers_the_way_people_type_them(text: str, options: list[tuple[str, str]], lang: str,
                                                            expected: str | None) -> None:
    assert match(text, options, lang) == expected


def test_numbers_are_never_close_enough() -> None:
    orders = [("#1001", "order:1"), ("#1002", "order:2")]
    assert match("1003", orders, "en") is None and match("2", orders, "en") == "order:2"


@pytest.mark.parametrize("text, expected", [
    ("yes please", "yes"), ("sure", "yes"), ("yep", "yes"), ("ok do it", "yes"), ("是的，取消吧", "yes"),
    ("да, отменяйте", "yes"), ("vâng", "yes"), ("sí, por favor", "yes"), ("có", "yes"), ("好的", "yes"),
    ("no thanks", "no"), ("не надо", "no"), ("không", "no"), ("不用", "no"), ("no, gracias", "no"), ("不是", "no"),
    ("maybe", None), ("", None),
])
def test_one_yes_no(text: str, expected: str | None) -> None:
    assert yes_no(text, "en") == expected


@pytest.mark.parametrize("text, lang", [("both", "en"), ("оба", "ru"), ("cả hai", "vi"), ("两个都", "zh-Hans"),
                                        ("los dos", "es"), ("兩個都", "zh-Hant"), ("both of them please", "en")])
def test_both(text: str, lang: str) -> None:
    assert wants_all(text, lang)


# --------------------------------------------------------------------------- entities


@pytest.mark.parametrize("text, value", [
    ("#1O01", "#1001"),  # a letter O inside a number is a zero
    ("order 1o01 please", "#1001"),
    ("my order is 5512345678901", "#5512345678901"),  # Shopify's 13-digit order id
    ("00004587345", "#00004587345"),  # leading zeros: an order number, not a phone
    ("order 4587345-001-9912345", "4587345-001-9912345"),  # marketplace, 7-3-7
    ("1234-5678-9012", "1234-5678-9012"),
    ("123-4567890-1234567", "123-4567890-1234567"),
    ("123456789012345", "#123456789012345"),
])
def test_order_identifiers_beyond_the_shop_number(text: str, value: str) -> None:
    found = [(e.type, e.value) for e in extract_entities(text)]
    assert found == [("order_number", value)]


def test_o_for_zero_only_inside_numbers() -> None:
    assert [e.type for e in extract_entities("GO TO 2OO")] == []
    assert [(e.type, e.value) for e in extract_entities("mail me at oo1o@example.com")] == [("email", "oo1o@example.com")]
    assert [(e.type, e.value) for e in extract_entities("+44 20 7946 0958")] == [("phone", "+442079460958")]


# --------------------------------------------------------------------------- shop fixtures


async def _shop(sessions: Any, *, name: str = "#1001", email: str = EMAIL, policy: ReturnPolicy | None = None,
                external_id: str | None = None) -> tuple[Order, list[OrderLine]]:
    """A delivered order: 2 linen tees and a tote."""
    async with sessions() as session:
        if policy is not None:
            await save_policy(session, policy)
        if (await session.exec(select(Warehouse))).first() is None:
            await make_warehouse(session, address={"address1": "1 Dock Road", "city": "Reno", "zip": "89501", "country_code": "US"})
        customer = (await session.exec(select(Customer).where(Customer.email == email))).first()
        if customer is None:
            customer = await make_customer(session, email=email)
        extra = {"external_id": external_id} if external_id else {}
        order, rows = await make_order(
            session,
            [{"sku": "TEE-M", "title": "Linen tee", "variant_title": "M", "quantity": 2, "unit_price": "25.00"},
             {"sku": "TOTE", "title": "Canvas tote", "quantity": 1, "unit_price": "15.00"}],
            name=name, customer=customer, email=email, **extra,
        )
        await make_shipment(session, order, lines=[(ln, ln.quantity) for ln in rows],
                            delivered_at=days_ago(3), shipped_at=days_ago(6))
        await session.commit()
        return order, rows


async def _unshipped(sessions: Any, *, name: str = "#1001") -> Order:
    async with sessions() as session:
        warehouse = await make_warehouse(session, code="WH1")
        await make_level(session, warehouse, "TEE-U", 10)
        customer = await make_customer(session, email=EMAIL)
        order, _ = await make_order(session, [{"sku": "TEE-U", "title": "Linen tee", "quantity": 1, "unit_price": "25.00"}],
                                    name=name, customer=customer, email=EMAIL, fulfillment_status=FulfillmentStatus.unfulfilled)
        await reserve_order(session, order)
        await session.commit()
        return order


async def _rmas(sessions: Any) -> list[tuple[ReturnAuthorization, list[ReturnLine]]]:
    async with sessions() as session:
        out = []
        for rma in (await session.exec(select(ReturnAuthorization).order_by(ReturnAuthorization.id))).all():
            out.append((rma, list((await session.exec(select(ReturnLine).where(ReturnLine.rma_id == rma.id))).all())))
        return out


async def _verified(chat: Chat, intent: str, name: str = "#1001") -> None:
    await chat.send("", postback=f"intent:{intent}")
    await chat.send(name)
    await chat.send(EMAIL)


async def _step(chat: Chat) -> str | None:
    return (await chat.state()).get("step")


# --------------------------------------------------------------------------- 1. every menu, typed


TYPED = {
    #        item,           quantity, reason,               condition,   "that's all",  resolution,              method,               confirm
    "en": ("the first one", "two", "it's too tight", "like new", "that's all", "I'd like a refund please", "drop off", "yes please"),
    "es": ("el primero", "dos", "demasiado pequeno", "como nuevo", "nada más", "quiero un reembolso, por favor", "punto de entrega", "sí, por favor"),
    "ru": ("первый", "два", "слишком маленький", "как новый", "больше ничего", "верните деньги", "пункт выдачи", "да, конечно"),
    "vi": ("cái thứ nhất", "hai", "quá chật", "như mới", "hết rồi", "tôi muốn hoàn tiền", "điểm gửi hàng", "vâng"),
    "zh-Hans": ("第一个", "两个", "太小了", "几乎全新", "就这些", "我要退款", "快递柜", "是的"),
    "zh-Hant": ("第一個", "兩個", "太小了", "幾乎全新", "就這些", "我要退款", "代收點", "好的"),
}


@pytest.mark.parametrize("lang", LANGS)
async def test_every_return_question_answered_in_words(sessions, settings, lang: str) -> None:  # type: ignore[no-untyped-def]
    order, (tee, _tote) = await _shop(sessions, policy=ReturnPolicy(methods=MethodOptions(mail=True, dropoff=True)))
    item, quantity, reason, condition, done, resolution, method, confirm = TYPED[lang]
    chat = Chat(sessions, settings, lang=lang)
    await _verified(chat, "start_return")
    assert await _step(chat) == "items"
    for answer, next_step in ((item, "quantity"), (quantity, "reason"), (reason, "condition"), (condition, "items"),
                              (done, "resolution"), (resolution, "method"), (method, "confirm")):
        await chat.send(answer)
        assert await _step(chat) == next_step, (answer, chat.text)
    await chat.send(confirm)
    [(rma, lines)] = await _rmas(sessions)
    assert (rma.resolution.value, rma.method.value) == ("refund", "dropoff")
    assert [(ln.order_line_id, ln.quantity, ln.reason.value, ln.condition.value) for ln in lines] == [
        (tee.id, 2, "too_small", "like_new")]
    assert rma.refund_amount == Decimal("50.00")


@pytest.mark.parametrize("lang, both", [("en", "both"), ("ru", "оба"), ("vi", "cả hai"), ("zh-Hans", "两个都"),
                                        ("es", "los dos"), ("zh-Hant", "兩個都")])
async def test_both_items_are_asked_about_one_after_the_other(sessions, settings, lang: str, both: str) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, tote) = await _shop(sessions)
    chat = Chat(sessions, settings, lang=lang)
    await _verified(chat, "start_return")
    await chat.send(both)
    assert await _step(chat) == "quantity"  # the tee first (2 units)
    await chat.send("2")
    await chat.press("reason:too_small")
    await chat.press("condition:unopened")
    assert await _step(chat) == "reason"  # then the tote, without asking which item again
    await chat.press("reason:changed_mind")
    await chat.press("condition:unopened")
    assert await _step(chat) == "resolution"
    await chat.press("resolution:refund")
    await chat.press("yes")
    [(_rma, lines)] = await _rmas(sessions)
    assert sorted((ln.order_line_id, ln.quantity) for ln in lines) == sorted([(tee.id, 2), (tote.id, 1)])


# --------------------------------------------------------------------------- 2. two misses → a person


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_two_failed_answers_bring_a_person_instead_of_the_menu_again(sessions, settings, lang: str) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    chat = Chat(sessions, settings, lang=lang)
    await _verified(chat, "start_return")
    await chat.send("zzz qqq")
    assert await _step(chat) == "items" and len(chat.choices) == 2  # asked again, with a hint
    await chat.send("xyz")
    assert chat.choices == [] and (await chat.state())["flow"] is None
    conversation = await chat.conversation()
    assert conversation.owner == Owner.agent and "not_understood" in (conversation.summary or "")


async def test_a_good_answer_resets_the_count(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, _tote) = await _shop(sessions)
    chat = Chat(sessions, settings)
    await _verified(chat, "start_return")
    await chat.send("zzz")
    await chat.press(f"line:{tee.id}")
    await chat.send("eleven")  # one miss at the quantity: asked again
    assert await _step(chat) == "quantity" and (await chat.conversation()).owner == Owner.bot


# --------------------------------------------------------------------------- 3. yes / no at every confirmation


YES_NO = {
    "en": ("ok do it", "no thanks"), "es": ("sí, por favor", "no, gracias"), "ru": ("да, отменяйте", "не надо"),
    "vi": ("vâng", "không"), "zh-Hans": ("是的，取消吧", "不用"), "zh-Hant": ("好的，取消吧", "不要"),
}


@pytest.mark.parametrize("lang", LANGS)
async def test_cancel_confirmation_understands_yes_and_no(sessions, settings, lang: str) -> None:  # type: ignore[no-untyped-def]
    order = await _unshipped(sessions)
    yes, no = YES_NO[lang]
    chat = Chat(sessions, settings, lang=lang)
    await _verified(chat, "cancel_order")
    assert await _step(chat) == "confirm"
    await chat.send(no)
    async with sessions() as session:
        assert (await session.get(Order, order.id)).cancelled_at is None  # type: ignore[union-attr]
    assert (await chat.state())["flow"] is None
    await chat.send("", postback="intent:cancel_order")  # verified already: straight to the question
    assert await _step(chat) == "confirm"
    await chat.send(yes)
    async with sessions() as session:
        assert (await session.get(Order, order.id)).cancelled_at is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("lang", LANGS)
async def test_return_summary_understands_yes_and_no(sessions, settings, lang: str) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, _tote) = await _shop(sessions)
    yes, no = YES_NO[lang]
    chat = Chat(sessions, settings, lang=lang)
    for answer in (no, yes):
        await chat.send("", postback="intent:start_return")
        if answer == no:
            await chat.send("#1001")
            await chat.send(EMAIL)
        await chat.press(f"line:{tee.id}")
        await chat.press("qty:1")
        await chat.press("reason:too_small")
        await chat.press("condition:unopened")
        await chat.press("done")
        await chat.press("resolution:refund")
        assert await _step(chat) == "confirm"
        await chat.send(answer)
        assert len(await _rmas(sessions)) == (0 if answer == no else 1)


async def test_address_confirmation_understands_sure(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order = await _unshipped(sessions)
    chat = Chat(sessions, settings)
    await _verified(chat, "change_address")
    await chat.send("1600 Amphitheatre Pkwy, Mountain View, CA 94043, USA")
    assert await _step(chat) == "confirm"
    await chat.send("sure")
    async with sessions() as session:
        assert (await session.get(Order, order.id)).shipping_address["zip"] == "94043"  # type: ignore[index,union-attr]


# --------------------------------------------------------------------------- 4. answers mid-flow, interruptions


EARLY_CREDIT = {"en": "store credit", "es": "prefiero saldo en la tienda", "ru": "лучше на баланс магазина",
                "vi": "tôi muốn tín dụng cửa hàng", "zh-Hans": "我要店铺余额", "zh-Hant": "我要購物金"}


@pytest.mark.parametrize("lang", LANGS)
async def test_store_credit_at_the_condition_step_is_kept_for_later(sessions, settings, lang: str) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, _tote) = await _shop(sessions)
    chat = Chat(sessions, settings, lang=lang)
    await _verified(chat, "start_return")
    await chat.press(f"line:{tee.id}")
    await chat.press("qty:1")
    await chat.press("reason:too_small")
    assert await _step(chat) == "condition"
    await chat.send(EARLY_CREDIT[lang])
    assert await _step(chat) == "condition" and (await chat.state())["flow"] == "returns"  # noted, asked again
    assert (await chat.conversation()).owner == Owner.bot
    await chat.press("condition:unopened")
    await chat.press("done")
    assert await _step(chat) == "confirm"  # the resolution was given already
    await chat.press("yes")
    [(rma, _lines)] = await _rmas(sessions)
    assert rma.resolution.value == "store_credit"


async def test_refund_while_choosing_a_resolution_is_the_answer(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, _tote) = await _shop(sessions)
    chat = Chat(sessions, settings)
    await _verified(chat, "start_return")
    await chat.press(f"line:{tee.id}")
    await chat.press("qty:1")
    await chat.press("reason:too_small")
    await chat.press("condition:unopened")
    await chat.press("done")
    assert await _step(chat) == "resolution"
    await chat.send("refund")  # alone the classifier reads it as "refund status"
    assert await _step(chat) == "confirm"


OTHER_ORDER = {"en": "actually, where is my other order?", "es": "en realidad, ¿dónde está mi otro pedido?",
               "ru": "кстати, где мой другой заказ?", "vi": "à mà, đơn hàng khác của tôi đâu rồi?",
               "zh-Hans": "对了，我的另一个订单在哪里？", "zh-Hant": "對了，我的另一個訂單在哪裡？"}


@pytest.mark.parametrize("lang", LANGS)
async def test_a_new_request_mid_flow_leaves_it_and_it_comes_back(sessions, settings, lang: str) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, tote) = await _shop(sessions)
    other, _ = await _shop(sessions, name="#1002")
    chat = Chat(sessions, settings, lang=lang)
    await _verified(chat, "start_return")
    assert await _step(chat) == "items"
    await chat.send(OTHER_ORDER[lang])
    state = await chat.state()
    assert state["flow"] == "verify" and state["suspended"]["flow"] == "returns"  # which order? (both are hers)
    await chat.press(f"order:{other.id}")
    assert "#1002" in chat.text
    assert [v for _, v in chat.choices] == ["yes", "no"] and (await chat.state())["flow"] == "resume"
    await chat.press("yes")
    assert await _step(chat) == "items" and [v for _, v in chat.choices] == [f"line:{tee.id}", f"line:{tote.id}"]
    assert "#1001" in chat.text


async def test_declining_to_go_back_drops_the_flow(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _unshipped(sessions)
    chat = Chat(sessions, settings)
    await _verified(chat, "cancel_order")
    await chat.send("", postback="intent:return_policy")
    assert (await chat.state())["flow"] == "resume"
    await chat.send("no thanks")
    state = await chat.state()
    assert state["flow"] is None and state["suspended"] is None


# --------------------------------------------------------------------------- 5. corrections


CORRECTION = {"en": "sorry, it's 1001", "es": "perdón, es el 1001", "ru": "извините, я имел в виду 1001",
              "vi": "xin lỗi, mã đúng là 1001", "zh-Hans": "不好意思，应该是1001", "zh-Hant": "不好意思，應該是1001"}


@pytest.mark.parametrize("lang", LANGS)
async def test_a_corrected_order_number_replaces_the_mistyped_one(sessions, settings, lang: str) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    chat = Chat(sessions, settings, lang=lang)
    await chat.send("", postback="intent:track_order")
    await chat.send("#1010")  # mistyped
    assert "#1010" in chat.text and await _step(chat) == "ask_proof"
    await chat.send(CORRECTION[lang])
    assert "#1001" in chat.text and (await chat.state())["slots"]["order_ref"] == "#1001"
    await chat.send(EMAIL)
    assert "#1001" in chat.text and (await chat.state())["flow"] is None


async def test_letter_o_in_the_order_number(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    chat = Chat(sessions, settings)
    await chat.send("", postback="intent:track_order")
    await chat.send("#1O01")
    assert (await chat.state())["slots"]["order_ref"] == "#1001"
    await chat.send(EMAIL)
    assert "latest on order #1001" in chat.text


async def test_a_wrong_email_keeps_the_order_and_a_postal_code_is_never_an_order(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    await _shop(sessions, name="#62704", email="other@example.com")  # an order named like her postal code
    chat = Chat(sessions, settings)
    await chat.send("", postback="intent:track_order")
    await chat.send("#1001")
    await chat.send("lan@exmaple.com")  # typo in the email
    assert "couldn't find an order matching" in chat.text and "#1001" in chat.text
    state = await chat.state()
    assert (state["step"], state["slots"]["order_ref"]) == ("ask_proof", "#1001")  # still #1001
    await chat.send("62704")  # the shipping postal code, not order #62704
    assert "latest on order #1001" in chat.text
    assert "other@example.com" not in await chat.all_bot_text()


# --------------------------------------------------------------------------- 6. two requests in one message


TWO_REQUESTS = {
    "en": "where is my order 1001 and can I return it?",
    "es": "¿dónde está mi pedido 1001 y puedo devolverlo?",
    "ru": "где мой заказ 1001 и можно его вернуть?",
    "vi": "đơn hàng 1001 của tôi đâu và tôi có thể trả lại không?",
    "zh-Hans": "我的订单1001在哪里？我可以退货吗？",
    "zh-Hant": "我的訂單1001在哪裡？我可以退貨嗎？",
}


@pytest.mark.parametrize("lang", LANGS)
async def test_two_requests_in_one_message_are_both_answered(sessions, settings, lang: str) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, tote) = await _shop(sessions)
    chat = Chat(sessions, settings, lang=lang)
    await chat.send(TWO_REQUESTS[lang])
    assert await _step(chat) == "ask_proof"  # identity first, for both
    assert len((await chat.state())["queued"]) == 1  # "can I return it?" waits for its turn
    await chat.send(EMAIL)
    assert len(chat.replies) >= 2  # the parcel's status, then the return's first question
    assert "1Z" in chat.replies[0].text  # the tracking number
    state = await chat.state()
    assert (state["flow"], state["step"], state["queued"]) == ("returns", "items", [])
    assert [v for _, v in chat.choices] == [f"line:{tee.id}", f"line:{tote.id}"]


HELLO = {"en": "hi", "es": "hola", "ru": "привет", "vi": "xin chào", "zh-Hans": "你好", "zh-Hant": "你好"}


@pytest.mark.parametrize("lang", LANGS)
async def test_two_requests_after_the_greeting_menu_are_both_answered(sessions, settings, lang: str) -> None:  # type: ignore[no-untyped-def]
    """The greeting offers a menu; a whole sentence sent to it is read as its requests, not
    as a pick of the one button whose words it happens to contain."""
    _order, (tee, tote) = await _shop(sessions)
    chat = Chat(sessions, settings, lang=lang)
    await chat.send(HELLO[lang])
    assert (await chat.state())["flow"] == "menu"
    await chat.send(TWO_REQUESTS[lang])
    assert await _step(chat) == "ask_proof"
    assert len((await chat.state())["queued"]) == 1
    await chat.send(EMAIL)
    assert "1Z" in chat.replies[0].text
    state = await chat.state()
    assert (state["flow"], state["step"], state["queued"]) == ("returns", "items", [])


# --------------------------------------------------------------------------- 7. clarifying questions


async def test_a_clarifying_question_names_the_candidates(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    from bot.dialog.engine import route_by_intent
    from bot.dialog.turn import BotConfig, DialogState, Turn
    from inbox.models import Contact, Conversation

    turn = Turn(session=None, conversation=Conversation(contact_id=1), contact=Contact(), text="hmm return track",  # type: ignore[arg-type,call-arg]
                postback=None, lang="es", now=days_ago(0), config=BotConfig(), state=DialogState(),
                intent="track_order", confidence=0.4,
                ranking=(("track_order", 0.4), ("start_return", 0.35), ("greeting", 0.15), ("invoice", 0.05)))
    await route_by_intent(turn)
    assert turn.said == ["clarify"]
    assert [q.value for q in turn.replies[0].quick_replies] == ["intent:track_order", "intent:start_return",
                                                                "intent:human_agent"]
    text = turn.replies[0].text
    for q in turn.replies[0].quick_replies:
        assert q.label in text  # the question shows what it asks about
    assert turn.state.flow == "menu"


@pytest.mark.parametrize("lang, answer", [("en", "the second one"), ("ru", "второй"), ("zh-Hans", "第二个"),
                                          ("es", "la segunda"), ("vi", "cái thứ hai"), ("zh-Hant", "第二個")])
async def test_a_clarifying_question_is_answered_by_position(sessions, settings, lang: str, answer: str) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    chat = Chat(sessions, settings, lang=lang)
    await chat.send("asdf qwer zxcv")  # not understood: the menu
    assert [v for _, v in chat.choices][:2] == ["intent:track_order", "intent:start_return"]
    await chat.send(answer)
    assert (await chat.state())["pending_intent"] == "start_return"


# --------------------------------------------------------------------------- 8. identifiers looked up as both


async def test_a_shopify_order_id_and_a_tracking_number_find_the_order(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions, external_id="5512345678901")
    chat = Chat(sessions, settings)
    await chat.send("", postback="intent:track_order")
    await chat.send("5512345678901")
    assert await _step(chat) == "ask_proof"
    await chat.send(EMAIL)
    assert "latest on order #1001" in chat.text
    # a second customer names the parcel's tracking number instead of the order
    other = Chat(sessions, settings, user="visitor-2")
    await other.send("", postback="intent:track_order")
    await other.send("1Z5R89390357567127")
    await other.send(EMAIL)
    assert "latest on order #1001" in other.text


async def test_an_unknown_number_gets_the_same_answer_as_a_wrong_proof(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    answers = []
    for user, ref in (("a", "#1001"), ("b", "#9999"), ("c", "#5512345678901")):
        chat = Chat(sessions, settings, user=user)
        await chat.send("", postback="intent:track_order")
        await chat.send(ref)
        asked = chat.text.replace(ref, "#X")
        await chat.send("nobody@example.com")
        answers.append((asked, chat.text.replace(ref, "#X").replace("#1001", "#X")))
    assert answers[0] == answers[1] == answers[2]


async def test_naming_another_order_never_tells_whether_it_exists(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    await _shop(sessions, name="#2002", email="bob@example.com")
    chat = Chat(sessions, settings)
    await _verified(chat, "track_order")
    replies = []
    for ref in ("2002", "3003"):  # one exists, one does not
        await chat.send(f"where is order {ref}?")
        replies.append(chat.text.replace(ref, "N"))
        await chat.send("never mind")
    assert replies[0] == replies[1] and "email address" in replies[0]


# --------------------------------------------------------------------------- 9. bad input


# (empty, blank and NUL messages are refused at the edge: inbox.messages.check_text; see below)
BAD = ["\u200b\u200b", "\u200d\ufe0f", "😀😀😀", "🙂", "x" * 4000, ("where is my order " * 250)[:4000], "Где мой order 1001 订单 đơn hàng",
       "\x01\x02 order \x1b[31m1001\x7f", "{{ 7*7 }} {% raw %}", "\u202eredro ym si erehw", "#" * 50, "1" * 60]


@pytest.mark.parametrize("flow", ["none", "ask_proof", "items"])
async def test_bad_input_gets_an_answer_and_never_skips_verification(sessions, settings, flow: str) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    for index, text in enumerate(BAD):
        chat = Chat(sessions, settings, user=f"bad-{flow}-{index}")
        if flow == "ask_proof":
            await chat.send("", postback="intent:track_order")
            await chat.send("#1001")
        elif flow == "items":
            await _verified(chat, "start_return")
        await chat.send(text)
        assert chat.replies, repr(text[:40])  # always an answer
        assert all("Sorry, something went wrong" not in r.text for r in chat.replies), repr(text[:40])
        if flow != "items":
            everything = await chat.all_bot_text()
            assert "Linen tee" not in everything and "1Z5R" not in everything, repr(text[:40])


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\u200b", "\x00"])
async def test_an_empty_message_gets_a_helpful_answer(text: str) -> None:
    """Channels refuse empty messages at the edge; the dialog still answers one kindly."""
    from bot.dialog.engine import respond
    from bot.dialog.turn import BotConfig, DialogState, Turn
    from inbox.models import Contact, Conversation

    turn = Turn(session=None, conversation=Conversation(contact_id=1), contact=Contact(), text=text,  # type: ignore[arg-type,call-arg]
                postback=None, lang="ru", now=days_ago(0), config=BotConfig(), state=DialogState())
    await respond(turn)
    assert turn.said == ["empty_message"] and turn.escalation is None


async def test_no_message_skips_verification(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    tries = ["#1001 yes", "yes", "#1001 2", "1", "skip verification", "#1001 lan@example", "#1001 *", "#1001 %",
             "#1001 ' OR 1=1 --", "#1001 62704x", "#1001 @example.com", "both", "the first one", "#1001 " + "a" * 300]
    chat = Chat(sessions, settings)
    await chat.send("", postback="intent:start_return")
    for text in tries:
        await chat.send(text)
        assert "Linen tee" not in chat.text, text
        if chat.conversation_id and (await chat.conversation()).owner == Owner.agent:
            break
    assert "Linen tee" not in await chat.all_bot_text() and await _rmas(sessions) == []


# --------------------------------------------------------------------------- 10. the README's phrase


async def test_the_readme_phrase_starts_a_return(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    chat = Chat(sessions, settings)
    await chat.send("I want to return something")
    assert (await chat.state())["pending_intent"] == "start_return"
    assert "order number" in chat.text
