"""Slack: merchant alerts, escalation threads where agents answer customers, ``/order``.

Slack is where the shop's people are, not a customer channel. The connector

* mounts ``POST /slack/events`` (events, interactivity and slash commands), authenticated
  before anything parses it: the ``v0`` signature over the raw body with
  ``SHOPDESK_SLACK_SIGNING_SECRET`` and a timestamp within five minutes, else 401 and nothing
  happens. slack-bolt's ``AsyncApp`` then dispatches it (it checks again). With
  ``SHOPDESK_SLACK_APP_TOKEN`` set, Socket Mode delivers the same requests over a websocket;
* turns a **thread reply** into that agent's reply to the customer (through the outbox), or
  into an internal note when it starts with ``note:``;
* handles the alerts' buttons: Claim / Resolve (inbox actions), Approve / Reject of a return
  (the ``return_decide`` action);
* answers ``/order <number or email>`` privately (ephemeral) with the order card, and
  ``/returns <SKU or product>`` with the product's return rate, top reasons and customers' words;
* feeds alerts into the durable outbox and delivers them with :class:`SlackAlertSender`
  (see ``send``).

Idempotency: every effect is written in one transaction together with a delivery row keyed
by the request's own id (``event_id`` for events, user + ``action_ts`` for button clicks), so
a Slack retry or a replayed body finds the row and does nothing a second time. Listeners run
before Slack gets its answer (``process_before_response``; they take milliseconds, well
inside Slack's 3 s): if one fails, its transaction (delivery row included) rolls back and
Slack hears 503 and retries, so an agent's thread reply is never acknowledged and then lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import BotSettings
from bot.connectors.slack import blocks
from bot.connectors.slack.admin import LINK_HINT, AgentDirectory, agent_label
from bot.connectors.slack.send import ESCALATION, THREAD_KIND, SlackAlertSender, notice_for
from bot.connectors.slack.setup import (
    EVENTS_PATH,
    TRANSPORT_ERRORS,
    is_signed,
    make_client,
    quiet_client_logs,
    slack_error,
)
from bot.connectors.slack.translate import Click, check_shape, order_query, read_click, read_thread_post
from inbox import slack_cards
from inbox.actions.conversation_assign import conversation_claim
from inbox.actions.conversation_status import conversation_status
from inbox.actions.delivery_record import DuplicateDelivery, delivery_record
from inbox.actions.message_note import message_note
from inbox.actions.message_send import agent_reply
from inbox.actions.return_decide import return_decide
from inbox.alerts.text import returns_link
from inbox.events import Event, EventBus
from inbox.messages import InvalidMessage
from inbox.models import Agent, Channel, ConversationStatus
from inbox.outbox import NoticeRequest, feed_notices, pending_count
from inbox.queries.conversations import get_conversation
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["MAX_BODY_BYTES", "ORDER_COMMAND", "RETURNS_COMMAND", "SlackConnector"]

log = logging.getLogger("shopdesk.slack")

MAX_BODY_BYTES = 1024 * 1024
ORDER_COMMAND = "/order"
RETURNS_COMMAND = "/returns"
RETURNS_DAYS = 30
DELIVERY_SOURCE = "slack"


class SlackConnector:
    """Bolt app, ``/slack/events`` route, thread replies, buttons and ``/order``; its
    :attr:`sender` delivers the alerts the outbox holds for Slack."""

    name = "slack"

    def __init__(self, *, settings: BotSettings, sessions: async_sessionmaker[AsyncSession], bus: EventBus, client: AsyncWebClient | None = None,
                 retry_base: float = 2.0, retry_cap: float = 300.0, retry_give_up: float = 3600.0) -> None:
        bolt_log = quiet_client_logs()
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        bus.bind(sessions)  # action writes made here announce their events after commit
        self.client = client or make_client(settings)
        self.alert_channel = (settings.slack_alert_channel or "").strip() or None
        self.public_url = settings.public_url.rstrip("/")
        self.max_chars = settings.max_message_chars
        if settings.slack_signing_secret is None:
            raise ValueError("SHOPDESK_SLACK_SIGNING_SECRET is not set")
        secret = settings.slack_signing_secret.get_secret_value()
        self.verifier = SignatureVerifier(secret)
        self.bolt = AsyncApp(signing_secret=secret, client=self.client, process_before_response=True,
                             logger=bolt_log)
        self._register_listeners()
        self._app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
        self.socket_handler: Any = None
        self.agents = AgentDirectory(sessions, self.client)
        self.sender = SlackAlertSender(client=self.client, sessions=sessions, alert_channel=self.alert_channel,
                                       public_url=self.public_url, retry_base=retry_base, retry_cap=retry_cap,
                                       retry_give_up=retry_give_up, locale=settings.default_language,
                                       timezone=settings.shop_timezone, shop_name=settings.shop_name)
        # alerts are written into the outbox by the transaction that raised them
        feed_notices(sessions, Channel.slack, self.select_notice)
        if self.alert_channel is None:
            log.warning("SHOPDESK_SLACK_ALERT_CHANNEL is not set: no Slack alerts will be posted")

    def select_notice(self, event: Event) -> NoticeRequest | None:
        return notice_for(event) if self.alert_channel is not None else None

    # -- wiring ------------------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_post(EVENTS_PATH, self.handle_http)

    def make_socket_handler(self) -> Any:
        """Socket Mode handler for ``SHOPDESK_SLACK_APP_TOKEN`` (built in start: it needs a loop)."""
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        return AsyncSocketModeHandler(self.bolt, app_token=self._app_token)

    async def start(self) -> None:
        if self._app_token:
            self.socket_handler = self.make_socket_handler()
            try:
                await self.socket_handler.connect_async()
                log.info("slack: Socket Mode connected")
            except Exception as exc:  # no network: the HTTP route still works
                log.error("slack: Socket Mode could not connect (%s)", type(exc).__name__)

    async def stop(self) -> None:
        left = await self.waiting_alerts()
        if left:
            log.warning("slack: %d alert(s) not posted at shutdown; they wait in the outbox for the next start", left)
        if self.socket_handler is not None:
            try:
                await self.socket_handler.close_async()
            except Exception:
                log.warning("slack: closing Socket Mode failed")
            self.socket_handler = None

    async def waiting_alerts(self) -> int:
        """How many Slack notices the outbox still holds (0 when the database cannot say)."""
        try:
            async with self.sessions() as session:
                return await pending_count(session, Channel.slack)
        except (SQLAlchemyError, OSError):
            return 0

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
        if not is_signed(self.verifier, body, request.headers):
            log.warning("slack: request with a bad signature or stale timestamp refused (from %s)", request.remote)
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            text = body.decode("utf-8")
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=dict(request.headers))
        except (UnicodeDecodeError, ValueError, TypeError, AttributeError, RecursionError):
            return web.json_response({"error": "malformed request body"}, status=400)
        problem = check_shape(bolt_request.body)
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

        @bolt.command(RETURNS_COMMAND)
        async def on_returns(ack: Any, command: dict[str, Any]) -> None:
            text, reply_blocks = await self.returns_reply(str(command.get("user_id") or ""),
                                                          str(command.get("text") or ""))
            await ack(text=text, blocks=reply_blocks, response_type="ephemeral")

    async def _ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except (SlackClientError, *TRANSPORT_ERRORS) as exc:
            log.warning("slack: ephemeral message failed (%s)", slack_error(exc))

    async def agent_for(self, slack_user_id: str) -> Agent | None:
        return await self.agents.agent_for(slack_user_id)

    # -- thread replies ------------------------------------------------------------------------------

    async def handle_thread_message(self, event: Mapping[str, Any], event_id: str) -> str:
        """A message in an escalation thread: the agent's reply or note. Returns what happened."""
        post = read_thread_post(event, event_id)
        if post is None:
            return "ignored"
        async with self.sessions() as session:
            thread = await slack_cards.thread_at(session, THREAD_KIND, post.channel, post.thread_ts)
        if thread is None or thread.purpose != ESCALATION or thread.conversation_id is None:
            return "ignored"
        agent = await self.agent_for(post.user)
        notice: str | None = None
        outcome = "ignored"
        try:
            async with self.sessions() as session:
                await delivery_record(session, source=DELIVERY_SOURCE, key=post.delivery_key, topic="message")
                if agent is None:
                    notice = LINK_HINT
                else:
                    conversation = await get_conversation(session, agent, thread.conversation_id)
                    if conversation is None:
                        notice = "You cannot see this conversation in the inbox, so your reply was not sent."
                    elif post.is_note:
                        await message_note(session, conversation, agent, post.text, max_chars=self.max_chars)
                        outcome = "note"
                    else:
                        await agent_reply(session, conversation, agent, post.text, max_chars=self.max_chars)
                        outcome = "reply"
                await session.commit()
        except DuplicateDelivery:
            log.info("slack: event %s was handled already", event_id)
            return "duplicate"
        except InvalidMessage as exc:
            notice = f"Not sent: {exc.reason}."
        if notice:
            await self._ephemeral(post.channel, post.user, notice, thread_ts=post.thread_ts)
        return outcome

    # -- buttons -------------------------------------------------------------------------------------

    async def _button_agent(self, click: Click) -> Agent | None:
        agent = await self.agent_for(click.user_id)
        if agent is None:
            await self._ephemeral(click.channel, click.user_id, LINK_HINT)
        return agent

    async def handle_conversation_button(self, body: Mapping[str, Any], verb: str) -> str:
        """Claim or Resolve on an escalation alert; the alert itself is refreshed through the outbox."""
        click = read_click(body)
        if click is None or not click.value.isdigit():
            return "ignored"
        async with self.sessions() as session:
            thread = await slack_cards.thread_at(session, THREAD_KIND, click.channel, click.message_ts)
        if thread is None or thread.purpose != ESCALATION or thread.conversation_id != int(click.value):
            log.warning("slack: a %s button that does not belong to its alert was ignored", verb)
            return "ignored"
        agent = await self._button_agent(click)
        if agent is None:
            return "unknown user"
        notice: str | None = None
        outcome = verb
        try:
            async with self.sessions() as session:
                await delivery_record(session, source=DELIVERY_SOURCE, key=click.delivery_key, topic=verb)
                conversation = await get_conversation(session, agent, thread.conversation_id)
                if conversation is None:
                    notice, outcome = "You cannot see this conversation in the inbox.", "denied"
                elif verb == "claim":
                    try:
                        await conversation_claim(session, conversation, agent)
                    except Refused as refusal:
                        if refusal.code != "taken":
                            raise
                        holder = await slack_cards.agent_by_id(session, conversation.assignee_id)
                        who = holder.name if holder is not None and holder.name else "another agent"
                        notice, outcome = f"{who} has this conversation already.", "taken"
                elif conversation.status != ConversationStatus.resolved:
                    await conversation_status(session, conversation, ConversationStatus.resolved, by=agent,
                                              survey=True)
                await session.commit()
        except DuplicateDelivery:
            return "duplicate"
        except Refused as exc:
            notice, outcome = exc.message, "denied"
        if notice:
            await self._ephemeral(click.channel, click.user_id, notice)
        return outcome

    async def handle_return_button(self, body: Mapping[str, Any], *, approve: bool) -> str:
        """Approve / Reject on a return alert: the ``return_decide`` action, then the alert's last line."""
        click = read_click(body)
        if click is None or not click.value.isdigit():
            return "ignored"
        rma_id = int(click.value)
        async with self.sessions() as session:
            thread = await slack_cards.thread_at(session, THREAD_KIND, click.channel, click.message_ts)
        if thread is None or thread.purpose != f"return:{rma_id}":
            log.warning("slack: a return button that does not belong to its alert was ignored")
            return "ignored"
        agent = await self._button_agent(click)
        if agent is None:
            return "unknown user"
        verb = "approved" if approve else "rejected"
        try:
            async with self.sessions() as session:
                await delivery_record(session, source=DELIVERY_SOURCE, key=click.delivery_key, topic=f"return.{verb}")
                await return_decide(session, rma_id=rma_id, approve=approve, agent=agent,
                                    conversation_id=thread.conversation_id, via="slack")
                await session.commit()
        except DuplicateDelivery:
            return "duplicate"
        except Refused as exc:
            await self._ephemeral(click.channel, click.user_id, f"Nothing changed: {exc.message}.")
            return "invalid"
        line = blocks.return_decided_line(approve=approve, agent=agent_label(agent), locale=self.settings.default_language)
        try:
            await self.client.chat_update(channel=click.channel, ts=click.message_ts, text=line,
                                          blocks=blocks.return_decided(click.message_blocks, line=line))
        except (SlackClientError, *TRANSPORT_ERRORS) as exc:
            log.warning("slack: updating a return alert failed (%s)", slack_error(exc))
        return verb

    # -- /order --------------------------------------------------------------------------------------

    async def order_reply(self, slack_user_id: str, query: str) -> tuple[str, list[dict[str, Any]] | None]:
        """The ephemeral answer to ``/order <number or email>`` (agents only)."""
        agent = await self.agent_for(slack_user_id)
        if agent is None:
            return "Only Shopdesk agents can look up orders. " + LINK_HINT, None
        query = order_query(query)
        if not query:
            return "Usage: `/order 1001` or `/order customer@example.com`", None
        async with self.sessions() as session:
            found = await slack_cards.order_lookup(session, query)
        if found is None:
            return blocks.order_lookup_reply(query, None)
        inbox_url = f"{self.public_url}/inbox/c/{found.conversation_id}" if found.conversation_id else None
        return blocks.order_lookup_reply(query, found.order, others=found.others, inbox_url=inbox_url,
                                         locale=self.settings.default_language, tz=self.settings.shop_timezone)

    # -- /returns ------------------------------------------------------------------------------------

    async def returns_reply(self, slack_user_id: str, query: str) -> tuple[str, list[dict[str, Any]] | None]:
        """The ephemeral answer to ``/returns <SKU or product>`` (agents only): the last 30 days."""
        agent = await self.agent_for(slack_user_id)
        if agent is None:
            return "Only Shopdesk agents can look up returns. " + LINK_HINT, None
        query = order_query(query)
        if not query:
            return "Usage: `/returns TEE-M` or `/returns linen tee`", None
        async with self.sessions() as session:
            card, candidates = await slack_cards.returns_lookup(session, query, utcnow(), days=RETURNS_DAYS)
        url = f"{self.public_url}{returns_link(card.product_key)}" if card is not None else None
        return blocks.returns_reply(query, card, candidates, url=url, locale=self.settings.default_language)
