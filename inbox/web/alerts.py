"""Alert rules, returns insight and the agents' notifications in the inbox.

* ``GET/POST /inbox/admin/alerts``: switch and tune the alert rules (admins only; 404 for others,
  like every admin page; the POST carries the CSRF token like every form). A bad value answers
  400 naming the field and changes nothing.
* ``GET /inbox/admin/returns?days=30&product=<key>``: each product's return rate and top reasons
  over a period; with ``product``, that product's customers' own words (autoescaped: customer
  text is untrusted).
* ``GET /inbox/notifications``: fired alerts the agent may see, newest first, unread ones marked;
  ``GET /inbox/notifications/count`` the unread count (a small fragment the top bar polls);
  ``POST /inbox/notifications/read`` marks everything up to the newest shown as read.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from inbox.actions.alert_rules_save import alert_rules_save
from inbox.actions.notifications_read import notifications_read
from inbox.alerts.config import RULE_TITLES, RULES, load_config
from inbox.alerts.text import describe
from inbox.queries.notifications import last_read, notifications, unread_count
from inbox.web.admin import _flash, _page, _t, admin_only
from inbox.web.i18n import N_
from inbox.web.rendering import error_response, reader_context
from inbox.web.state import AGENT, STATE
from ordersvc.insight import product_returns, return_comments
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["routes"]

PERIODS = (7, 30, 90, 365)
#: English msgids; the page translates them (and the rule titles) into the agent's language
_PARAM_LABELS = {
    "first_response_minutes": N_("Minutes until the first answer is overdue"),
    "lookback_days": N_("Watch shipments of the last … days"),
    "reason_count": N_("Units returned for one reason"),
    "reason_days": N_("… within days"),
    "rate_factor": N_("30-day rate at least … × the 90-day rate"),
    "min_returns": N_("Minimum units returned in 30 days"),
    "at": N_("Send at (shop time, HH:MM)"),
}


def _rules_view(config: Any) -> list[dict[str, Any]]:
    view = []
    for rule in RULES:
        params = config.params(rule).model_dump(mode="json")
        view.append({"rule": rule, "title": RULE_TITLES[rule], "enabled": config.on(rule),
                     "params": [{"name": name, "label": _PARAM_LABELS.get(name, name), "value": value}
                                for name, value in params.items()]})
    return view


@admin_only
async def alerts_page(request: web.Request) -> web.Response:
    async with request.app[STATE].sessions() as db:
        config = await load_config(db)
    return await _page(request, "inbox/admin/alerts.html", {"rules": _rules_view(config), "section": "alerts"})


@admin_only
async def save_alerts(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    changes: dict[str, tuple[bool, dict[str, Any]]] = {}
    for rule, model in RULES.items():
        raw = {name: str(form.get(f"{rule}.{name}") or "").strip() for name in model.model_fields}
        changes[rule] = (form.get(f"{rule}.enabled") == "on", {k: v for k, v in raw.items() if v != ""})
    async with request.app[STATE].sessions() as db:
        try:
            await alert_rules_save(db, changes, by=request[AGENT])
        except Refused as exc:
            await db.rollback()
            config = await load_config(db)
            message = _t(request, N_("The alert rules were not saved: %(reason)s")) % {
                "reason": _named(request, exc.message)}
            return await _page(request, "inbox/admin/alerts.html",
                               {"rules": _rules_view(config), "section": "alerts", "error": message},
                               status=exc.status if 400 <= exc.status < 500 else 400)
        await db.commit()
    await _flash(request, _t(request, N_("Alert rules saved.")))
    raise web.HTTPSeeOther("/inbox/admin/alerts")


def _named(request: web.Request, message: str) -> str:
    """A refusal's "daily digest: at: …" with the rule's title in the agent's language (the
    field's own words, from the validator, stay as they are)."""
    for rule, title in RULE_TITLES.items():
        prefix = rule.replace("_", " ") + ": "
        if message.startswith(prefix):
            return f"{_t(request, title)}: {message[len(prefix):]}"
    return message[:1].upper() + message[1:]


def _days(request: web.Request) -> int:
    raw = request.query.get("days", "30")
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) in PERIODS else 30


@admin_only
async def returns_page(request: web.Request) -> web.Response:
    days = _days(request)
    product = request.query.get("product", "").strip()[:120] or None
    now = utcnow()
    since = now - timedelta(days=days)
    async with request.app[STATE].sessions() as db:
        products = await product_returns(db, since, now, product_key=product)
        comments = await return_comments(db, product, since, now, limit=50) if product else []
    return await _page(request, "inbox/admin/returns.html",
                       {"products": products, "comments": comments, "product": product, "days": days,
                        "periods": PERIODS, "section": "returns"})


async def _agent(request: web.Request) -> Any:
    agent = request.get(AGENT)
    if agent is None:
        raise web.HTTPFound("/login")
    return agent


async def notifications_page(request: web.Request) -> web.Response:
    agent = await _agent(request)
    reader = reader_context(request)
    async with request.app[STATE].sessions() as db:
        rows = await notifications(db, agent, limit=100)
        mark = await last_read(db, agent)
        unread = await unread_count(db, agent)
    items = []
    for row in rows:
        kind = str((row.detail or {}).get("kind") or _kind(row))
        said = describe(kind, dict(row.detail or {}), locale=reader["locale"], tz=reader["timezone"],
                        conversation_id=row.conversation_id)
        items.append({"id": row.id, "rule": row.rule, "at": row.created_at, "text": said, "unread": (row.id or 0) > mark})
    return await _page(request, "inbox/notifications.html",
                       {"items": items, "unread": unread, "newest": (rows[0].id or 0) if rows else 0,
                        "section": "notifications"})


def _kind(row: Any) -> str:
    """The alert's kind as its event had it (a shipment rule fires as late or exception)."""
    if row.rule == "shipment":
        return "shipment_exception" if row.window == "exception" else "late_shipment"
    return str(row.rule)


async def notifications_count(request: web.Request) -> web.Response:
    agent = request.get(AGENT)
    if agent is None:
        return web.json_response({"error": "sign in first"}, status=401)
    async with request.app[STATE].sessions() as db:
        unread = await unread_count(db, agent)
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"unread": unread}, headers={"Cache-Control": "no-store"})
    text = str(unread) if unread else ""
    return web.Response(text=text, content_type="text/plain", headers={"Cache-Control": "no-store"})


async def mark_read(request: web.Request) -> web.StreamResponse:
    agent = await _agent(request)
    form = await request.post()
    raw = str(form.get("up_to") or "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return error_response(request, 400, "Nothing to mark as read.")
    async with request.app[STATE].sessions() as db:
        await notifications_read(db, agent, int(raw))
        await db.commit()
    raise web.HTTPSeeOther("/inbox/notifications")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/inbox/admin/alerts", alerts_page),
        web.post("/inbox/admin/alerts", save_alerts),
        web.get("/inbox/admin/returns", returns_page),
        web.get("/inbox/notifications", notifications_page),
        web.get("/inbox/notifications/count", notifications_count),
        web.post("/inbox/notifications/read", mark_read),
    ]
