"""SLA in the agents' UI: the policy's admin page and what the list and the head need for the
countdown (``sla.js`` ticks it in the browser).

* ``GET/POST /inbox/admin/sla``: business hours per weekday, closed dates, a country's public
  holidays, the time zone, the targets per priority and their overrides per channel, and when
  the countdown turns amber (admins only; 404 for others). Saved through the ``sla_policy_save``
  action; a bad value answers 400 naming it and changes nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.sla_policy_save import sla_policy_save
from inbox.models import Channel, Priority
from inbox.sla import WEEKDAYS, SlaPolicy, load_policy
from inbox.web.admin import _flash, _page, _t, admin_only
from inbox.web.i18n import N_, translations_for
from inbox.web.state import AGENT, STATE
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["routes", "sla_context"]

WEEKDAY_NAMES = {
    "mon": N_("Monday"), "tue": N_("Tuesday"), "wed": N_("Wednesday"), "thu": N_("Thursday"),
    "fri": N_("Friday"), "sat": N_("Saturday"), "sun": N_("Sunday"),
}
PRIORITIES = [p.value for p in reversed(list(Priority))]
CHANNELS = [c.value for c in Channel]


async def sla_context(db: AsyncSession) -> dict[str, Any]:
    """What the list and the conversation head need to draw the countdown."""
    policy = await load_policy(db)
    return {"sla_warn_seconds": policy.warn_minutes * 60, "sla_now": utcnow()}


def _minutes(raw: Any) -> int | None | str:
    text = str(raw or "").strip()
    if not text:
        return None
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else text


def _policy_from_form(form: Any) -> dict[str, Any]:
    hours: dict[str, list[str] | None] = {}
    for day in WEEKDAYS:
        opens, closes = (str(form.get(f"hours.{day}.{end}") or "").strip() for end in ("open", "close"))
        hours[day] = [opens, closes] if (opens or closes) else None
    holidays = [line.strip() for line in str(form.get("holidays") or "").replace(",", "\n").splitlines()
                if line.strip()]
    targets = {p: {"first": _minutes(form.get(f"t.{p}.first")), "next": _minutes(form.get(f"t.{p}.next"))}
               for p in PRIORITIES}
    channel_targets: dict[str, dict[str, Any]] = {}
    for c in CHANNELS:
        for p in PRIORITIES:
            first, nxt = _minutes(form.get(f"c.{c}.{p}.first")), _minutes(form.get(f"c.{c}.{p}.next"))
            if first is not None or nxt is not None:
                channel_targets.setdefault(c, {})[p] = {"first": first, "next": nxt}
    return {
        "enabled": form.get("enabled") == "on",
        "timezone": str(form.get("timezone") or "").strip()[:64] or None,
        "hours": hours,
        "holidays": holidays[:400],
        "holiday_country": str(form.get("holiday_country") or "").strip()[:8] or None,
        "targets": targets,
        "channel_targets": channel_targets,
        "warn_minutes": _minutes(form.get("warn_minutes")) or 30,
    }


def _view(policy: SlaPolicy, default_zone: str) -> dict[str, Any]:
    return {
        "policy": policy,
        "weekdays": [(day, WEEKDAY_NAMES[day], policy.hours.get(day)) for day in WEEKDAYS],
        "holidays_text": "\n".join(d.isoformat() for d in sorted(set(policy.holidays))),
        "priorities": PRIORITIES,
        "channels": CHANNELS,
        "default_zone": default_zone,
        "section": "sla",
        "today": date.today(),
    }


@admin_only
async def sla_page(request: web.Request) -> web.Response:
    async with request.app[STATE].sessions() as db:
        policy = await load_policy(db)
    return await _page(request, "inbox/admin/sla.html", _view(policy, request.app[STATE].config.shop_timezone))


@admin_only
async def save_sla(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    raw = _policy_from_form(form)
    async with request.app[STATE].sessions() as db:
        try:
            await sla_policy_save(db, raw, by=request[AGENT])
        except Refused as exc:
            await db.rollback()
            policy = await load_policy(db)
            ctx = _view(policy, request.app[STATE].config.shop_timezone)
            ctx["error"] = _t(request, N_("The SLA policy was not saved: %(problem)s"),
                              problem=translations_for(request).gettext(exc.message))
            return await _page(request, "inbox/admin/sla.html", ctx, status=exc.status if 400 <= exc.status < 500 else 400)
        await db.commit()
    await _flash(request, _t(request, N_("SLA policy saved.")))
    raise web.HTTPSeeOther("/inbox/admin/sla")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/inbox/admin/sla", sla_page, name="admin_sla"),
        web.post("/inbox/admin/sla", save_sla),
    ]
