"""Order changes before shipping (cancel, change the address) and the invoice link.

Flows (state in the conversation, JSON only):

* ``cancel``: ``confirm`` (yes → ``inbox.actions.order_cancel``, which releases the
  reserved stock and refunds what was paid; no → nothing changes) and ``refused`` (the
  order already shipped: the customer may start a return or ask for a person).
* ``address``: ``full`` (the new address in one message, parsed: street, [line 2], city,
  [state] postal code, country) → whatever is still missing one question at a time
  (``address1``, ``city``, ``zip``, ``country``) → ``confirm`` → ``inbox.actions.order_change_address``.
  A country left out is taken from the current address; the confirmation shows it.

Both actions re-check on a locked row that the order has not started shipping; a refusal
is explained and changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale

from bot.dialog.choices import offer, pick
from bot.dialog.turn import Turn
from bot.dialog.verify import normalize_ref, require_order
from bot.files import signed_file_url
from inbox.actions.order_cancel import order_cancel
from inbox.actions.order_change_address import order_change_address
from ordersvc import actions
from ordersvc.documents import address_lines
from ordersvc.models import FinancialStatus, Order
from ordersvc.service import order_lines
from shopbase.refusal import Refused

__all__ = [
    "cancel_order",
    "continue_cancel",
    "change_address",
    "continue_change_address",
    "reask_cancel",
    "reask_address",
    "invoice",
    "parse_address",
    "find_country",
]

_ADDRESS_STEPS = ("address1", "city", "zip", "country")
_FIELD_OF_STEP = {"address1": "address1", "city": "city", "zip": "zip", "country": "country_code"}
_MAX_ADDRESS_TEXT = 600
_MAX_FIELD_TEXT = 200


def _agent(turn: Turn) -> tuple[str, str]:
    return (turn.label("intent_human_agent"), "intent:human_agent")


def _finish(turn: Turn, order: Order) -> None:
    turn.state.clear()
    turn.state.slots["order_id"] = order.id


def _answer(turn: Turn) -> str | None:
    """A yes/no answer: the pressed button, the number or label typed, or any yes/no
    ("sure", "да, отменяйте", "是的，取消吧", "no thanks", "không")."""
    return pick(turn)


def _names_another_order(turn: Turn, order: Order) -> bool:
    refs = [normalize_ref(str(e.value)) for e in turn.entities if e.type == "order_number"]
    return any(ref and ref != normalize_ref(order.name) for ref in refs)


async def _flow_order(turn: Turn, purpose: str) -> Order | None:
    """The order of the open flow, if this customer may still see it (else verification starts)."""
    return await require_order(turn, purpose)


# --------------------------------------------------------------------------- cancel


async def cancel_order(turn: Turn) -> None:
    order = await require_order(turn, "cancel_order")
    if order is None:
        return
    turn.order_ref = order.name
    try:
        await actions.check_changeable(turn.session, order)
    except Refused as refusal:
        _refuse_cancel(turn, order, refusal.code)
        return
    await _ask_cancel(turn, order)


async def _ask_cancel(turn: Turn, order: Order, *, again: bool = False) -> None:
    lines = await order_lines(turn.session, order.id)
    misses = turn.state.slots.get("misses", 0) if again else 0
    turn.state.start("cancel", "confirm", order_id=order.id, misses=misses)
    turn.state.pending_intent = "cancel_order"
    offer(
        turn,
        "cancel_confirm",
        [(turn.label("cancel_yes"), "yes"), (turn.label("cancel_no"), "no")],
        order=order,
        items=[{"title": ln.title, "variant": ln.variant_title, "quantity": ln.quantity} for ln in lines],
        refund=await actions.refund_due(turn.session, order),
        currency=order.currency,
        again=again,
    )


async def reask_cancel(turn: Turn) -> None:
    """The cancellation was put aside and the customer came back: ask its question again
    (the order of the open flow, if this customer may still see it; else verification starts)."""
    await cancel_order(turn)


def _refuse_cancel(turn: Turn, order: Order, reason: str) -> None:
    if reason == "already_cancelled":
        _finish(turn, order)
        turn.say("cancel_already", order=order)
        return
    turn.order_ref = order.name
    turn.remember_problem("cancel", reason)
    turn.state.start("cancel", "refused", order_id=order.id)
    turn.state.pending_intent = "cancel_order"
    offer(turn, "cancel_too_late", [(turn.label("return_instead"), "return"), _agent(turn)],
          order=order, partial=reason == "partially_fulfilled")


async def continue_cancel(turn: Turn) -> None:
    order = await _flow_order(turn, "cancel_order")
    if order is None:
        return
    turn.order_ref = order.name
    if turn.state.step == "refused":
        value = pick(turn)
        _finish(turn, order)
        if value == "return":
            from bot.handlers.returns import start_return

            turn.intent, turn.confidence = "start_return", 1.0
            await start_return(turn)
            return
        from bot.dialog.engine import route_by_intent

        await route_by_intent(turn)
        return

    answer = _answer(turn)
    if answer is None and _names_another_order(turn, order):
        turn.state.clear()  # "no, cancel #1002": that order instead (verified first)
        await cancel_order(turn)
        return
    if answer == "no":
        _finish(turn, order)
        turn.say("cancel_kept", order=order)
        return
    if answer != "yes":
        await _ask_cancel(turn, order, again=True)
        return
    try:
        result = await order_cancel(turn.session, turn.conversation, order, reason="customer request")
    except Refused as refusal:
        _refuse_cancel(turn, refusal.details.get("order") or order, refusal.code)
        return
    done = result.order
    _finish(turn, done)
    turn.say(
        "cancel_done",
        order=done,
        refund=result.refund.amount if result.refund is not None else Decimal("0"),
        currency=done.currency,
        voided=done.financial_status == FinancialStatus.voided,
    )


# --------------------------------------------------------------------------- change address


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Country names in the supported languages (and a few common short forms) → ISO code."""
    names: dict[str, str] = {}
    for locale in ("en", "es", "ru", "vi", "zh_Hans", "zh_Hant"):
        for code, name in Locale.parse(locale).territories.items():
            if len(code) == 2 and code.isalpha() and code != "ZZ":
                names.setdefault(_fold(name), code)
    for alias, code in {
        "usa": "US", "u.s.a.": "US", "u.s.": "US", "united states of america": "US", "america": "US",
        "eeuu": "US", "ee.uu.": "US", "сша": "US", "mỹ": "US", "美国": "US", "美國": "US",
        "uk": "GB", "u.k.": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
        "russia": "RU", "рф": "RU", "vietnam": "VN", "viet nam": "VN", "china": "CN", "taiwan": "TW", "台湾": "TW",
        "holland": "NL", "south korea": "KR", "korea": "KR",
    }.items():
        names[_fold(alias)] = code
    return names


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def find_country(text: str) -> str | None:
    """The ISO code for a country name in any supported language or a 2-letter code."""
    folded = _fold(text).strip(" .")
    if not folded:
        return None
    code = _country_names().get(folded) or _country_names().get(folded + ".")
    if code:
        return code
    if len(folded) == 2 and folded.isascii() and folded.isalpha() and folded.upper() in set(_country_names().values()):
        return folded.upper()
    return None


# Postal codes as written around the world: UK, Canada, NL, JP, BR/US+4, then digits only.
_POSTAL = re.compile(
    r"(?<![\w-])("
    r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}"
    r"|[A-Z]\d[A-Z]\s?\d[A-Z]\d"
    r"|\d{4}\s?[A-Z]{2}"
    r"|\d{3}-\d{4}"
    r"|\d{5}-\d{3,4}"
    r"|\d{3,7}"
    r")(?![\w-])"
)
_STATE = re.compile(r"^[A-Z]{2,3}$")
_SPLIT = re.compile(r"\s*(?:\n|,|;|，|、|；)\s*")


def _find_postal(part: str) -> tuple[str, str] | None:
    """``(postal code, the rest of the part)`` when the part holds a postal code."""
    upper = unicodedata.normalize("NFKC", part).upper()
    matches = list(_POSTAL.finditer(upper))
    if not matches:
        return None
    found = matches[-1]  # the last one: "Springfield IL 62704" → 62704
    rest = (part[: found.start()] + " " + part[found.end():]).strip(" ,-")
    return found.group(1), " ".join(rest.split())


def parse_address(text: str) -> dict[str, str]:
    """Fields of Shopify's address shape found in one message (best effort, never raises).

    ``"221B Baker Street, London NW1 6XE, United Kingdom"`` →
    ``{"address1": "221B Baker Street", "city": "London", "zip": "NW1 6XE", "country_code": "GB"}``.
    """
    parts = [p for p in _SPLIT.split(text.strip()) if p.strip(" .")]
    fields: dict[str, str] = {}
    if not parts:
        return fields
    if len(parts) > 1:
        code = find_country(parts[-1])
        if code:
            fields["country_code"] = code
            parts = parts[:-1]
    fields["address1"] = parts[0]
    rest = parts[1:]
    for index in range(len(rest) - 1, -1, -1):
        postal = _find_postal(rest[index])
        if postal is None:
            continue
        fields["zip"], remainder = postal
        if remainder and _STATE.match(remainder):
            fields["province_code"] = remainder
        elif remainder:
            fields["city"] = remainder
        del rest[index]
        break
    if "city" not in fields and rest:
        without_digits = [p for p in rest if not any(ch.isdigit() for ch in p)]
        city = without_digits[-1] if without_digits else rest[-1]
        fields["city"] = city
        rest.remove(city)
    if rest:
        fields["address2"] = ", ".join(rest)
    return fields


def _address_view(fields: dict[str, Any]) -> list[str]:
    return address_lines({k: v for k, v in fields.items() if k not in {"first_name", "last_name", "name", "company", "phone"}})


def _missing_step(fields: dict[str, str]) -> str | None:
    for step in _ADDRESS_STEPS:
        if not fields.get(_FIELD_OF_STEP[step]):
            return step
    return None


async def change_address(turn: Turn) -> None:
    order = await require_order(turn, "change_address")
    if order is None:
        return
    turn.order_ref = order.name
    try:
        await actions.check_changeable(turn.session, order)
    except Refused as refusal:
        _refuse_address(turn, order, refusal.code)
        return
    turn.state.start("address", "full", order_id=order.id, address={}, free_text=True)
    turn.state.pending_intent = "change_address"
    turn.say("address_ask", order=order, current=_address_view(order.shipping_address or {}), again=False, retry=False)


def _refuse_address(turn: Turn, order: Order, reason: str) -> None:
    _finish(turn, order)
    turn.order_ref = order.name
    turn.remember_problem("address", reason)
    turn.say("address_too_late", order=order, reason=reason, choices=[_agent(turn)])


def _ask_field(turn: Turn, step: str, fields: dict[str, str], *, again: bool = False, problem: str | None = None) -> None:
    turn.state.step = step
    turn.state.slots["free_text"] = True
    turn.say("address_ask_field", field=step, got=_address_view(fields), again=again, problem=problem)


def _default_country(order: Order, fields: dict[str, str]) -> bool:
    """Take the country from the current address when none was given; True when it did."""
    if fields.get("country_code"):
        return False
    current = order.shipping_address or {}
    code = current.get("country_code") if isinstance(current.get("country_code"), str) else None
    if code and find_country(code):
        fields["country_code"] = code.upper()
        return True
    return False


async def reask_address(turn: Turn) -> None:
    """The address change was put aside and the customer came back: ask its question again."""
    order = await _flow_order(turn, "change_address")
    if order is None:
        return
    turn.order_ref = order.name
    step = turn.state.step or "full"
    fields: dict[str, str] = dict(turn.state.slots.get("address") or {})
    if step == "confirm":
        _confirm(turn, fields)
    elif step in _FIELD_OF_STEP:
        _ask_field(turn, step, fields)
    else:
        turn.state.slots["free_text"] = True
        turn.say("address_ask", order=order, current=_address_view(order.shipping_address or {}), again=False, retry=False)


async def continue_change_address(turn: Turn) -> None:
    order = await _flow_order(turn, "change_address")
    if order is None:
        return
    turn.order_ref = order.name
    step = turn.state.step or "full"
    fields: dict[str, str] = dict(turn.state.slots.get("address") or {})

    if step == "confirm":
        answer = _answer(turn)
        if answer == "yes":
            await _apply(turn, order, fields)
        elif answer == "no":
            turn.state.step = "full"
            turn.state.slots["address"] = {}
            turn.state.slots["free_text"] = True
            turn.say("address_ask", order=order, current=[], again=False, retry=True)
        else:
            _confirm(turn, fields, again=True)
        return

    text = turn.text.strip()
    if turn.postback is not None or not text or len(text) > _MAX_ADDRESS_TEXT:
        if step == "full":
            turn.say("address_ask", order=order, current=[], again=True, retry=False)
        else:
            _ask_field(turn, step, fields, again=True)
        return

    if step == "full":
        fields = parse_address(text)
        turn.state.slots["defaulted_country"] = _default_country(order, fields)
    elif step == "country":
        code = find_country(text)
        if code is None:
            _ask_field(turn, step, fields, again=True, problem="country")
            return
        fields["country_code"] = code
        turn.state.slots["defaulted_country"] = False
    elif step in _FIELD_OF_STEP:
        value = " ".join(text.split())
        if len(value) > _MAX_FIELD_TEXT or (step == "zip" and not re.fullmatch(r"[\w][\w \-]{1,14}", value)):
            _ask_field(turn, step, fields, again=True, problem="format")
            return
        fields[_FIELD_OF_STEP[step]] = value.upper() if step == "zip" else value
    turn.state.slots["address"] = fields
    await _next_address_step(turn, order, fields)


async def _next_address_step(turn: Turn, order: Order, fields: dict[str, str]) -> None:
    missing = _missing_step(fields)
    if missing is not None:
        _ask_field(turn, missing, fields)
        return
    try:
        cleaned = actions.check_address(fields)
    except Refused as refusal:
        errors = refusal.fields
        field = next(iter(errors))
        step = next((s for s, f in _FIELD_OF_STEP.items() if f == field), None)
        if step is None:  # a field we parsed but cannot fix step by step: start over
            turn.state.step = "full"
            turn.state.slots["address"] = {}
            turn.state.slots["free_text"] = True
            turn.say("address_ask", order=order, current=[], again=True, retry=False)
            return
        fields.pop(_FIELD_OF_STEP[step], None)
        turn.state.slots["address"] = fields
        _ask_field(turn, step, fields, again=True, problem=errors[field])
        return
    turn.state.slots["address"] = cleaned
    _confirm(turn, cleaned)


def _confirm(turn: Turn, fields: dict[str, str], *, again: bool = False) -> None:
    turn.state.step = "confirm"
    turn.state.slots["free_text"] = False
    offer(
        turn,
        "address_confirm",
        [(turn.label("address_yes"), "yes"), (turn.label("address_retry"), "no")],
        lines=_address_view(fields),
        defaulted_country=bool(turn.state.slots.get("defaulted_country")),
        again=again,
    )


async def _apply(turn: Turn, order: Order, fields: dict[str, str]) -> None:
    try:
        done = await order_change_address(turn.session, turn.conversation, order, fields)
    except Refused as refusal:
        if refusal.code == "invalid_address":
            await _next_address_step(turn, order, fields)
            return
        _refuse_address(turn, refusal.details.get("order") or order, refusal.code)
        return
    _finish(turn, done)
    turn.say("address_done", order=done, lines=_address_view(done.shipping_address or {}))


# --------------------------------------------------------------------------- invoice


async def invoice(turn: Turn) -> None:
    order = await require_order(turn, "invoice")
    if order is None:
        return
    turn.order_ref = order.name
    _finish(turn, order)
    url = signed_file_url(turn.config.public_url, turn.config.secret_key, "invoices", str(order.id), lang=turn.lang)
    turn.say("invoice_link", order=order, url=url, days=30)
