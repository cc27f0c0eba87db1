"""Macros in the inbox: the admin page and applying one from a conversation.

* ``GET/POST /inbox/admin/macros``, ``POST /inbox/admin/macros/<id>`` (edit), ``.../<id>/delete``:
  admins only (404 for others). Saving warns (never refuses) when the canned response uses a
  variable that does not exist: it renders empty, so the admin should look at it.
* ``POST /inbox/c/<cid>/macro/<macro_id>``: the canned response is rendered for the conversation
  (its language, order variables, like inserting it) and put into the agent's composer, never
  sent; ``macro_apply`` runs labels, priority and assignment at once (one transaction; a
  refusal is a 400 and nothing of the macro stays). The status waits for the reply: the
  composer carries ``macro_id`` and the reply route runs ``macro_on_send`` after sending. A
  macro without a canned response applies its status at once.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from jinja2 import nodes
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.macro_apply import macro_apply, status_waits_for_send
from inbox.actions.macro_save import macro_delete, macro_save
from inbox.models import Agent, CannedResponse, Conversation, ConversationStatus, Label, Macro, Priority
from inbox.queries.conversations import get_conversation
from inbox.web.admin import _flash, _id, _page, _t, admin_only
from inbox.web.canned import CannedError, _env
from inbox.web.i18n import LABEL_CONTEXT, N_, translations_for
from inbox.web.rendering import error_response
from inbox.web.state import AGENT, STATE
from shopbase.refusal import Refused

__all__ = ["routes", "macros_for_head", "unknown_variables", "KNOWN_VARIABLES", "macro_reply", "pending_note"]

#: what canned responses and macros can use (inbox.web.canned.canned_context)
KNOWN_VARIABLES: dict[str, frozenset[str]] = {
    "customer": frozenset({"first_name", "last_name", "name", "email", "display_name"}),
    "order": frozenset({"name", "total", "currency", "financial_status", "fulfillment_status", "placed_at",
                        "cancelled"}),
    "tracking_link": frozenset(),
    "locale": frozenset(),
    "timezone": frozenset(),
    "range": frozenset(),
}


def unknown_variables(body: str) -> list[str]:
    """Variables of a template that the context will not have (``order.nmae``, ``{{ coupon }}``),
    as written; loop and ``set`` variables of the template itself are fine."""
    try:
        tree = _env.parse(body or "")
    except Exception:
        return []
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    found: list[str] = []

    def note(name: str) -> None:
        if name not in found:
            found.append(name)

    attributes = set()
    for access in tree.find_all(nodes.Getattr):
        if isinstance(access.node, nodes.Name) and access.node.ctx == "load":
            attributes.add(id(access.node))
            base = access.node.name
            if base in local:
                continue
            if base not in KNOWN_VARIABLES or access.attr not in KNOWN_VARIABLES[base]:
                note(f"{base}.{access.attr}")
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and id(name) not in attributes and name.name not in local \
                and name.name not in KNOWN_VARIABLES:
            note(name.name)
    return found


async def _canned_warnings(db: AsyncSession, canned_id: int | None) -> list[str]:
    if canned_id is None:
        return []
    canned = await db.get(CannedResponse, canned_id)
    if canned is None:
        return []
    found: list[str] = []
    for body in (canned.bodies or {}).values():
        found += [v for v in unknown_variables(body) if v not in found]
    return found


async def macros_for_head(db: AsyncSession) -> list[Macro]:
    return list((await db.exec(select(Macro).order_by(col(Macro.name)))).all())


# --------------------------------------------------------------------------- admin


async def _context(db: AsyncSession) -> dict[str, Any]:
    macros = (await db.exec(select(Macro).order_by(col(Macro.name)))).all()
    canned = (await db.exec(select(CannedResponse).order_by(col(CannedResponse.shortcut)))).all()
    agents = (await db.exec(select(Agent).where(col(Agent.is_active).is_(True)).order_by(col(Agent.name)))).all()
    labels = (await db.exec(select(Label).order_by(col(Label.name)))).all()
    warnings = {m.id: await _canned_warnings(db, m.canned_id) for m in macros}
    return {"macros": macros, "canned": canned, "agents": agents, "labels": [lb.name for lb in labels],
            "statuses": [s.value for s in ConversationStatus], "priorities": [p.value for p in Priority],
            "canned_names": {c.id: c.shortcut for c in canned}, "warnings": warnings, "section": "macros"}


def _int(raw: Any) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _fields(form: Any) -> dict[str, Any]:
    labels = [str(v) for v in form.getall("add_labels", [])]
    extra = str(form.get("new_labels") or "")
    labels += [x.strip() for x in extra.split(",") if x.strip()]
    return {
        "name": str(form.get("name") or ""),
        "shortcut": str(form.get("shortcut") or "") or None,
        "canned_id": _int(form.get("canned_id")),
        "status": str(form.get("status") or "") or None,
        "priority": str(form.get("priority") or "") or None,
        "add_labels": labels,
        "assign": str(form.get("assign") or "") or None,
        "snooze_hours": _int(form.get("snooze_hours")),
    }


@admin_only
async def macros_page(request: web.Request) -> web.Response:
    async with request.app[STATE].sessions() as db:
        ctx = await _context(db)
    return await _page(request, "inbox/admin/macros.html", ctx)


async def _save(request: web.Request, macro_id: int | None) -> web.StreamResponse:
    form = await request.post()
    async with request.app[STATE].sessions() as db:
        try:
            macro = await macro_save(db, by=request[AGENT], macro_id=macro_id, **_fields(form))
        except Refused as exc:
            await db.rollback()
            ctx = await _context(db)
            ctx["error"] = _t(request, N_("The macro was not saved: %(problem)s"),
                              problem=translations_for(request).gettext(exc.message))
            return await _page(request, "inbox/admin/macros.html", ctx,
                               status=exc.status if 400 <= exc.status < 500 else 400)
        warnings = await _canned_warnings(db, macro.canned_id)
        await db.commit()
    if warnings:
        await _flash(request, _t(request, N_("Macro saved, but its canned response uses variables that do not exist and "
                                             "will be empty: %(names)s"), names=", ".join(warnings)), "error")
    else:
        await _flash(request, _t(request, N_("Macro saved.")))
    raise web.HTTPSeeOther("/inbox/admin/macros")


@admin_only
async def add_macro(request: web.Request) -> web.StreamResponse:
    return await _save(request, None)


@admin_only
async def edit_macro(request: web.Request) -> web.StreamResponse:
    return await _save(request, _id(request))


@admin_only
async def delete_macro(request: web.Request) -> web.StreamResponse:
    async with request.app[STATE].sessions() as db:
        try:
            await macro_delete(db, _id(request), by=request[AGENT])
        except Refused as exc:
            await db.rollback()
            return error_response(request, exc.status, translations_for(request).gettext(exc.message))
        await db.commit()
    await _flash(request, _t(request, N_("Macro deleted.")))
    raise web.HTTPSeeOther("/inbox/admin/macros")


# --------------------------------------------------------------------------- applying one

_NOT_FOUND = N_("There is no such conversation, or you do not have access to it.")


async def macro_reply(request: web.Request, db: AsyncSession, conversation: Conversation,
                      macro: Macro) -> tuple[str, str]:
    """(text, warning): the macro's canned response rendered for the conversation (its language,
    order variables; unknown variables empty), and the composer's warning when the body is not
    in the conversation's language. ("", "") without a canned response; Refused when it is broken."""
    if macro.canned_id is None:
        return "", ""
    from inbox.web.views import _fallback_warning, _render_canned

    if await db.get(CannedResponse, macro.canned_id) is None:
        raise Refused("no_canned", "the macro's canned response was deleted", status=400)
    try:
        text, choice = await _render_canned(request, db, conversation, macro.canned_id)
    except CannedError as exc:
        raise Refused("canned_broken", f"the macro's canned response cannot be used: {exc}", status=400) from None
    if not text.strip():
        raise Refused("empty_reply", "the macro's canned response rendered empty for this conversation", status=400)
    return text, _fallback_warning(request, choice)


def pending_note(request: web.Request, macro: Macro) -> str:
    """What waits for the reply to be sent ("" when nothing does), in the agent's language."""
    if not status_waits_for_send(macro):
        return ""
    tr = translations_for(request)
    status = tr.pgettext(LABEL_CONTEXT, str(macro.status or "").replace("_", " ").capitalize())
    return tr.gettext("When you send this reply, the macro “%(name)s” sets the status to %(status)s.") % {
        "name": macro.name, "status": status}


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


async def apply_macro(request: web.Request) -> web.StreamResponse:
    """Labels, priority and assignment apply at once; the canned response goes into the composer
    (JSON for the page's script; without script, a redirect whose page has it filled in) and
    the status waits for the reply to be sent (``inbox.actions.macro_apply``)."""
    agent = request[AGENT]
    cid = _int(request.match_info.get("cid"))
    macro_id = _int(request.match_info.get("macro_id"))
    form = await request.post()
    state = request.app[STATE]
    async with state.sessions() as db:
        conversation = await get_conversation(db, agent, cid) if cid is not None else None
        if conversation is None:
            return error_response(request, 404, _NOT_FOUND)
        macro = await db.get(Macro, macro_id) if macro_id is not None else None
        if macro is None:
            return error_response(request, 404, N_("There is no such macro."))
        try:
            text, warning = await macro_reply(request, db, conversation, macro)
            done = await macro_apply(db, conversation, macro, by=agent)
        except Refused as exc:
            await db.rollback()
            message = translations_for(request).gettext(exc.message)
            return error_response(request, 400, message[:1].upper() + message[1:])
        await db.commit()
        note = pending_note(request, macro)
        name = macro.name
    if _wants_json(request):
        tr = translations_for(request)
        return web.json_response(
            {"macro_id": macro_id if macro.canned_id is not None else None, "text": text, "warning": warning,
             "pending": note, "done": done,
             "message": tr.gettext("Macro “%(name)s” applied.") % {"name": name}},
            headers={"Cache-Control": "no-store"})
    from inbox.web.views import _back

    back = _back(conversation.id or 0, form)
    if macro.canned_id is not None:
        back += ("&" if "?" in back else "?") + f"macro={macro_id}"
    raise web.HTTPSeeOther(back + "#composer")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/inbox/admin/macros", macros_page, name="admin_macros"),
        web.post("/inbox/admin/macros", add_macro),
        web.post(r"/inbox/admin/macros/{id:\d+}", edit_macro),
        web.post(r"/inbox/admin/macros/{id:\d+}/delete", delete_macro),
        web.post(r"/inbox/c/{cid:\d+}/macro/{macro_id:\d+}", apply_macro, name="apply_macro"),
    ]
