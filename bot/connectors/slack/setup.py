"""Building Slack's clients from the settings: the Web API client, the request verifier.

:func:`quiet_client_logs` keeps request parameters and bodies (customer texts, agents'
emails from ``users.lookupByEmail``) out of the logs; it runs when a connector is built,
never on import.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import BotSettings

__all__ = [
    "EVENTS_PATH",
    "TRANSPORT_ERRORS",
    "api_error",
    "bolt_logger",
    "is_signed",
    "make_client",
    "quiet_client_logs",
    "slack_error",
]

EVENTS_PATH = "/slack/events"
#: what an unreachable Slack Web API raises past slack_sdk's retries (not SlackClientError)
TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)
_TOKEN = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")


def quiet_client_logs() -> logging.Logger:
    """Lower slack_sdk's and bolt's chatter; return the logger bolt gets (errors only)."""
    # slack_sdk logs every request's parameters and every response body at DEBUG: texts that may
    # hold customers' details, and agents' emails (users.lookupByEmail).
    logging.getLogger("slack_sdk").setLevel(logging.INFO)
    logging.getLogger("slack_bolt").setLevel(logging.INFO)
    return bolt_logger()


def bolt_logger() -> logging.Logger:
    # bolt's "unhandled request" warning quotes the whole request body: keep only its errors
    logger = logging.getLogger("shopdesk.slack.bolt")
    logger.setLevel(logging.ERROR)
    return logger


def make_client(settings: BotSettings) -> AsyncWebClient:
    """The Web API client: ``SHOPDESK_SLACK_API_URL``, waits out 429s, retries connection errors."""
    if settings.slack_bot_token is None:
        raise ValueError("SHOPDESK_SLACK_BOT_TOKEN is not set")
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def is_signed(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    """The ``v0`` signature over the raw body, with a timestamp within five minutes."""
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    try:
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError):
        return False


def api_error(exc: SlackApiError) -> tuple[str | None, int | None]:
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


def slack_error(exc: BaseException) -> str:
    """One loggable line about a failed Slack call: the API error code, or the exception's type.

    Never the exception's text: it can quote a response body (customer text) or a token.
    """
    if isinstance(exc, SlackApiError):
        code, status = api_error(exc)
        return f"{_TOKEN.sub('<token>', code or 'error')[:80]} (HTTP {status if status is not None else '?'})"
    return type(exc).__name__
