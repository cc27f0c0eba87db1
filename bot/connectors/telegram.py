"""Telegram: updates in (webhook or long polling), messages out (python-telegram-bot's ``Bot``).

Inbound, one path for both transports:

1. ``POST /webhooks/telegram`` checks ``X-Telegram-Bot-Api-Secret-Token`` against
   ``SHOPDESK_TELEGRAM_WEBHOOK_SECRET`` in constant time BEFORE reading the body (403
   otherwise; with no secret configured every webhook call is refused), reads at most
   :data:`MAX_UPDATE_BYTES` (413) and parses JSON (400 when it is not an update object).
   Long polling (``shopdesk serve --telegram-polling``) feeds ``getUpdates`` results to the
   same :meth:`TelegramConnector.process_update`.
2. :func:`translate_update` turns the update into our :class:`~inbox.messages.InboundMessage`
   (``dedupe_key`` = ``"<bot id>:<update_id>"``). Only private chats are served: a support
   conversation holds order details, which must never be shown to a group. Group and channel
   posts, edits, and update types we do not use are acknowledged and ignored.
3. ``inbox.actions.message_record`` stores it in its own transaction; the webhook answers 200
   only after that commit, then ``on_inbound`` schedules the bot (never awaited work). A
   repeated or concurrent delivery of the same update is recognised by the database and
   answered 200 without a second message. If the database is unavailable the answer is 503
   so that Telegram delivers the update again.

Authenticated updates that can never be stored (fields missing or of the wrong type, texts
over the limit, an empty message) are answered 200 and logged by ``update_id``: a 4xx would
make Telegram redeliver them and hold back that chat's later updates.

Buttons: quick replies become an inline keyboard whose ``callback_data`` is the reply's value
(or ``"h:"`` + a hash when the value is over Telegram's 64 bytes). A pressed button becomes a
``postback`` only when the button's message is one we sent to that same chat and the value is
one of that message's quick replies; anything else is ignored. Every callback query is
answered (so the client's spinner stops) after the update was recorded.

Outbound: :class:`TelegramSender` (the outbox's sender for ``Channel.telegram``) paces sends
(``SHOPDESK_TELEGRAM_PER_CHAT_PER_SECOND``, ``..._OVERALL_PER_SECOND``) and maps errors for the
outbox: 429 → :class:`~inbox.channels.RetryLater` with ``retry_after``; 403 (blocked, user
deactivated) → :class:`~inbox.channels.PermanentFailure` with ``blocked=True``; other 400s and
chat migrations → permanent failures; network trouble → retry later. Retrying is the
outbox's job, never PTB's.

The bot token is part of every Bot API URL: httpx's request log is lowered to WARNING and
PTB's to INFO (its DEBUG lines show the URL), PTB's ``InvalidToken`` messages are never
logged, and every error text we keep is passed through :func:`redact` first.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from inbox.actions.message_record import message_record
from inbox.channels import PermanentFailure, RetryLater
from inbox.messages import Attachment, InboundMessage, InvalidMessage, OutboundPayload, QuickReply
from inbox.models import Channel, Contact, OutboxMessage

# Opt in to PTB's timedelta values for RetryAfter.retry_after (no PTBDeprecationWarning);
# PTB reads the variable at use time. Both forms are handled below anyway.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup  # noqa: E402
from telegram.error import (  # noqa: E402
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest  # noqa: E402

__all__ = [
    "WEBHOOK_PATH",
    "ADMIN_PATH",
    "SECRET_HEADER",
    "MAX_UPDATE_BYTES",
    "ALLOWED_UPDATES",
    "MalformedUpdate",
    "CallbackRef",
    "Translation",
    "translate_update",
    "callback_data_for",
    "SendPacer",
    "TelegramSender",
    "TelegramConnector",
    "TelegramSetupError",
    "WebhookStatus",
    "make_bot",
    "redact",
    "set_webhook",
    "webhook_status",
    "webhook_status_text",
]

log = logging.getLogger("shopdesk.telegram")
# httpx logs every request URL at INFO, and a Bot API URL contains the bot token.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)
# PTB logs its base URL (with the token) and every request's parameters at DEBUG.
logging.getLogger("telegram").setLevel(logging.INFO)

WEBHOOK_PATH = "/webhooks/telegram"
ADMIN_PATH = "/inbox/admin/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: an update is a few KB (4096 characters of text plus entities); anything much bigger is not one
MAX_UPDATE_BYTES = 256 * 1024
#: the update types we ask Telegram for (setWebhook and getUpdates)
ALLOWED_UPDATES = ("message", "callback_query")
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
_START = re.compile(r"^/start(?:@[A-Za-z0-9_]{1,64})?(?:\s+(\S+))?\s*$", re.DOTALL)
_DEEP_LINK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: what a bare /start means to the dialog: the Start button is a greeting
START_POSTBACK = "intent:greeting"


class MalformedUpdate(ValueError):
    """The body is not a Telegram update at all (answered 400)."""


class TelegramSetupError(Exception):
    """A one-line problem with the Telegram settings or the Bot API (for the CLI and admin page)."""


def redact(text: Any, token: str | None) -> str:
    """``text`` without the bot token (and one line, at most 300 characters)."""
    value = str(text)
    if token:
        value = value.replace(token, "<token>")
        secret_half = token.split(":", 1)[-1]
        if len(secret_half) >= 8:
            value = value.replace(secret_half, "<token>")
    return " ".join(value.split())[:300]


# --------------------------------------------------------------------------- translation


@dataclass(frozen=True)
class CallbackRef:
    """A pressed inline button: which query to answer, which of our messages it was under."""

    query_id: str
    chat_id: int
    message_id: int
    data: str


@dataclass(frozen=True)
class Translation:
    """What an update means to us: a message to record, or why it is ignored."""

    update_id: int
    message: InboundMessage | None = None
    callback: CallbackRef | None = None
    ignored: str | None = None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _display_name(user: Mapping[str, Any]) -> str:
    parts = [_str(user.get("first_name")) or "", _str(user.get("last_name")) or ""]
    return " ".join(p for p in parts if p).strip()


def _sent_at(value: Any) -> datetime | None:
    stamp = _int(value)
    if stamp is None or stamp <= 0:
        return None
    try:
        return datetime.fromtimestamp(stamp, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _attachments(message: Mapping[str, Any]) -> tuple[Attachment, ...]:
    """Files the customer sent, as references (Telegram ``file_id``; never a URL with the token)."""
    found: list[Attachment] = []
    photos = [p for p in message.get("photo") or [] if isinstance(p, dict)] if isinstance(message.get("photo"), list) else []
    if photos:
        best = max(photos, key=lambda p: _int(p.get("file_size")) or 0)
        if _str(best.get("file_id")):
            found.append(Attachment(kind="image", filename="photo.jpg", url=best["file_id"], mime="image/jpeg",
                                    size=_int(best.get("file_size"))))
    for key, kind, default_name in (
        ("document", "file", "document"),
        ("video", "video", "video.mp4"),
        ("voice", "audio", "voice.ogg"),
        ("audio", "audio", "audio"),
        ("video_note", "video", "video_note.mp4"),
        ("sticker", "image", "sticker.webp"),
    ):
        item = message.get(key)
        if isinstance(item, dict) and _str(item.get("file_id")):
            found.append(
                Attachment(
                    kind=kind,
                    filename=_str(item.get("file_name")) or default_name,
                    url=item["file_id"],
                    mime=_str(item.get("mime_type")),
                    size=_int(item.get("file_size")),
                )
            )
    return tuple(found)


def translate_update(data: Any, *, bot_key: str = "") -> Translation:
    """Our reading of one Telegram update (a webhook body or a ``getUpdates`` item).

    Raises :class:`MalformedUpdate` only when ``data`` is not an object with an integer
    ``update_id``; every other oddity gives ``Translation(ignored=reason)``. ``bot_key``
    (the token's bot id) namespaces the dedupe key so that a new bot's update ids never
    collide with an old one's.
    """
    if not isinstance(data, dict):
        raise MalformedUpdate("the body is not a JSON object")
    update_id = _int(data.get("update_id"))
    if update_id is None:
        raise MalformedUpdate("update_id is missing or not an integer")
    key = f"{bot_key}:{update_id}" if bot_key else str(update_id)
    if "message" in data:
        return _translate_message(update_id, key, data["message"])
    if "callback_query" in data:
        return _translate_callback(update_id, key, data["callback_query"])
    kinds = sorted(k for k in data if k != "update_id")
    return Translation(update_id, ignored=f"update type {kinds[0] if kinds else 'none'} is not used")


def _private_chat(message: Mapping[str, Any]) -> tuple[int | None, str | None]:
    chat = message.get("chat")
    if not isinstance(chat, dict):
        return None, "message without a chat"
    chat_id = _int(chat.get("id"))
    if chat_id is None:
        return None, "chat id missing"
    if chat.get("type") != "private":
        return None, "not a private chat"
    return chat_id, None


def _translate_message(update_id: int, key: str, message: Any) -> Translation:
    if not isinstance(message, dict):
        return Translation(update_id, ignored="message is not an object")
    chat_id, problem = _private_chat(message)
    if chat_id is None:
        return Translation(update_id, ignored=problem)
    sender = _dict(message.get("from"))
    if sender.get("is_bot") is True:
        return Translation(update_id, ignored="message from a bot")
    raw_text = message.get("text", message.get("caption", ""))
    if raw_text is None:
        raw_text = ""
    if not isinstance(raw_text, str):
        return Translation(update_id, ignored="text is not a string")
    attachments = _attachments(message)
    postback: str | None = None
    start_payload: str | None = None
    start = _START.match(raw_text.strip()) if raw_text.lstrip().startswith("/start") else None
    if start is not None:
        postback = START_POSTBACK
        payload = start.group(1)
        if payload and _DEEP_LINK.match(payload):
            start_payload = payload
    if not raw_text.strip() and not attachments:
        return Translation(update_id, ignored="no text or file we can use")
    message_id = _int(message.get("message_id"))
    language = _str(sender.get("language_code"))
    return Translation(
        update_id,
        message=InboundMessage(
            channel=Channel.telegram,
            dedupe_key=key,
            contact_external_id=str(chat_id),
            text=raw_text,
            display_name=_display_name(sender) or _display_name(_dict(message.get("chat"))),
            username=_str(sender.get("username")),
            language_hint=language,
            attachments=attachments,
            channel_message_id=str(message_id) if message_id is not None else None,
            postback=postback,
            start_payload=start_payload,
            sent_at=_sent_at(message.get("date")),
        ),
    )


def _translate_callback(update_id: int, key: str, query: Any) -> Translation:
    if not isinstance(query, dict):
        return Translation(update_id, ignored="callback_query is not an object")
    query_id = _str(query.get("id"))
    data = _str(query.get("data"))
    sender = _dict(query.get("from"))
    user_id = _int(sender.get("id"))
    message = query.get("message")
    if not query_id or user_id is None:
        return Translation(update_id, ignored="callback query without id or sender")
    if not isinstance(message, dict):
        return Translation(update_id, ignored="callback query without a message (inline mode)")
    chat_id, problem = _private_chat(message)
    message_id = _int(message.get("message_id"))
    if chat_id is None or message_id is None:
        return Translation(update_id, ignored=problem or "callback message id missing")
    ref = CallbackRef(query_id=query_id, chat_id=chat_id, message_id=message_id, data=data or "")
    if chat_id != user_id:
        return Translation(update_id, callback=ref, ignored="button pressed by someone else than the chat's user")
    if not data or len(data.encode("utf-8")) > MAX_CALLBACK_DATA:
        return Translation(update_id, callback=ref, ignored="callback data missing or too long")
    return Translation(
        update_id,
        callback=ref,
        message=InboundMessage(
            channel=Channel.telegram,
            dedupe_key=key,
            contact_external_id=str(chat_id),
            text="",  # filled with the button's label once the button is known to be ours
            display_name=_display_name(sender),
            username=_str(sender.get("username")),
            language_hint=_str(sender.get("language_code")),
            postback=data,
        ),
    )


def callback_data_for(value: str) -> str:
    """The ``callback_data`` carrying a quick reply's value (at most 64 bytes)."""
    if len(value.encode("utf-8")) <= MAX_CALLBACK_DATA:
        return value
    return "h:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:40]


# --------------------------------------------------------------------------- sending


class SendPacer:
    """Spaces sends: at most ``per_chat`` per second to one chat and ``overall`` per second in all.

    Each call reserves the earliest slot free for both and sleeps until it; reservations are
    made without awaiting, so concurrent senders never share a slot. ``clock`` and ``sleep``
    are injectable for tests.
    """

    def __init__(self, per_chat: float, overall: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_chats: int = 10_000) -> None:
        self.chat_interval = 1.0 / per_chat
        self.overall_interval = 1.0 / overall
        self._clock = clock
        self._sleep = sleep
        self._max_chats = max_chats
        self._next_overall = 0.0
        self._next_chat: dict[Any, float] = {}

    def reserve(self, chat: Any) -> float:
        """Book the next slot for ``chat``; return how long to wait for it (seconds)."""
        now = self._clock()
        slot = max(now, self._next_overall, self._next_chat.get(chat, 0.0))
        self._next_overall = slot + self.overall_interval
        self._next_chat[chat] = slot + self.chat_interval
        if len(self._next_chat) > self._max_chats:
            self._next_chat = {k: v for k, v in self._next_chat.items() if v > now}
        return slot - now

    async def wait(self, chat: Any) -> float:
        delay = self.reserve(chat)
        if delay > 0:
            await self._sleep(delay)
        return delay


def _seconds(value: Any, default: float = 5.0) -> float:
    if isinstance(value, timedelta):
        return max(0.0, value.total_seconds())
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return default


def _absolute(url: str | None, public_url: str) -> str | None:
    if not url:
        return None
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return url
    if url.startswith("/"):
        return public_url.rstrip("/") + url
    return None  # an opaque platform file reference: nothing a customer can open


def render_text(payload: OutboundPayload, public_url: str) -> str:
    """The message text: the payload's text plus one line per attachment (name and link),
    cut to Telegram's 4096 characters (the links are kept)."""
    links = []
    for attachment in payload.attachments:
        url = _absolute(attachment.url, public_url)
        name = attachment.filename or attachment.kind
        links.append(f"📎 {name}: {url}" if url else f"📎 {name}")
    tail = ("\n\n" + "\n".join(links)) if links else ""
    text = payload.text or ""
    room = MAX_TEXT - len(tail)
    if len(text) > room:
        text = text[: max(0, room - 1)] + "…"
    return (text + tail).strip()


def keyboard(quick_replies: Sequence[QuickReply]) -> InlineKeyboardMarkup | None:
    """An inline keyboard: two buttons a row when all labels are short, else one a row."""
    if not quick_replies:
        return None
    buttons = [InlineKeyboardButton(q.label[:64] or q.value[:64], callback_data=callback_data_for(q.value))
               for q in quick_replies]
    per_row = 2 if all(len(q.label) <= 16 for q in quick_replies) else 1
    return InlineKeyboardMarkup([buttons[i : i + per_row] for i in range(0, len(buttons), per_row)])


class TelegramSender:
    """Delivers outbox payloads to Telegram chats (implements ``inbox.channels.Sender``)."""

    channel = Channel.telegram

    def __init__(self, bot: Bot, pacer: SendPacer, *, public_url: str, token: str) -> None:
        self.bot = bot
        self.pacer = pacer
        self.public_url = public_url
        self._token = token

    async def send(self, contact: Contact, payload: OutboundPayload) -> str | None:
        try:
            chat_id = int(contact.external_id)
        except (TypeError, ValueError):
            raise PermanentFailure("not a Telegram chat id") from None
        text = render_text(payload, self.public_url)
        if not text:
            raise PermanentFailure("nothing to send: no text and no attachment")
        markup = keyboard(payload.quick_replies)
        await self.pacer.wait(chat_id)
        try:
            sent = await self.bot.send_message(chat_id=chat_id, text=text, reply_markup=markup)
        except RetryAfter as exc:
            raise RetryLater(_seconds(exc.retry_after), "telegram flood limit (429)") from None
        except Forbidden as exc:
            raise PermanentFailure(f"telegram: {redact(exc.message, self._token)}", blocked=True) from None
        except ChatMigrated:
            raise PermanentFailure("telegram: the chat was upgraded to a supergroup") from None
        except InvalidToken:
            raise RetryLater(300, "telegram rejected the bot token (check SHOPDESK_TELEGRAM_TOKEN)") from None
        except BadRequest as exc:
            raise PermanentFailure(f"telegram: {redact(exc.message, self._token)}") from None
        except (TimedOut, NetworkError) as exc:
            raise RetryLater(5, f"telegram unreachable: {redact(exc.message, self._token)}") from None
        except TelegramError as exc:
            raise RetryLater(30, f"telegram error: {redact(exc.message, self._token)}") from None
        return str(sent.message_id)


def make_bot(settings: Any) -> Bot:
    """A PTB ``Bot`` for the configured token and Bot API URL (``SHOPDESK_TELEGRAM_API_URL``)."""
    if settings.telegram_token is None:
        raise TelegramSetupError("SHOPDESK_TELEGRAM_TOKEN is not set")
    token = settings.telegram_token.get_secret_value().strip()
    if not token:
        raise TelegramSetupError("SHOPDESK_TELEGRAM_TOKEN is empty")
    base_url = settings.telegram_api_url
    file_url = base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else "https://api.telegram.org/file/bot"
    return Bot(
        token,
        base_url=base_url,
        base_file_url=file_url,
        request=HTTPXRequest(connection_pool_size=32, read_timeout=15.0, connect_timeout=10.0),
        get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=40.0, connect_timeout=10.0),
    )


def _bot_key(token: str) -> str:
    head = token.split(":", 1)[0]
    return head if head.isdigit() else hashlib.sha256(token.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- the connector


class _Unavailable(Exception):
    """The update could not be stored now; the platform should deliver it again."""


class TelegramConnector:
    """Webhook route, long polling, callback answers and the outbox sender for Telegram."""

    name = "telegram"

    def __init__(
        self,
        *,
        settings: Any,
        sessions: Any,
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
        self.bot = bot or make_bot(settings)
        self._token = settings.telegram_token.get_secret_value().strip()
        self.bot_key = _bot_key(self._token)
        secret = settings.telegram_webhook_secret
        self._secret: bytes | None = secret.get_secret_value().encode() if secret is not None else None
        self.sender = TelegramSender(
            self.bot,
            pacer or SendPacer(settings.telegram_per_chat_per_second, settings.telegram_overall_per_second),
            public_url=settings.public_url,
            token=self._token,
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
        app.router.add_get(ADMIN_PATH, self.admin_page)

    async def start(self) -> None:
        try:
            await self.bot.initialize()
        except InvalidToken:
            log.error("Telegram rejected SHOPDESK_TELEGRAM_TOKEN; messages to Telegram will wait in the outbox")
        except TelegramError as exc:
            log.warning("cannot reach the Telegram Bot API now (%s); sending will retry",
                        redact(exc.message, self._token))
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
        return web.json_response({"ok": True, "result": outcome})

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
        if result.duplicate:
            log.info("telegram update %s is a repeat (message %s)", tr.update_id, result.message_id)
            return "duplicate"
        if tr.callback is not None:
            self._spawn(self._answer_callback(tr.callback.query_id))
        try:
            await self.on_inbound(result)
        except Exception:  # the message is stored unprocessed; the worker's sweep picks it up
            log.exception("scheduling the bot failed for message %s", result.message_id)
        log.info("telegram update %s recorded as message %s (conversation %s)",
                 tr.update_id, result.message_id, result.conversation_id)
        return "recorded"

    async def _own_button(self, ref: CallbackRef) -> QuickReply | None:
        """The quick reply pressed, if the button is on a message we sent to this chat and
        carries one of that message's values; None otherwise."""
        try:
            async with self.sessions() as session:
                row = (
                    await session.exec(
                        select(OutboxMessage.payload)
                        .join(Contact, col(Contact.id) == col(OutboxMessage.contact_id))
                        .where(
                            Contact.channel == Channel.telegram,
                            Contact.external_id == str(ref.chat_id),
                            OutboxMessage.channel == Channel.telegram,
                            OutboxMessage.channel_message_id == str(ref.message_id),
                        )
                        .order_by(col(OutboxMessage.id).desc())
                        .limit(1)
                    )
                ).first()
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
            log.info("answering a telegram callback query failed: %s", redact(exc.message, self._token))

    async def _poll_forever(self) -> None:
        """Long polling: getUpdates with an offset that only moves past stored updates."""
        try:
            await self.bot.delete_webhook(drop_pending_updates=False)
            log.info("telegram: long polling (any webhook was removed)")
        except TelegramError as exc:
            log.warning("telegram: could not remove the webhook before polling: %s", redact(exc.message, self._token))
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
                await asyncio.sleep(_seconds(exc.retry_after))
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
                            redact(getattr(exc, "message", type(exc).__name__), self._token), backoff)
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
        """``GET /inbox/admin/telegram``: the webhook's state (getWebhookInfo) for admins.

        JSON for ``Accept: application/json``, else a page in the inbox's layout. Like the
        other admin pages it does not exist (404) for anyone but an admin.
        """
        from inbox.web.rendering import error_response, wants_json
        from inbox.web.state import AGENT, STATE

        has_inbox = STATE in request.app
        agent = request.get(AGENT)
        if agent is None or not agent.is_admin:
            if has_inbox:
                return error_response(request, 404, "Not found.")
            return web.json_response({"error": "Not found."}, status=404)
        try:
            status: WebhookStatus | None = await _fetch_status(self.bot, self._token)
            problem = None
        except TelegramSetupError as exc:
            status, problem = None, str(exc)
        if wants_json(request) or not has_inbox:
            if status is None:
                return web.json_response({"error": problem}, status=502)
            return web.json_response({**status.to_json(), "mode": "polling" if self.polling else "webhook"})
        from inbox.web.auth import csrf_token

        env = request.app[STATE].jinja
        template = env.from_string(_ADMIN_TEMPLATE)
        html = template.render(request=request, config=request.app[STATE].config, agent=agent,
                               csrf_token=await csrf_token(request), section="telegram", status=status,
                               problem=problem, polling=self.polling, webhook_path=WEBHOOK_PATH)
        response = web.Response(text=html, content_type="text/html", charset="utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response


_ADMIN_TEMPLATE = """{% extends "inbox/layout.html" %}
{% block title %}Telegram · Admin · Shopdesk{% endblock %}
{% block content %}
<main class="page">
  <h1>Telegram</h1>
  {% if problem %}<p class="flash flash-error" role="alert">{{ problem }}</p>{% endif %}
  {% if status %}
  <table class="table">
    <tbody>
      <tr><th>Mode</th><td>{{ 'long polling' if polling else 'webhook' }}</td></tr>
      <tr><th>Webhook URL</th><td class="code">{{ status.url or '(not set)' }}</td></tr>
      <tr><th>Pending updates</th><td>{{ status.pending_update_count }}</td></tr>
      <tr><th>Last error</th><td>{% if status.last_error_message %}{{ status.last_error_date.strftime('%Y-%m-%d %H:%M UTC') if status.last_error_date else '' }}: {{ status.last_error_message }}{% else %}none{% endif %}</td></tr>
    </tbody>
  </table>
  {% endif %}
  <p class="muted">Set the webhook with <span class="code">shopdesk telegram set-webhook https://YOUR-HOST{{ webhook_path }}</span>.</p>
</main>
{% endblock %}
"""


# --------------------------------------------------------------------------- CLI helpers


@dataclass(frozen=True)
class WebhookStatus:
    url: str
    pending_update_count: int
    last_error_date: datetime | None
    last_error_message: str | None
    max_connections: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pending_update_count": self.pending_update_count,
            "last_error_date": self.last_error_date.isoformat() if self.last_error_date else None,
            "last_error_message": self.last_error_message,
            "max_connections": self.max_connections,
        }

    def text(self) -> str:
        lines = [
            f"Webhook URL:      {self.url or '(none: long polling, or not set yet)'}",
            f"Pending updates:  {self.pending_update_count}",
        ]
        if self.last_error_date or self.last_error_message:
            when = self.last_error_date.strftime("%Y-%m-%d %H:%M:%S UTC") if self.last_error_date else "?"
            lines.append(f"Last error:       {when}: {self.last_error_message or '(no message)'}")
        else:
            lines.append("Last error:       none")
        if self.max_connections:
            lines.append(f"Max connections:  {self.max_connections}")
        return "\n".join(lines)


def _api_host(settings: Any) -> str:
    return urlsplit(settings.telegram_api_url).netloc or settings.telegram_api_url


def _setup_error(exc: TelegramError, settings: Any, token: str) -> TelegramSetupError:
    if isinstance(exc, InvalidToken):
        return TelegramSetupError("Telegram rejected SHOPDESK_TELEGRAM_TOKEN")
    if isinstance(exc, BadRequest):
        return TelegramSetupError(f"Telegram refused: {redact(exc.message, token)}")
    if isinstance(exc, NetworkError):
        return TelegramSetupError(f"cannot reach the Telegram Bot API at {_api_host(settings)}: "
                                  f"{redact(exc.message, token)}")
    return TelegramSetupError(f"Telegram error: {redact(exc.message, token)}")


async def _fetch_status(bot: Bot, token: str, settings: Any = None) -> WebhookStatus:
    try:
        info = await bot.get_webhook_info()
    except TelegramError as exc:
        if settings is None:
            raise TelegramSetupError(f"Telegram error: {redact(exc.message, token)}") from None
        raise _setup_error(exc, settings, token) from None
    last_error = info.last_error_date
    if last_error is not None and last_error.tzinfo is None:
        last_error = last_error.replace(tzinfo=timezone.utc)
    return WebhookStatus(
        url=info.url or "",
        pending_update_count=int(info.pending_update_count or 0),
        last_error_date=last_error,
        last_error_message=info.last_error_message,
        max_connections=info.max_connections,
    )


def _settings_token(settings: Any) -> str:
    if settings.telegram_token is None or not settings.telegram_token.get_secret_value().strip():
        raise TelegramSetupError("SHOPDESK_TELEGRAM_TOKEN is not set")
    return settings.telegram_token.get_secret_value().strip()


async def webhook_status(settings: Any) -> WebhookStatus:
    """getWebhookInfo: URL, pending updates, last delivery error."""
    token = _settings_token(settings)
    bot = make_bot(settings)
    try:
        return await _fetch_status(bot, token, settings)
    finally:
        await bot.shutdown()


async def webhook_status_text(settings: Any) -> str:
    """``shopdesk telegram status``."""
    return (await webhook_status(settings)).text()


async def set_webhook(settings: Any, url: str) -> str:
    """``shopdesk telegram set-webhook URL``: deliver updates to ``URL`` with our secret header."""
    token = _settings_token(settings)
    if settings.telegram_webhook_secret is None:
        raise TelegramSetupError("set SHOPDESK_TELEGRAM_WEBHOOK_SECRET first (1-256 characters of A-Z a-z 0-9 _ -)")
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.netloc:
        raise TelegramSetupError("the webhook URL must be a public https:// URL")
    if not parts.path.rstrip("/").endswith(WEBHOOK_PATH):
        raise TelegramSetupError(f"the webhook URL must end with {WEBHOOK_PATH}")
    bot = make_bot(settings)
    try:
        await bot.set_webhook(
            url=url.strip(),
            secret_token=settings.telegram_webhook_secret.get_secret_value(),
            allowed_updates=list(ALLOWED_UPDATES),
        )
        status = await _fetch_status(bot, token, settings)
    except TelegramError as exc:
        raise _setup_error(exc, settings, token) from None
    finally:
        await bot.shutdown()
    return f"Telegram now delivers updates to {url.strip()} (with the secret token header).\n{status.text()}"
