"""Slack: merchant alerts, escalation threads where agents answer customers, ``/order``.

Slack is where the shop's people are, not a customer channel: nothing here implements a
Sender. The connector

* posts **alerts** to ``SHOPDESK_SLACK_ALERT_CHANNEL`` as Block Kit messages: escalations
  (customer, intent, order card, the bot's summary; Claim / Resolve / Open in inbox), late or
  problem shipments, and returns waiting for manual approval (Approve / Reject). An
  escalation alert is remembered as an ``ExternalThread`` (``purpose="escalation"``); an
  approval alert as ``purpose="return:<rma id>"``, so a button only acts on the alert it is on.
* **mirrors** the customer's later messages into the escalation's thread and keeps the
  alert's state line (claimed by, resolved) in step with the inbox;
* turns a **thread reply** into that agent's reply to the customer (through the outbox), or
  into an internal note when it starts with ``note:``;
* answers ``/order <number or email>`` privately (ephemeral) with the order card.

Requests arrive on ``POST /slack/events`` (events, interactivity and slash commands) and are
authenticated before anything parses them: the ``v0`` signature over the raw body with
``SHOPDESK_SLACK_SIGNING_SECRET`` and a timestamp within five minutes, else 401 and nothing
happens. slack-bolt's ``AsyncApp`` then dispatches them (it checks again). With
``SHOPDESK_SLACK_APP_TOKEN`` set, Socket Mode delivers the same requests over a websocket.

Idempotency: every effect is written in one transaction together with a
``WebhookDelivery(source="slack")`` row keyed by the request's own id (``event_id`` for
events, user + ``action_ts`` for button clicks), so a Slack retry or a replayed body finds the
row and does nothing a second time. Listeners run before Slack gets its answer
(``process_before_response``; they take milliseconds, well inside Slack's 3 s): if one fails,
its transaction (delivery row included) rolls back and Slack hears 503 and retries, so an
agent's thread reply is never acknowledged and then lost.

Agents are matched to Slack users by ``Agent.slack_user_id``; an unknown Slack user is looked
up (``users.info`` for the email, else ``users.lookupByEmail`` for each unlinked agent) and
linked on first match. Someone who is not an agent only gets an ephemeral "link your account".

Posting happens outside database transactions, from the connector's own queue fed by the
event bus (after commit), so a slow or rate-limited Slack never holds up the bus. The Web API
client waits out ``Retry-After`` on 429 (twice), and retries connection and server errors.
When Slack stays unavailable beyond that (no connection, a timeout, HTTP 5xx, still rate
limited), the alert is kept and tried again with exponential backoff (``retry_base`` seconds,
doubling, at most ``retry_cap``); the queue waits behind it, so an escalation alert and the
thread updates that follow it keep their order. An alert still undelivered ``retry_give_up``
seconds after it was queued is dropped with one error line. Slack's permanent refusals
(``channel_not_found``, ``invalid_auth``, ``not_in_channel``, ...) drop the alert at once, with
one line naming the error code. The queue lives in memory: what is left at shutdown is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot.connectors import slack_blocks as blocks
from bot.dialog.turn import DialogState
from inbox.actions.base import write_audit
from inbox.actions.conversation_assign import conversation_claim
from inbox.actions.conversation_status import conversation_status
from inbox.actions.message_note import message_note
from inbox.actions.message_send import agent_reply
from inbox.actions.thread_link import thread_link
from inbox.queries.conversations import get_conversation
from inbox.events import Event, EventBus, EventType
from inbox.messages import InvalidMessage
from inbox.models import (
    Agent,
    Author,
    Contact,
    Conversation,
    ConversationStatus,
    ExternalThread,
    Message,
)
from ordersvc.models import Customer, Order, OrderLine, ReturnAuthorization, ReturnLine, RmaStatus, ReturnMethod
from ordersvc.returns import transition
from ordersvc.serialize import order_document
from ordersvc.service import find_customer_by_email, find_order, orders_for_customer
from shopbase.dedupe import DuplicateDelivery, claim_delivery
from shopbase.refusal import Refused

__all__ = [
    "EVENTS_PATH",
    "THREAD_KIND",
    "NOTE_PREFIX",
    "SlackConnector",
    "make_client",
    "link_slack_user",
]

log = logging.getLogger("shopdesk.slack")
# slack_sdk logs every request's parameters and every response body at DEBUG: texts that may
# hold customers' details, and agents' emails (users.lookupByEmail).
logging.getLogger("slack_sdk").setLevel(logging.INFO)
logging.getLogger("slack_bolt").setLevel(logging.INFO)
# bolt's "unhandled request" warning quotes the whole request body: keep only its errors
_bolt_log = logging.getLogger("shopdesk.slack.bolt")
_bolt_log.setLevel(logging.ERROR)

EVENTS_PATH = "/slack/events"
THREAD_KIND = "slack"
ESCALATION = "escalation"
NOTE_PREFIX = "note:"
MAX_BODY_BYTES = 1024 * 1024
ORDER_COMMAND = "/order"
_SHIPMENT_KINDS = {"late_shipment", "shipment_exception"}
_ALERT_TITLES = {"return_spike": "Returns are spiking", "low_stock": "Low stock"}
_LINK_HINT = ("I don't know you as a Shopdesk agent yet. Ask an admin to link your Slack account, "
              "or make sure your Slack email is the one you sign in to the inbox with.")


#: Slack error codes that say "try again later" rather than "this request is wrong"
_TRANSIENT_CODES = frozenset({"ratelimited", "fatal_error", "internal_error", "service_unavailable",
                              "request_timeout"})
#: what an unreachable Slack Web API raises past slack_sdk's retries (not SlackClientError)
_TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def make_client(settings: Any) -> AsyncWebClient:
    """The Web API client: ``SHOPDESK_SLACK_API_URL``, waits out 429s, retries connection errors."""
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


async def link_slack_user(session: Any, agent: Agent, slack_user_id: str | None) -> None:
    """Set (or clear) the Slack user an agent acts as (admin action; the caller commits)."""
    agent.slack_user_id = (slack_user_id or "").strip()[:32] or None
    session.add(agent)
    write_audit(session, None, "agent.slack_linked", actor="admin",
                      detail={"agent_id": agent.id, "linked": agent.slack_user_id is not None})


def _agent_label(agent: Agent) -> str:
    mention = f" (<@{agent.slack_user_id}>)" if agent.slack_user_id else ""
    return f"{blocks.escape(agent.name or f'agent #{agent.id}')}{mention}"


@dataclass(frozen=True)
class _Click:
    """One button click, read from a block_actions body."""

    user_id: str
    channel: str
    message_ts: str
    value: str
    action_ts: str
    message_blocks: list[dict[str, Any]]


def _click(body: Mapping[str, Any]) -> _Click | None:
    try:
        action = body["actions"][0]
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        message = body.get("message") or {}
        ts = container.get("message_ts") or message.get("ts")
        user_id = body["user"]["id"]
        if not (isinstance(channel, str) and isinstance(ts, str) and isinstance(user_id, str)):
            return None
        return _Click(user_id=user_id, channel=channel, message_ts=ts, value=str(action.get("value") or ""),
                      action_ts=str(action.get("action_ts") or ""),
                      message_blocks=list(message.get("blocks") or []))
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


class _Duplicate(Exception):
    """This Slack delivery was handled already."""


@dataclass
class _Job:
    """A bus event waiting to be posted; ``done`` holds the steps that reached Slack already."""

    event: Event
    queued_at: float = field(default_factory=time.monotonic)
    attempts: int = 0
    done: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.event.type} (conversation {self.event.conversation_id})"


async def _claim_delivery(session: Any, key: str, topic: str) -> None:
    """Add the delivery row in the caller's transaction; _Duplicate if it exists already."""
    try:
        await claim_delivery(session, "slack", key, topic)
    except DuplicateDelivery:
        await session.rollback()
        raise _Duplicate from None


class SlackConnector:
    """Bolt app, ``/slack/events`` route, alert poster and thread mirror."""

    name = "slack"

    def __init__(self, *, settings: Any, sessions: Any, bus: EventBus, client: AsyncWebClient | None = None,
                 retry_base: float = 2.0, retry_cap: float = 300.0, retry_give_up: float = 3600.0) -> None:
        self.settings = settings
        #: backoff for alerts Slack could not take: first wait, longest wait, when to drop (seconds)
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.retry_give_up = retry_give_up
        self.sessions = sessions
        self.bus = bus
        bus.bind(sessions)  # store writes made here announce their events after commit
        self.client = client or make_client(settings)
        self.alert_channel = (settings.slack_alert_channel or "").strip() or None
        self.public_url = settings.public_url.rstrip("/")
        self.max_chars = settings.max_message_chars
        secret = settings.slack_signing_secret.get_secret_value()
        self.verifier = SignatureVerifier(secret)
        self.bolt = AsyncApp(signing_secret=secret, client=self.client, process_before_response=True,
                             logger=_bolt_log)
        self._register_listeners()
        self._app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
        self.socket_handler: Any = None
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._current: _Job | None = None
        self._delay = 0.0  # the last backoff wait; 0 while Slack takes our posts
        self._failing_since: float | None = None  # monotonic time of the first failure of an outage
        self._backing_off = asyncio.Event()  # set while the worker sleeps before a retry
        self._unsubscribe: Any = None
        if self.alert_channel is None:
            log.warning("SHOPDESK_SLACK_ALERT_CHANNEL is not set: no Slack alerts will be posted")

    # -- wiring ------------------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_post(EVENTS_PATH, self.handle_http)

    def make_socket_handler(self) -> Any:
        """Socket Mode handler for ``SHOPDESK_SLACK_APP_TOKEN`` (built in start: it needs a loop)."""
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        return AsyncSocketModeHandler(self.bolt, app_token=self._app_token)

    async def start(self) -> None:
        self._unsubscribe = self.bus.subscribe(self._on_bus_event)
        self._worker = asyncio.create_task(self._work(), name="slack-alerts")
        if self._app_token:
            self.socket_handler = self.make_socket_handler()
            try:
                await self.socket_handler.connect_async()
                log.info("slack: Socket Mode connected")
            except Exception as exc:  # no network: the HTTP route still works
                log.error("slack: Socket Mode could not connect (%s)", type(exc).__name__)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._worker is not None:
            if not self._worker.done():
                # up to 5 s to drain the queue, but not while it waits for Slack to come back
                drained = asyncio.ensure_future(self._queue.join())
                stalled = asyncio.ensure_future(self._backing_off.wait())
                await asyncio.wait({drained, stalled}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
                for waiter in (drained, stalled):
                    waiter.cancel()
                await asyncio.gather(drained, stalled, return_exceptions=True)
            left = self._queue.qsize() + (1 if self._current is not None else 0)
            if left:
                log.warning("slack: %d alert(s) not posted at shutdown", left)
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        if self.socket_handler is not None:
            try:
                await self.socket_handler.close_async()
            except Exception:
                log.warning("slack: closing Socket Mode failed")
            self.socket_handler = None

    async def idle(self) -> None:
        """Wait until every queued bus event has been handled (for tests and shutdown)."""
        await self.bus.wait_idle()
        await self._queue.join()

    # -- HTTP entry ----------------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return web.json_response({"error": "request body too large"}, status=413)
        raw = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            raw.extend(chunk)
            if len(raw) > MAX_BODY_BYTES:
                return web.json_response({"error": "request body too large"}, status=413)
        body = bytes(raw)
        if not self._signed(body, request.headers):
            log.warning("slack: request with a bad signature or stale timestamp refused (from %s)", request.remote)
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            text = body.decode("utf-8")
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=dict(request.headers))
        except (UnicodeDecodeError, ValueError, TypeError, AttributeError, RecursionError):
            return web.json_response({"error": "malformed request body"}, status=400)
        problem = _check_shape(bolt_request.body)
        if problem:
            return web.json_response({"error": f"malformed request body: {problem}"}, status=400)
        try:
            response = await self.bolt.async_dispatch(bolt_request)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # Bolt checks the bot token with auth.test before the first listener runs; with the Slack
            # API unreachable that raises. Slack retries a non-2xx delivery, so nothing is lost.
            log.error("slack: the Slack Web API is unreachable (%s); request answered 503", type(exc).__name__)
            return web.json_response({"error": "Slack Web API unreachable; try again shortly"}, status=503)
        if response.status >= 500:
            # Bolt swallows its own failures (for example auth.test against an unreachable Slack API)
            # into an empty 500. Say what happened instead; Slack retries the delivery.
            log.error("slack: request could not be handled (bolt answered %d)", response.status)
            return web.json_response({"error": "Slack request could not be handled now (is the Slack Web API "
                                               "reachable?); Slack will retry"}, status=503)
        return await to_aiohttp_response(response)

    def _signed(self, body: bytes, headers: Mapping[str, str]) -> bool:
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if not timestamp or not signature or not timestamp.isdigit() or len(timestamp) > 12:
            return False
        try:
            return self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except (ValueError, TypeError):
            return False

    # -- listeners -------------------------------------------------------------------------------

    def _register_listeners(self) -> None:
        bolt = self.bolt

        @bolt.event("message")
        async def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
            await self.handle_thread_message(event, str(body.get("event_id") or ""))

        @bolt.action(blocks.ACTION_CLAIM)
        async def on_claim(ack: Any, body: dict[str, Any]) -> None:
            await ack()
            await self.handle_conversation_button(body, "claim")

        @bolt.action(blocks.ACTION_RESOLVE)
        async def on_resolve(ack: Any, body: dict[str, Any]) -> None:
            await ack()
            await self.handle_conversation_button(body, "resolve")

        @bolt.action(blocks.ACTION_OPEN)
        async def on_open(ack: Any) -> None:
            await ack()  # a link button: Slack opens the URL; the click only needs acknowledging

        @bolt.action(blocks.ACTION_APPROVE_RETURN)
        async def on_approve(ack: Any, body: dict[str, Any]) -> None:
            await ack()
            await self.handle_return_button(body, approve=True)

        @bolt.action(blocks.ACTION_REJECT_RETURN)
        async def on_reject(ack: Any, body: dict[str, Any]) -> None:
            await ack()
            await self.handle_return_button(body, approve=False)

        @bolt.command(ORDER_COMMAND)
        async def on_order(ack: Any, command: dict[str, Any]) -> None:
            text, reply_blocks = await self.order_reply(str(command.get("user_id") or ""), str(command.get("text") or ""))
            await ack(text=text, blocks=reply_blocks, response_type="ephemeral")

    async def _ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except (SlackClientError, *_TRANSPORT_ERRORS) as exc:
            log.warning("slack: ephemeral message failed (%s)", _slack_error(exc))

    # -- agents ------------------------------------------------------------------------------------

    async def agent_for(self, slack_user_id: str) -> Agent | None:
        """The active agent linked to this Slack user, linking by email on first sight."""
        if not slack_user_id:
            return None
        async with self.sessions() as session:
            agent = await self._linked_agent(session, slack_user_id)
            if agent is not None:
                return agent
        email = await self._slack_email(slack_user_id)
        async with self.sessions() as session:
            # Linked meanwhile? Slack delivers the same event several times at once, and the
            # first delivery may have linked this user while this one asked Slack for the email.
            agent = await self._linked_agent(session, slack_user_id)
            if agent is not None:
                return agent
            if email:
                agent = (
                    await session.exec(
                        select(Agent).where(sa.func.lower(Agent.email) == email.lower(), col(Agent.is_active).is_(True),
                                            col(Agent.slack_user_id).is_(None))
                    )
                ).first()
            if agent is None:
                agent = await self._link_by_lookup(session, slack_user_id)
            if agent is None:  # nobody to link: unless a concurrent delivery linked them just now
                return await self._linked_agent(session, slack_user_id)
            await link_slack_user(session, agent, slack_user_id)
            await session.commit()
            log.info("slack: linked a Slack user to agent %s by email", agent.id)
            return agent

    @staticmethod
    async def _linked_agent(session: Any, slack_user_id: str) -> Agent | None:
        return (
            await session.exec(select(Agent).where(Agent.slack_user_id == slack_user_id, col(Agent.is_active).is_(True)))
        ).first()

    async def _slack_email(self, slack_user_id: str) -> str | None:
        try:
            info = await self.client.users_info(user=slack_user_id)
        except SlackClientError as exc:
            log.info("slack: users.info failed (%s)", _slack_error(exc))
            return None
        user = info.get("user") or {}
        if user.get("is_bot") or user.get("deleted"):
            return None
        email = (user.get("profile") or {}).get("email")
        return email if isinstance(email, str) and email else None

    async def _link_by_lookup(self, session: Any, slack_user_id: str) -> Agent | None:
        """users.lookupByEmail for unlinked agents (when users.info shows no email)."""
        unlinked = (
            await session.exec(
                select(Agent).where(col(Agent.slack_user_id).is_(None), col(Agent.is_active).is_(True))
                .order_by(col(Agent.id)).limit(50)
            )
        ).all()
        for agent in unlinked:
            try:
                found = await self.client.users_lookupByEmail(email=agent.email)
            except SlackClientError:
                continue
            if (found.get("user") or {}).get("id") == slack_user_id:
                return agent
        return None

    # -- thread replies ------------------------------------------------------------------------------

    async def handle_thread_message(self, event: Mapping[str, Any], event_id: str) -> str:
        """A message in an escalation thread: the agent's reply or note. Returns what happened."""
        if event.get("subtype") or event.get("bot_id"):
            return "ignored"
        channel, user, ts, thread_ts = (event.get(k) for k in ("channel", "user", "ts", "thread_ts"))
        text = event.get("text")
        if not all(isinstance(v, str) and v for v in (channel, user, ts, thread_ts)) or thread_ts == ts:
            return "ignored"
        if not isinstance(text, str):
            return "ignored"
        async with self.sessions() as session:
            thread = await self._thread(session, channel, thread_ts)
        if thread is None or thread.purpose != ESCALATION or thread.conversation_id is None:
            return "ignored"
        key = f"event:{event_id}" if event_id else f"message:{channel}:{ts}"
        agent = await self.agent_for(user)
        plain = blocks.slack_to_plain(text).strip()
        is_note = plain.lower().startswith(NOTE_PREFIX)
        notice: str | None = None
        outcome = "ignored"
        try:
            async with self.sessions() as session:
                await _claim_delivery(session, key, "message")
                if agent is None:
                    notice = _LINK_HINT
                else:
                    conversation = await get_conversation(session, agent, thread.conversation_id)
                    if conversation is None:
                        notice = "You cannot see this conversation in the inbox, so your reply was not sent."
                    elif is_note:
                        await message_note(session, conversation, agent, plain[len(NOTE_PREFIX):].strip(),
                                             max_chars=self.max_chars)
                        outcome = "note"
                    else:
                        await agent_reply(session, conversation, agent, plain, max_chars=self.max_chars)
                        outcome = "reply"
                await session.commit()
        except _Duplicate:
            log.info("slack: event %s was handled already", event_id)
            return "duplicate"
        except InvalidMessage as exc:
            notice = f"Not sent: {exc.reason}."
        if notice:
            await self._ephemeral(channel, user, notice, thread_ts=thread_ts)
        return outcome

    async def _thread(self, session: Any, channel: str, ts: str) -> ExternalThread | None:
        return (
            await session.exec(
                select(ExternalThread).where(ExternalThread.kind == THREAD_KIND, ExternalThread.channel_ref == channel,
                                             ExternalThread.thread_ref == ts)
            )
        ).first()

    # -- buttons -------------------------------------------------------------------------------------

    async def handle_conversation_button(self, body: Mapping[str, Any], verb: str) -> str:
        """Claim or Resolve on an escalation alert; the alert itself is refreshed from the bus."""
        click = _click(body)
        if click is None or not click.value.isdigit():
            return "ignored"
        async with self.sessions() as session:
            thread = await self._thread(session, click.channel, click.message_ts)
        if thread is None or thread.purpose != ESCALATION or thread.conversation_id != int(click.value):
            log.warning("slack: a %s button that does not belong to its alert was ignored", verb)
            return "ignored"
        agent = await self.agent_for(click.user_id)
        if agent is None:
            await self._ephemeral(click.channel, click.user_id, _LINK_HINT)
            return "unknown user"
        notice: str | None = None
        outcome = verb
        try:
            async with self.sessions() as session:
                await _claim_delivery(session, f"action:{click.user_id}:{click.action_ts}", verb)
                conversation = await get_conversation(session, agent, thread.conversation_id)
                if conversation is None:
                    notice, outcome = "You cannot see this conversation in the inbox.", "denied"
                elif verb == "claim":
                    try:
                        await conversation_claim(session, conversation, agent)
                    except Refused as refusal:
                        if refusal.code != "taken":
                            raise
                        holder = await session.get(Agent, conversation.assignee_id) if conversation.assignee_id else None
                        who = holder.name if holder is not None and holder.name else "another agent"
                        notice, outcome = f"{who} has this conversation already.", "taken"
                elif conversation.status != ConversationStatus.resolved:
                    await conversation_status(session, conversation, ConversationStatus.resolved, by=agent)
                await session.commit()
        except _Duplicate:
            return "duplicate"
        except Refused as exc:
            notice, outcome = exc.message, "denied"
        if notice:
            await self._ephemeral(click.channel, click.user_id, notice)
        return outcome

    async def handle_return_button(self, body: Mapping[str, Any], *, approve: bool) -> str:
        click = _click(body)
        if click is None or not click.value.isdigit():
            return "ignored"
        rma_id = int(click.value)
        async with self.sessions() as session:
            thread = await self._thread(session, click.channel, click.message_ts)
        if thread is None or thread.purpose != f"return:{rma_id}":
            log.warning("slack: a return button that does not belong to its alert was ignored")
            return "ignored"
        agent = await self.agent_for(click.user_id)
        if agent is None:
            await self._ephemeral(click.channel, click.user_id, _LINK_HINT)
            return "unknown user"
        verb = "approved" if approve else "rejected"
        try:
            async with self.sessions() as session:
                await _claim_delivery(session, f"action:{click.user_id}:{click.action_ts}", f"return.{verb}")
                rma = await session.get(ReturnAuthorization, rma_id)
                if rma is None:
                    raise Refused("return_not_found", "this return no longer exists", status=404)
                if rma.status != RmaStatus.requested:  # decided already (here, in the inbox or by the bot)
                    raise Refused("return_decided", f"return {rma.rma_number} is already "
                                  f"{str(getattr(rma.status, 'value', rma.status)).replace('_', ' ')}")
                note = f"{verb} in Slack by {agent.name or f'agent #{agent.id}'}"
                rma = await transition(session, rma, RmaStatus.approved if approve else RmaStatus.rejected, note=note)
                if approve and rma.method == ReturnMethod.mail:
                    rma = await transition(session, rma, RmaStatus.label_issued)
                if thread.conversation_id is not None:
                    conversation = await session.get(Conversation, thread.conversation_id)
                    if conversation is not None:
                        await message_note(session, conversation, agent, f"Return {rma.rma_number} {note}.")
                write_audit(session, thread.conversation_id, f"return.{verb}", agent=agent,
                                  detail={"rma_id": rma_id, "via": "slack"})
                await session.commit()
        except _Duplicate:
            return "duplicate"
        except Refused as exc:
            await self._ephemeral(click.channel, click.user_id, f"Nothing changed: {exc}.")
            return "invalid"
        line = f"{verb.capitalize()} by {_agent_label(agent)}"
        try:
            await self.client.chat_update(channel=click.channel, ts=click.message_ts, text=line,
                                          blocks=blocks.return_decided(click.message_blocks, line=line))
        except (SlackClientError, *_TRANSPORT_ERRORS) as exc:
            log.warning("slack: updating a return alert failed (%s)", _slack_error(exc))
        return verb

    # -- /order --------------------------------------------------------------------------------------

    async def order_reply(self, slack_user_id: str, query: str) -> tuple[str, list[dict[str, Any]] | None]:
        """The ephemeral answer to ``/order <number or email>`` (agents only)."""
        agent = await self.agent_for(slack_user_id)
        if agent is None:
            return "Only Shopdesk agents can look up orders. " + _LINK_HINT, None
        query = " ".join(blocks.slack_to_plain(query).split())[:200]  # <mailto:a@b|a@b> → a@b
        if not query:
            return "Usage: `/order 1001` or `/order customer@example.com`", None
        async with self.sessions() as session:
            order: Order | None
            others: list[str] = []
            if "@" in query:
                customer = await find_customer_by_email(session, query)
                orders = await orders_for_customer(session, customer.id, limit=6) if customer and customer.id else []
                order = orders[0] if orders else None
                others = [o.name for o in orders[1:]]
            else:
                order = await find_order(session, query)
            if order is None:
                text, reply = blocks.order_lookup_reply(query, None)
                return text, reply
            doc = await order_document(session, order)
            conversation_id = await self._latest_conversation(session, order.customer_id)
        inbox_url = f"{self.public_url}/inbox/c/{conversation_id}" if conversation_id else None
        text, reply = blocks.order_lookup_reply(query, doc, others=others, inbox_url=inbox_url)
        return text, reply

    async def _latest_conversation(self, session: Any, customer_id: int | None) -> int | None:
        if customer_id is None:
            return None
        row = (
            await session.exec(
                select(Conversation.id)
                .join(Contact, col(Contact.id) == col(Conversation.contact_id))
                .where(Contact.customer_id == customer_id)
                .order_by(col(Conversation.last_message_at).desc())
                .limit(1)
            )
        ).first()
        return int(row) if row is not None else None

    # -- bus events → Slack ----------------------------------------------------------------------------

    def _on_bus_event(self, event: Event) -> None:
        kind = str(event.type)
        data = event.data or {}
        if kind == EventType.conversation_escalated.value or kind == EventType.alert.value:
            self._queue.put_nowait(_Job(event))
        elif kind == EventType.message_created.value:
            if data.get("author") == Author.customer.value and not data.get("is_internal"):
                self._queue.put_nowait(_Job(event))
        elif kind in (EventType.conversation_assigned.value, EventType.conversation_updated.value):
            if kind == EventType.conversation_assigned.value or data.get("change") in ("status", "handed_back", "reopened"):
                self._queue.put_nowait(_Job(event))

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._current = job
            try:
                await self._deliver(job)
            finally:
                self._current = None
                self._queue.task_done()

    async def _deliver(self, job: _Job) -> None:
        """Post one job, retrying while Slack is unavailable; the queue waits behind it (order)."""
        while True:
            if self._failing_since is not None and time.monotonic() - job.queued_at > self.retry_give_up:
                log.error("slack: gave up on %s after %d attempt(s): the Slack Web API is still unavailable",
                          job.describe(), job.attempts)
                return
            job.attempts += 1
            try:
                await self.handle_bus_event(job.event, job.done)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # sorted below; one log line, never a traceback
                reason = _transient_reason(exc)
                if reason is None:
                    if isinstance(exc, SlackApiError):
                        self._note_slack_answered()  # Slack is there; it refused this one
                    log.error("slack: %s dropped: %s", job.describe(), _slack_error(exc))
                    return
                delay = self.retry_base if self._delay <= 0 else min(self._delay * 2, self.retry_cap)
                delay = max(delay, min(_retry_after(exc), self.retry_cap))  # a 429 says how long to wait
                self._delay = delay
                now = time.monotonic()
                if self._failing_since is None:
                    self._failing_since = now
                    log.warning("slack: the Slack Web API is unavailable: %s; keeping %s, retrying in %.3g s",
                                reason, job.describe(), delay)
                else:
                    log.debug("slack: still unavailable: %s; retrying %s in %.3g s", reason, job.describe(), delay)
                if now - job.queued_at + delay > self.retry_give_up:
                    log.error("slack: gave up on %s after %d attempt(s): %s", job.describe(), job.attempts, reason)
                    return
                self._backing_off.set()
                try:
                    await asyncio.sleep(delay)
                finally:
                    self._backing_off.clear()
            else:
                self._note_slack_answered()
                return

    def _note_slack_answered(self) -> None:
        """Slack answered: an outage (if any) is over and the backoff starts afresh."""
        if self._failing_since is not None:
            log.info("slack: the Slack Web API is reachable again (after %.0f s)", time.monotonic() - self._failing_since)
        self._failing_since = None
        self._delay = 0.0

    async def handle_bus_event(self, event: Event, done: dict[str, Any] | None = None) -> None:
        """Post what ``event`` means in Slack.

        ``done`` is kept across retries of the same event: a step that reached Slack records its
        result there, and a retry (after a later step failed) reuses it instead of posting twice.
        """
        kind = str(event.type)
        done = {} if done is None else done
        if kind == EventType.conversation_escalated.value:
            await self.post_escalation(event, done)
        elif kind == EventType.alert.value:
            await self.post_alert(event, done)
        elif kind == EventType.message_created.value:
            await self.mirror_message(event)
        else:
            await self.refresh_escalation(event.conversation_id)

    async def _escalation_thread(self, session: Any, conversation_id: int | None) -> ExternalThread | None:
        if conversation_id is None:
            return None
        return (
            await session.exec(
                select(ExternalThread)
                .where(ExternalThread.kind == THREAD_KIND, ExternalThread.conversation_id == conversation_id,
                       ExternalThread.purpose == ESCALATION)
                .order_by(col(ExternalThread.id).desc())
                .limit(1)
            )
        ).first()

    async def _escalation_message(self, session: Any, conversation_id: int) -> tuple[str, list[dict[str, Any]]] | None:
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None:
            return None
        contact = await session.get(Contact, conversation.contact_id)
        customer_name = contact.display_name if contact and contact.display_name else "Customer"
        if contact is not None and contact.customer_id is not None:
            customer = await session.get(Customer, contact.customer_id)
            if customer is not None:
                customer_name = f"{customer.display_name} (verified)"
        if contact is not None and contact.username:
            customer_name += f" @{contact.username}"
        order_doc = None
        order_id = _order_of(conversation, contact)
        if order_id is None and contact is not None and contact.customer_id is not None:
            recent = await orders_for_customer(session, contact.customer_id, limit=1)
            order_id = recent[0].id if recent else None
        if order_id is not None:
            order = await session.get(Order, order_id)
            if order is not None:
                order_doc = await order_document(session, order)
        state = await self._state_line(session, conversation)
        return blocks.escalation_alert(
            conversation_id=conversation_id,
            customer=customer_name,
            channel=conversation.channel.value if hasattr(conversation.channel, "value") else str(conversation.channel),
            intent=conversation.last_intent,
            priority=str(getattr(conversation.priority, "value", conversation.priority)),
            summary=conversation.summary,
            order=order_doc,
            inbox_url=self._inbox_url(conversation_id),
            state_line=state,
            resolved=conversation.status == ConversationStatus.resolved,
        )

    async def _state_line(self, session: Any, conversation: Conversation) -> str:
        if conversation.status == ConversationStatus.resolved:
            prefix = "Resolved"
        elif conversation.assignee_id is not None:
            prefix = "Claimed"
        else:
            return ("Unclaimed. Reply in this thread to answer the customer; "
                    "start with `note:` to keep it internal.")
        agent = await session.get(Agent, conversation.assignee_id) if conversation.assignee_id else None
        return f"{prefix}" + (f" (assigned to {_agent_label(agent)})" if agent is not None else "") + "."

    def _inbox_url(self, conversation_id: int) -> str:
        return f"{self.public_url}/inbox/c/{conversation_id}"

    async def post_escalation(self, event: Event, done: dict[str, Any] | None = None) -> None:
        done = {} if done is None else done
        conversation_id = event.conversation_id
        if self.alert_channel is None or conversation_id is None:
            return
        async with self.sessions() as session:
            existing = await self._escalation_thread(session, conversation_id)
            rendered = await self._escalation_message(session, conversation_id)
        if rendered is None:
            return
        text, alert_blocks = rendered
        if existing is not None:  # escalated again: say so in the thread, refresh the alert
            if "escalated_again" not in done:  # a retry after the update failed must not say it twice
                reason = blocks.escape(str(event.data.get("reason") or "escalated again"))
                await self.client.chat_postMessage(channel=existing.channel_ref, thread_ts=existing.thread_ref,
                                                   text=f":rotating_light: Escalated again ({reason}).")
                done["escalated_again"] = True
            await self.client.chat_update(channel=existing.channel_ref, ts=existing.thread_ref, text=text,
                                          blocks=alert_blocks)
            return
        posted = await self._post_once(done, "alert", channel=self.alert_channel, text=text, blocks=alert_blocks,
                                       unfurl_links=False, unfurl_media=False)
        async with self.sessions() as session:
            thread_link(session, THREAD_KIND, posted[0], posted[1], conversation_id=conversation_id,
                        purpose=ESCALATION)
            await session.commit()
        log.info("slack: escalation alert posted for conversation %s", conversation_id)

    async def refresh_escalation(self, conversation_id: int | None) -> None:
        """Re-render an escalation alert after a claim, assignment or status change."""
        if conversation_id is None:
            return
        async with self.sessions() as session:
            thread = await self._escalation_thread(session, conversation_id)
            if thread is None:
                return
            rendered = await self._escalation_message(session, conversation_id)
        if rendered is None:
            return
        text, alert_blocks = rendered
        await self.client.chat_update(channel=thread.channel_ref, ts=thread.thread_ref, text=text, blocks=alert_blocks)

    async def _post_once(self, done: dict[str, Any], step: str, **message: Any) -> tuple[str, str]:
        """chat.postMessage unless this step of the job reached Slack already; (channel, ts)."""
        if step not in done:
            posted = await self.client.chat_postMessage(**message)
            done[step] = (str(posted["channel"]), str(posted["ts"]))
        channel, ts = done[step]
        return channel, ts

    async def post_alert(self, event: Event, done: dict[str, Any] | None = None) -> None:
        done = {} if done is None else done
        data = dict(event.data or {})
        kind = str(data.get("kind") or "")
        if self.alert_channel is None or kind == ESCALATION:
            return  # escalations are announced by conversation.escalated
        inbox_url = self._inbox_url(event.conversation_id) if event.conversation_id else None
        purpose: str | None = None
        async with self.sessions() as session:
            thread = await self._escalation_thread(session, event.conversation_id)
            if kind in _SHIPMENT_KINDS:
                order_doc = None
                order_id = data.get("order_id")
                if isinstance(order_id, int):
                    order = await session.get(Order, order_id)
                    order_doc = await order_document(session, order) if order is not None else None
                text, alert_blocks = blocks.shipment_alert(
                    kind, order_name=str(data.get("order_name") or (order_doc or {}).get("name") or "?"),
                    shipments=[s for s in data.get("shipments") or [] if isinstance(s, dict)],
                    order=order_doc, inbox_url=inbox_url)
            elif kind == "return_approval":
                rendered = await self._return_alert(session, data, inbox_url)
                if rendered is None:
                    return
                text, alert_blocks, rma_id = rendered
                purpose, thread = f"return:{rma_id}", None  # its own message, so its buttons can be bound to it
            else:
                title = _ALERT_TITLES.get(kind, f"Alert: {kind or 'unknown'}")
                lines = [f"{k.replace('_', ' ')}: {v}" for k, v in data.items()
                         if k != "kind" and isinstance(v, (str, int, float)) and not isinstance(v, bool)]
                text, alert_blocks = blocks.simple_alert(title, lines, inbox_url=inbox_url)
        if thread is not None:  # an alert about an escalated conversation goes into its thread
            await self.client.chat_postMessage(channel=thread.channel_ref, thread_ts=thread.thread_ref, text=text,
                                               blocks=alert_blocks, unfurl_links=False)
            return
        posted = await self._post_once(done, "alert", channel=self.alert_channel, text=text, blocks=alert_blocks,
                                       unfurl_links=False, unfurl_media=False)
        if purpose is not None:
            async with self.sessions() as session:
                thread_link(session, THREAD_KIND, posted[0], posted[1], conversation_id=event.conversation_id,
                            purpose=purpose)
                await session.commit()

    async def _return_alert(self, session: Any, data: Mapping[str, Any],
                            inbox_url: str | None) -> tuple[str, list[dict[str, Any]], int] | None:
        rma_id = data.get("rma_id")
        rma = await session.get(ReturnAuthorization, rma_id) if isinstance(rma_id, int) else None
        if rma is None or rma.id is None:
            log.warning("slack: return_approval alert without a known rma_id")
            return None
        order = await session.get(Order, rma.order_id)
        rows = (
            await session.exec(
                select(ReturnLine, OrderLine)
                .join(OrderLine, col(OrderLine.id) == col(ReturnLine.order_line_id))
                .where(ReturnLine.rma_id == rma.id)
                .order_by(col(ReturnLine.id))
            )
        ).all()
        items = [f"{rl.quantity} × {ol.title} ({str(getattr(rl.reason, 'value', rl.reason)).replace('_', ' ')})"
                 for rl, ol in rows]
        notes = [rl.reason_note for rl, _ in rows if rl.reason_note]
        amount = rma.credit_amount if str(getattr(rma.resolution, "value", rma.resolution)) == "store_credit" else rma.refund_amount
        text, alert_blocks = blocks.return_approval_alert(
            rma_id=rma.id, rma_number=rma.rma_number, order_name=order.name if order else "?",
            resolution=str(getattr(rma.resolution, "value", rma.resolution)),
            method=str(getattr(rma.method, "value", rma.method)),
            amount=f"{amount} {rma.currency}", items=items, reason_notes=notes, inbox_url=inbox_url)
        return text, alert_blocks, rma.id

    async def mirror_message(self, event: Event) -> None:
        """Copy a customer's message into the conversation's escalation thread, if it has one."""
        message_id = (event.data or {}).get("message_id")
        if event.conversation_id is None or not isinstance(message_id, int):
            return
        async with self.sessions() as session:
            thread = await self._escalation_thread(session, event.conversation_id)
            if thread is None:
                return
            message = await session.get(Message, message_id)
            if message is None or message.author != Author.customer or message.is_internal:
                return
            conversation = await session.get(Conversation, message.conversation_id)
            contact = await session.get(Contact, conversation.contact_id) if conversation else None
        author = (contact.display_name if contact and contact.display_name else "Customer")
        files = [str(a.get("filename") or a.get("kind") or "file") for a in message.attachments or []]
        await self.client.chat_postMessage(channel=thread.channel_ref, thread_ts=thread.thread_ref,
                                           text=blocks.mirrored_message(author, message.text, files),
                                           unfurl_links=False, unfurl_media=False)


def _is_object_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _check_shape(body: Any) -> str | None:
    """Why a signed body cannot be a Slack request bolt can dispatch, or None.

    Slack always sends these shapes; checking them keeps bolt's own parsing from failing
    (a 500, which Slack would retry) on a body that is signed but malformed.
    """
    if not isinstance(body, dict):
        return "not an object"
    if body.get("type") == "event_callback":
        if not isinstance(body.get("event"), dict):
            return "event must be an object"
        if "authorizations" in body and not _is_object_list(body["authorizations"]):
            return "authorizations must be a list of objects"
    if "actions" in body and not _is_object_list(body["actions"]):
        return "actions must be a list of objects"
    for key in ("user", "channel", "container", "message", "team", "view"):
        if body.get("type") in ("block_actions", "view_submission", "shortcut", "message_action") \
                and key in body and body[key] is not None and not isinstance(body[key], dict):
            return f"{key} must be an object"
    return None


def _order_of(conversation: Conversation, contact: Contact | None) -> int | None:
    """The order the bot was talking about (only set after the customer was verified)."""
    state = DialogState.from_json(conversation.bot_state)
    order_id = state.slots.get("order_id")
    if isinstance(order_id, int):
        return order_id
    if state.verified_order_ids:
        return int(state.verified_order_ids[-1])
    return None


_TOKEN = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")


def _api_error(exc: SlackApiError) -> tuple[str | None, int | None]:
    """Slack's error code and the HTTP status of a refused call (either may be unknown)."""
    response = exc.response
    code = None
    if hasattr(response, "get"):  # a SlackResponse; slack_sdk passes the raw aiohttp response for a bad body
        try:
            code = response.get("error")
        except (AttributeError, TypeError):
            code = None
    status = getattr(response, "status_code", None)
    if status is None:
        status = getattr(response, "status", None)
    return (code if isinstance(code, str) else None), (status if isinstance(status, int) else None)


def _transient_reason(exc: BaseException) -> str | None:
    """Why posting failed for now (worth retrying), or None for a refusal that will not change."""
    if isinstance(exc, SlackApiError):
        code, status = _api_error(exc)
        if status == 429 or (status is not None and status >= 500) or code in _TRANSIENT_CODES:
            return _slack_error(exc)
        return None
    if isinstance(exc, _TRANSPORT_ERRORS):
        return type(exc).__name__
    return None


def _retry_after(exc: BaseException) -> float:
    """The ``Retry-After`` seconds of a rate-limited call, else 0."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if not isinstance(exc, SlackApiError) or not hasattr(headers, "items"):
        return 0.0
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            value = value[0] if isinstance(value, (list, tuple)) and value else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return 0.0
    return 0.0


def _slack_error(exc: BaseException) -> str:
    """One loggable line about a failed Slack call: the API error code, or the exception's type.

    Never the exception's text: it can quote a response body (customer text) or a token.
    """
    if isinstance(exc, SlackApiError):
        code, status = _api_error(exc)
        return f"{_TOKEN.sub('<token>', code or 'error')[:80]} (HTTP {status if status is not None else '?'})"
    return type(exc).__name__
