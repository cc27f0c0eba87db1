"""What a fired alert says, for the notifications page (the agent's language) and Slack (the
shop's): a title, a few lines, a link back into the inbox and the label of its button.

Pure functions of the alert's stored detail. Numbers, percentages and times go through
:mod:`shopbase.formatting` in the reader's locale and the shop's time zone. Product titles, SKUs
and the like came from the shop or customers: callers escape them (Jinja autoescaping, Slack's
``blocks.escape``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from shopbase.formatting import format_date, format_datetime, format_number, format_percent

__all__ = ["AlertText", "describe"]

NOTIFICATIONS_PATH = "/inbox/notifications"
RETURNS_PATH = "/inbox/admin/returns"


@dataclass(frozen=True)
class AlertText:
    title: str
    lines: list[str] = field(default_factory=list)
    link: str = NOTIFICATIONS_PATH  # a path below the public URL
    button: str = "Open notifications"


def _when(value: Any, locale: str, tz: str) -> str:
    if not isinstance(value, str) or not value:
        return "—"
    try:
        return format_datetime(datetime.fromisoformat(value), locale, tz)
    except ValueError:
        return "—"


def _n(value: Any, locale: str) -> str:
    return format_number(value if isinstance(value, (int, str)) else 0, locale)


def returns_link(product_key: str) -> str:
    return f"{RETURNS_PATH}?product={quote(product_key, safe='')}"


def describe(kind: str, detail: dict[str, Any], *, locale: str = "en", tz: str = "UTC",
             conversation_id: int | None = None) -> AlertText:
    d = detail or {}
    conversation = f"/inbox/c/{conversation_id}" if conversation_id else None
    if kind == "escalation":
        return AlertText(f"Conversation #{conversation_id} needs a person",
                         [f"Reason: {str(d.get('reason') or 'handoff').replace('_', ' ')}",
                          f"Priority: {d.get('priority') or 'normal'}", f"At: {_when(d.get('at'), locale, tz)}"],
                         conversation or NOTIFICATIONS_PATH, "Open conversation")
    if kind == "sla_breach":
        who = str(d.get("customer") or "").strip()
        what = "Next response" if d.get("kind") == "next" else "First response"
        lines = [f"{what} was due: {_when(d.get('due_at'), locale, tz)}"]
        if who:
            lines.insert(0, f"Customer: {who}")
        return AlertText(f"{what} overdue (SLA): conversation #{conversation_id}", lines,
                         conversation or NOTIFICATIONS_PATH, "Open conversation")
    if kind in ("late_shipment", "shipment_exception"):
        title = ("Shipment problem" if kind == "shipment_exception" else "Late shipment") + f": {d.get('order_name') or '?'}"
        lines = [f"{s.get('carrier') or 'carrier?'} {s.get('tracking_number') or '—'}: "
                 f"{str(s.get('status') or '').replace('_', ' ')}"
                 for s in d.get("shipments") or [] if isinstance(s, dict)]
        if d.get("eta"):
            lines.append(f"Expected: {_when(d.get('eta'), locale, tz)}")
        return AlertText(title, lines, conversation or NOTIFICATIONS_PATH,
                         "Open conversation" if conversation else "Open notifications")
    if kind == "return_spike":
        key = str(d.get("product_key") or "")
        title = f"Returns are spiking: {d.get('title') or key}"
        if d.get("reason"):
            lines = [f"{_n(d.get('units'), locale)} returned as “{str(d.get('reason')).replace('_', ' ')}” "
                     f"in {_n(d.get('days'), locale)} days"]
        else:
            lines = [f"30-day return rate {format_percent(d.get('rate_30'), locale)} "
                     f"({_n(d.get('returned_30'), locale)} of {_n(d.get('sold_30'), locale)} sold), "
                     f"90-day rate {format_percent(d.get('rate_90'), locale)}"]
        return AlertText(title, lines, returns_link(key), "Open product's returns")
    if kind == "low_stock":
        where = f" at {d.get('warehouse')}" if d.get("warehouse") else ""
        return AlertText(f"Low stock: {d.get('sku') or '?'}{where}",
                         [f"Available {_n(d.get('available'), locale)} (on hand {_n(d.get('on_hand'), locale)}, "
                          f"reserved {_n(d.get('reserved'), locale)}), safety stock {_n(d.get('safety_stock'), locale)}"],
                         NOTIFICATIONS_PATH, "Open notifications")
    if kind == "daily_digest":
        day = d.get("day")
        try:
            shown = format_date(datetime.fromisoformat(str(day)).date(), locale) if day else ""
        except ValueError:
            shown = ""
        labels = [("new_conversations", "New conversations"), ("escalations", "Escalations"),
                  ("waiting_for_a_person", "Waiting for a person"), ("returns_requested", "Returns requested"),
                  ("late_shipments", "Late or problem shipments"), ("low_stock", "SKUs low on stock"),
                  ("alerts", "Alerts")]
        return AlertText(f"Daily digest {shown}".strip(),
                         [f"{label}: {_n(d.get(key), locale)}" for key, label in labels],
                         "/inbox", "Open inbox")
    return AlertText(f"Alert: {kind}", [], NOTIFICATIONS_PATH, "Open notifications")
