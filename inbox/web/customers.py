"""Customer profiles in the inbox (issue 14, CRM).

* ``GET /inbox/customers/<id>``: the profile: channels and emails, lifetime orders and spend,
  returns and their reasons, every conversation on a timeline (only those the agent may see),
  notes, tags, merges (each with "Un-merge"). A profile merged into another one says so and
  links there.
* ``GET /inbox/c/<conversation id>/customer``: the conversation's customer: their profile, or
  the contact alone when nobody has verified or merged it yet (the same page, nothing stored).
* ``POST /inbox/customers/<id>/{notes,tags,merge}`` and ``/inbox/customers/merges/<id>/unmerge``;
  the same operations at ``/inbox/c/<conversation id>/customer/<op>`` first create the profile
  (through the actions); with ``back=conversation`` they return to the conversation (the sidebar's
  note form). Every POST carries the CSRF token; a refusal answers 400/404/409 with
  the action's message and changes nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.customer_link import ensure_customer_profile, ensure_profile
from inbox.actions.customer_merge import customer_merge
from inbox.actions.customer_note import customer_note
from inbox.actions.customer_tags import customer_tags
from inbox.actions.customer_unmerge import customer_unmerge
from inbox.models import Agent, Contact, CustomerMerge
from inbox.queries.conversations import get_conversation
from inbox.queries.profiles import load_contact_profile, load_profile, profile_id_of_contact, profile_visible
from inbox.web.admin import _flash, _id, _page
from inbox.web.i18n import N_, translations_for
from inbox.web.rendering import error_response
from inbox.web.state import AGENT, STATE
from ordersvc.service import find_customer_by_email
from shopbase.refusal import Refused

__all__ = ["routes"]

_NOT_FOUND = N_("That customer does not exist.")
_OPS = ("notes", "tags", "merge")


def _agent(request: web.Request) -> Agent:
    agent = request.get(AGENT)
    if agent is None:
        raise web.HTTPFound("/login")
    return agent


def _message(request: web.Request, exc: Refused) -> str:
    text = translations_for(request).gettext(exc.message).strip()
    return text[:1].upper() + text[1:]


async def profile_page(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    profile_id = _id(request)
    async with request.app[STATE].sessions() as db:
        view = await load_profile(db, agent, profile_id) if await profile_visible(db, agent, profile_id) else None
    if view is None:
        return error_response(request, 404, _NOT_FOUND)
    return await _page(request, "inbox/customer.html",
                       {"view": view, "base": f"/inbox/customers/{profile_id}", "section": "customers"})


async def conversation_customer(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    cid = _id(request, "cid")
    async with request.app[STATE].sessions() as db:
        conversation = await get_conversation(db, agent, cid)
        if conversation is None:
            return error_response(request, 404, N_("Conversation not found."))
        profile_id = await profile_id_of_contact(db, conversation.contact_id)
        if profile_id is None:
            contact = await db.get(Contact, conversation.contact_id)
            assert contact is not None
            view = await load_contact_profile(db, agent, contact)
    if profile_id is not None:
        raise web.HTTPFound(f"/inbox/customers/{profile_id}")
    return await _page(request, "inbox/customer.html",
                       {"view": view, "base": f"/inbox/c/{cid}/customer", "section": "customers"})


async def _other_profile(db: AsyncSession, agent: Agent, raw: str) -> int:
    """The profile an agent means by a conversation number (#12) or a customer's email."""
    text = raw.strip()
    if "@" in text:
        customer = await find_customer_by_email(db, text)
        if customer is None or customer.id is None:
            raise Refused("no_customer", N_("No customer has that email address."), status=404)
        found = await ensure_customer_profile(db, customer.id, customer.display_name, agent=agent)
        assert found.id is not None
        return found.id
    number = text.removeprefix("#").strip()
    if not number.isascii() or not number.isdigit() or len(number) > 9:
        raise Refused("bad_other", N_("Enter a conversation number (#12) or the customer's email address."),
                      status=400)
    conversation = await get_conversation(db, agent, int(number))
    if conversation is None:
        raise Refused("no_customer", N_("Conversation not found."), status=404)
    contact = await db.get(Contact, conversation.contact_id)
    assert contact is not None
    profile = await ensure_profile(db, contact, agent=agent)
    assert profile.id is not None
    return profile.id


async def _apply(db: AsyncSession, agent: Agent, profile_id: int, op: str, form: Any) -> str:
    """Run one operation; returns the flash message."""
    if op == "notes":
        await customer_note(db, profile_id, str(form.get("body") or ""), agent=agent)
        return N_("Note added.")
    if op == "tags":
        add = [t for t in str(form.get("add") or "").split(",") if t.strip()]
        remove = [str(t) for t in form.getall("remove", [])]
        await customer_tags(db, profile_id, add=add, remove=remove, agent=agent)
        return N_("Tags saved.")
    other = await _other_profile(db, agent, str(form.get("other") or ""))
    await customer_merge(db, other, profile_id, agent=agent)
    return N_("Customers merged.")


async def _run(request: web.Request, profile_id: int | None, cid: int | None, op: str) -> web.StreamResponse:
    agent = _agent(request)
    form = await request.post()
    async with request.app[STATE].sessions() as db:
        try:
            if profile_id is None:
                conversation = await get_conversation(db, agent, cid or 0)
                if conversation is None:
                    return error_response(request, 404, N_("Conversation not found."))
                contact = await db.get(Contact, conversation.contact_id)
                assert contact is not None
                profile_id = (await ensure_profile(db, contact, agent=agent)).id
                assert profile_id is not None
            elif not await profile_visible(db, agent, profile_id):
                return error_response(request, 404, _NOT_FOUND)
            flash = await _apply(db, agent, profile_id, op, form)
        except Refused as exc:
            await db.rollback()
            status = exc.status if 400 <= exc.status < 500 else 400
            return error_response(request, status, _message(request, exc))
        await db.commit()
    if cid is not None and form.get("back") == "conversation":
        raise web.HTTPSeeOther(f"/inbox/c/{cid}#side-customer-profile")
    await _flash(request, translations_for(request).gettext(flash))
    raise web.HTTPSeeOther(f"/inbox/customers/{profile_id}")


async def profile_op(request: web.Request) -> web.StreamResponse:
    op = request.match_info["op"]
    if op not in _OPS:
        raise web.HTTPNotFound()
    return await _run(request, _id(request), None, op)


async def conversation_op(request: web.Request) -> web.StreamResponse:
    op = request.match_info["op"]
    if op not in _OPS:
        raise web.HTTPNotFound()
    return await _run(request, None, _id(request, "cid"), op)


async def unmerge(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    merge_id = _id(request)
    async with request.app[STATE].sessions() as db:
        found = await db.get(CustomerMerge, merge_id)
        if found is None or not await profile_visible(db, agent, found.target_id):
            return error_response(request, 404, N_("That merge does not exist."))
        try:
            merge = await customer_unmerge(db, merge_id, agent=agent)
        except Refused as exc:
            await db.rollback()
            status = exc.status if 400 <= exc.status < 500 else 400
            return error_response(request, status, _message(request, exc))
        await db.commit()
    await _flash(request, translations_for(request).gettext(N_("Merge undone.")))
    raise web.HTTPSeeOther(f"/inbox/customers/{merge.target_id}")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/inbox/customers/{id}", profile_page),
        web.get("/inbox/c/{cid}/customer", conversation_customer),
        web.post("/inbox/customers/merges/{id}/unmerge", unmerge),
        web.post("/inbox/customers/{id}/{op}", profile_op),
        web.post("/inbox/c/{cid}/customer/{op}", conversation_op),
    ]
