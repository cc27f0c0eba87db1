"""The dispute evidence bundle in the inbox: download it as PDF or JSON, or attach it to Slack.

Routes::

    GET  /inbox/c/<id>/evidence.pdf[?order=<order id>]   the bundle as a PDF (shop's language)
    GET  /inbox/c/<id>/evidence.json[?order=<order id>]  the same facts, every message included
    POST /inbox/c/<id>/evidence/slack  (order=<order id>) attach both files to the Slack thread

The conversation is loaded through the access-checked ``get_conversation`` (outside the agent's
access: 404, like a missing one); an order must belong to the conversation's verified customer.
Every request goes through the ``evidence_bundle`` action (one audit row each). The PDF is
rendered in a worker thread after the transaction is committed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.evidence_bundle import evidence_bundle
from inbox.models import Agent, Conversation
from inbox.queries.conversations import get_conversation
from inbox.queries.evidence import Evidence, evidence_json_bytes, file_stem
from inbox.web.i18n import N_
from inbox.web.rendering import error_response
from inbox.web.state import AGENT, STATE
from shopbase.refusal import Refused

__all__ = ["routes"]

_NOT_FOUND = N_("There is no such conversation, or you do not have access to it.")
_BAD_ORDER = N_("That order does not belong to this customer.")
_MAX_ID = 2**31 - 1


def _small_int(raw: str) -> int | None:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
        return None
    value = int(raw)
    return value if value <= _MAX_ID else None


async def _bundle(request: web.Request, order_raw: str, *, share: str | None = None,
                  output: str = "pdf") -> Evidence | web.Response:
    agent: Agent = request[AGENT]
    cid = _small_int(request.match_info.get("cid", ""))
    order_id: int | None = None
    if order_raw.strip():
        order_id = _small_int(order_raw.strip())
        if order_id is None:
            return error_response(request, 404, _BAD_ORDER)
    async with request.app[STATE].sessions() as db:
        conversation = await get_conversation(db, agent, cid) if cid is not None else None
        if conversation is None:
            return error_response(request, 404, _NOT_FOUND)
        try:
            evidence = await _run(db, conversation, agent, order_id, share, output)
        except Refused as exc:
            await db.rollback()
            return error_response(request, exc.status if 400 <= exc.status < 500 else 400, exc.message)
        await db.commit()
    return evidence


async def _run(db: AsyncSession, conversation: Conversation, agent: Agent, order_id: int | None,
               share: str | None, output: str) -> Evidence:
    return await evidence_bundle(db, conversation, agent=agent, order_id=order_id, share=share, output=output)


def _headers(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff"}


def render_evidence_pdf(*args: Any, **kwargs: Any) -> bytes:
    """:func:`inbox.evidence_pdf.render_evidence_pdf`, imported on first use (in the worker thread
    that draws it): reportlab costs ~7 MB resident that a server without PDFs never needs."""
    from inbox.evidence_pdf import render_evidence_pdf as render

    return render(*args, **kwargs)


async def evidence_pdf(request: web.Request) -> web.StreamResponse:
    """GET /inbox/c/<id>/evidence.pdf"""
    found = await _bundle(request, str(request.query.get("order", "")), output="pdf")
    if isinstance(found, web.Response):
        return found
    config = request.app[STATE].config
    body = await asyncio.to_thread(render_evidence_pdf, found, shop_name=config.shop_name,
                                   language=config.default_language, timezone=config.shop_timezone)
    return web.Response(body=body, content_type="application/pdf", headers=_headers(file_stem(found) + ".pdf"))


async def evidence_json_file(request: web.Request) -> web.StreamResponse:
    """GET /inbox/c/<id>/evidence.json"""
    found = await _bundle(request, str(request.query.get("order", "")), output="json")
    if isinstance(found, web.Response):
        return found
    body = await asyncio.to_thread(evidence_json_bytes, found, shop_name=request.app[STATE].config.shop_name)
    return web.Response(body=body, content_type="application/json", headers=_headers(file_stem(found) + ".json"))


async def evidence_to_slack(request: web.Request) -> web.StreamResponse:
    """POST /inbox/c/<id>/evidence/slack — the Slack sender uploads the files after the commit."""
    form: Any = await request.post()
    found = await _bundle(request, str(form.get("order") or ""), share="slack")
    if isinstance(found, web.Response):
        return found
    from inbox.web.views import ListParams

    params = ListParams.from_qs(str(form.get("list") or ""))
    qs = params.qs(before=params.before)
    raise web.HTTPSeeOther(f"/inbox/c/{found.conversation.id}" + (f"?{qs}" if qs else ""))


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get(r"/inbox/c/{cid:\d+}/evidence.pdf", evidence_pdf, name="evidence_pdf"),
        web.get(r"/inbox/c/{cid:\d+}/evidence.json", evidence_json_file, name="evidence_json"),
        web.post(r"/inbox/c/{cid:\d+}/evidence/slack", evidence_to_slack, name="evidence_slack"),
    ]
