"""What a fired alert says, for the notifications page (the agent's language) and Slack (the
shop's, ``SHOPDESK_DEFAULT_LANGUAGE``): a title, a few lines, a link back into the inbox and the
label of its button.

Pure functions of the alert's stored detail. The words come from the agents' gettext catalogs
(``inbox/locale``; English msgids here, stored values such as statuses and return reasons
through the "label" context of :mod:`inbox.web.labels`), chosen by ``locale`` (one of our
languages or a Babel locale such as ``ru_RU``). Numbers, percentages and times go through
:mod:`shopbase.formatting` in the reader's locale and the shop's time zone. Product titles, SKUs
and the like came from the shop or customers: callers escape them (Jinja autoescaping, Slack's
``blocks.escape``).
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from babel import Locale, UnknownLocaleError

from inbox.web.i18n import LABEL_CONTEXT, LANGUAGES, N_, translations
from shopbase.formatting import format_date, format_datetime, format_number, format_percent

__all__ = ["AlertText", "describe", "alert_translations", "label"]

NOTIFICATIONS_PATH = "/inbox/notifications"
RETURNS_PATH = "/inbox/admin/returns"


@dataclass(frozen=True)
class AlertText:
    title: str
    lines: list[str] = field(default_factory=list)
    link: str = NOTIFICATIONS_PATH  # a path below the public URL
    button: str = "Open notifications"


@lru_cache(maxsize=64)
def _language(locale: str) -> str:
    """One of our UI languages for ``locale`` ("ru", "zh-Hans", "ru_RU", "zh_Hant_TW" …); else English."""
    if locale in LANGUAGES:
        return locale
    try:
        parsed = Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return "en"
    if parsed.language == "zh":
        traditional = parsed.script == "Hant" or (parsed.script is None and parsed.territory in {"TW", "HK", "MO"})
        return "zh-Hant" if traditional else "zh-Hans"
    return parsed.language if parsed.language in LANGUAGES else "en"


def alert_translations(locale: str) -> gettext.NullTranslations:
    """The agents' catalog for ``locale`` (see :func:`_language`)."""
    return translations(_language(locale or "en"))


def label(t: gettext.NullTranslations, value: Any) -> str:
    """A stored value (status, reason …) as its translated label; unknown values humanized, in English."""
    text = str(value or "").replace("_", " ").capitalize()
    return t.pgettext(LABEL_CONTEXT, text) if text else ""


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


_DIGEST_LABELS = (
    ("new_conversations", N_("New conversations")), ("escalations", N_("Escalations")),
    ("waiting_for_a_person", N_("Waiting for a person")), ("returns_requested", N_("Returns requested")),
    ("late_shipments", N_("Late or problem shipments")), ("low_stock", N_("SKUs low on stock")),
    ("alerts", N_("Alerts")),
)


def describe(kind: str, detail: dict[str, Any], *, locale: str = "en", tz: str = "UTC",
             conversation_id: int | None = None) -> AlertText:
    t = alert_translations(locale)
    _ = t.gettext
    d = detail or {}
    conversation = f"/inbox/c/{conversation_id}" if conversation_id else None
    open_conversation, open_notifications = _("Open conversation"), _("Open notifications")
    if kind == "escalation":
        return AlertText(_("Conversation #%(id)s needs a person") % {"id": conversation_id},
                         [_("Reason: %(reason)s") % {"reason": label(t, d.get("reason") or "handoff")},
                          _("Priority: %(priority)s") % {"priority": label(t, d.get("priority") or "normal")},
                          _("At: %(when)s") % {"when": _when(d.get("at"), locale, tz)}],
                         conversation or NOTIFICATIONS_PATH, open_conversation)
    if kind == "sla_breach":
        who = str(d.get("customer") or "").strip()
        if d.get("kind") == "next":
            lines = [_("Next response was due: %(when)s") % {"when": _when(d.get("due_at"), locale, tz)}]
            title = _("Next response overdue (SLA): conversation #%(id)s") % {"id": conversation_id}
        else:
            lines = [_("First response was due: %(when)s") % {"when": _when(d.get("due_at"), locale, tz)}]
            title = _("First response overdue (SLA): conversation #%(id)s") % {"id": conversation_id}
        if who:
            lines.insert(0, _("Customer: %(name)s") % {"name": who})
        return AlertText(title, lines, conversation or NOTIFICATIONS_PATH, open_conversation)
    if kind in ("late_shipment", "shipment_exception"):
        order = d.get("order_name") or "?"
        title = (_("Shipment problem: %(order)s") if kind == "shipment_exception"
                 else _("Late shipment: %(order)s")) % {"order": order}
        unknown_carrier = _("carrier?")  # outside the f-string: pybabel does not look inside one
        lines = [f"{s.get('carrier') or unknown_carrier} {s.get('tracking_number') or '—'}: {label(t, s.get('status'))}"
                 for s in d.get("shipments") or [] if isinstance(s, dict)]
        if d.get("eta"):
            lines.append(_("Expected: %(when)s") % {"when": _when(d.get("eta"), locale, tz)})
        return AlertText(title, lines, conversation or NOTIFICATIONS_PATH,
                         open_conversation if conversation else open_notifications)
    if kind == "return_spike":
        key = str(d.get("product_key") or "")
        title = _("Returns are spiking: %(product)s") % {"product": d.get("title") or key}
        if d.get("reason"):
            lines = [_("%(units)s returned as “%(reason)s” in %(days)s days") % {
                "units": _n(d.get("units"), locale), "reason": label(t, d.get("reason")),
                "days": _n(d.get("days"), locale)}]
        else:
            lines = [_("30-day return rate %(rate_30)s (%(returned)s of %(sold)s sold), 90-day rate %(rate_90)s") % {
                "rate_30": format_percent(d.get("rate_30"), locale), "returned": _n(d.get("returned_30"), locale),
                "sold": _n(d.get("sold_30"), locale), "rate_90": format_percent(d.get("rate_90"), locale)}]
        return AlertText(title, lines, returns_link(key), _("Open product's returns"))
    if kind == "low_stock":
        values = {"sku": d.get("sku") or "?", "warehouse": d.get("warehouse")}
        title = (_("Low stock: %(sku)s at %(warehouse)s") if d.get("warehouse") else _("Low stock: %(sku)s")) % values
        return AlertText(title,
                         [_("Available %(available)s (on hand %(on_hand)s, reserved %(reserved)s), "
                            "safety stock %(safety)s") % {
                             "available": _n(d.get("available"), locale), "on_hand": _n(d.get("on_hand"), locale),
                             "reserved": _n(d.get("reserved"), locale), "safety": _n(d.get("safety_stock"), locale)}],
                         NOTIFICATIONS_PATH, open_notifications)
    if kind == "daily_digest":
        day = d.get("day")
        try:
            shown = format_date(datetime.fromisoformat(str(day)).date(), locale) if day else ""
        except ValueError:
            shown = ""
        return AlertText((_("Daily digest %(day)s") % {"day": shown}).strip(),
                         [f"{_(name)}: {_n(d.get(key), locale)}" for key, name in _DIGEST_LABELS],
                         "/inbox", _("Open inbox"))
    return AlertText(_("Alert: %(kind)s") % {"kind": kind}, [], NOTIFICATIONS_PATH, open_notifications)
