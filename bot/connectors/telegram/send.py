"""Outbound: :class:`TelegramSender`, the outbox's :class:`~inbox.channels.Sender` for Telegram.

Quick replies become an inline keyboard whose ``callback_data`` is the reply's value (or
``"h:"`` + a hash when the value is over Telegram's 64 bytes). Sends are paced to Telegram's
flood limits (``SHOPDESK_TELEGRAM_PER_CHAT_PER_SECOND``, default 1, and
``SHOPDESK_TELEGRAM_OVERALL_PER_SECOND``, default 30; 0 turns either off) and errors are mapped
for the outbox: 429 → :class:`~inbox.channels.RetryLater` with ``retry_after``; 403 (blocked,
user deactivated) → :class:`~inbox.channels.PermanentFailure` with ``blocked=True``; other
400s and chat migrations → permanent failures; network trouble → retry later. Retrying is
the outbox's job, never PTB's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.config import BotSettings
from bot.connectors.telegram.setup import redact
from bot.connectors.telegram.translate import callback_data_for
from inbox.channels import PermanentFailure, RetryLater
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import Channel, Contact

__all__ = ["MAX_TEXT", "SendPacer", "retry_seconds", "TelegramSender", "keyboard", "render_text"]

MAX_TEXT = 4096


class SendPacer:
    """Spaces sends: at most ``per_chat`` per second to one chat and ``overall`` per second in all.

    Each call reserves the earliest slot free for both and sleeps until it; reservations are
    made without awaiting, so concurrent senders never share a slot. A rate of 0 (or less)
    switches that limit off; with both off nothing ever waits and nothing is remembered.
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, per_chat: float, overall: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_chats: int = 10_000) -> None:
        self.chat_interval = 1.0 / per_chat if per_chat > 0 else 0.0
        self.overall_interval = 1.0 / overall if overall > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._max_chats = max_chats
        self._next_overall = 0.0
        self._next_chat: dict[Any, float] = {}

    @classmethod
    def from_settings(cls, settings: BotSettings, *, clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> SendPacer:
        """``SHOPDESK_TELEGRAM_PER_CHAT_PER_SECOND`` and ``SHOPDESK_TELEGRAM_OVERALL_PER_SECOND``."""
        return cls(settings.telegram_per_chat_per_second, settings.telegram_overall_per_second,
                   clock=clock, sleep=sleep)

    @property
    def enabled(self) -> bool:
        return bool(self.chat_interval or self.overall_interval)

    def reserve(self, chat: Any) -> float:
        """Book the next slot for ``chat``; return how long to wait for it (seconds)."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        slot = max(now, self._next_overall, self._next_chat.get(chat, 0.0))
        self._next_overall = slot + self.overall_interval
        if self.chat_interval:
            self._next_chat[chat] = slot + self.chat_interval
        if len(self._next_chat) > self._max_chats:
            self._next_chat = {k: v for k, v in self._next_chat.items() if v > now}
        return slot - now

    async def wait(self, chat: Any) -> float:
        delay = self.reserve(chat)
        if delay > 0:
            await self._sleep(delay)
        return delay


def retry_seconds(value: Any, default: float = 5.0) -> float:
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
            raise RetryLater(retry_seconds(exc.retry_after), "telegram flood limit (429)") from None
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
