"""The agents' inbox pages: the conversation list, one conversation, and the actions on it.

Pages are rendered on the server (autoescaped Jinja2); htmx boosts links and forms and
swaps the fragments (``/inbox/fragments/list``, ``/inbox/c/<id>/fragments/<part>``) that
live updates ask for. Every conversation is loaded through ``inbox.queries.conversations.get_conversation``,
so one outside the agent's access is a 404, exactly like a missing one. Every POST answers
with a redirect back to the conversation (or a clear 4xx).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.conversation_assign import conversation_assign, conversation_claim
from inbox.actions.conversation_handback import conversation_handback
from inbox.actions.conversation_labels import conversation_labels
from inbox.actions.conversation_priority import conversation_priority
from inbox.actions.conversation_status import conversation_status
from inbox.actions.macro_apply import macro_on_send
from inbox.actions.message_note import message_note
from inbox.actions.message_send import agent_reply
from inbox.actions.order_cancel import order_cancel
from inbox.actions.return_open import return_open
from inbox.actions.tracking_resend import tracking_resend
from inbox.models import (
    Agent,
    CannedResponse,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Label,
    Macro,
    Message,
    OutboxMessage,
    OutboxStatus,
    Priority,
)
from inbox.queries.access import check_access
from inbox.queries.conversations import (
    VIEWS,
    counts_of_groups,
    get_conversation,
    known_intents,
    list_conversations,
)
from inbox.queries.counts import count_groups
from inbox.queries.csat import conversation_rating, customer_ratings
from inbox.queries.customers import load_sidebar
from inbox.queries.filters import ConversationFilters, InvalidQuery
from inbox.queries.messages import transcript
from inbox.queries.orders import METHODS, REASONS, RESOLUTIONS
from inbox.queries.profiles import open_groups, profile_summary
from inbox.queries.sidebar_facts import sidebar_facts
from inbox.queries.triage import FIXED_STATUS_VIEWS, TRIAGE_VIEWS, triage_counts_of_groups, triage_list_context
from inbox.web.auth import csrf_token
from inbox.web.canned import CannedChoice, CannedError, canned_context, pick_body, render_canned
from inbox.web.handoff import handoff_details, handoff_sentence
from inbox.web.i18n import LANGUAGE_NAMES, N_, request_language, translations_for
from inbox.web.macros import macro_reply, macros_for_head, pending_note
from inbox.web.rendering import error_response, page_context, render, render_fragment
from inbox.web.sla import sla_context
from inbox.web.state import AGENT, STATE
from ordersvc.models import ItemCondition, Resolution
from shopbase.refusal import Refused
from shopbase.rows import saved_id

__all__ = ["ListParams", "routes"]

log = logging.getLogger("inbox.web.views")

PAGE_SIZE = 50
TRANSCRIPT_LIMIT = 200
_LIST_KEYS = ("view", "status", "channel", "intent", "priority", "label", "q", "before")
_STATUSES = [s.value for s in ConversationStatus]
_PRIORITIES = [p.value for p in Priority]
_CHANNELS = [c.value for c in Channel]
_NOT_FOUND = N_("There is no such conversation, or you do not have access to it.")


# --------------------------------------------------------------------------- list parameters


@dataclass(frozen=True)
class ListParams:
    """The list's view and filters, as they appear in the query string."""

    view: str = "all"
    status: str = "open"  # "any" lists every status
    channel: str = ""
    intent: str = ""
    priority: str = ""
    label: str = ""
    q: str = ""
    before: str = ""

    @classmethod
    def parse(cls, query: Any) -> ListParams:
        values = {k: str(query.get(k, "") or "").strip()[:200] for k in _LIST_KEYS if k in query}
        params = replace(cls(), **values)
        if params.view not in VIEWS and params.view not in TRIAGE_VIEWS:
            raise InvalidQuery(f"unknown view {params.view!r}; use one of: {', '.join((*TRIAGE_VIEWS, 'all'))}")
        if not params.status:
            params = replace(params, status="any")
        params.filters()  # InvalidQuery for an unknown status, channel or priority
        return params

    @classmethod
    def from_qs(cls, qs: str) -> ListParams:
        try:
            return cls.parse(dict(parse_qsl(qs or "", keep_blank_values=True)))
        except InvalidQuery:
            return cls()

    def filters(self) -> ConversationFilters:
        return ConversationFilters.parse(
            # a triage view that fixes the status (inbox.queries.triage) ignores the status filter
            status=None if self.status == "any" or self.view in FIXED_STATUS_VIEWS else self.status,
            channel=self.channel,
            intent=self.intent,
            priority=self.priority,
            label=self.label,
            q=self.q,
        )

    def qs(self, **changes: Any) -> str:
        """The query string for these params with ``changes`` (a change resets the page)."""
        merged = {f: getattr(self, f) for f in _LIST_FIELDS} | {"before": ""} | changes
        return urlencode([(k, v) for k, v in merged.items() if v != _LIST_DEFAULTS[k]])

    @property
    def is_filtered(self) -> bool:
        return any((self.channel, self.intent, self.priority, self.label, self.q)) or self.status != "open"


_LIST_FIELDS = tuple(f.name for f in fields(ListParams))
_LIST_DEFAULTS = {f: getattr(ListParams(), f) for f in _LIST_FIELDS}


# --------------------------------------------------------------------------- helpers


_MAX_ID = 2**31 - 1  # ids are INTEGER columns: nothing larger exists, and PostgreSQL refuses to compare it


def _small_int(raw: str) -> int | None:
    """``raw`` as an id: ASCII digits only (``"²".isdigit()`` is true, ``int("²")`` fails) and
    within a database integer; else None."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
        return None
    value = int(raw)
    return value if value <= _MAX_ID else None


def _conversation_id(request: web.Request) -> int | None:
    return _small_int(request.match_info.get("cid", ""))


async def _list_context(db: AsyncSession, agent: Agent, params: ListParams) -> dict[str, Any]:
    filters = await params.filters().resolve(db)  # the search runs once for the list and its counts
    rows = await list_conversations(
        db, agent, view=params.view, filters=filters, limit=PAGE_SIZE, before=params.before or None  # type: ignore[arg-type]
    )
    # the chips' and tabs' numbers and the triage tabs' from ONE grouped count (inbox.queries.counts);
    # with a filter besides the status the triage tabs (never filtered) need a count of their own
    status: ConversationStatus | None = ConversationStatus.open
    if params.view in FIXED_STATUS_VIEWS:  # a triage queue: the "All" tab counts open ones, as on /inbox
        view = "all"
    else:
        view, status = params.view, filters.status
    groups = await count_groups(db, agent, filters)
    counts = counts_of_groups(groups, agent, view=view, status=status)
    unfiltered = filters.without_status() == ConversationFilters()
    labels = (await db.exec(select(Label).order_by(col(Label.name)))).all()
    intents = await known_intents(db)
    return {
        "rows": rows,
        "counts": counts,
        "params": params,
        "labels": labels,
        "label_colors": {lb.name: lb.color for lb in labels},
        "intents": [i for i in intents if i],
        "statuses": _STATUSES,
        "priorities": _PRIORITIES,
        "channels": _CHANNELS,
        "views": VIEWS,
        "next_cursor": rows[-1].cursor if len(rows) == PAGE_SIZE else None,
        "open_groups": await open_groups(db, [row.contact_id for row in rows]),
        **await sla_context(db),
        # the triage tabs, the agent's saved views, the bulk bar (inbox.web.triage)
        **await triage_list_context(db, agent, triage_counts_of_groups(groups, agent) if unfiltered else None),
    }


async def _delivery_errors(db: AsyncSession, messages: list[Message]) -> dict[int, str]:
    failed = [m.id for m in messages if m.delivery_status == OutboxStatus.undeliverable.value and m.id is not None]
    if not failed:
        return {}
    rows = (
        await db.exec(
            select(OutboxMessage.message_id, OutboxMessage.last_error).where(col(OutboxMessage.message_id).in_(failed))
        )
    ).all()
    return {int(mid): (err or "") for mid, err in rows if mid is not None}


_ALL_PARTS = frozenset({"head", "transcript", "composer", "sidebar"})


async def _conversation_context(
    request: web.Request, db: AsyncSession, agent: Agent, conversation: Conversation, parts: frozenset[str] = _ALL_PARTS
) -> dict[str, Any]:
    """What the conversation templates need; ``parts`` limits the queries to the fragments rendered."""
    state = request.app[STATE]
    ctx: dict[str, Any] = {
        "conversation": conversation,
        "contact": await db.get(Contact, conversation.contact_id),
        "statuses": _STATUSES,
        "priorities": _PRIORITIES,
    }
    messages: list[Message] = []
    if "transcript" in parts:
        messages = await transcript(db, saved_id(conversation), limit=TRANSCRIPT_LIMIT)
        ctx["messages"] = messages
        ctx["delivery_errors"] = await _delivery_errors(db, messages)
    if "head" in parts or "transcript" in parts:
        agents = (await db.exec(select(Agent).where(col(Agent.is_active).is_(True)).order_by(col(Agent.name)))).all()
        names = {a.id: (a.name or a.email.split("@")[0]) for a in agents}
        wanted = {m.agent_id for m in messages if m.agent_id is not None} | {conversation.assignee_id}
        missing = {i for i in wanted if i is not None and i not in names}
        if missing:
            for a_id, a_name, a_email in (
                await db.exec(select(Agent.id, Agent.name, Agent.email).where(col(Agent.id).in_(missing)))
            ).all():
                names[a_id] = a_name or a_email.split("@")[0]
        ctx["agent_names"] = names
        ctx["assignable"] = [a for a in agents if check_access(a, conversation)]
        ctx["assignee_name"] = names.get(conversation.assignee_id) if conversation.assignee_id else None
    if "head" in parts:
        labels = (await db.exec(select(Label).order_by(col(Label.name)))).all()
        ctx["all_labels"] = sorted({lb.name for lb in labels} | set(conversation.labels or []))
        ctx["label_colors"] = {lb.name: lb.color for lb in labels}
        ctx["viewers"] = [v for v in state.agents.viewers(conversation.id or 0) if v["id"] != agent.id]
        ctx["snooze_default"] = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
        ctx["rating"] = await conversation_rating(db, saved_id(conversation))
        ctx.update(await sla_context(db))
        tr = translations_for(request)
        ctx["handoff_sentence"] = handoff_sentence(conversation.handoff, tr)
        ctx["handoff_details"] = handoff_details(conversation.handoff, tr, request_language(request))
        ctx["macros"] = await macros_for_head(db)
    if "composer" in parts:
        canned = (await db.exec(select(CannedResponse).order_by(col(CannedResponse.shortcut)))).all()
        ctx["canned"] = canned
        # for the reply box's slash-insert suggestions (read by inbox.js from a JSON data block)
        ctx["canned_data"] = [
            {"id": c.id, "shortcut": c.shortcut, "title": c.title, "languages": sorted(c.bodies or {})} for c in canned
        ]
    if "transcript" in parts:
        ctx["translate_enabled"] = bool(state.config.translate_url)
    if "sidebar" in parts:
        ctx["sidebar"] = await load_sidebar(db, conversation)
        ctx["facts"] = await sidebar_facts(db, ctx["sidebar"].orders, datetime.now(UTC))
        ctx["can_override"] = agent.is_admin or agent.can_override_returns
        ctx["ratings"] = await customer_ratings(db, conversation.contact_id)
        ctx["customer_profile"] = await profile_summary(db, agent, ctx["sidebar"].contact)
        ctx.update(resolutions=RESOLUTIONS, methods=METHODS, reasons=REASONS)
    return ctx


async def _page_context(request: web.Request) -> dict[str, Any]:
    agent = request[AGENT]
    return {"agent": agent, "csrf_token": await csrf_token(request)}


# --------------------------------------------------------------------------- pages


async def inbox_page(request: web.Request) -> web.Response:
    """GET /inbox — the list (no conversation open)."""
    agent = request[AGENT]
    try:
        params = ListParams.parse(request.query)
        async with request.app[STATE].sessions() as db:
            ctx = await _list_context(db, agent, params)
    except InvalidQuery as exc:
        return error_response(request, 400, str(exc))
    return render(request, "inbox/inbox.html", {**await _page_context(request), **ctx, "current_id": None})


async def conversation_page(request: web.Request) -> web.Response:
    """GET /inbox/c/<id> — the list plus one conversation and its customer."""
    agent = request[AGENT]
    cid = _conversation_id(request)
    try:
        params = ListParams.parse(request.query)
    except InvalidQuery as exc:
        return error_response(request, 400, str(exc))
    async with request.app[STATE].sessions() as db:
        conversation = await get_conversation(db, agent, cid) if cid is not None else None
        if conversation is None:
            return error_response(request, 404, _NOT_FOUND)
        try:
            ctx = await _list_context(db, agent, params)
        except InvalidQuery as exc:
            return error_response(request, 400, str(exc))
        conv_ctx = await _conversation_context(request, db, agent, conversation)
        prefill, warning, pending_macro, pending = "", "", None, ""
        canned_id = _small_int(request.query.get("canned", ""))
        macro_id = _small_int(request.query.get("macro", ""))
        if canned_id is not None:
            try:
                prefill, choice = await _render_canned(request, db, conversation, canned_id)
                warning = _fallback_warning(request, choice)
            except CannedError:
                prefill = ""
        elif macro_id is not None:  # a macro applied without the page's script: its reply, to edit and send
            macro = await db.get(Macro, macro_id)
            if macro is not None:
                try:
                    prefill, warning = await macro_reply(request, db, conversation, macro)
                    pending_macro, pending = (macro.id if macro.canned_id else None), pending_note(request, macro)
                except Refused:
                    prefill = ""
    return render(
        request,
        "inbox/inbox.html",
        {**await _page_context(request), **ctx, **conv_ctx, "current_id": conversation.id, "prefill": prefill,
         "prefill_warning": warning, "pending_macro": pending_macro, "pending_note": pending},
    )


async def list_fragment(request: web.Request) -> web.Response:
    """GET /inbox/fragments/list — the list alone (live updates)."""
    agent = request[AGENT]
    try:
        params = ListParams.parse(request.query)
        async with request.app[STATE].sessions() as db:
            ctx = await _list_context(db, agent, params)
    except InvalidQuery as exc:
        return error_response(request, 400, str(exc))
    current = request.query.get("current", "")
    ctx["current_id"] = _small_int(current)
    return _fragment(request, "inbox/_list.html", ctx)


_PARTS = {"head": "inbox/_head.html", "transcript": "inbox/_transcript.html", "sidebar": "inbox/_sidebar.html"}


async def conversation_fragment(request: web.Request) -> web.Response:
    """GET /inbox/c/<id>/fragments/<head|transcript|sidebar> (live updates)."""
    agent = request[AGENT]
    cid = _conversation_id(request)
    part = request.match_info.get("part", "")
    template = _PARTS.get(part)
    if template is None:
        return error_response(request, 404, N_("No such fragment."))
    async with request.app[STATE].sessions() as db:
        conversation = await get_conversation(db, agent, cid) if cid is not None else None
        if conversation is None:
            return error_response(request, 404, _NOT_FOUND)
        ctx = await _conversation_context(request, db, agent, conversation, frozenset({part}))
    params = ListParams.from_qs(request.query.get("list", ""))
    ctx.update(agent=agent, params=params, csrf_token=await csrf_token(request))
    return _fragment(request, template, ctx)


def _fragment(request: web.Request, template: str, ctx: dict[str, Any]) -> web.Response:
    state = request.app[STATE]
    body = render_fragment(state.jinja, template, {**page_context(request), **ctx})
    return web.Response(text=body, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})


async def _render_canned(
    request: web.Request, db: AsyncSession, conversation: Conversation, canned_id: int
) -> tuple[str, CannedChoice]:
    """The canned response in the conversation's language (or the shop's default), rendered for it."""
    canned = await db.get(CannedResponse, canned_id)
    if canned is None:
        raise CannedError("there is no such canned response")
    config = request.app[STATE].config
    choice = pick_body(canned.bodies, conversation.language, config.default_language)
    # amounts and dates read like the text around them: in the language of the body picked
    context = await canned_context(db, conversation, default_language=config.default_language,
                                   timezone=config.shop_timezone, language=choice.language)
    return render_canned(choice.body, context), choice


def _fallback_warning(request: web.Request, choice: CannedChoice) -> str:
    """The composer's warning when the canned response is not in the conversation's language."""
    if not choice.fallback:
        return ""
    return translations_for(request).gettext(
        "This canned response has no %(wanted)s version: inserted in %(used)s. Check it before sending."
    ) % {"wanted": LANGUAGE_NAMES.get(choice.wanted, choice.wanted), "used": LANGUAGE_NAMES.get(choice.language, choice.language)}


async def canned_preview(request: web.Request) -> web.Response:
    """GET /inbox/c/<id>/canned/<canned_id> — the canned response rendered for this conversation (JSON)."""
    agent = request[AGENT]
    cid = _conversation_id(request)
    raw = request.match_info.get("canned_id", "")
    async with request.app[STATE].sessions() as db:
        conversation = await get_conversation(db, agent, cid) if cid is not None else None
        tr = translations_for(request)
        if conversation is None:
            return web.json_response({"error": tr.gettext(_NOT_FOUND)}, status=404)
        try:
            text, choice = await _render_canned(request, db, conversation, _small_int(raw) or -1)
        except CannedError as exc:
            message = tr.gettext("The canned response cannot be used: %(problem)s") % {"problem": exc}
            return web.json_response({"error": message}, status=422)
    return web.json_response(
        {"text": text, "language": choice.language, "wanted": choice.wanted, "fallback": choice.fallback,
         "warning": _fallback_warning(request, choice)},
        headers={"Cache-Control": "no-store"},
    )


# --------------------------------------------------------------------------- actions

Action = Callable[[AsyncSession, Conversation, Agent, Any], Awaitable[str | None]]


def _back(cid: int, form: Any, anchor: str = "") -> str:
    params = ListParams.from_qs(str(form.get("list") or ""))
    qs = params.qs(before=params.before)
    return f"/inbox/c/{cid}" + (f"?{qs}" if qs else "") + anchor


async def _act(request: web.Request, action: Action, anchor: str = "") -> web.StreamResponse:
    agent = request[AGENT]
    cid = _conversation_id(request)
    form = await request.post()
    state = request.app[STATE]
    async with state.sessions() as db:
        conversation = await get_conversation(db, agent, cid) if cid is not None else None
        if conversation is None:
            return error_response(request, 404, _NOT_FOUND)
        try:
            await action(db, conversation, agent, form)
        except Refused as exc:
            await db.rollback()
            return error_response(request, 400, _sentence(translations_for(request).gettext(exc.message)))
        await db.commit()
    raise web.HTTPSeeOther(_back(conversation.id or 0, form, anchor))


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]) if text else N_("That did not work.")


async def _assign(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> None:
    raw = str(form.get("agent_id") or "")
    if not raw:
        await conversation_assign(db, conversation, None, by=agent)
        return
    agent_id = _small_int(raw)
    assignee = await db.get(Agent, agent_id) if agent_id is not None else None
    if assignee is None:
        raise Refused("no_such_agent", "there is no such agent", status=400)
    await conversation_assign(db, conversation, assignee, by=agent)


async def _unassign(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> None:
    await conversation_assign(db, conversation, None, by=agent)


async def _claim(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> None:
    await conversation_claim(db, conversation, agent)


def _parse_local(value: str, offset_minutes: str) -> datetime:
    try:
        naive = datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise Refused("bad_time", "enter the snooze time as a date and time", status=400) from None
    try:
        offset = int(offset_minutes or "0")
    except ValueError:
        offset = 0
    offset = max(-14 * 60, min(14 * 60, offset))
    # JavaScript's getTimezoneOffset(): minutes to ADD to local time to get UTC
    try:
        return (naive + timedelta(minutes=offset)).replace(tzinfo=UTC)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by the offset
        raise Refused("bad_time", "enter the snooze time as a date and time", status=400) from None


async def _status(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> None:
    status = str(form.get("status") or "")
    until = None
    if status == ConversationStatus.snoozed.value:
        until = _parse_local(str(form.get("snoozed_until") or ""), str(form.get("tz_offset") or "0"))
    await conversation_status(db, conversation, status, by=agent, snoozed_until=until, survey=True)


async def _priority(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> None:
    await conversation_priority(db, conversation, str(form.get("priority") or ""), by=agent)


async def _labels(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> None:
    chosen = [str(v) for v in form.getall("labels", [])]
    extra = str(form.get("new_label") or "").strip()
    if extra:
        chosen.append(extra)
    await conversation_labels(db, conversation, chosen, by=agent)


async def _hand_back(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> None:
    await conversation_handback(db, conversation, agent, refuse_if_bot=True)


def _order_id(request: web.Request) -> int:
    order_id = _small_int(request.match_info.get("order_id", ""))
    if order_id is None:
        raise Refused("not_their_order", "That order does not belong to this customer.", status=404)
    return order_id


_CHOOSE = {
    "resolution": N_("Choose a resolution."),
    "return method": N_("Choose a return method."),
    "reason": N_("Choose a reason."),
}


def _choice(value: Any, allowed: list[str], what: str) -> str:
    text = str(value or "")
    if text not in allowed:
        raise Refused("choose", _CHOOSE[what], status=400)
    return text


def _return_form(form: Any) -> tuple[str, str, list[dict[str, Any]]]:
    """The agents' return form: resolution, method, and the lines ticked (``line_<id>`` = quantity)."""
    resolution = _choice(form.get("resolution"), RESOLUTIONS, "resolution")
    method = _choice(form.get("method"), METHODS, "return method")
    reason = _choice(form.get("reason"), REASONS, "reason")
    exchange_sku = str(form.get("exchange_sku") or "").strip()[:64] or None
    items: list[dict[str, Any]] = []
    for key in form.keys():
        if not key.startswith("line_"):
            continue
        try:
            line_id = int(key[5:])
            quantity = int(str(form.get(key) or "0"))
        except ValueError:
            raise Refused("bad_quantity", "Quantities must be whole numbers.", status=400) from None
        if quantity <= 0:
            continue
        item: dict[str, Any] = {
            "order_line_id": line_id,
            "quantity": quantity,
            "reason": reason,
            "condition": ItemCondition.unopened.value,
        }
        if resolution == Resolution.exchange.value and exchange_sku:
            item["exchange_sku"] = exchange_sku
        items.append(item)
    return resolution, method, items


async def reply(request: web.Request) -> web.StreamResponse:
    max_chars = request.app[STATE].config.max_message_chars

    async def run(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> None:
        await agent_reply(db, conversation, agent, str(form.get("text") or ""), max_chars=max_chars)
        # the reply a macro put into the composer: what the macro left for the send (its status)
        macro_id = _small_int(str(form.get("macro_id") or ""))
        macro = await db.get(Macro, macro_id) if macro_id is not None else None
        if macro is not None:
            await macro_on_send(db, conversation, macro, by=agent)

    return await _act(request, run, "#composer")


async def note(request: web.Request) -> web.StreamResponse:
    max_chars = request.app[STATE].config.max_message_chars

    async def run(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> None:
        await message_note(db, conversation, agent, str(form.get("text") or ""), max_chars=max_chars)

    return await _act(request, run, "#composer")


def _handler(action: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A POST route that runs one conversation action and redirects back."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _act(request, action)

    return handle


#: POST /inbox/c/<id>/<path> → the form's translation into one action
_CONVERSATION_ACTIONS: dict[str, Action] = {
    "assign": _assign,
    "unassign": _unassign,
    "claim": _claim,
    "status": _status,
    "priority": _priority,
    "labels": _labels,
    "hand-back": _hand_back,
}


async def order_action(request: web.Request) -> web.StreamResponse:
    """POST /inbox/c/<id>/orders/<order_id>/<cancel|return|resend-tracking>."""
    kind = request.match_info.get("action", "")

    async def run(db: AsyncSession, conversation: Conversation, agent: Agent, form: Any) -> str:
        order_id = _order_id(request)
        if kind == "cancel":
            await order_cancel(db, conversation, order_id, agent=agent)
            return "Order cancelled."
        if kind == "return":
            resolution, method, items = _return_form(form)
            override = str(form.get("override_reason") or "") if form.get("override") == "on" else None
            await return_open(db, conversation, order_id, items, resolution, method, agent=agent,
                              override_reason=override)
            return "Return created."
        if kind == "resend-tracking":
            await tracking_resend(db, conversation, agent, order_id)
            return "Tracking sent."
        raise Refused("unknown_action", "Unknown order action.", status=404)

    return await _act(request, run)


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/inbox")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/", home, name="home"),
        web.get("/inbox", inbox_page, name="inbox"),
        web.get("/inbox/fragments/list", list_fragment, name="inbox_list_fragment"),
        web.get(r"/inbox/c/{cid:\d+}", conversation_page, name="conversation"),
        web.get(r"/inbox/c/{cid:\d+}/fragments/{part}", conversation_fragment, name="conversation_fragment"),
        web.get(r"/inbox/c/{cid:\d+}/canned/{canned_id}", canned_preview, name="canned_preview"),
        web.post(r"/inbox/c/{cid:\d+}/reply", reply, name="reply"),
        web.post(r"/inbox/c/{cid:\d+}/note", note, name="note"),
        *(
            web.post(rf"/inbox/c/{{cid:\d+}}/{path}", _handler(action), name=path.replace("-", "_"))
            for path, action in _CONVERSATION_ACTIONS.items()
        ),
        web.post(r"/inbox/c/{cid:\d+}/orders/{order_id}/{action}", order_action, name="order_action"),
    ]

