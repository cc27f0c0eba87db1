"""Slack output: alerts, escalation threads and their state line, through the durable outbox.

:func:`notice_for` picks the committed events Slack cares about; ``inbox.outbox.feed_notices``
writes one outbox notice per such event in the transaction that made it, so an alert
survives a restart and exists only if that transaction committed. The outbox dispatcher
hands notices to :class:`SlackAlertSender` in order (per conversation; alerts about no
conversation form one stream), so an escalation alert and the thread updates that follow it
keep their order, while a Slack outage never holds up a customer's replies.

* ``conversation.escalated`` → an alert in ``SHOPDESK_SLACK_ALERT_CHANNEL`` (customer, intent,
  order card, the bot's summary; Claim / Resolve / Open in inbox), remembered as an
  ``ExternalThread(purpose="escalation")``; escalated again → a line in its thread and the
  alert refreshed.
* ``alert`` → late or problem shipments, returns waiting for manual approval (Approve / Reject,
  its own message remembered as ``purpose="return:<rma id>"`` so a button only acts on the
  alert it is on), other alerts as a titled list; into the conversation's escalation thread
  when it has one.
* a customer's later message → copied into the escalation's thread; claims, assignments and
  status changes → the alert's state line refreshed.
* ``evidence.shared`` (an agent's "Attach to Slack thread") → the dispute evidence bundle, PDF
  and JSON, uploaded into the conversation's thread with ``files_upload_v2`` (once: the upload
  is a recorded step).

A 429 is not an outage: the sender's client does not sleep through ``Retry-After`` itself (the
outbox does, without holding a send slot): the notice waits exactly ``Retry-After`` (at least
``retry_base`` when Slack gives none), that wait never counts towards giving up, and every other
Slack notice waits for it too (Slack's limits are per method and workspace), also after a
restart (the outbox writes the wait into the pending rows). The client still retries
connection and server errors. When Slack stays unavailable beyond that (no connection, a
timeout, HTTP 5xx), the notice is retried with exponential backoff (``retry_base`` seconds,
doubling, at most ``retry_cap``); a notice still undelivered ``retry_give_up`` seconds after
it was written is given up with one error line. Slack's permanent refusals
(``channel_not_found``, ``invalid_auth``, ``not_in_channel``, ...) drop the notice at once, with
one line naming the error code. A step that reached Slack is recorded in ``notice.progress``
and never repeated by a retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.connectors.slack import blocks
from bot.connectors.slack.admin import agent_label
from bot.connectors.slack.setup import TRANSPORT_ERRORS, api_error, slack_error
from bot.dialog.turn import DialogState
from inbox import slack_cards
from inbox.actions.thread_record import thread_record
from inbox.alerts.text import describe
from inbox.channels import HOLD_CHANNEL, Notice, PermanentFailure, RetryLater
from inbox.events import Event, EventType
from inbox.models import Author, Channel
from inbox.outbox import NoticeRequest
from inbox.queries.evidence import evidence_json_bytes, file_stem, load_evidence_by_ids
from shopbase.clock import utcnow

__all__ = ["ESCALATION", "THREAD_KIND", "SlackAlertSender", "notice_for", "order_of"]

log = logging.getLogger("shopdesk.slack")

THREAD_KIND = "slack"
ESCALATION = "escalation"
_SHIPMENT_KINDS = {"late_shipment", "shipment_exception"}
#: alert-rule kinds rendered by ``inbox.alerts.text.describe`` (shipments have their own card above)
_RULE_KINDS = frozenset({"sla_breach", "return_spike", "low_stock", "daily_digest"})
#: Slack error codes that say "try again later" rather than "this request is wrong"
_TRANSIENT_CODES = frozenset({"ratelimited", "fatal_error", "internal_error", "service_unavailable",
                              "request_timeout"})
_FOLLOW_UP_CHANGES = ("status", "handed_back", "reopened")


def notice_for(event: Event) -> NoticeRequest | None:
    """The Slack notice an event calls for (pure): alerts always, thread updates as follow-ups."""
    kind = str(event.type)
    data = event.data or {}
    # stored as JSON with the row: anything a handler put in an alert that JSON lacks becomes text
    payload = {"event": json.loads(json.dumps(event.to_json(), default=str))}
    if kind == EventType.conversation_escalated.value:
        return NoticeRequest(payload)
    if kind == EventType.alert.value:
        return None if data.get("kind") == ESCALATION else NoticeRequest(payload)  # escalations: see above
    if kind == EventType.message_created.value:
        if data.get("author") == Author.customer.value and not data.get("is_internal"):
            return NoticeRequest(payload, follow_up=True)
        return None
    if kind == EventType.evidence_shared.value:
        return NoticeRequest(payload, follow_up=True)  # only into an existing thread
    if kind == EventType.conversation_assigned.value or (
            kind == EventType.conversation_updated.value and data.get("change") in _FOLLOW_UP_CHANGES):
        return NoticeRequest(payload, follow_up=True)
    return None


def order_of(bot_state: dict[str, Any]) -> int | None:
    """The order the bot was talking about (only set after the customer was verified)."""
    state = DialogState.from_json(bot_state)
    order_id = state.slots.get("order_id")
    if isinstance(order_id, int):
        return order_id
    if state.verified_order_ids:
        return int(state.verified_order_ids[-1])
    return None


def _transient_reason(exc: BaseException) -> str | None:
    """Why posting failed for now (worth retrying), or None for a refusal that will not change."""
    if isinstance(exc, SlackApiError):
        code, status = api_error(exc)
        if status == 429 or (status is not None and status >= 500) or code in _TRANSIENT_CODES:
            return slack_error(exc)
        return None
    if isinstance(exc, TRANSPORT_ERRORS):
        return type(exc).__name__
    return None


def _retry_after(exc: BaseException) -> float:
    """The ``Retry-After`` seconds of a rate-limited call, else 0."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if not isinstance(exc, SlackApiError) or headers is None or not hasattr(headers, "items"):
        return 0.0
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            value = value[0] if isinstance(value, (list, tuple)) and value else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return 0.0
    return 0.0


def _rate_limited(exc: BaseException) -> bool:
    if not isinstance(exc, SlackApiError):
        return False
    code, status = api_error(exc)
    return status == 429 or code == "ratelimited"


def _outbox_client(client: AsyncWebClient) -> AsyncWebClient:
    """``client`` without its rate-limit retry handler: the outbox waits out a 429, not the send."""
    handlers = [h for h in client.retry_handlers if not isinstance(h, AsyncRateLimitErrorRetryHandler)]
    if len(handlers) == len(client.retry_handlers):
        return client
    return AsyncWebClient(token=client.token, base_url=client.base_url, timeout=client.timeout,
                          headers=dict(client.headers), retry_handlers=handlers, logger=client.logger)


def _describe(event: Event) -> str:
    return f"{event.type} (conversation {event.conversation_id})"


class SlackAlertSender:
    """The outbox's :class:`~inbox.channels.NoticeSender` for ``Channel.slack``."""

    channel = Channel.slack

    def __init__(self, *, client: AsyncWebClient, sessions: async_sessionmaker[AsyncSession], alert_channel: str | None, public_url: str,
                 retry_base: float = 2.0, retry_cap: float = 300.0, retry_give_up: float = 3600.0,
                 locale: str = "en", timezone: str = "UTC", shop_name: str = "") -> None:
        self.client = _outbox_client(client)
        self.shop_name = shop_name
        #: amounts and dates in the alerts: the shop's default language and time zone
        self.locale = locale
        self.timezone = timezone
        self.sessions = sessions
        self.alert_channel = alert_channel
        self.public_url = public_url.rstrip("/")
        #: backoff for notices Slack could not take: first wait, longest wait, when to give up (seconds)
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.retry_give_up = retry_give_up
        self._delay = 0.0  # the last backoff wait; 0 while Slack takes our posts
        self._failing_since: float | None = None  # monotonic time of the first failure of an outage
        self._last_reason: str | None = None  # why the last attempt failed, during an outage
        self._held_until = 0.0  # monotonic time until which Slack asked us to wait (429)

    # -- the outbox's entry ---------------------------------------------------------------------

    async def send_notice(self, notice: Notice) -> str | None:
        try:
            event = Event.from_json(dict(notice.payload.get("event") or {}))
        except (KeyError, TypeError, ValueError):
            raise PermanentFailure("not a Slack notice") from None
        age = max(0.0, (utcnow() - notice.created_at).total_seconds())
        attempt = notice.attempts + 1
        held = self._held_until - time.monotonic()
        if held > 0:  # Slack asked us to wait: this notice came due before the wait is over
            raise RetryLater(held, "slack rate limit (429): waiting out Retry-After", rate_limited=True)
        if self._failing_since is not None and age > self.retry_give_up:
            log.error("slack: gave up on %s after %d attempt(s): %s", _describe(event), notice.attempts,
                      self._last_reason or "the Slack Web API is still unavailable")
            raise PermanentFailure("gave up: Slack unavailable")
        try:
            posted = await self.handle_event(event, notice.progress)
        except asyncio.CancelledError:
            raise
        except PermanentFailure:
            raise
        except Exception as exc:  # sorted below; one log line, never a traceback
            if _rate_limited(exc):  # not an outage: wait as Slack asks, never counted towards giving up
                wait = _retry_after(exc) or self.retry_base
                self._held_until = max(self._held_until, time.monotonic() + wait)
                log.warning("slack: %s; %s waits %.3g s as Slack asks", slack_error(exc), _describe(event), wait)
                raise RetryLater(wait, f"slack rate limit: {slack_error(exc)}", rate_limited=True,
                                 hold=HOLD_CHANNEL) from None
            reason = _transient_reason(exc)
            if reason is None:
                if isinstance(exc, SlackApiError):
                    self._note_slack_answered()  # Slack is there; it refused this one
                    log.error("slack: %s dropped: %s", _describe(event), slack_error(exc))
                    raise PermanentFailure(f"slack refused: {slack_error(exc)}") from None
                raise  # not Slack's answer (the database, say): the outbox backs off and retries
            delay = self.retry_base if self._delay <= 0 else min(self._delay * 2, self.retry_cap)
            delay = max(delay, min(_retry_after(exc), self.retry_cap))  # a 429 says how long to wait
            self._delay = delay
            self._last_reason = reason
            now = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
                log.warning("slack: the Slack Web API is unavailable: %s; keeping %s, retrying in %.3g s",
                            reason, _describe(event), delay)
            else:
                log.debug("slack: still unavailable: %s; retrying %s in %.3g s", reason, _describe(event), delay)
            if age + delay > self.retry_give_up:
                log.error("slack: gave up on %s after %d attempt(s): %s", _describe(event), attempt, reason)
                raise PermanentFailure(f"gave up: {reason}") from None
            raise RetryLater(delay, reason) from None
        self._note_slack_answered()
        return posted

    def _note_slack_answered(self) -> None:
        """Slack answered: an outage (if any) is over and the backoff starts afresh."""
        if self._failing_since is not None:
            log.info("slack: the Slack Web API is reachable again (after %.0f s)", time.monotonic() - self._failing_since)
        self._failing_since = None
        self._delay = 0.0
        self._last_reason = None

    async def handle_event(self, event: Event, done: dict[str, Any] | None = None) -> str | None:
        """Post what ``event`` means in Slack; ``done`` records the steps that reached Slack
        (kept across retries, so a retry after a later step failed does not post twice)."""
        kind = str(event.type)
        done = {} if done is None else done
        if kind == EventType.conversation_escalated.value:
            return await self.post_escalation(event, done)
        if kind == EventType.alert.value:
            return await self.post_alert(event, done)
        if kind == EventType.message_created.value:
            return await self.mirror_message(event)
        if kind == EventType.evidence_shared.value:
            return await self.upload_evidence(event, done)
        await self.refresh_escalation(event.conversation_id)
        return None

    # -- the dispute evidence bundle -----------------------------------------------------------

    async def upload_evidence(self, event: Event, done: dict[str, Any]) -> str | None:
        """Upload the bundle (PDF + JSON) into the conversation's thread; nothing to do without one."""
        if done.get("evidence"):
            return str(done["evidence"])
        conversation_id = event.conversation_id
        raw_order = (event.data or {}).get("order_id")
        order_id = raw_order if isinstance(raw_order, int) else None
        if conversation_id is None:
            raise PermanentFailure("evidence: no conversation")
        async with self.sessions() as session:
            thread = await slack_cards.escalation_thread(session, THREAD_KIND, conversation_id)
            evidence = await load_evidence_by_ids(session, conversation_id, order_id, now=utcnow())
        if thread is None or evidence is None:
            log.warning("slack: evidence for conversation %s not uploaded: no thread, or the order is no longer "
                        "the customer's", conversation_id)
            raise PermanentFailure("evidence: nothing to upload")
        # like every Slack post: no customer email or phone (the inbox's download has them)
        pdf = await asyncio.to_thread(_render_evidence_pdf, evidence, shop_name=self.shop_name,
                                      language=self.locale, timezone=self.timezone, contact_details=False)
        data = await asyncio.to_thread(evidence_json_bytes, evidence, shop_name=self.shop_name, contact_details=False)
        stem = file_stem(evidence)
        await self.client.files_upload_v2(
            channel=thread.channel_ref, thread_ts=thread.thread_ref,
            initial_comment=f"Dispute evidence for conversation #{conversation_id}"
                            + (f", order {evidence.orders[0].order.name}" if order_id is not None and evidence.orders
                               else "") + f": {len(evidence.messages)} messages.",
            file_uploads=[{"file": pdf, "filename": f"{stem}.pdf", "title": f"{stem}.pdf"},
                          {"file": data, "filename": f"{stem}.json", "title": f"{stem}.json"}],
        )
        done["evidence"] = f"{thread.channel_ref}:{thread.thread_ref}"
        return str(done["evidence"])

    # -- escalations ----------------------------------------------------------------------------

    def _inbox_url(self, conversation_id: int) -> str:
        return f"{self.public_url}/inbox/c/{conversation_id}"

    async def _escalation_message(self, session: AsyncSession, conversation_id: int) -> tuple[str, list[dict[str, Any]]] | None:
        card = await slack_cards.conversation_card(session, conversation_id, locale=self.locale)
        if card is None:
            return None
        order_id = order_of(card.bot_state)
        order_doc = await slack_cards.order_card(session, order_id if order_id is not None else card.recent_order_id)
        state = blocks.escalation_state_line(resolved=card.resolved, claimed=card.claimed,
                                             assignee=agent_label(card.assignee) if card.assignee else None,
                                             locale=self.locale)
        return blocks.escalation_alert(
            conversation_id=conversation_id, customer=card.customer, channel=card.channel, intent=card.intent,
            priority=card.priority, summary=card.summary, order=order_doc, inbox_url=self._inbox_url(conversation_id),
            state_line=state, resolved=card.resolved, locale=self.locale, tz=self.timezone,
        )

    async def post_escalation(self, event: Event, done: dict[str, Any]) -> str | None:
        conversation_id = event.conversation_id
        if self.alert_channel is None or conversation_id is None:
            return None
        async with self.sessions() as session:
            existing = await slack_cards.escalation_thread(session, THREAD_KIND, conversation_id)
            rendered = await self._escalation_message(session, conversation_id)
        if rendered is None:
            return None
        text, alert_blocks = rendered
        if existing is not None:  # escalated again: say so in the thread, refresh the alert
            if "escalated_again" not in done:  # a retry after the update failed must not say it twice
                reason = blocks.escape(str(event.data.get("reason") or "escalated again"))
                await self.client.chat_postMessage(channel=existing.channel_ref, thread_ts=existing.thread_ref,
                                                   text=f":rotating_light: Escalated again ({reason}).")
                done["escalated_again"] = True
            await self.client.chat_update(channel=existing.channel_ref, ts=existing.thread_ref, text=text,
                                          blocks=alert_blocks)
            return f"{existing.channel_ref}:{existing.thread_ref}"
        channel, ts = await self._post_once(done, "alert", channel=self.alert_channel, text=text, blocks=alert_blocks,
                                            unfurl_links=False, unfurl_media=False)
        await self._remember(channel, ts, conversation_id, ESCALATION)
        log.info("slack: escalation alert posted for conversation %s", conversation_id)
        return f"{channel}:{ts}"

    async def _remember(self, channel: str, ts: str, conversation_id: int | None, purpose: str) -> None:
        async with self.sessions() as session:
            await thread_record(session, kind=THREAD_KIND, channel_ref=channel, thread_ref=ts,
                                conversation_id=conversation_id, purpose=purpose)
            await session.commit()

    async def refresh_escalation(self, conversation_id: int | None) -> None:
        """Re-render an escalation alert after a claim, assignment or status change."""
        if conversation_id is None:
            return
        async with self.sessions() as session:
            thread = await slack_cards.escalation_thread(session, THREAD_KIND, conversation_id)
            if thread is None:
                return
            rendered = await self._escalation_message(session, conversation_id)
        if rendered is None:
            return
        text, alert_blocks = rendered
        await self.client.chat_update(channel=thread.channel_ref, ts=thread.thread_ref, text=text, blocks=alert_blocks)

    async def _post_once(self, done: dict[str, Any], step: str, **message: Any) -> tuple[str, str]:
        """chat.postMessage unless this step reached Slack already; (channel, ts)."""
        if step not in done:
            posted = await self.client.chat_postMessage(**message)
            done[step] = [str(posted["channel"]), str(posted["ts"])]
        channel, ts = done[step]
        return str(channel), str(ts)

    # -- other alerts ----------------------------------------------------------------------------

    async def post_alert(self, event: Event, done: dict[str, Any]) -> str | None:
        data = dict(event.data or {})
        kind = str(data.get("kind") or "")
        if self.alert_channel is None or kind == ESCALATION:
            return None  # escalations are announced by conversation.escalated
        inbox_url = self._inbox_url(event.conversation_id) if event.conversation_id else None
        purpose: str | None = None
        async with self.sessions() as session:
            thread = await slack_cards.escalation_thread(session, THREAD_KIND, event.conversation_id)
            if kind in _SHIPMENT_KINDS:
                order_id = data.get("order_id")
                order_doc = await slack_cards.order_card(session, order_id if isinstance(order_id, int) else None)
                text, alert_blocks = blocks.shipment_alert(
                    kind, order_name=str(data.get("order_name") or (order_doc or {}).get("name") or "?"),
                    shipments=[s for s in data.get("shipments") or [] if isinstance(s, dict)],
                    order=order_doc, inbox_url=inbox_url, locale=self.locale, tz=self.timezone)
            elif kind == "return_approval":
                rma_id = data.get("rma_id")
                card = await slack_cards.return_card(session, rma_id) if isinstance(rma_id, int) else None
                if card is None:
                    log.warning("slack: return_approval alert without a known rma_id")
                    return None
                text, alert_blocks = blocks.return_approval_alert(
                    rma_id=card.rma_id, rma_number=card.rma_number, order_name=card.order_name,
                    resolution=card.resolution, method=card.method, amount=card.amount, currency=card.currency,
                    items=card.items, reason_notes=card.reason_notes, inbox_url=inbox_url, locale=self.locale)
                purpose, thread = f"return:{card.rma_id}", None  # its own message, so its buttons can be bound to it
            elif kind in _RULE_KINDS:
                said = describe(kind, data, locale=self.locale, tz=self.timezone, conversation_id=event.conversation_id)
                text, alert_blocks = blocks.rule_alert(said.title, said.lines, url=f"{self.public_url}{said.link}",
                                                       button=said.button)
            else:
                title = f"Alert: {kind or 'unknown'}"
                lines = [f"{k.replace('_', ' ')}: {v}" for k, v in data.items()
                         if k != "kind" and isinstance(v, (str, int, float)) and not isinstance(v, bool)]
                text, alert_blocks = blocks.simple_alert(title, lines, inbox_url=inbox_url)
        if thread is not None:  # an alert about an escalated conversation goes into its thread
            posted = await self.client.chat_postMessage(channel=thread.channel_ref, thread_ts=thread.thread_ref,
                                                        text=text, blocks=alert_blocks, unfurl_links=False)
            return f"{posted.get('channel')}:{posted.get('ts')}"
        channel, ts = await self._post_once(done, "alert", channel=self.alert_channel, text=text, blocks=alert_blocks,
                                            unfurl_links=False, unfurl_media=False)
        if purpose is not None:
            await self._remember(channel, ts, event.conversation_id, purpose)
        return f"{channel}:{ts}"

    async def mirror_message(self, event: Event) -> str | None:
        """Copy a customer's message into the conversation's escalation thread, if it has one."""
        message_id = (event.data or {}).get("message_id")
        if event.conversation_id is None or not isinstance(message_id, int):
            return None
        async with self.sessions() as session:
            thread = await slack_cards.escalation_thread(session, THREAD_KIND, event.conversation_id)
            if thread is None:
                return None
            message = await slack_cards.mirrored_message(session, message_id)
        if message is None:
            return None
        posted = await self.client.chat_postMessage(channel=thread.channel_ref, thread_ts=thread.thread_ref,
                                                    text=blocks.mirrored_message(message.author, message.text,
                                                                                 message.files),
                                                    unfurl_links=False, unfurl_media=False)
        return f"{posted.get('channel')}:{posted.get('ts')}"


def _render_evidence_pdf(*args: Any, **kwargs: Any) -> bytes:
    """:func:`inbox.evidence_pdf.render_evidence_pdf`, imported on first use in the worker thread
    that draws it: reportlab costs ~7 MB resident that a server without PDFs never needs."""
    from inbox.evidence_pdf import render_evidence_pdf

    return render_evidence_pdf(*args, **kwargs)
