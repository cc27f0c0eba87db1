"""Triage in the inbox: live tab counts, bulk actions, saved views and notification switches.

Routes::

    GET  /inbox/triage/state            {"counts": {view: n}, "prefs": {"sound": b, "desktop": b}}
    POST /inbox/bulk                    c=<id>:<token> (repeated), op, value / agent_id / snoozed_until
    POST /inbox/views                   name, list (the list's query string): save the current filters
    POST /inbox/views/<id>/delete       delete one of the agent's saved views
    POST /inbox/triage/prefs            notify_sound, notify_desktop ("1" / "0")

The page (``triage.js``) re-reads ``/inbox/triage/state`` after every live event on
``/inbox/ws``, so every open tab of every agent shows the same counts; the counts are computed
fresh each time (:func:`inbox.queries.triage.triage_counts`), never patched in the browser.
Bulk actions answer JSON to scripts (``{"changed": n}`` or ``{"error": …}``) and redirect a
plain form back to the list.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from inbox.actions.agent_preferences_save import agent_preferences_save
from inbox.actions.conversation_bulk import MAX_BULK, conversation_bulk
from inbox.actions.saved_view_save import saved_view_delete, saved_view_save
from inbox.models import Agent
from inbox.queries.filters import InvalidQuery
from inbox.queries.saved_views import preferences_of
from inbox.queries.triage import triage_counts
from inbox.web.i18n import N_, translations_for
from inbox.web.rendering import error_response, wants_json
from inbox.web.state import AGENT, STATE
from inbox.web.views import ListParams, _parse_local, _small_int
from shopbase.refusal import Refused

__all__ = ["routes"]

_BAD_SELECTION = N_("The selection is not valid; reload the list and try again.")


def _refusal_text(request: web.Request, exc: Refused) -> str:
    """The refusal's message in the reader's language, with its details filled in."""
    text = translations_for(request).gettext(exc.message)
    if exc.details:
        try:
            text = text % exc.details
        except (KeyError, TypeError, ValueError):
            pass
    text = text.strip()
    return text[:1].upper() + text[1:]


async def state(request: web.Request) -> web.Response:
    """GET /inbox/triage/state — the live counts of the agent's triage tabs and their switches."""
    agent = request[AGENT]
    async with request.app[STATE].sessions() as db:
        counts = await triage_counts(db, agent)
        prefs = await preferences_of(db, agent)
    return web.json_response(
        {"counts": counts, "prefs": {"sound": prefs.sound, "desktop": prefs.desktop}},
        headers={"Cache-Control": "no-store"},
    )


def _selection(form: Any) -> dict[int, str]:
    """``c=<id>:<token>`` values → {id: token}; Refused on anything else."""
    values = [str(v) for v in form.getall("c", [])]
    if len(values) > MAX_BULK:
        raise Refused("too_many", "Select at most %(limit)s conversations at once.", status=400, limit=MAX_BULK)
    out: dict[int, str] = {}
    for raw in values:
        cid_text, _, token = raw.partition(":")
        cid = _small_int(cid_text)
        if cid is None or not token or len(token) > 64:
            raise Refused("bad_selection", _BAD_SELECTION, status=400)
        out[cid] = token
    return out


async def bulk(request: web.Request) -> web.StreamResponse:
    """POST /inbox/bulk — one change to the selected conversations, all or nothing."""
    agent: Agent = request[AGENT]
    form = await request.post()
    params = ListParams.from_qs(str(form.get("list") or ""))
    async with request.app[STATE].sessions() as db:
        try:
            selection = _selection(form)
            operation = str(form.get("op") or "")
            # the bar's one field for the operation: status, priority or label (or a plain "value")
            field = {"status": "status", "priority": "priority", "label": "label", "unlabel": "label"}.get(operation)
            value = str((form.get(field) if field else None) or form.get("value") or "")[:64]
            assignee: Agent | None = None
            until = None
            if operation == "assign" and str(form.get("agent_id") or ""):
                assignee_id = _small_int(str(form.get("agent_id") or ""))
                assignee = await db.get(Agent, assignee_id) if assignee_id is not None else None
                if assignee is None:
                    raise Refused("no_such_agent", "there is no such agent", status=400)
            if operation == "snooze" or (operation == "status" and value == "snoozed"):
                until = _parse_local(str(form.get("snoozed_until") or ""), str(form.get("tz_offset") or "0"))
            changed = await conversation_bulk(db, agent, selection, operation, value=value, assignee=assignee,
                                              snoozed_until=until)
        except Refused as exc:
            await db.rollback()
            return error_response(request, exc.status if 400 <= exc.status < 500 else 400, _refusal_text(request, exc))
        await db.commit()
    if wants_json(request):
        return web.json_response({"changed": len(changed)}, headers={"Cache-Control": "no-store"})
    qs = params.qs()
    raise web.HTTPSeeOther("/inbox" + (f"?{qs}" if qs else ""))


async def save_view(request: web.Request) -> web.StreamResponse:
    """POST /inbox/views — save the list's current filters (``list``) as ``name``."""
    agent: Agent = request[AGENT]
    form = await request.post()
    raw = str(form.get("list") or "")
    try:
        params = ListParams.parse(_query_of(raw))
    except InvalidQuery as exc:
        return error_response(request, 400, str(exc))
    query = params.qs()
    async with request.app[STATE].sessions() as db:
        try:
            await saved_view_save(db, agent, str(form.get("name") or ""), query)
        except Refused as exc:
            await db.rollback()
            return error_response(request, exc.status, _refusal_text(request, exc))
        await db.commit()
    raise web.HTTPSeeOther("/inbox" + (f"?{query}" if query else ""))


def _query_of(qs: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(qs, keep_blank_values=True))


async def delete_view(request: web.Request) -> web.StreamResponse:
    """POST /inbox/views/<id>/delete."""
    agent: Agent = request[AGENT]
    view_id = _small_int(request.match_info.get("id", ""))
    async with request.app[STATE].sessions() as db:
        try:
            await saved_view_delete(db, agent, view_id or 0)
        except Refused as exc:
            await db.rollback()
            return error_response(request, exc.status, _refusal_text(request, exc))
        await db.commit()
    raise web.HTTPSeeOther("/inbox")


def _switch(form: Any, name: str) -> bool | None:
    raw = form.get(name)
    if raw is None:
        return None
    return str(raw) in ("1", "true", "on")


async def save_prefs(request: web.Request) -> web.Response:
    """POST /inbox/triage/prefs — the agent's notification switches."""
    agent: Agent = request[AGENT]
    form = await request.post()
    async with request.app[STATE].sessions() as db:
        try:
            row = await agent_preferences_save(db, agent, notify_sound=_switch(form, "notify_sound"),
                                               notify_desktop=_switch(form, "notify_desktop"))
        except Refused as exc:
            await db.rollback()
            return error_response(request, exc.status, _refusal_text(request, exc))
        await db.commit()
    return web.json_response({"prefs": {"sound": row.notify_sound, "desktop": row.notify_desktop}},
                             headers={"Cache-Control": "no-store"})


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/inbox/triage/state", state, name="triage_state"),
        web.post("/inbox/bulk", bulk, name="bulk"),
        web.post("/inbox/views", save_view, name="save_view"),
        web.post(r"/inbox/views/{id:\d+}/delete", delete_view, name="delete_view"),
        web.post("/inbox/triage/prefs", save_prefs, name="triage_prefs"),
    ]
