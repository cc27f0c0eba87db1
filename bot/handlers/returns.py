"""start_return: a return request, one question at a time, ending in an RMA (and a label).

The flow ``returns`` keeps its answers in the conversation's dialog state (JSON only), so a
restart in the middle continues where the customer was::

    items → quantity → reason → [reason_note] → [condition] ─┬─ another item? → items
                                                             └─ resolution → [variant …] → method → confirm → RMA

A step is skipped when there is nothing to choose (one returnable line and no other line
refused, one unit, one allowed resolution, one enabled method). ``condition`` is asked only when the policy
accepts some conditions but not all for the chosen reason; otherwise the item is recorded
as ``damaged`` (reason damaged) or ``used``, which never restocks anything unseen.
Exchange is offered only when every chosen item has another variant with enough stock.

Every answer that does not fit its step re-asks the same question with a hint. Nothing
is written until the customer confirms the summary; then :func:`ordersvc.returns.create_rma`
re-checks everything under a lock. With manual approval the merchant gets a
``return_approval`` alert (Slack shows Approve/Reject); mailed returns that are approved
get a signed link to the prepaid label PDF.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlmodel import col, select

from bot.dialog.choices import amount, match, offer, pick, wants_all, yes_no
from bot.dialog.turn import Turn
from bot.dialog.verify import require_order
from bot.files import signed_file_url
from bot.handlers.handoff import human_agent
from bot.nlu.intents import CONFIDENT
from inbox.actions.return_open import return_open
from ordersvc.inventory import available_by_sku
from ordersvc.models import (
    ItemCondition,
    Order,
    OrderLine,
    ProductVariant,
    Resolution,
    ReturnMethod,
    ReturnReason,
    RmaStatus,
)
from ordersvc.returns import (
    LineEligibility,
    ReturnItem,
    ReturnPolicy,
    RmaProblem,
    compute_amounts,
    exchange_options,
    load_policy,
    order_eligibility,
)
from ordersvc.service import order_lines
from shopbase.refusal import Refused

__all__ = ["start_return", "continue_return", "reask", "flow_answer", "FLOW", "REASONS", "agent_choice"]

FLOW = "returns"
PURPOSE = "start_return"
REASONS: tuple[ReturnReason, ...] = (
    ReturnReason.too_small,
    ReturnReason.too_large,
    ReturnReason.damaged,
    ReturnReason.defective,
    ReturnReason.not_as_described,
    ReturnReason.wrong_item,
    ReturnReason.changed_mind,
    ReturnReason.other,
)
RESOLUTIONS: tuple[Resolution, ...] = (Resolution.refund, Resolution.store_credit, Resolution.exchange)
METHODS: tuple[ReturnMethod, ...] = (ReturnMethod.mail, ReturnMethod.dropoff, ReturnMethod.in_store)
CONDITIONS: tuple[ItemCondition, ...] = tuple(ItemCondition)

_QUANTITY_BUTTONS = 6
_LABEL_CHARS = 40
_NOTE_CHARS = 500
#: errors from create_rma that mean "the chosen replacement is gone": choose again
_CARRIER_NAMES = {"ups": "UPS", "usps": "USPS", "fedex": "FedEx", "dhl": "DHL"}
_EXCHANGE_GONE = {"exchange_out_of_stock", "exchange_sku_invalid", "exchange_sku_required"}


def agent_choice(turn: Turn) -> list[tuple[str, str]]:
    """The quick reply that hands the conversation to a person."""
    return [(turn.label("intent_human_agent"), "intent:human_agent")]


@dataclass
class _Ctx:
    """What every step needs: the order, the policy and a fresh eligibility check."""

    turn: Turn
    order: Order
    policy: ReturnPolicy
    lines: dict[int, OrderLine]
    verdicts: dict[int, LineEligibility]

    @property
    def slots(self) -> dict[str, Any]:
        return self.turn.state.slots

    def title(self, line_id: int) -> str:
        line = self.lines.get(line_id)
        if line is None:
            return ""
        return " – ".join(p for p in (line.title, line.variant_title) if p)

    def eligible(self) -> list[LineEligibility]:
        return [v for v in self.verdicts.values() if v.eligible]

    def items(self) -> list[dict[str, Any]]:
        return list(self.slots.get("items") or [])

    def current(self) -> dict[str, Any]:
        return dict(self.slots.get("current") or {})

    def set_current(self, **values: Any) -> None:
        self.slots["current"] = {**self.current(), **values}


async def _context(turn: Turn, order: Order) -> _Ctx:
    policy = await load_policy(turn.session)
    verdicts = await order_eligibility(turn.session, order, policy=policy, now=turn.now)
    rows = await order_lines(turn.session, order.id)
    return _Ctx(turn, order, policy, {ln.id: ln for ln in rows if ln.id is not None}, {v.order_line_id: v for v in verdicts})


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _finish(turn: Turn, order: Order) -> None:
    """Leave the flow but remember which order we talked about."""
    turn.state.clear()
    turn.state.slots["order_id"] = order.id


#: steps whose answer is often a sentence ("it arrived damaged"): the engine must not read
#: it as a new request; the step itself hands over when the customer asks for a person
_FREE_TEXT_STEPS = frozenset({"reason", "reason_note"})


def _go(ctx: _Ctx, step: str) -> None:
    ctx.turn.state.step = step
    ctx.slots["free_text"] = step in _FREE_TEXT_STEPS


def _wants_person(turn: Turn) -> bool:
    return turn.postback is None and turn.intent == "human_agent" and turn.confidence >= CONFIDENT


# --------------------------------------------------------------------------- entry points


async def start_return(turn: Turn) -> None:
    order = await require_order(turn, PURPOSE)
    if order is None:
        return
    turn.order_ref = order.name
    ctx = await _context(turn, order)
    blocked = [_blocked_view(ctx, v) for v in ctx.verdicts.values() if not v.eligible]
    if blocked:
        _remember_blocked(turn, blocked)
    if not ctx.eligible():
        _finish(turn, order)
        turn.say("return_not_eligible", order=order, items=blocked, partial=False, choices=agent_choice(turn))
        return
    turn.state.start(FLOW, "items", order_id=order.id, items=[])
    turn.state.pending_intent = PURPOSE
    if blocked:
        turn.say("return_not_eligible", order=order, items=blocked, partial=True, choices=agent_choice(turn))
    # after "the belt can't be returned yet", never assume the one returnable item is wanted: ask
    await _ask_items(ctx, always_ask=bool(blocked))


async def continue_return(turn: Turn) -> None:
    order = await require_order(turn, PURPOSE)
    if order is None:
        return
    turn.order_ref = order.name
    ctx = await _context(turn, order)
    step = _STEPS.get(turn.state.step or "")
    if step is None:  # a step from an older version: start over
        turn.state.clear()
        turn.state.slots["order_id"] = order.id
        await start_return(turn)
        return
    if await _noted(ctx):
        return
    await step(ctx)


async def reask(turn: Turn) -> None:
    """Ask the open step's question again (the flow was put aside and the customer came back)."""
    order = await require_order(turn, PURPOSE)
    if order is None:
        return
    turn.order_ref = order.name
    ctx = await _context(turn, order)
    step = turn.state.step or "items"
    if step == "items":
        await _ask_items(ctx, always_ask=bool(ctx.items()))
    elif step == "quantity":
        await _ask_quantity(ctx)
    elif step == "reason":
        await _ask_reason(ctx)
    elif step == "reason_note":
        await _ask_note(ctx)
    elif step == "condition":
        await _ask_condition(ctx)
    elif step == "resolution":
        await _ask_resolution(ctx)
    elif step == "variant":
        await _ask_variant(ctx, int(ctx.slots.get("variant_index") or 0))
    elif step == "method":
        await _ask_method(ctx)
    else:
        await _ask_confirm(ctx)


#: later questions an answer may come early for, with the step that asks them
_LATER = (("resolution", RESOLUTIONS), ("method", METHODS))


def flow_answer(turn: Turn) -> tuple[str, str] | None:
    """An answer to another question of this return ("store credit" while it asks for the
    condition): ``(question, value)``, or None."""
    if turn.postback is not None:
        return None
    for question, options in _LATER:
        choices = [(turn.label(f"{question}_{o.value}"), f"{question}:{o.value}") for o in options]
        value = match(turn.text, choices, turn.lang, positions=False, loose=False)
        if value is not None:
            return question, value.split(":", 1)[1]
    return None


async def _noted(ctx: _Ctx) -> bool:
    """An answer to a later question is kept for it. When it does not also answer this step,
    the bot says it noted it and asks this step's question again (not counted as a miss)."""
    turn = ctx.turn
    step = turn.state.step or ""
    early = flow_answer(turn)
    if early is None or early[0] == step or step in {"reason_note", "variant"}:
        return False
    question, value = early
    if step == "confirm":
        if question == "resolution" and value != ctx.slots.get("resolution"):
            allowed = await _allowed_resolutions(ctx)
            if Resolution(value) in allowed:  # "actually, store credit" at the summary: change it
                await _chose_resolution(ctx, Resolution(value))
                return True
        return False
    ctx.slots.setdefault("wanted", {})[question] = value
    if pick(turn) is not None or (step == "quantity" and amount(turn.text, turn.lang) is not None):
        return False  # it answers this step too ("too small, and I'd like a refund")
    turn.say("return_noted", choice=turn.label(f"{question}_{value}"))
    await reask(turn)
    return True


def _remember_blocked(turn: Turn, blocked: list[dict[str, Any]]) -> None:
    """For the agent if the customer is handed over: which items the policy refused, and why."""
    items = [{"title": str(b["title"])[:80], "refusal": b["reason"]} for b in blocked[:5]]
    turn.remember_problem("return", str(blocked[0]["reason"] or ""), items=items)


def _remember_progress(ctx: _Ctx) -> None:
    """The customer asks for a person in the middle of a return: tell the agent which item and
    (when chosen) which reason (``in_progress``: nothing was refused)."""
    current = ctx.current()
    if not current.get("line_id"):
        return
    ctx.turn.remember_problem("return", "in_progress",
                              items=[{"title": ctx.title(int(current["line_id"]))[:80], "refusal": "in_progress"}],
                              return_reason=current.get("reason"))


def _blocked_view(ctx: _Ctx, v: LineEligibility) -> dict[str, Any]:
    return {"title": ctx.title(v.order_line_id), "reason": v.reason, "deadline": v.deadline, "delivered_at": v.delivered_at}


# --------------------------------------------------------------------------- items and quantity


async def _ask_items(ctx: _Ctx, *, again: bool = False, always_ask: bool = False) -> None:
    chosen = {item["line_id"] for item in ctx.items()}
    remaining = [v for v in ctx.eligible() if v.order_line_id not in chosen]
    if not remaining:
        await _ask_resolution(ctx)
        return
    if not chosen and len(remaining) == 1 and not again and not always_ask:
        ctx.slots["current"] = {"line_id": remaining[0].order_line_id}
        await _ask_quantity(ctx)
        return
    choices = [(_short(ctx.title(v.order_line_id)), f"line:{v.order_line_id}") for v in remaining]
    if chosen:
        choices.append((ctx.turn.label("return_done"), "done"))
    _go(ctx, "items")
    offer(ctx.turn, "return_ask_items", choices, order=ctx.order, more=bool(chosen), again=again)


async def _step_items(ctx: _Ctx) -> None:
    turn = ctx.turn
    value = pick(turn)
    if ctx.items() and (value == "done" or (value is None and yes_no(turn.text, turn.lang) == "no")):
        await _ask_resolution(ctx)
        return
    if value is None and turn.postback is None and not ctx.items() and wants_all(turn.text, turn.lang):
        # "both" / "оба" / "cả hai": every returnable item, one after the other
        lines = [v.order_line_id for v in ctx.eligible()]
        ctx.slots["queue"] = lines[1:]
        ctx.slots["current"] = {"line_id": lines[0]}
        await _ask_quantity(ctx)
        return
    if value is None and turn.postback is None and any(e.type == "order_number" for e in turn.entities):
        turn.state.clear()  # "actually it's order #1002": start over with that order
        await start_return(turn)
        return
    if value and value.startswith("line:") and value[5:].isdigit():
        line_id = int(value[5:])
        verdict = ctx.verdicts.get(line_id)
        if verdict is not None and verdict.eligible and line_id not in {i["line_id"] for i in ctx.items()}:
            ctx.slots["current"] = {"line_id": line_id}
            await _ask_quantity(ctx)
            return
    await _ask_items(ctx, again=True)


def _current_verdict(ctx: _Ctx) -> LineEligibility | None:
    verdict = ctx.verdicts.get(int(ctx.current().get("line_id") or 0))
    return verdict if verdict is not None and verdict.eligible else None


async def _ask_quantity(ctx: _Ctx, *, again: bool = False) -> None:
    verdict = _current_verdict(ctx)
    if verdict is None:
        await _item_gone(ctx)
        return
    if verdict.max_quantity <= 1:
        ctx.set_current(quantity=1)
        await _ask_reason(ctx)
        return
    buttons = [(str(n), f"qty:{n}") for n in range(1, min(verdict.max_quantity, _QUANTITY_BUTTONS) + 1)]
    _go(ctx, "quantity")
    offer(ctx.turn, "return_ask_quantity", buttons, title=ctx.title(verdict.order_line_id),
          max=verdict.max_quantity, again=again)


async def _step_quantity(ctx: _Ctx) -> None:
    turn = ctx.turn
    verdict = _current_verdict(ctx)
    if verdict is None:
        await _item_gone(ctx)
        return
    quantity: int | None = None
    if turn.postback is not None:
        value = pick(turn)
        quantity = int(value[4:]) if value and value.startswith("qty:") and value[4:].isdigit() else None
    else:
        # typed numbers are quantities, not list positions: "2", "two", "два", "两个"; "all" / "both" is every unit
        quantity = amount(turn.text, turn.lang)
        if quantity is None and wants_all(turn.text, turn.lang):
            quantity = verdict.max_quantity
    if quantity is None or not 1 <= quantity <= verdict.max_quantity:
        await _ask_quantity(ctx, again=True)
        return
    ctx.set_current(quantity=quantity)
    await _ask_reason(ctx)


async def _item_gone(ctx: _Ctx) -> None:
    """The current item stopped being returnable during the dialog (time passed, another return)."""
    line_id = int(ctx.current().get("line_id") or 0)
    verdict = ctx.verdicts.get(line_id)
    ctx.slots["current"] = None
    if verdict is not None:
        _remember_blocked(ctx.turn, [_blocked_view(ctx, verdict)])
        ctx.turn.say("return_not_eligible", order=ctx.order, items=[_blocked_view(ctx, verdict)], partial=True)
    await _next_item(ctx)


async def _next_item(ctx: _Ctx) -> None:
    """After an item is complete (or dropped): more to choose, or on to the resolution."""
    chosen = {item["line_id"] for item in ctx.items()}
    remaining = [v for v in ctx.eligible() if v.order_line_id not in chosen]
    queue = [line for line in ctx.slots.get("queue") or [] if line in {v.order_line_id for v in remaining}]
    if queue:  # the next of the items chosen together ("both")
        ctx.slots["queue"] = queue[1:]
        ctx.slots["current"] = {"line_id": queue[0]}
        await _ask_quantity(ctx)
    elif remaining:
        await _ask_items(ctx)
    elif chosen:
        await _ask_resolution(ctx)
    else:
        _finish(ctx.turn, ctx.order)
        ctx.turn.say("return_nothing_left", choices=agent_choice(ctx.turn))


# --------------------------------------------------------------------------- reason and condition


def _reason_choices(turn: Turn) -> list[tuple[str, str]]:
    return [(turn.label("reason_" + r.value), f"reason:{r.value}") for r in REASONS]


async def _ask_reason(ctx: _Ctx, *, again: bool = False) -> None:
    _go(ctx, "reason")
    offer(ctx.turn, "return_ask_reason", _reason_choices(ctx.turn),
          title=ctx.title(int(ctx.current()["line_id"])), again=again)


async def _step_reason(ctx: _Ctx) -> None:
    turn = ctx.turn
    value = pick(turn)
    reason = value[7:] if value and value.startswith("reason:") else None  # "it's too small" too
    if reason is None and _wants_person(turn):
        _remember_progress(ctx)
        turn.state.clear()
        await human_agent(turn)
        return
    if reason not in {r.value for r in REASONS}:
        await _ask_reason(ctx, again=True)
        return
    ctx.set_current(reason=reason, reason_note=None)
    if reason == ReturnReason.other.value:
        await _ask_note(ctx)
        return
    await _ask_condition(ctx)


async def _ask_note(ctx: _Ctx, *, again: bool = False) -> None:
    _go(ctx, "reason_note")
    ctx.turn.say("return_ask_note", title=ctx.title(int(ctx.current()["line_id"])), again=again)


async def _step_note(ctx: _Ctx) -> None:
    turn = ctx.turn
    note = " ".join("".join(ch for ch in turn.text if ch.isprintable() or ch in "\n\t").split())
    if turn.postback is not None or len(note) < 2:
        await _ask_note(ctx, again=True)
        return
    if _wants_person(turn):
        _remember_progress(ctx)
        turn.state.clear()
        await human_agent(turn)
        return
    ctx.set_current(reason_note=note[:_NOTE_CHARS])
    await _ask_condition(ctx)


def _needs_condition(policy: ReturnPolicy, reason: ReturnReason) -> bool:
    allowed = policy.allowed_conditions.get(reason)
    return allowed is not None and set(allowed) != set(CONDITIONS)


async def _ask_condition(ctx: _Ctx, *, again: bool = False) -> None:
    reason = ReturnReason(ctx.current()["reason"])
    if not _needs_condition(ctx.policy, reason):
        default = ItemCondition.damaged if reason == ReturnReason.damaged else ItemCondition.used
        ctx.set_current(condition=default.value)
        await _item_done(ctx)
        return
    choices = [(ctx.turn.label("condition_" + c.value), f"condition:{c.value}") for c in CONDITIONS]
    _go(ctx, "condition")
    offer(ctx.turn, "return_ask_condition", choices, title=ctx.title(int(ctx.current()["line_id"])), again=again)


async def _step_condition(ctx: _Ctx) -> None:
    turn = ctx.turn
    value = pick(turn)
    condition = value[10:] if value and value.startswith("condition:") else None
    if condition not in {c.value for c in CONDITIONS}:
        await _ask_condition(ctx, again=True)
        return
    reason = ReturnReason(ctx.current()["reason"])
    if not ctx.policy.accepts_condition(reason, ItemCondition(condition)):
        allowed = ctx.policy.allowed_conditions.get(reason) or []
        turn.remember_problem("return", "condition", items=[{"title": ctx.title(int(ctx.current()["line_id"]))[:80],
                                                             "refusal": "condition"}],
                              return_reason=reason.value, condition=condition)
        turn.say(
            "return_condition_refused",
            title=ctx.title(int(ctx.current()["line_id"])),
            reason_text=turn.label("reason_" + reason.value),
            condition_text=turn.label("condition_" + condition),
            allowed=[turn.label("condition_" + c.value) for c in allowed],
            choices=agent_choice(turn),
        )
        ctx.slots["current"] = None
        await _next_item(ctx)
        return
    ctx.set_current(condition=condition)
    await _item_done(ctx)


async def _item_done(ctx: _Ctx) -> None:
    current = ctx.current()
    item = {
        "line_id": int(current["line_id"]),
        "quantity": int(current.get("quantity") or 1),
        "reason": current["reason"],
        "reason_note": current.get("reason_note"),
        "condition": current["condition"],
        "exchange_sku": None,
    }
    ctx.slots["items"] = [*ctx.items(), item]
    ctx.slots["current"] = None
    await _next_item(ctx)


# --------------------------------------------------------------------------- resolution and variants


async def _variants(ctx: _Ctx, item: dict[str, Any]) -> list[ProductVariant]:
    """Other variants of the item's product with stock for the whole quantity."""
    line = ctx.lines.get(int(item["line_id"]))
    if line is None:
        return []
    options = await exchange_options(ctx.turn.session, line)
    stock = await available_by_sku(ctx.turn.session, [v.sku for v in options])
    return [v for v in options if stock.get(v.sku, 0) >= int(item["quantity"])]


async def _allowed_resolutions(ctx: _Ctx) -> list[Resolution]:
    allowed: list[Resolution] = [r for r in RESOLUTIONS if r != Resolution.exchange and ctx.policy.allows_resolution(r)]
    exchange_possible = ctx.policy.allows_resolution(Resolution.exchange) and bool(ctx.items())
    if exchange_possible and all([await _variants(ctx, item) for item in ctx.items()]):
        allowed.append(Resolution.exchange)
    return allowed


async def _ask_resolution(ctx: _Ctx, *, again: bool = False) -> None:
    turn = ctx.turn
    allowed = await _allowed_resolutions(ctx)
    if not allowed:
        _finish(turn, ctx.order)
        turn.say("return_no_options", choices=agent_choice(turn))
        return
    if len(allowed) == 1:
        await _chose_resolution(ctx, allowed[0])
        return
    wanted = (ctx.slots.get("wanted") or {}).pop("resolution", None)
    if not again and wanted in {r.value for r in allowed}:  # said earlier ("store credit" at the condition)
        await _chose_resolution(ctx, Resolution(wanted))
        return
    choices = [(turn.label("resolution_" + r.value), f"resolution:{r.value}") for r in allowed]
    _go(ctx, "resolution")
    offer(turn, "return_ask_resolution", choices, options=[r.value for r in allowed],
          bonus=ctx.policy.resolutions.store_credit_bonus_percent, again=again)


async def _step_resolution(ctx: _Ctx) -> None:
    value = pick(ctx.turn)
    allowed = await _allowed_resolutions(ctx)
    chosen = value[11:] if value and value.startswith("resolution:") else None
    if chosen not in {r.value for r in allowed}:
        await _ask_resolution(ctx, again=True)
        return
    await _chose_resolution(ctx, Resolution(chosen))


async def _chose_resolution(ctx: _Ctx, resolution: Resolution) -> None:
    ctx.slots["resolution"] = resolution.value
    ctx.slots["items"] = [{**item, "exchange_sku": None} for item in ctx.items()]
    if resolution == Resolution.exchange:
        await _ask_variant(ctx, 0)
        return
    await _ask_method(ctx)


async def _ask_variant(ctx: _Ctx, index: int, *, again: bool = False) -> None:
    items = ctx.items()
    if index >= len(items):
        await _ask_method(ctx)
        return
    options = await _variants(ctx, items[index])
    if not options:  # sold out meanwhile: choose another resolution
        ctx.turn.say("return_exchange_unavailable", title=ctx.title(int(items[index]["line_id"])))
        ctx.slots.pop("resolution", None)
        await _ask_resolution(ctx)
        return
    choices = [(_short(v.variant_title or v.product_title or v.sku), f"sku:{v.sku}") for v in options]
    ctx.slots["variant_index"] = index
    _go(ctx, "variant")
    offer(ctx.turn, "return_ask_variant", choices, title=ctx.title(int(items[index]["line_id"])), again=again)


async def _step_variant(ctx: _Ctx) -> None:
    index = int(ctx.slots.get("variant_index") or 0)
    items = ctx.items()
    if index >= len(items):
        await _ask_method(ctx)
        return
    value = pick(ctx.turn)
    skus = {v.sku for v in await _variants(ctx, items[index])}
    sku = value[4:] if value and value.startswith("sku:") else None
    if sku not in skus:
        await _ask_variant(ctx, index, again=True)
        return
    items[index] = {**items[index], "exchange_sku": sku}
    ctx.slots["items"] = items
    await _ask_variant(ctx, index + 1)


# --------------------------------------------------------------------------- method, confirm, create


def _enabled_methods(policy: ReturnPolicy) -> list[ReturnMethod]:
    return [m for m in METHODS if policy.allows_method(m)]


async def _ask_method(ctx: _Ctx, *, again: bool = False) -> None:
    turn = ctx.turn
    enabled = _enabled_methods(ctx.policy)
    if not enabled:
        _finish(turn, ctx.order)
        turn.say("return_no_options", choices=agent_choice(turn))
        return
    if len(enabled) == 1:
        ctx.slots["method"] = enabled[0].value
        await _ask_confirm(ctx)
        return
    wanted = (ctx.slots.get("wanted") or {}).pop("method", None)
    if not again and wanted in {m.value for m in enabled}:
        ctx.slots["method"] = wanted
        await _ask_confirm(ctx)
        return
    choices = [(turn.label("method_" + m.value), f"method:{m.value}") for m in enabled]
    _go(ctx, "method")
    offer(turn, "return_ask_method", choices, options=[m.value for m in enabled],
          dropoff_locations=ctx.policy.methods.dropoff_locations,
          in_store_locations=ctx.policy.methods.in_store_locations, again=again)


async def _step_method(ctx: _Ctx) -> None:
    value = pick(ctx.turn)
    chosen = value[7:] if value and value.startswith("method:") else None
    if chosen not in {m.value for m in _enabled_methods(ctx.policy)}:
        await _ask_method(ctx, again=True)
        return
    ctx.slots["method"] = chosen
    await _ask_confirm(ctx)


def _return_items(ctx: _Ctx) -> list[ReturnItem]:
    return [
        ReturnItem(
            order_line_id=int(item["line_id"]),
            quantity=int(item["quantity"]),
            reason=ReturnReason(item["reason"]),
            reason_note=item.get("reason_note"),
            condition=ItemCondition(item["condition"]),
            exchange_sku=item.get("exchange_sku"),
        )
        for item in ctx.items()
    ]


def _amounts(ctx: _Ctx) -> dict[str, Any]:
    """What the customer gets back, and the fees (for the summary)."""
    resolution, method = Resolution(ctx.slots["resolution"]), ReturnMethod(ctx.slots["method"])
    pairs = [(item, ctx.lines[item.order_line_id]) for item in _return_items(ctx) if item.order_line_id in ctx.lines]
    currency = ctx.order.currency
    refund, credit = compute_amounts(pairs, resolution, method, ctx.policy, currency)
    no_fees = ctx.policy.model_copy(update={"restocking_fee_percent": Decimal("0"), "return_shipping_fee": Decimal("0")})
    value, _ = compute_amounts(pairs, Resolution.refund, method, no_fees, currency)
    gross, _ = compute_amounts(pairs, Resolution.refund, method, ctx.policy, currency)
    return {
        "amount": credit if resolution == Resolution.store_credit else refund,
        "currency": currency,
        "fees": (value - gross) if resolution != Resolution.exchange else Decimal("0"),
    }


def _item_views(ctx: _Ctx, variant_titles: dict[str, str] | None = None) -> list[dict[str, Any]]:
    turn = ctx.turn
    titles = variant_titles or {}
    return [
        {
            "title": ctx.title(int(item["line_id"])),
            "quantity": int(item["quantity"]),
            "reason": item["reason"],
            "reason_text": turn.label("reason_" + item["reason"]),
            "note": item.get("reason_note"),
            "condition": item["condition"],
            "exchange_sku": item.get("exchange_sku"),
            "exchange_title": titles.get(item.get("exchange_sku") or "", item.get("exchange_sku")),
        }
        for item in ctx.items()
    ]


async def _variant_titles(ctx: _Ctx) -> dict[str, str]:
    skus = [item["exchange_sku"] for item in ctx.items() if item.get("exchange_sku")]
    if not skus:
        return {}
    rows = (await ctx.turn.session.exec(select(ProductVariant).where(col(ProductVariant.sku).in_(skus)))).all()
    return {v.sku: " – ".join(p for p in (v.product_title, v.variant_title) if p) or v.sku for v in rows}


async def _ask_confirm(ctx: _Ctx, *, again: bool = False) -> None:
    turn = ctx.turn
    items = _item_views(ctx, await _variant_titles(ctx))
    method = ctx.slots["method"]
    _go(ctx, "confirm")
    offer(
        turn,
        "return_confirm",
        [(turn.label("return_confirm_yes"), "yes"), (turn.label("return_confirm_no"), "no")],
        order=ctx.order,
        items=items,
        resolution=ctx.slots["resolution"],
        resolution_text=turn.label("resolution_" + ctx.slots["resolution"]),
        method=method,
        method_text=turn.label("method_" + method),
        manual=ctx.policy.approval == "manual",
        again=again,
        **_amounts(ctx),
    )


async def _step_confirm(ctx: _Ctx) -> None:
    turn = ctx.turn
    value = pick(turn)  # the button, its label, or any yes/no ("sure", "да", "不用")
    if value == "no":
        _finish(turn, ctx.order)
        turn.say("return_cancelled")
        return
    if value != "yes":
        await _ask_confirm(ctx, again=True)
        return
    await _create(ctx)


async def _create(ctx: _Ctx) -> None:
    turn = ctx.turn
    resolution, method = Resolution(ctx.slots["resolution"]), ReturnMethod(ctx.slots["method"])
    try:
        created = await return_open(turn.session, turn.conversation, ctx.order, _return_items(ctx), resolution,
                                    method, now=turn.now, policy=ctx.policy)
    except Refused as refusal:
        found: tuple[RmaProblem, ...] = refusal.details.get("problems", ())
        if any(e.code in _EXCHANGE_GONE for e in found):
            turn.say("return_exchange_unavailable", title="")
            ctx.slots.pop("resolution", None)
            await _ask_resolution(ctx)
            return
        problems = [{"title": ctx.title(e.order_line_id) if e.order_line_id else "", "code": e.code} for e in found]
        turn.remember_problem("return", str(found[0].code) if found else "refused",
                              items=[{"title": str(p["title"])[:80], "refusal": p["code"]} for p in problems[:5]])
        _finish(turn, ctx.order)
        turn.say("return_failed", problems=problems, choices=agent_choice(turn))
        return

    rma = created.rma
    label_url = None
    if rma.label_tracking_number:
        label_url = signed_file_url(turn.config.public_url, turn.config.secret_key, "labels", rma.rma_number)
    manual = RmaStatus(rma.status) == RmaStatus.requested
    views = _item_views(ctx, await _variant_titles(ctx))
    if manual:
        turn.alert(
            "return_approval",
            rma_id=rma.id,
            rma_number=rma.rma_number,
            order_id=ctx.order.id,
            order_name=ctx.order.name,
            resolution=resolution.value,
            method=method.value,
            refund_amount=str(rma.refund_amount),
            credit_amount=str(rma.credit_amount),
            currency=rma.currency,
            items=[
                {k: v[k] for k in ("title", "quantity", "reason", "note", "condition", "exchange_sku")} for v in views
            ],
        )
    _finish(turn, ctx.order)
    turn.say(
        "return_created",
        rma_number=rma.rma_number,
        order=ctx.order,
        manual=manual,
        resolution=resolution.value,
        method=method.value,
        amount=rma.credit_amount if resolution == Resolution.store_credit else rma.refund_amount,
        currency=rma.currency,
        label_url=label_url,
        carrier=_CARRIER_NAMES.get((rma.label_carrier or "").lower(), rma.label_carrier),
        tracking_number=rma.label_tracking_number,
        dropoff_locations=ctx.policy.methods.dropoff_locations,
        in_store_locations=ctx.policy.methods.in_store_locations,
        items=views,
    )


_STEPS = {
    "items": _step_items,
    "quantity": _step_quantity,
    "reason": _step_reason,
    "reason_note": _step_note,
    "condition": _step_condition,
    "resolution": _step_resolution,
    "variant": _step_variant,
    "method": _step_method,
    "confirm": _step_confirm,
}
