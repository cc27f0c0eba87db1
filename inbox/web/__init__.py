"""The web app: agents' inbox, admin pages, live updates, the chat widget and the demo shop.

``setup(app, sessions=..., bus=..., config=WebConfig(...), senders=..., on_inbound=...)``
adds everything to an existing ``aiohttp.web.Application``: the session and CSRF
middlewares, the security headers, the routes below, and the webchat ``Sender`` (registered
in ``senders``). ``on_inbound(record_result)`` is awaited for every new (non-duplicate)
widget message after it is stored.

Routes (one table)::

    GET  /                                   -> /inbox
    GET  /login  POST /login  POST /logout   sign in / out (POST /inbox/account/logout-everywhere)
    GET  /inbox                              conversation list (view, status, channel, intent, priority, label, q)
    GET  /inbox/c/<id>                       list + conversation + customer sidebar
    GET  /inbox/fragments/list               list fragment          (live updates)
    GET  /inbox/c/<id>/fragments/<part>      head|transcript|sidebar (live updates)
    GET  /inbox/c/<id>/canned/<canned_id>    canned response rendered for the conversation (JSON)
    POST /inbox/c/<id>/{reply,note,assign,unassign,claim,status,priority,labels,hand-back}
    POST /inbox/c/<id>/orders/<order_id>/{cancel,return,resend-tracking}
    GET  /inbox/ws                           agents' WebSocket (session + Origin checked)
    GET  /inbox/admin/{agents,canned,labels,alerts,returns} admin pages (404 for non-admins) + their POSTs
    GET  /inbox/notifications (+ /count, POST /read) fired alerts for agents
    GET  /inbox/analytics (+ /export.csv?table=…)  KPIs, charts and CSV (every agent; read-only)
    GET  /inbox/admin/updates (+ POST)         proactive customer messages per kind (admins)
    GET  /inbox/account  POST /inbox/account/language   the agent's profile: UI language
    GET  /inbox/admin/sla  POST /inbox/admin/sla         the SLA policy (inbox.web.sla)
    GET  /inbox/admin/macros (+ POSTs)  POST /inbox/c/<id>/macro/<macro_id>   macros (inbox.web.macros)
    POST /inbox/c/<id>/messages/<mid>/translate       "Translate" (only with a translation server)
    GET  /inbox/c/<id>/evidence.{pdf,json}[?order=]  POST /inbox/c/<id>/evidence/slack   dispute evidence bundle
    GET  /shop  GET /widget.js  GET /widget/ws   storefront, widget script, widget socket
    GET  /inbox/triage/state  POST /inbox/bulk  POST /inbox/views (+ /<id>/delete)  POST /inbox/triage/prefs
                                             live tab counts, bulk actions, saved views, notification switches
    GET  /static/web/*  GET /static/htmx/*   our CSS/JS, htmx from the js_lib_htmx wheel
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.channels import SenderRegistry
from inbox.web.state import STATE, ThrottleConfig, WebConfig, WebState, derive_key

__all__ = ["WebConfig", "ThrottleConfig", "setup", "STATE"]


def setup(
    app: web.Application,
    *,
    sessions: async_sessionmaker[AsyncSession],
    bus: Any,
    config: WebConfig,
    senders: SenderRegistry,
    on_inbound: Callable[[Any], Awaitable[None]] | None = None,
) -> WebState:
    from inbox.web import (
        account,
        admin,
        alerts,
        analytics,
        auth,
        customers,
        evidence,
        live,
        proxies,
        translate,
        triage,
        updates,
        views,
        webchat,
    )
    from inbox.web import macros as macros_web
    from inbox.web import sla as sla_web
    from inbox.web.rendering import create_environment
    from inbox.web.security import add_security_headers

    bus.bind(sessions)
    state = WebState(
        sessions=sessions,
        bus=bus,
        config=config,
        jinja=create_environment(),
        throttle=auth.LoginThrottle(config.login_throttle, sessions, derive_key(config.secret_key, "login throttle")),
        agents=live.AgentHub(sessions),
        visitors=webchat.VisitorHub(sessions),
        visitor_key=derive_key(config.secret_key, "webchat visitor token"),
        on_inbound=on_inbound,
    )
    app[STATE] = state

    if config.trusted_proxies:  # first: everything after it sees the real client address and scheme
        app.middlewares.insert(0, proxies.trusted_proxies_middleware(
            proxies.TrustedProxies(proxies.parse_trusted(config.trusted_proxies))))
    app.middlewares.append(auth.browser_middleware(config))  # cookie session → CSRF → agent (not for webhooks)
    app.on_response_prepare.append(add_security_headers)

    app.router.add_routes(
        [
            web.get("/login", auth.login_page, name="login"),
            web.post("/login", auth.login),
            web.post("/logout", auth.logout, name="logout"),
            web.post("/inbox/account/logout-everywhere", auth.logout_everywhere),
            web.get("/inbox/ws", live.agent_socket, name="agent_ws"),
            web.get("/shop", webchat.shop_page, name="shop"),
            web.get("/widget.js", webchat.widget_js, name="widget_js"),
            web.get("/widget/ws", webchat.widget_socket, name="widget_ws"),
            *views.routes(),
            *admin.routes(),
            *account.routes(),
            *translate.routes(),
            *alerts.routes(),
            *customers.routes(),
            *analytics.routes(),
            *evidence.routes(),
            *sla_web.routes(),
            *macros_web.routes(),
            *triage.routes(),
            *updates.routes(),
        ]
    )
    app.router.add_static("/static/web/", webchat.STATIC_DIR, name="static_web", append_version=False)
    app.router.add_static("/static/htmx/", webchat.htmx_dir(), name="static_htmx")

    senders.register(webchat.WebchatSender(sessions, state.visitors, bus))

    async def on_startup(_app: web.Application) -> None:
        state.unsubscribe.append(bus.subscribe(state.agents.on_event))
        state.unsubscribe.append(bus.subscribe(state.visitors.on_event))

    async def on_shutdown(_app: web.Application) -> None:
        for unsubscribe in state.unsubscribe:
            unsubscribe()
        state.unsubscribe.clear()
        await state.agents.close_all()
        await state.visitors.close_all()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return state
