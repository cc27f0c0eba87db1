"""Telegram: updates in (webhook or long polling), messages out (see ``send``).

Inbound, one path for both transports:

1. ``POST /webhooks/telegram`` checks ``X-Telegram-Bot-Api-Secret-Token`` against
   ``SHOPDESK_TELEGRAM_WEBHOOK_SECRET`` in constant time BEFORE reading the body (403
   otherwise; with no secret configured every webhook call is refused), reads at most
   :data:`MAX_UPDATE_BYTES` (413) and parses JSON (400 when it is not an update object).
   Long polling (``shopdesk serve --telegram-polling``) feeds ``getUpdates`` results to the
   same :meth:`TelegramConnector.process_update`.
2. ``translate.translate_update`` turns the update into our
   :class:`~inbox.messages.InboundMessage`.
3. ``inbox.actions.message_record`` stores it in its own transaction; the webhook answers 200
   only after that commit, then ``on_inbound`` schedules the bot (never awaited work). A
   repeated or concurrent delivery of the same update is recognised by the database and
   answered 200 without a second message. If the database is unavailable the answer is 503
   so that Telegram delivers the update again.

Authenticated updates that can never be stored (fields missing or of the wrong type, texts
over the limit, an empty message) are answered 200 and logged by ``update_id``: a 4xx would
make Telegram redeliver them and hold back that chat's later updates.

Buttons: a pressed button becomes a ``postback`` only when the button's message is one we
sent to that same chat and the value is one of that message's quick replies; anything else
is ignored. Every callback query is answered (so the client's spinner stops) after the update
was recorded.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import Bot
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError

from bot.config import BotSettings
from bot.connectors.telegram import admin
from bot.connectors.telegram.send import SendPacer, TelegramSender, retry_seconds
from bot.connectors.telegram.setup import (
    ALLOWED_UPDATES,
    WEBHOOK_PATH,
    TelegramSetupError,
    bot_key,
    make_bot,
    quiet_client_logs,
    redact,
)
from bot.connectors.telegram.translate import (
    CallbackRef,
    MalformedUpdate,
    callback_data_for,
    translate_update,
)
from inbox.actions.message_record import message_record
from inbox.messages import InvalidMessage, OutboundPayload, QuickReply
from inbox.models import Channel
from inbox.outbox import sent_payload
from shopbase import stagetrace

__all__ = ["MAX_UPDATE_BYTES", "SECRET_HEADER", "TelegramConnector"]

log = logging.getLogger("shopdesk.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: an update is a few KB (4096 characters of text plus entities); anything much bigger is not one
MAX_UPDATE_BYTES = 256 * 1024
#: the 200 answers' bodies, serialised once (one of them answers every update Telegram delivers)
_OUTCOME_BODIES = {outcome: json.dumps({"ok": True, "result": outcome}).encode()
                   for outcome in ("recorded", "duplicate", "ignored")}


class _Unavailable(Exception):
    """The update could not be stored now; the platform should deliver it again."""


class TelegramConnector:
    """Webhook route, long polling, callback answers and the outbox sender for Telegram."""

    name = "telegram"

    def __init__(
        self,
        *,
        settings: BotSettings,
        sessions: async_sessionmaker[AsyncSession],
        on_inbound: Callable[[Any], Awaitable[None]],
        polling: bool = False,
        bot: Bot | None = None,
        pacer: SendPacer | None = None,
        poll_timeout: int = 25,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.on_inbound = on_inbound
        self.polling = polling
        quiet_client_logs()
        self.bot = bot or make_bot(settings)
        if settings.telegram_token is None:
            raise TelegramSetupError("SHOPDESK_TELEGRAM_TOKEN is not set")
        self.token = settings.telegram_token.get_secret_value().strip()
        self.bot_key = bot_key(self.token)
        secret = settings.telegram_webhook_secret
        self._secret: bytes | None = secret.get_secret_value().encode() if secret is not None else None
        self.sender = TelegramSender(
            self.bot,
            pacer or SendPacer.from_settings(settings),
            public_url=settings.public_url,
            token=self.token,
        )
        self.poll_timeout = poll_timeout
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        if self._secret is None and not polling:
            log.warning("SHOPDESK_TELEGRAM_WEBHOOK_SECRET is not set: the Telegram webhook refuses every request "
                        "(set it, or run with --telegram-polling)")

    # -- wiring ----------------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self.handle_webhook)
        app.router.add_get(admin.ADMIN_PATH, self.admin_page)

    async def start(self) -> None:
        try:
            await self.bot.initialize()
        except InvalidToken:
            log.error("Telegram rejected SHOPDESK_TELEGRAM_TOKEN; messages to Telegram will wait in the outbox")
        except TelegramError as exc:
            log.warning("cannot reach the Telegram Bot API now (%s); sending will retry",
                        redact(exc.message, self.token))
        if self.polling:
            self._poller = asyncio.create_task(self._poll_forever(), name="telegram-polling")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self.bot.shutdown()
        except Exception:  # closing an HTTP client must not break the server's shutdown
            log.warning("closing the Telegram client failed", exc_info=False)

    # -- inbound -----------------------------------------------------------------------------

    def check_secret(self, provided: str | None) -> bool:
        """Constant-time comparison of the secret-token header (False when no secret is set)."""
        if self._secret is None or provided is None:
            return False
        return hmac.compare_digest(provided.encode("utf-8", "surrogateescape"), self._secret)

    async def handle_webhook(self, request: web.Request) -> web.Response:
        if stagetrace.ENABLED:
            stagetrace.arrived()
        if not self.check_secret(request.headers.get(SECRET_HEADER)):
            log.warning("telegram webhook: missing or wrong secret token header (from %s)", request.remote)
            return web.json_response({"error": "forbidden"}, status=403)
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            return web.json_response({"error": "update too large"}, status=413)
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body.extend(chunk)
            if len(body) > MAX_UPDATE_BYTES:
                return web.json_response({"error": "update too large"}, status=413)
        try:
            data = json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return web.json_response({"error": "the body is not JSON"}, status=400)
        try:
            outcome = await self.process_update(data)
        except MalformedUpdate as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except _Unavailable:
            return web.json_response({"error": "temporarily unavailable, retry"}, status=503,
                                     headers={"Retry-After": "5"})
        answer = _OUTCOME_BODIES.get(outcome)
        if answer is None:
            return web.json_response({"ok": True, "result": outcome})
        return web.Response(body=answer, content_type="application/json")

    async def process_update(self, data: Any) -> str:
        """Translate, record and schedule one update; returns recorded / duplicate / ignored.

        Raises MalformedUpdate for a body that is not an update and _Unavailable when the
        database cannot take it now.
        """
        tr = translate_update(data, bot_key=self.bot_key)
        message = tr.message
        if tr.callback is not None and message is not None:
            button = await self._own_button(tr.callback)
            if button is None:
                message = None
                tr = replace(tr, message=None, ignored="button does not belong to this chat's messages")
            else:
                message = replace(message, text=button.label or button.value, postback=button.value)
        if message is None:
            if tr.callback is not None:
                self._spawn(self._answer_callback(tr.callback.query_id))
            log.info("telegram update %s ignored: %s", tr.update_id, tr.ignored)
            return "ignored"
        try:
            result = await message_record(
                self.sessions, message, reopen_days=self.settings.reopen_days,
                max_chars=self.settings.max_message_chars,
            )
        except InvalidMessage as exc:
            if tr.callback is not None:
                self._spawn(self._answer_callback(tr.callback.query_id))
            log.warning("telegram update %s not stored: %s", tr.update_id, exc.reason)
            return "ignored"
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.error("telegram update %s could not be stored (%s); asking for redelivery",
                      tr.update_id, type(exc).__name__)
            raise _Unavailable from None
        if stagetrace.ENABLED:
            stagetrace.recorded(result.message_id, result.conversation_id)
        if result.duplicate:
            log.info("telegram update %s is a repeat (message %s)", tr.update_id, result.message_id)
            return "duplicate"
        if tr.callback is not None:
            self._spawn(self._answer_callback(tr.callback.query_id))
        try:
            await self.on_inbound(result)
        except Exception:  # the message is stored unprocessed; the worker's sweep picks it up
            log.exception("scheduling the bot failed for message %s", result.message_id)
        # every update: DEBUG (the message and its conversation are in the inbox; repeats,
        # refusals and storage failures keep their own INFO/WARNING lines above)
        log.debug("telegram update %s recorded as message %s (conversation %s)",
                 tr.update_id, result.message_id, result.conversation_id)
        return "recorded"

    async def _own_button(self, ref: CallbackRef) -> QuickReply | None:
        """The quick reply pressed, if the button is on a message we sent to this chat and
        carries one of that message's values; None otherwise."""
        try:
            async with self.sessions() as session:
                row = await sent_payload(session, Channel.telegram, str(ref.chat_id), str(ref.message_id))
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.error("checking a telegram button failed (%s)", type(exc).__name__)
            raise _Unavailable from None
        if row is None:
            return None
        for quick in OutboundPayload.from_json(row).quick_replies:
            if hmac.compare_digest(callback_data_for(quick.value).encode(), ref.data.encode()):
                return quick
        return None

    # -- background work -------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_callback(self, query_id: str) -> None:
        try:
            await self.bot.answer_callback_query(query_id)
        except TelegramError as exc:  # too old, already answered: the customer lost nothing
            log.info("answering a telegram callback query failed: %s", redact(exc.message, self.token))

    async def _poll_forever(self) -> None:
        """Long polling: getUpdates with an offset that only moves past stored updates."""
        try:
            await self.bot.delete_webhook(drop_pending_updates=False)
            log.info("telegram: long polling (any webhook was removed)")
        except TelegramError as exc:
            log.warning("telegram: could not remove the webhook before polling: %s", redact(exc.message, self.token))
        offset: int | None = None
        backoff = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.poll_timeout, allowed_updates=list(ALLOWED_UPDATES),
                    read_timeout=self.poll_timeout + 10,
                )
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc.retry_after))
                continue
            except InvalidToken:
                log.error("telegram polling: SHOPDESK_TELEGRAM_TOKEN was rejected; retrying in 60 s")
                await asyncio.sleep(60)
                continue
            except Conflict:
                log.warning("telegram polling: another getUpdates client or a webhook is active; retrying")
                await asyncio.sleep(5)
                continue
            except Exception as exc:  # network trouble, or a batch PTB could not parse
                log.warning("telegram polling failed (%s); retrying in %.0f s",
                            redact(getattr(exc, "message", type(exc).__name__), self.token), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            for update in updates:
                try:
                    await self.process_update(update.to_dict())
                except MalformedUpdate as exc:
                    log.warning("telegram polling: skipping update %s: %s", update.update_id, exc)
                except _Unavailable:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 60.0)
                    break  # the offset stays: the same updates come again
                offset = update.update_id + 1

    # -- admin page --------------------------------------------------------------------------------

    async def admin_page(self, request: web.Request) -> web.Response:
        return await admin.admin_page(self, request)
