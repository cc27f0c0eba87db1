"""``GET/POST /inbox/admin/updates``: the merchant switches each kind of proactive customer
message on or off (out for delivery, delivered, failed attempt, exception, late, and the
satisfaction survey), and opts in to Telegram's paid broadcasts for them. Admins only (404 for others, like every admin page); the POST carries the
CSRF token like every form and goes through the ``customer_updates_save`` action (audited).
The same switches as ``shopdesk updates show|set``."""

from __future__ import annotations

from aiohttp import web

from inbox.actions.customer_updates_save import customer_updates_save
from inbox.proactive import SETTING_KINDS, update_settings
from inbox.web.admin import _flash, _page, _t, admin_only
from inbox.web.i18n import N_
from inbox.web.state import AGENT, STATE
from shopbase.refusal import Refused

__all__ = ["routes", "KIND_LABELS"]

#: (title, what the customer gets) per kind; msgids for the agents' catalogs
KIND_LABELS: dict[str, tuple[str, str]] = {
    "out_for_delivery": (N_("Out for delivery"), N_("The parcel is on the van today, with the tracking link.")),
    "delivered": (N_("Delivered"), N_("The parcel arrived, with a button to start a return.")),
    "failed_attempt": (N_("Failed delivery attempt"),
                       N_("The carrier could not deliver, with a button to change the address.")),
    "exception": (N_("Delivery problem"), N_("A delay, customs hold or damage, with a button to change the address.")),
    "late": (N_("Late parcel"), N_("The parcel is past its estimated delivery date, with an apology.")),
    "csat": (N_("Satisfaction survey"), N_("After a resolved conversation, a 1–5 rating question.")),
    "paid_broadcast": (N_("Paid broadcasts on Telegram"),
                       N_("When many parcels change at once, send the delivery updates at up to 1,000 a second "
                          "instead of 30. Telegram charges 0.1 Stars per message above 30 a second; switch it "
                          "on in @BotFather too.")),
}


async def _render(request: web.Request, *, status: int = 200, error: str | None = None) -> web.Response:
    async with request.app[STATE].sessions() as db:
        current = await update_settings(db)
    kinds = [{"kind": kind, "title": KIND_LABELS[kind][0], "hint": KIND_LABELS[kind][1], "enabled": current[kind]}
             for kind in SETTING_KINDS]
    return await _page(request, "inbox/admin/updates.html", {"kinds": kinds, "section": "updates", "error": error},
                       status=status)


@admin_only
async def updates_page(request: web.Request) -> web.Response:
    return await _render(request)


@admin_only
async def save_updates(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    switches = {kind: form.get(kind) == "on" for kind in SETTING_KINDS}
    async with request.app[STATE].sessions() as db:
        try:
            await customer_updates_save(db, switches, by=request[AGENT])
        except Refused as exc:
            await db.rollback()
            return await _render(request, status=exc.status if 400 <= exc.status < 500 else 400,
                                 error=_t(request, N_("The switches were not saved.")))
        await db.commit()
    await _flash(request, _t(request, N_("Customer updates saved.")))
    raise web.HTTPSeeOther("/inbox/admin/updates")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/inbox/admin/updates", updates_page),
        web.post("/inbox/admin/updates", save_updates),
    ]
