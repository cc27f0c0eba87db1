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

from inbox.actions.agent_create import agent_create
from inbox.actions.agent_update import agent_update
from inbox.actions.canned_save import canned_save
from inbox.actions.catalog_delete import CatalogKind, catalog_delete
from inbox.actions.label_save import label_save
from inbox.auth import AgentError, generate_password
from inbox.models import Agent, CannedResponse, Label, Team
from inbox.web.auth import csrf_token
from inbox.web.canned import CannedError, check_canned_body
from inbox.web.i18n import LANGUAGE_NAMES, LANGUAGES, N_, translations_for
from inbox.web.rendering import error_response, render
from inbox.web.state import AGENT, STATE
from shopbase.refusal import Refused

__all__ = ["routes"]

_SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_NOT_FOUND = N_("Not found.")

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


def _t(request: web.Request, message: str, **values: Any) -> str:
    """``message`` (an English msgid) in the agent's language, with ``%(name)s`` values filled in."""
    text = translations_for(request).gettext(message)
    return text % values if values else text


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
            agent = await agent_create(
                db,
                str(form.get("email") or ""),
                password,
                name=str(form.get("name") or ""),
                admin=form.get("admin") == "on",
                by=me,
            )
        except AgentError as exc:
            await db.rollback()
            ctx = await _agents_context(request)
            ctx["error"] = _sentence(request, exc)
            return await _page(request, "inbox/admin/agents.html", ctx, status=400)
        await db.commit()
    if generated:
        message = _t(request, N_("Added %(name)s. Their password is %(password)s — share it privately; it is shown only once."),
                     name=agent.name, password=password)
    else:
        message = _t(request, N_("Added %(name)s."), name=agent.name)
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
            await agent_update(db, agent, action, by=me, slack_user_id=str(form.get("slack_user_id") or ""),
                               password=str(form.get("password") or ""))
        except (AgentError, Refused) as exc:
            await db.rollback()
            text = _t(request, exc.message if isinstance(exc, Refused) else str(exc))
            return error_response(request, 400, text[:1].upper() + text[1:])
        message = _t(request, _AGENT_DONE[action], name=agent.name)
        await db.commit()
    await _flash(request, message)
    raise web.HTTPSeeOther("/inbox/admin/agents")


_AGENT_DONE = {
    "deactivate": N_("%(name)s is deactivated and signed out."),
    "activate": N_("%(name)s is active again."),
    "make_admin": N_("%(name)s is now an admin."),
    "make_agent": N_("%(name)s is now an agent."),
    "slack": N_("Slack user id of %(name)s saved."),
    "password": N_("Password of %(name)s changed; their sessions are signed out."),
    "sign_out": N_("%(name)s is signed out everywhere."),
    "allow_overrides": N_("%(name)s may now override return refusals."),
    "deny_overrides": N_("%(name)s may no longer override return refusals."),
}


# --------------------------------------------------------------------------- canned responses


async def _canned_context(request: web.Request) -> dict[str, Any]:
    async with request.app[STATE].sessions() as db:
        canned = (await db.exec(select(CannedResponse).order_by(col(CannedResponse.shortcut)))).all()
    return {
        "canned": canned,
        "section": "canned",
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "default_language": request.app[STATE].config.default_language,
    }


def _check_canned(form: Any, default_language: str) -> tuple[str, str, dict[str, str]]:
    """Shortcut, title and the bodies by language (``body_<lang>`` fields; a plain ``body`` is the
    shop's default language). Refused for a bad shortcut or a broken body (naming its language)."""
    shortcut = str(form.get("shortcut") or "").strip().lower()
    if not _SHORTCUT.match(shortcut):
        raise Refused("invalid", "the shortcut must be 1-64 lower-case letters, digits, '-' or '_'", status=400)
    title = " ".join(str(form.get("title") or "").split())[:120]
    raw = {code: str(form.get(f"body_{code}") or "") for code in LANGUAGES}
    if not raw[default_language].strip() and form.get("body"):
        raw[default_language] = str(form.get("body") or "")
    bodies: dict[str, str] = {}
    for code, text in raw.items():
        if not text.strip():
            continue
        try:
            bodies[code] = check_canned_body(text)
        except CannedError as exc:
            raise Refused("invalid", f"{LANGUAGE_NAMES[code]}: {exc}", status=400) from None
    return shortcut, title, bodies


@admin_only
async def canned_page(request: web.Request) -> web.Response:
    return await _page(request, "inbox/admin/canned.html", await _canned_context(request))


@admin_only
async def save_canned(request: web.Request) -> web.StreamResponse:
    """POST /inbox/admin/canned (new) or /inbox/admin/canned/<id> (edit)."""
    form = await request.post()
    me = request[AGENT]
    canned_id = request.match_info.get("id")
    default_language = request.app[STATE].config.default_language
    async with request.app[STATE].sessions() as db:
        try:
            shortcut, title, bodies = _check_canned(form, default_language)
            await canned_save(db, shortcut, title, bodies, canned_id=None if canned_id is None else _id(request), by=me)
        except Refused as exc:
            await db.rollback()
            if exc.status == 404:
                return error_response(request, 404, _NOT_FOUND)
            ctx = await _canned_context(request)
            return await _page(request, "inbox/admin/canned.html", {**ctx, "error": _sentence(request, exc)}, status=400)
        await db.commit()
    await _flash(request, _t(request, N_("Saved /%(shortcut)s."), shortcut=shortcut))
    raise web.HTTPSeeOther("/inbox/admin/canned")


async def _delete_row(request: web.Request, kind: CatalogKind, back: str, done: Callable[[Any], str]) -> web.StreamResponse:
    """Delete one admin-managed row (audited), flash ``done(row)`` and go back to its list."""
    me = request[AGENT]
    async with request.app[STATE].sessions() as db:
        try:
            row = await catalog_delete(db, kind, _id(request), by=me)
        except Refused:
            return error_response(request, 404, _NOT_FOUND)
        await db.commit()
    await _flash(request, done(row))
    raise web.HTTPSeeOther(back)


@admin_only
async def delete_canned(request: web.Request) -> web.StreamResponse:
    return await _delete_row(request, "canned", "/inbox/admin/canned",
                             lambda row: _t(request, N_("Deleted /%(shortcut)s."), shortcut=row.shortcut))


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
    async with request.app[STATE].sessions() as db:
        try:
            row = await label_save(db, str(form.get("name") or ""), str(form.get("color") or "#64748b"), by=me)
        except Refused as exc:
            await db.rollback()
            ctx = await _labels_context(request)
            return await _page(request, "inbox/admin/labels.html", {**ctx, "error": _sentence(request, exc)}, status=400)
        name = row.name
        await db.commit()
    await _flash(request, _t(request, N_("Saved label %(name)s."), name=name))
    raise web.HTTPSeeOther("/inbox/admin/labels")


@admin_only
async def delete_label(request: web.Request) -> web.StreamResponse:
    return await _delete_row(
        request, "label", "/inbox/admin/labels",
        lambda row: _t(request, N_("Deleted label %(name)s. Conversations keep it until someone edits their labels."),
                       name=row.name),
    )


def _sentence(request: web.Request, exc: Exception) -> str:
    """The refusal (or error) as a sentence in the agent's language."""
    text = _t(request, exc.message if isinstance(exc, Refused) else str(exc))
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "。")) else ".")


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
