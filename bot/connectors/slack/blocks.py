"""Block Kit builders for Shopdesk's Slack messages: pure functions from our data to blocks.

Every text that came from a customer, an order or an agent goes through :func:`escape` first,
so nobody can ping ``@channel`` or forge a link by typing ``<!channel>`` or ``<http://x|y>``.
Each builder returns ``(fallback_text, blocks)``: the fallback is what notifications and
screen readers show. Button ``action_id`` values are the constants below; the Slack connector
registers one listener per constant. Amounts and dates are written in the shop's default
language and time zone (``locale``, ``tz``) through :mod:`shopbase.formatting`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from inbox.alerts.text import alert_translations, label
from inbox.web.i18n import N_
from shopbase.formatting import format_date, format_money, format_number, format_percent

__all__ = [
    "ACTION_CLAIM",
    "ACTION_RESOLVE",
    "ACTION_OPEN",
    "ACTION_APPROVE_RETURN",
    "ACTION_REJECT_RETURN",
    "escape",
    "slack_to_plain",
    "order_card",
    "escalation_alert",
    "escalation_state_line",
    "shipment_alert",
    "return_approval_alert",
    "return_decided",
    "return_decided_line",
    "simple_alert",
    "rule_alert",
    "returns_reply",
    "mirrored_message",
    "order_lookup_reply",
]

ACTION_CLAIM = "shopdesk_claim"
ACTION_RESOLVE = "shopdesk_resolve"
ACTION_OPEN = "shopdesk_open"
ACTION_APPROVE_RETURN = "shopdesk_return_approve"
ACTION_REJECT_RETURN = "shopdesk_return_reject"

# Block Kit limits (api.slack.com/reference/block-kit): section text 3000, header 150,
# button text 75, context element 2000, fallback text keep well under 40k.
_SECTION_MAX = 3000
_HEADER_MAX = 150
_BUTTON_MAX = 75
_CONTEXT_MAX = 2000
_MAX_LINES = 8

Blocks = list[dict[str, Any]]


def escape(text: Any) -> str:
    """Make untrusted text inert in Slack mrkdwn: ``&``, ``<`` and ``>`` become entities."""
    return str(text if text is not None else "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def slack_to_plain(text: str) -> str:
    """A Slack message's mrkdwn as plain text for a customer.

    ``<https://x|label>`` → ``label (https://x)``, ``<https://x>`` → ``https://x``,
    ``<@U123>`` → ``@U123``, ``<!here>`` → ``@here``; entities are decoded last.
    """

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@") or target.startswith("#"):
            return label and f"{target[0]}{label}" or target
        if target.startswith("!"):
            name = target[1:].split("^", 1)[0]
            return label or f"@{name}"
        if target.startswith("mailto:"):
            return label or target[len("mailto:") :]
        return f"{label} ({target})" if label and label != target else target

    plain = _LINK.sub(link, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SECTION_MAX)}}


def _fields(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    fields = [{"type": "mrkdwn", "text": _cut(f"*{label}*\n{value}", 2000)} for label, value in pairs][:10]
    return {"type": "section", "fields": fields}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(text, _HEADER_MAX), "emoji": True}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, _CONTEXT_MAX)}]}


def _button(text: str, action_id: str, value: str, *, style: str | None = None, url: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": _cut(text, _BUTTON_MAX), "emoji": True},
        "value": value,
    }
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


def _bold(text: str) -> str:
    return f"*{text}*"


def _words(value: Any) -> str:
    return str(value or "").replace("_", " ")


def _money(amount: Any, currency: Any, locale: str) -> str:
    return format_money(amount, str(currency or ""), locale) if amount not in (None, "") else "—"


def _day(value: Any, locale: str, tz: str) -> str:
    """A date from a document's ISO timestamp, in the shop's time zone and language."""
    if not isinstance(value, str) or not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return "—"
    return format_date(moment, locale, tz)


# --------------------------------------------------------------------------- order card


def order_card(order: Mapping[str, Any], *, locale: str = "en", tz: str = "UTC") -> Blocks:
    """The order as a few blocks, from :func:`ordersvc.serialize.bundle_document`'s dict.

    Shows status, total, items, shipments (carrier, tracking, status, late) and returns;
    never the customer's email, phone or addresses. Labels and stored values (statuses) are
    in the shop's default language ``locale`` (the agents' catalogs), the total and the date
    written for it, in the shop's time zone ``tz``.
    """
    t = alert_translations(locale)
    _ = t.gettext
    status = label(t, "cancelled" if order.get("cancelled") else order.get("fulfillment_status"))
    customer = order.get("customer") or {}
    name = customer.get("name") if isinstance(customer, Mapping) else None
    blocks: Blocks = [
        _fields(
            [
                (_("Order"), escape(order.get("name"))),
                (_("Placed"), escape(_day(order.get("placed_at"), locale, tz))),
                (_("Total"), escape(_money(order.get("total_price"), order.get("currency"), locale))),
                (_("Payment"), escape(label(t, order.get("financial_status")))),
                (_("Fulfilment"), escape(status)),
                (_("Customer"), escape(name or "—")),
            ]
        )
    ]
    lines = list(order.get("lines") or [])
    if lines:
        shown = [f"• {int(ln.get('quantity') or 0)} × {escape(ln.get('title'))}" for ln in lines[:_MAX_LINES]]
        if len(lines) > _MAX_LINES:
            shown.append(_("… and %(count)s more") % {"count": format_number(len(lines) - _MAX_LINES, locale)})
        blocks.append(_section(_bold(_("Items")) + "\n" + "\n".join(shown)))
    shipments = list(order.get("shipments") or [])
    if shipments:
        rows = []
        for s in shipments[:_MAX_LINES]:
            late = " — " + _bold(_("late")) if s.get("late") else ""
            number = escape(s.get("tracking_number") or _("no tracking number"))
            url = s.get("tracking_url")
            if isinstance(url, str) and url.startswith("https://"):
                number = f"<{escape(url)}|{number}>"
            carrier = s.get("carrier") or _("carrier?")
            rows.append(f"• {escape(carrier)} {number}: {escape(label(t, s.get('status')))}{late}")
        blocks.append(_section(_bold(_("Shipments")) + "\n" + "\n".join(rows)))
    returns = list(order.get("returns") or [])
    if returns:
        rows = [f"• {escape(r.get('rma_number'))}: {escape(label(t, r.get('status')))} "
                f"({escape(label(t, r.get('resolution')))})"
                for r in returns[:_MAX_LINES]]
        blocks.append(_section(_bold(_("Returns")) + "\n" + "\n".join(rows)))
    return blocks


# --------------------------------------------------------------------------- escalations

#: the escalation card's last line by the conversation's state (``escalation_state_line``)
_STATE_LINES = {
    "resolved": N_("Resolved."),
    "resolved_by": N_("Resolved (assigned to %(agent)s)."),
    "claimed": N_("Claimed."),
    "claimed_by": N_("Claimed (assigned to %(agent)s)."),
    "unclaimed": N_("Unclaimed. Reply in this thread to answer the customer; start with `note:` to keep it internal."),
}


def escalation_state_line(*, resolved: bool, claimed: bool, assignee: str | None, locale: str = "en") -> str:
    """The card's state line in ``locale``; ``assignee`` is already Slack text (a mention, an escaped name)."""
    t = alert_translations(locale)
    state = "resolved" if resolved else "claimed" if claimed else "unclaimed"
    if state != "unclaimed" and assignee:
        return t.gettext(_STATE_LINES[f"{state}_by"]) % {"agent": assignee}
    return t.gettext(_STATE_LINES[state])


def escalation_alert(
    *,
    conversation_id: int,
    customer: str,
    channel: str,
    intent: str | None,
    priority: str,
    summary: str | None,
    order: Mapping[str, Any] | None,
    inbox_url: str,
    state_line: str | None = None,
    resolved: bool = False,
    locale: str = "en",
    tz: str = "UTC",
) -> tuple[str, Blocks]:
    """A new escalation: who, why, the order, the bot's summary; Claim / Resolve / Open in inbox
    (every label in the shop's language ``locale``; ``customer`` and ``summary`` are escaped)."""
    t = alert_translations(locale)
    _ = t.gettext
    shown_priority = label(t, priority)
    fallback = _("Escalated conversation #%(id)s from %(customer)s (%(priority)s)") % {
        "id": conversation_id, "customer": customer, "priority": shown_priority}
    blocks: Blocks = [
        _header(_("Needs a person: conversation #%(id)s") % {"id": conversation_id}),
        _fields(
            [
                (_("Customer"), escape(customer)),
                (_("Channel"), escape(label(t, channel))),
                (_("Intent"), escape(label(t, intent or "unknown"))),
                (_("Priority"), escape(shown_priority)),
            ]
        ),
    ]
    if summary:
        blocks.append(_section(_bold(_("Bot summary")) + "\n" + escape(summary)))
    if order:
        blocks.extend(order_card(order, locale=locale, tz=tz))
    blocks.append(_context(state_line or escalation_state_line(resolved=False, claimed=False, assignee=None,
                                                               locale=locale)))
    blocks.append(_escalation_actions(conversation_id, inbox_url, resolved=resolved, locale=locale))
    return escape(fallback), blocks


def _escalation_actions(conversation_id: int, inbox_url: str, *, resolved: bool, locale: str = "en") -> dict[str, Any]:
    t = alert_translations(locale)
    value = str(conversation_id)
    elements = []
    if not resolved:
        elements.append(_button(t.gettext("Claim"), ACTION_CLAIM, value, style="primary"))
        elements.append(_button(t.gettext("Resolve"), ACTION_RESOLVE, value))
    elements.append(_button(t.gettext("Open in inbox"), ACTION_OPEN, value, url=inbox_url))
    return {"type": "actions", "block_id": f"shopdesk_conv_{value}", "elements": elements}


# --------------------------------------------------------------------------- merchant alerts

_SHIPMENT_TITLES = {
    "late_shipment": N_("Late shipment: %(order)s"),
    "shipment_exception": N_("Shipment problem: %(order)s"),
}


def shipment_alert(kind: str, *, order_name: str, shipments: Sequence[Mapping[str, Any]],
                   order: Mapping[str, Any] | None, inbox_url: str | None, locale: str = "en",
                   tz: str = "UTC") -> tuple[str, Blocks]:
    """A late or problem shipment, in the shop's language (``locale``: the agents' catalogs)."""
    t = alert_translations(locale)
    title = t.gettext(_SHIPMENT_TITLES.get(kind, N_("Shipment alert: %(order)s"))) % {"order": order_name}
    unknown_carrier = t.gettext("carrier?")  # outside the f-string: pybabel does not look inside one
    rows = [
        f"• {escape(s.get('carrier') or unknown_carrier)} {escape(s.get('tracking_number') or '—')}: "
        f"{escape(label(t, s.get('status')))}"
        for s in list(shipments)[:_MAX_LINES]
    ]
    blocks: Blocks = [_header(title)]
    if rows:
        blocks.append(_section("\n".join(rows)))
    if order:
        blocks.extend(order_card(order, locale=locale, tz=tz))
    if inbox_url:
        blocks.append({"type": "actions", "elements": [
            _button(t.gettext("Open in inbox"), ACTION_OPEN, "open", url=inbox_url)]})
    return escape(title), blocks


def return_approval_alert(*, rma_id: int, rma_number: str, order_name: str, resolution: str, method: str,
                          amount: Decimal | str, currency: str, items: Sequence[str], reason_notes: Sequence[str],
                          inbox_url: str | None, locale: str = "en") -> tuple[str, Blocks]:
    """A return waiting for manual approval: what, why, how much (in ``locale``); Approve / Reject."""
    t = alert_translations(locale)
    _ = t.gettext
    fallback = _("Return %(rma)s for %(order)s waits for approval") % {"rma": rma_number, "order": order_name}
    blocks: Blocks = [
        _header(_("Return waiting for approval: %(rma)s") % {"rma": rma_number}),
        _fields(
            [
                (_("Order"), escape(order_name)),
                (_("Resolution"), escape(label(t, resolution))),
                (_("Method"), escape(label(t, method))),
                (_("Amount"), escape(_money(amount, currency, locale))),
            ]
        ),
    ]
    if items:
        blocks.append(_section(_bold(_("Items")) + "\n" + "\n".join(f"• {escape(i)}" for i in list(items)[:_MAX_LINES])))
    if reason_notes:
        blocks.append(_section(_bold(_("Customer’s notes")) + "\n"
                               + "\n".join(f"> {escape(n)}" for n in list(reason_notes)[:3])))
    value = str(rma_id)
    elements = [
        _button(_("Approve"), ACTION_APPROVE_RETURN, value, style="primary"),
        _button(_("Reject"), ACTION_REJECT_RETURN, value, style="danger"),
    ]
    if inbox_url:
        elements.append(_button(_("Open in inbox"), ACTION_OPEN, "open", url=inbox_url))
    blocks.append({"type": "actions", "block_id": f"shopdesk_rma_{value}", "elements": elements})
    return escape(fallback), blocks


_DECIDED = {True: N_("Approved by %(agent)s"), False: N_("Rejected by %(agent)s")}


def return_decided_line(*, approve: bool, agent: str, locale: str = "en") -> str:
    """The approval card's last line after a decision, in ``locale`` (``agent`` is Slack text)."""
    return alert_translations(locale).gettext(_DECIDED[approve]) % {"agent": agent}


def return_decided(blocks: Sequence[Mapping[str, Any]], *, line: str) -> Blocks:
    """The approval alert without its buttons, with who decided what."""
    kept = [dict(b) for b in blocks if b.get("type") not in ("actions", "context")]
    kept.append(_context(line))
    return kept


def simple_alert(title: str, lines: Sequence[str], *, inbox_url: str | None = None) -> tuple[str, Blocks]:
    blocks: Blocks = [_header(title)]
    if lines:
        blocks.append(_section("\n".join(escape(x) for x in list(lines)[:_MAX_LINES * 2])))
    if inbox_url:
        blocks.append({"type": "actions", "elements": [_button("Open in inbox", ACTION_OPEN, "open", url=inbox_url)]})
    return escape(title), blocks


def rule_alert(title: str, lines: Sequence[str], *, url: str, button: str, footer: str | None = None) -> tuple[str, Blocks]:
    """An alert rule's message: what happened, a few lines, and one button back into Shopdesk."""
    blocks: Blocks = [_header(title)]
    if lines:
        blocks.append(_section("\n".join(escape(x) for x in list(lines)[:_MAX_LINES * 2])))
    if footer:
        blocks.append(_context(escape(footer)))
    blocks.append({"type": "actions", "elements": [_button(button, ACTION_OPEN, "open", style="primary", url=url)]})
    return escape(title), blocks


def returns_reply(query: str, card: Any, candidates: Sequence[tuple[str, str]], *, url: str | None,
                  locale: str = "en") -> tuple[str, Blocks]:
    """The private answer to ``/returns <SKU or product>``: rate, top reasons, customers' words."""
    if card is None:
        if not candidates:
            text = f"No product found for `{escape(_cut(query, 100))}`."
            return text, [_section(text)]
        rows = [f"• {escape(title)} (`{escape(key)}`)" for key, title in list(candidates)[:_MAX_LINES]]
        text = f"Several products match `{escape(_cut(query, 100))}`; try one of their keys:"
        return text, [_section(text + "\n" + "\n".join(rows))]
    rate = format_percent(card.rate, locale) if card.rate is not None else "—"
    blocks: Blocks = [
        _header(f"Returns: {card.title}"),
        _fields([
            ("Product", escape(card.product_key)),
            ("Last days", escape(format_number(card.days, locale))),
            ("Sold", escape(format_number(card.sold, locale))),
            ("Returned", escape(format_number(card.returned, locale))),
            ("Return rate", escape(rate)),
        ]),
    ]
    if card.reasons:
        blocks.append(_section("*Top reasons*\n" + "\n".join(
            f"• {escape(_words(reason))}: {escape(format_number(units, locale))}" for reason, units in card.reasons)))
    if card.comments:
        blocks.append(_section("*In customers' words*\n" + "\n".join(
            f"> {escape(_cut(' '.join(str(c).split()), 300))}" for c in card.comments)))
    if url:
        blocks.append({"type": "actions", "elements": [_button("Open product's returns", ACTION_OPEN, "open", url=url)]})
    return escape(f"Returns of {card.title}: {rate}"), blocks


# --------------------------------------------------------------------------- threads and commands


def mirrored_message(author: str, text: str, attachments: Sequence[str] = ()) -> str:
    """A customer's (or inbox agent's) message as a thread reply (plain mrkdwn text)."""
    body = escape(text) if text else "_(no text)_"
    quoted = "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))
    extra = "".join(f"\n:paperclip: {escape(a)}" for a in attachments)
    return _cut(f"*{escape(author)}*:\n{quoted}{extra}", 3900)


def order_lookup_reply(query: str, order: Mapping[str, Any] | None, *, others: Sequence[str] = (),
                       inbox_url: str | None = None, locale: str = "en", tz: str = "UTC") -> tuple[str, Blocks]:
    """The private answer to ``/order <number or email>``."""
    if order is None:
        text = f"No order found for `{escape(_cut(query, 100))}`."
        return text, [_section(text)]
    blocks = order_card(order, locale=locale, tz=tz)
    if others:
        blocks.append(_context("Other orders: " + ", ".join(escape(o) for o in list(others)[:10])))
    if inbox_url:
        blocks.append({"type": "actions", "elements": [_button("Open in inbox", ACTION_OPEN, "open", url=inbox_url)]})
    return escape(f"Order {order.get('name')}"), blocks
