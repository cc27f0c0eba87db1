"""Admin pages under /inbox/admin: agents, canned responses, labels.

Only admins get them; to everyone else they do not exist (404, the same as a wrong URL).
Admins cannot deactivate or demote themselves, so an installation never loses its last way in.
Changes are audited (ids and fields only; never passwords or emails).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from sqlmodel import col, select

from inbox.auth import AgentError, create_agent, generate_password, set_password
from inbox.models import Agent, CannedResponse, Label, Role, Team
from inbox.actions.base import write_audit
from inbox.actions.conversation_labels import normalize_labels
from inbox.web.auth import csrf_token
from inbox.web.canned import CannedError, check_canned_body
from inbox.web.rendering import error_response, render
from inbox.web.state import AGENT, STATE
from shopbase.refusal import Refused

__all__ = ["routes"]

_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NOT_FOUND = "Not found."

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_only(handler: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        agent = request.get(AGENT)
        if agent is None or not agent.is_admin:
            return error_response(request, 404, _NOT_FOUND)
        return await handler(request)

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper


async def _flash(request: web.Request, message: str, kind: str = "ok") -> None:
    session = await get_session(request)
    session["flash"] = [kind, message[:500]]


async def _page(request: web.Request, template: str, ctx: dict[str, Any], *, status: int = 200) -> web.Response:
    session = await get_session(request)
    flash = session.pop("flash", None)
    return render(
        request,
        template,
        {"agent": request[AGENT], "csrf_token": await csrf_token(request), "flash": flash, **ctx},
        status=status,
    )


def _id(request: web.Request, key: str = "id") -> int:
    raw = request.match_info.get(key, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > 2**31 - 1:  # INTEGER ids
        raise web.HTTPNotFound()
    return int(raw)


# --------------------------------------------------------------------------- agents


async def _agents_context(request: web.Request) -> dict[str, Any]:
    async with request.app[STATE].sessions() as db:
        agents = (await db.exec(select(Agent).order_by(col(Agent.is_active).desc(), col(Agent.name)))).all()
        teams = (await db.exec(select(Team).order_by(col(Team.name)))).all()
    return {"agents": agents, "teams": {t.id: t.name for t in teams}, "section": "agents"}


@admin_only
async def agents_page(request: web.Request) -> web.Response:
    return await _page(request, "inbox/admin/agents.html", await _agents_context(request))


@admin_only
async def add_agent(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    me = request[AGENT]
    password = str(form.get("password") or "")
    generated = not password
    if generated:
        password = generate_password()
    async with request.app[STATE].sessions() as db:
        try:
            agent = await create_agent(
                db,
                str(form.get("email") or ""),
                password,
                name=str(form.get("name") or ""),
                admin=form.get("admin") == "on",
            )
        except AgentError as exc:
            await db.rollback()
            ctx = await _agents_context(request)
            ctx["error"] = _sentence(exc)
            return await _page(request, "inbox/admin/agents.html", ctx, status=400)
        write_audit(db, None, "agent.created", agent=me, detail={"agent_id": agent.id, "role": agent.role.value})
        await db.commit()
    message = f"Added {agent.name}."
    if generated:
        message += f" Their password is {password} — share it privately; it is shown only once."
    await _flash(request, message)
    raise web.HTTPSeeOther("/inbox/admin/agents")


@admin_only
async def update_agent(request: web.Request) -> web.StreamResponse:
    """POST /inbox/admin/agents/<id> with ``action`` = deactivate, activate, make_admin,
    make_agent, slack (``slack_user_id``), password (``password``), sign_out."""
    form = await request.post()
    me = request[AGENT]
    target_id = _id(request)
    action = str(form.get("action") or "")
    async with request.app[STATE].sessions() as db:
        agent = await db.get(Agent, target_id)
        if agent is None:
            return error_response(request, 404, _NOT_FOUND)
        try:
            message = await _apply_agent_action(db, me, agent, action, form)
        except (AgentError, Refused) as exc:
            await db.rollback()
            return error_response(request, 400, str(exc)[:1].upper() + str(exc)[1:])
        write_audit(db, None, f"agent.{action}", agent=me, detail={"agent_id": agent.id})
        await db.commit()
    await _flash(request, message)
    raise web.HTTPSeeOther("/inbox/admin/agents")


async def _apply_agent_action(db: Any, me: Agent, agent: Agent, action: str, form: Any) -> str:
    self_change = agent.id == me.id
    if action == "deactivate":
        if self_change:
            raise Refused("invalid", "you cannot deactivate yourself", status=400)
        agent.is_active = False
        agent.session_version += 1  # signs them out everywhere
        result = f"{agent.name} is deactivated and signed out."
    elif action == "activate":
        agent.is_active = True
        result = f"{agent.name} is active again."
    elif action == "make_admin":
        agent.role = Role.admin
        result = f"{agent.name} is now an admin."
    elif action == "make_agent":
        if self_change:
            raise Refused("invalid", "you cannot remove your own admin role", status=400)
        agent.role = Role.agent
        result = f"{agent.name} is now an agent."
    elif action == "slack":
        value = str(form.get("slack_user_id") or "").strip().upper()
        if value and not _SLACK_ID.match(value):
            raise Refused("invalid", "a Slack user id looks like U0123ABCD", status=400)
        agent.slack_user_id = value or None
        result = f"Slack user id of {agent.name} saved."
    elif action == "password":
        await set_password(db, agent, str(form.get("password") or ""))
        result = f"Password of {agent.name} changed; their sessions are signed out."
    elif action == "sign_out":
        agent.session_version += 1
        result = f"{agent.name} is signed out everywhere."
    else:
        raise Refused("invalid", "unknown action", status=400)
    db.add(agent)
    return result


# --------------------------------------------------------------------------- canned responses


async def _canned_context(request: web.Request) -> dict[str, Any]:
    async with request.app[STATE].sessions() as db:
        canned = (await db.exec(select(CannedResponse).order_by(col(CannedResponse.shortcut)))).all()
    return {"canned": canned, "section": "canned"}


def _check_canned(form: Any) -> tuple[str, str, str]:
    shortcut = str(form.get("shortcut") or "").strip().lower()
    if not _SHORTCUT.match(shortcut):
        raise Refused("invalid", "the shortcut must be 1-64 lower-case letters, digits, '-' or '_'", status=400)
    title = " ".join(str(form.get("title") or "").split())[:120]
    try:
        body = check_canned_body(str(form.get("body") or ""))
    except CannedError as exc:
        raise Refused("invalid", str(exc), status=400) from None
    return shortcut, title, body


@admin_only
async def canned_page(request: web.Request) -> web.Response:
    return await _page(request, "inbox/admin/canned.html", await _canned_context(request))


@admin_only
async def save_canned(request: web.Request) -> web.StreamResponse:
    """POST /inbox/admin/canned (new) or /inbox/admin/canned/<id> (edit)."""
    form = await request.post()
    me = request[AGENT]
    canned_id = request.match_info.get("id")
    async with request.app[STATE].sessions() as db:
        try:
            shortcut, title, body = _check_canned(form)
            clash = (await db.exec(select(CannedResponse).where(CannedResponse.shortcut == shortcut))).first()
            if canned_id is None:
                if clash is not None:
                    raise Refused("invalid", f"the shortcut {shortcut} is taken", status=400)
                row = CannedResponse(shortcut=shortcut, title=title, body=body)
            else:
                row = await db.get(CannedResponse, _id(request))
                if row is None:
                    return error_response(request, 404, _NOT_FOUND)
                if clash is not None and clash.id != row.id:
                    raise Refused("invalid", f"the shortcut {shortcut} is taken", status=400)
                row.shortcut, row.title, row.body = shortcut, title, body
        except Refused as exc:
            ctx = await _canned_context(request)
            return await _page(request, "inbox/admin/canned.html", {**ctx, "error": _sentence(exc)}, status=400)
        db.add(row)
        await db.flush()
        write_audit(db, None, "canned.saved", agent=me, detail={"canned_id": row.id})
        await db.commit()
    await _flash(request, f"Saved /{shortcut}.")
    raise web.HTTPSeeOther("/inbox/admin/canned")


async def _delete_row(request: web.Request, model: Any, kind: str, back: str, done: Callable[[Any], str]) -> web.StreamResponse:
    """Delete one admin-managed row (audited), flash ``done(row)`` and go back to its list."""
    me = request[AGENT]
    async with request.app[STATE].sessions() as db:
        row = await db.get(model, _id(request))
        if row is None:
            return error_response(request, 404, _NOT_FOUND)
        await db.delete(row)
        write_audit(db, None, f"{kind}.deleted", agent=me, detail={f"{kind}_id": row.id})
        await db.commit()
    await _flash(request, done(row))
    raise web.HTTPSeeOther(back)


@admin_only
async def delete_canned(request: web.Request) -> web.StreamResponse:
    return await _delete_row(request, CannedResponse, "canned", "/inbox/admin/canned",
                             lambda row: f"Deleted /{row.shortcut}.")


# --------------------------------------------------------------------------- labels


async def _labels_context(request: web.Request) -> dict[str, Any]:
    async with request.app[STATE].sessions() as db:
        labels = (await db.exec(select(Label).order_by(col(Label.name)))).all()
    return {"labels": labels, "section": "labels"}


@admin_only
async def labels_page(request: web.Request) -> web.Response:
    return await _page(request, "inbox/admin/labels.html", await _labels_context(request))


@admin_only
async def add_label(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    me = request[AGENT]
    try:
        names = normalize_labels([str(form.get("name") or "")])
        if not names:
            raise Refused("invalid", "enter a label name", status=400)
        color = str(form.get("color") or "#64748b").strip()
        if not _COLOR.match(color):
            raise Refused("invalid", "the colour must look like #1d4ed8", status=400)
    except Refused as exc:
        ctx = await _labels_context(request)
        return await _page(request, "inbox/admin/labels.html", {**ctx, "error": _sentence(exc)}, status=400)
    async with request.app[STATE].sessions() as db:
        existing = (await db.exec(select(Label).where(Label.name == names[0]))).first()
        row = existing or Label(name=names[0])
        row.color = color
        db.add(row)
        await db.flush()
        write_audit(db, None, "label.saved", agent=me, detail={"label_id": row.id})
        await db.commit()
    await _flash(request, f"Saved label {names[0]}.")
    raise web.HTTPSeeOther("/inbox/admin/labels")


@admin_only
async def delete_label(request: web.Request) -> web.StreamResponse:
    return await _delete_row(
        request, Label, "label", "/inbox/admin/labels",
        lambda row: f"Deleted label {row.name}. Conversations keep it until someone edits their labels.",
    )


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@admin_only
async def admin_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/inbox/admin/agents")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/inbox/admin", admin_home),
        web.get("/inbox/admin/agents", agents_page),
        web.post("/inbox/admin/agents", add_agent),
        web.post(r"/inbox/admin/agents/{id}", update_agent),
        web.get("/inbox/admin/canned", canned_page),
        web.post("/inbox/admin/canned", save_canned),
        web.post(r"/inbox/admin/canned/{id}", save_canned),
        web.post(r"/inbox/admin/canned/{id}/delete", delete_canned),
        web.get("/inbox/admin/labels", labels_page),
        web.post("/inbox/admin/labels", add_label),
        web.post(r"/inbox/admin/labels/{id}/delete", delete_label),
    ]
