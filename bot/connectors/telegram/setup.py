"""Building the Telegram client from the settings, and the webhook's set-up and status.

``make_bot`` is the one place a PTB ``Bot`` is made (``SHOPDESK_TELEGRAM_API_URL`` lets
tests point it at a fake). Its HTTP client keeps up to ``SHOPDESK_TELEGRAM_CONNECTION_POOL_SIZE``
connections to the Bot API open for ``SHOPDESK_TELEGRAM_KEEPALIVE_SECONDS`` after their last
use (:func:`http_limits`), so a burst of replies does not pay a TCP and TLS handshake each. ``set_webhook`` / ``webhook_status`` back ``shopdesk telegram
set-webhook`` / ``status`` and the admin page.

The bot token is part of every Bot API URL: :func:`quiet_client_logs` lowers httpx's request
log to WARNING and PTB's to INFO (its DEBUG lines show the URL); it runs when a client is
built, never on import. PTB's ``InvalidToken`` messages are never logged, and every error
text we keep is passed through :func:`redact` first.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from telegram import Bot
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.request import BaseRequest, HTTPXRequest

from bot.config import BotSettings
from bot.connectors.telegram.aiohttp_request import AiohttpRequest

__all__ = [
    "ALLOWED_UPDATES",
    "WEBHOOK_PATH",
    "TelegramSetupError",
    "WebhookStatus",
    "bot_key",
    "fetch_status",
    "http_limits",
    "make_bot",
    "quiet_client_logs",
    "redact",
    "set_webhook",
    "webhook_status",
    "webhook_status_text",
]

WEBHOOK_PATH = "/webhooks/telegram"
#: the update types we ask Telegram for (setWebhook and getUpdates)
ALLOWED_UPDATES = ("message", "callback_query")


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



def quiet_client_logs() -> None:
    """Keep the bot token out of library logs; called when a client is built (never on import)."""
    # httpx logs every request URL at INFO, and a Bot API URL contains the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # PTB logs its base URL (with the token) and every request's parameters at DEBUG.
    logging.getLogger("telegram").setLevel(logging.INFO)
    # Opt in to PTB's timedelta values for RetryAfter.retry_after (no PTBDeprecationWarning);
    # PTB reads the variable at use time. Both forms are handled by the sender anyway.
    os.environ.setdefault("PTB_TIMEDELTA", "1")


def http_limits(settings: BotSettings) -> httpx.Limits:
    """The connection pool of the sending client: ``SHOPDESK_TELEGRAM_CONNECTION_POOL_SIZE``
    connections at most, all of them kept alive for ``SHOPDESK_TELEGRAM_KEEPALIVE_SECONDS``
    (0: a new connection for every request)."""
    size = settings.telegram_connection_pool_size
    keepalive = settings.telegram_keepalive_seconds
    return httpx.Limits(max_connections=size, max_keepalive_connections=size if keepalive > 0 else 0,
                        keepalive_expiry=keepalive)


def make_bot(settings: BotSettings) -> Bot:
    """A PTB ``Bot`` for the configured token and Bot API URL (``SHOPDESK_TELEGRAM_API_URL``)."""
    if settings.telegram_token is None:
        raise TelegramSetupError("SHOPDESK_TELEGRAM_TOKEN is not set")
    quiet_client_logs()
    token = settings.telegram_token.get_secret_value().strip()
    if not token:
        raise TelegramSetupError("SHOPDESK_TELEGRAM_TOKEN is empty")
    base_url = settings.telegram_api_url
    file_url = base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else "https://api.telegram.org/file/bot"
    request: BaseRequest
    if settings.telegram_http_client == "httpx":
        request = HTTPXRequest(
            connection_pool_size=settings.telegram_connection_pool_size,
            # a send whose answer does not come within this is "outcome unknown", never repeated:
            # keep it far above the Bot API's worst answer time
            read_timeout=settings.telegram_read_timeout,
            connect_timeout=10.0,
            httpx_kwargs={"limits": http_limits(settings)},
        )
    else:  # the same pool, keep-alive and timeouts on aiohttp (see aiohttp_request)
        request = AiohttpRequest(connection_pool_size=settings.telegram_connection_pool_size,
                                 keepalive_seconds=settings.telegram_keepalive_seconds,
                                 read_timeout=settings.telegram_read_timeout, connect_timeout=10.0)
    return Bot(
        token,
        base_url=base_url,
        base_file_url=file_url,
        request=request,
        get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=40.0, connect_timeout=10.0),
    )


def bot_key(token: str) -> str:
    head = token.split(":", 1)[0]
    return head if head.isdigit() else hashlib.sha256(token.encode()).hexdigest()[:12]


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
            when = self.last_error_date.isoformat(sep=" ", timespec="seconds") if self.last_error_date else "?"
            lines.append(f"Last error:       {when}: {self.last_error_message or '(no message)'}")
        else:
            lines.append("Last error:       none")
        if self.max_connections:
            lines.append(f"Max connections:  {self.max_connections}")
        return "\n".join(lines)


def _api_host(settings: BotSettings) -> str:
    url = str(settings.telegram_api_url)
    return urlsplit(url).netloc or url


def _setup_error(exc: TelegramError, settings: BotSettings, token: str) -> TelegramSetupError:
    if isinstance(exc, InvalidToken):
        return TelegramSetupError("Telegram rejected SHOPDESK_TELEGRAM_TOKEN")
    if isinstance(exc, BadRequest):
        return TelegramSetupError(f"Telegram refused: {redact(exc.message, token)}")
    if isinstance(exc, NetworkError):
        return TelegramSetupError(f"cannot reach the Telegram Bot API at {_api_host(settings)}: "
                                  f"{redact(exc.message, token)}")
    return TelegramSetupError(f"Telegram error: {redact(exc.message, token)}")


async def fetch_status(bot: Bot, token: str, settings: BotSettings | None = None) -> WebhookStatus:
    try:
        info = await bot.get_webhook_info()
    except TelegramError as exc:
        if settings is None:
            raise TelegramSetupError(f"Telegram error: {redact(exc.message, token)}") from None
        raise _setup_error(exc, settings, token) from None
    last_error = info.last_error_date
    if last_error is not None and last_error.tzinfo is None:
        last_error = last_error.replace(tzinfo=UTC)
    return WebhookStatus(
        url=info.url or "",
        pending_update_count=int(info.pending_update_count or 0),
        last_error_date=last_error,
        last_error_message=info.last_error_message,
        max_connections=info.max_connections,
    )


def _settings_token(settings: BotSettings) -> str:
    if settings.telegram_token is None or not settings.telegram_token.get_secret_value().strip():
        raise TelegramSetupError("SHOPDESK_TELEGRAM_TOKEN is not set")
    return str(settings.telegram_token.get_secret_value()).strip()


async def webhook_status(settings: BotSettings) -> WebhookStatus:
    """getWebhookInfo: URL, pending updates, last delivery error."""
    token = _settings_token(settings)
    bot = make_bot(settings)
    try:
        return await fetch_status(bot, token, settings)
    finally:
        await bot.shutdown()


async def webhook_status_text(settings: BotSettings) -> str:
    """``shopdesk telegram status``."""
    return (await webhook_status(settings)).text()


async def set_webhook(settings: BotSettings, url: str) -> str:
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
        status = await fetch_status(bot, token, settings)
    except TelegramError as exc:
        raise _setup_error(exc, settings, token) from None
    finally:
        await bot.shutdown()
    return f"Telegram now delivers updates to {url.strip()} (with the secret token header).\n{status.text()}"
