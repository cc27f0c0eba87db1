"""Outbound: :class:`TelegramSender`, the outbox's :class:`~inbox.channels.Sender` for Telegram.

Quick replies become an inline keyboard whose ``callback_data`` is the reply's value (or
``"h:"`` + a hash when the value is over Telegram's 64 bytes). Sends are paced to Telegram's
flood limits (``SHOPDESK_TELEGRAM_PER_CHAT_PER_SECOND``, default 1, and
``SHOPDESK_TELEGRAM_OVERALL_PER_SECOND``, default 30; 0 turns either off). A payload marked
``paid_broadcast`` (proactive updates when the merchant opted in) is sent with Telegram's
``allow_paid_broadcast`` and paced on its own lane (``SHOPDESK_TELEGRAM_PAID_PER_SECOND``,
default 1000 in all). Errors are mapped for the outbox:

* 429 → :class:`~inbox.channels.RetryLater` with ``retry_after``, ``rate_limited`` (it never
  uses up an attempt). The chat is held for that long (:meth:`SendPacer.hold`): its next
  message waits too, also in another conversation, and the hold is written into its pending
  outbox rows. When 429s hit sends to two or more chats within ``flood_window`` seconds it is
  a bulk flood wait: the whole bot holds for ``retry_after`` (every pending Telegram row).
* a read or write timeout (the request went out, no answer came) →
  :class:`~inbox.channels.OutcomeUnknown`: not retried, since the Bot API has no duplicate
  check. The read timeout is ``SHOPDESK_TELEGRAM_READ_TIMEOUT`` (default 60 s), far above the
  Bot API's usual answer time. A connect or pool timeout (nothing was sent) is retried.
* 403 (blocked, user deactivated) → :class:`~inbox.channels.PermanentFailure` with
  ``blocked=True``; other 400s and chat migrations → permanent failures; 5xx and connection
  trouble → retry with the outbox's exponential backoff.

Retrying is the outbox's job, never PTB's.

The request goes through PTB's ``Bot.do_api_request("sendMessage", ...)``: the same ``Bot._post``,
request backend, parameter serialisation (the keyboard is PTB's ``InlineKeyboardMarkup.to_dict``
JSON, made once per set of buttons by :func:`keyboard_json`) and error mapping (``RetryAfter``, ``Forbidden``, ``BadRequest``, ``TimedOut``, ...) as
``Bot.send_message``, without turning Telegram's answer into a PTB ``Message``: that object of
some 150 attributes cost about a third of the client's CPU per send, and all the outbox needs of it
is ``message_id`` (read and checked here; an answer without one still means the message was sent).
PTB's hint to prefer ``Bot.send_message`` is silenced for this call site only
(:func:`_quiet_raw_send_hint`). ``do_api_request`` reports a 401/404 of an initialised bot as
``EndPointNotFound``; for ``sendMessage`` that is the token, as ``InvalidToken``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBUserWarning

from bot.config import BotSettings
from bot.connectors.telegram.setup import redact
from bot.connectors.telegram.translate import callback_data_for
from inbox.channels import HOLD_CHANNEL, HOLD_RECIPIENT, OutcomeUnknown, PermanentFailure, Recipient, RetryLater
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import Channel

__all__ = ["MAX_TEXT", "SendPacer", "retry_seconds", "TelegramSender", "keyboard", "render_text"]

MAX_TEXT = 4096
_SEND_MESSAGE = "sendMessage"


def _quiet_raw_send_hint() -> None:
    """Silence PTB's "Please use 'Bot.sendMessage'" hint for :class:`TelegramSender`'s own call
    (attributed to this module) when a sender is made, never on import. Adding the same filter
    again replaces it (``warnings`` drops the duplicate)."""
    warnings.filterwarnings("ignore", message=r"Please use 'Bot\.sendMessage' instead",
                            category=PTBUserWarning, module=r"bot\.connectors\.telegram\.send\Z")


def sent_message_id(result: Any) -> str | None:
    """The ``message_id`` of a sendMessage answer (a Message object), if it has a proper one."""
    message_id = result.get("message_id") if isinstance(result, dict) else None
    if isinstance(message_id, int) and not isinstance(message_id, bool):
        return str(message_id)
    return None


class SendPacer:
    """Spaces sends: at most ``per_chat`` per second to one chat and ``overall`` per second in all.

    Each call reserves the earliest slot free for both and sleeps until it; reservations are
    made without awaiting, so concurrent senders never share a slot. A rate of 0 (or less)
    switches that limit off; with both off nothing ever waits and nothing is remembered.
    ``clock`` and ``sleep`` are injectable for tests.

    It also remembers Telegram's 429 waits (:meth:`hold`, :meth:`held`): a chat's own, and the
    whole bot's when 429s hit ``flood_chats`` different chats within ``flood_window`` seconds;
    after such a bulk flood wait the overall rate is halved for ``flood_cooldown`` seconds.
    """

    def __init__(self, per_chat: float, overall: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_chats: int = 10_000,
                 flood_window: float = 2.0, flood_chats: int = 2, flood_cooldown: float = 60.0,
                 paid: float = 0.0) -> None:
        self.chat_interval = 1.0 / per_chat if per_chat > 0 else 0.0
        self.overall_interval = 1.0 / overall if overall > 0 else 0.0
        # paid broadcasts (allow_paid_broadcast) have a lane of their own: Telegram allows up to
        # ``paid`` messages per second in all, of which ``overall`` are the free ones' lane; with
        # the overall limit off (a self-hosted Bot API, the benchmark) neither lane is paced
        paid_lane = paid - overall if overall > 0 else 0.0
        self.paid_interval = 1.0 / paid_lane if paid_lane > 0 else 0.0
        self._next_paid = 0.0
        self._clock = clock
        self._sleep = sleep
        self._max_chats = max_chats
        self._next_overall = 0.0
        self._next_chat: dict[Any, float] = {}
        self.flood_window = flood_window
        self.flood_chats = flood_chats
        self._held_all = 0.0
        self._slow_until = 0.0
        #: after a bulk flood wait ends, the overall rate stays halved this long (seconds)
        self.flood_cooldown = flood_cooldown
        self._held_chat: dict[Any, float] = {}
        self._recent_429: list[tuple[float, Any]] = []

    @classmethod
    def from_settings(cls, settings: BotSettings, *, clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> SendPacer:
        """``SHOPDESK_TELEGRAM_PER_CHAT_PER_SECOND`` and ``SHOPDESK_TELEGRAM_OVERALL_PER_SECOND``."""
        return cls(settings.telegram_per_chat_per_second, settings.telegram_overall_per_second,
                   clock=clock, sleep=sleep, paid=settings.telegram_paid_per_second)

    @property
    def enabled(self) -> bool:
        return bool(self.chat_interval or self.overall_interval or self.paid_interval)

    def reserve(self, chat: Any, *, paid: bool = False) -> float:
        """Book the next slot for ``chat``; return how long to wait for it (seconds). ``paid``: a
        paid broadcast (``allow_paid_broadcast``), paced on the paid lane instead of the free one;
        the per-chat limit holds for both."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        lane = self._next_paid if paid else self._next_overall
        slot = max(now, lane, self._next_chat.get(chat, 0.0))
        # after a bulk flood wait the whole bot sends at half its rate for a while
        slow = 2 if slot < self._slow_until else 1
        if paid:
            self._next_paid = slot + self.paid_interval * slow
        else:
            self._next_overall = slot + self.overall_interval * slow
        if self.chat_interval:
            self._next_chat[chat] = slot + self.chat_interval
        if len(self._next_chat) > self._max_chats:
            self._next_chat = {k: v for k, v in self._next_chat.items() if v > now}
        return slot - now

    async def wait(self, chat: Any, *, paid: bool = False) -> float:
        delay = self.reserve(chat, paid=paid)
        if delay > 0:
            await self._sleep(delay)
        return delay

    def hold(self, chat: Any, seconds: float) -> str:
        """Telegram answered a send to ``chat`` with 429 ``retry_after=seconds``. Returns
        ``HOLD_CHANNEL`` when it is a bulk flood wait (the whole bot waits), else ``HOLD_RECIPIENT``."""
        now = self._clock()
        until = now + max(0.0, seconds)
        self._held_chat[chat] = max(self._held_chat.get(chat, 0.0), until)
        if len(self._held_chat) > self._max_chats:
            self._held_chat = {k: v for k, v in self._held_chat.items() if v > now}
        self._recent_429 = [(t, c) for t, c in self._recent_429 if t > now - self.flood_window][-100:]
        self._recent_429.append((now, chat))
        if len({c for _, c in self._recent_429}) >= self.flood_chats:
            self._held_all = max(self._held_all, until)
            self._slow_until = max(self._slow_until, until + self.flood_cooldown)
            return HOLD_CHANNEL
        return HOLD_RECIPIENT

    def held(self, chat: Any) -> float:
        """Seconds ``chat`` must still wait because of a 429 (its own or the whole bot's)."""
        return max(0.0, max(self._held_all, self._held_chat.get(chat, 0.0)) - self._clock())


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


@functools.lru_cache(maxsize=1024)
def keyboard_json(quick_replies: tuple[QuickReply, ...]) -> str | None:
    """:func:`keyboard` as the JSON text PTB would send for it (``to_dict``), made once per set of
    buttons: the replies use a few keyboards over and over, and building and serialising the PTB
    objects cost more than the rest of the request's parameters."""
    markup = keyboard(quick_replies)
    return None if markup is None else json.dumps(markup.to_dict())


class TelegramSender:
    """Delivers outbox payloads to Telegram chats (implements ``inbox.channels.Sender``)."""

    channel = Channel.telegram

    def __init__(self, bot: Bot, pacer: SendPacer, *, public_url: str, token: str) -> None:
        self.bot = bot
        self.pacer = pacer
        self.public_url = public_url
        self._token = token
        _quiet_raw_send_hint()

    async def send(self, contact: Recipient, payload: OutboundPayload) -> str | None:
        try:
            chat_id = int(contact.external_id)
        except (TypeError, ValueError):
            raise PermanentFailure("not a Telegram chat id") from None
        text = render_text(payload, self.public_url)
        if not text:
            raise PermanentFailure("nothing to send: no text and no attachment")
        markup = keyboard_json(tuple(payload.quick_replies))
        waiting = self.pacer.held(chat_id)
        if waiting > 0:  # Telegram asked us to wait (the rows were moved already; this one came due early)
            raise RetryLater(waiting, "telegram flood limit (429): waiting out retry_after", rate_limited=True)
        paid = payload.paid_broadcast
        await self.pacer.wait(chat_id, paid=paid)
        try:
            params: dict[str, Any] = {"chat_id": chat_id, "text": text}
            if markup is not None:
                params["reply_markup"] = markup
            if paid:  # allow_paid_broadcast (Bot API 7.11): up to 1000 messages/s, Stars charged over the free 30/s
                params["allow_paid_broadcast"] = True
            sent = await self.bot.do_api_request(_SEND_MESSAGE, api_kwargs=params)
        except RetryAfter as exc:
            seconds = retry_seconds(exc.retry_after)
            scope = self.pacer.hold(chat_id, seconds)
            raise RetryLater(seconds, f"telegram flood limit (429, retry after {seconds:g} s)"
                             + (": the whole bot waits" if scope == HOLD_CHANNEL else ""),
                             rate_limited=True, hold=scope) from None
        except Forbidden as exc:
            raise PermanentFailure(f"telegram: {redact(exc.message, self._token)}", blocked=True) from None
        except ChatMigrated:
            raise PermanentFailure("telegram: the chat was upgraded to a supergroup") from None
        except (InvalidToken, EndPointNotFound):  # sendMessage exists: the token was refused
            raise RetryLater(300, "telegram rejected the bot token (check SHOPDESK_TELEGRAM_TOKEN)") from None
        except BadRequest as exc:
            raise PermanentFailure(f"telegram: {redact(exc.message, self._token)}") from None
        except TimedOut as exc:
            if isinstance(exc.__cause__, (httpx.ConnectTimeout, httpx.PoolTimeout,
                                          aiohttp.ConnectionTimeoutError)):  # nothing was sent
                raise RetryLater(None, "telegram unreachable: connect timeout") from None
            raise OutcomeUnknown("telegram did not answer in time (the message may have been sent)") from None
        except NetworkError as exc:
            raise RetryLater(None, f"telegram unreachable: {redact(exc.message, self._token)}") from None
        except TelegramError as exc:
            raise RetryLater(30, f"telegram error: {redact(exc.message, self._token)}") from None
        return sent_message_id(sent)
