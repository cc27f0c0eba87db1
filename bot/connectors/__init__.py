"""Channel connectors: the edge where platform payloads become our own messages and back.

A connector authenticates and translates what a platform sends (a Telegram update, a Slack
event) into :class:`inbox.messages.InboundMessage` or an inbox action, and delivers outbound
payloads through a :class:`inbox.channels.Sender`; nothing past a connector sees a vendor
payload. :func:`build_connectors` switches them on from the settings:

=========  ==========================================================  =====================
connector  switched on by                                              routes
=========  ==========================================================  =====================
telegram   ``SHOPDESK_TELEGRAM_TOKEN`` (+ ``_WEBHOOK_SECRET`` for the  ``POST /webhooks/telegram``,
           webhook; ``serve --telegram-polling`` for long polling)     ``GET /inbox/admin/telegram``
slack      ``SHOPDESK_SLACK_BOT_TOKEN`` + ``SHOPDESK_SLACK_SIGNING_     ``POST /slack/events``
           SECRET`` (+ ``_APP_TOKEN`` for Socket Mode)
=========  ==========================================================  =====================

Each connector is a folder with the same file names: ``connector.py`` (the class: routes,
start/stop), ``translate.py`` (vendor payload → our types; pure functions), ``send.py`` (the
outbox's sender), ``setup.py`` (clients from the settings, webhook set-up), plus ``admin.py``
and ``blocks.py`` where they belong. Importing a connector has no side effects: log levels
and environment are set when a client is built.

With none configured the list is empty and the app runs on the web widget alone (the widget
lives in ``inbox.web``; the terminal chat in ``bot.terminal``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import BotSettings

__all__ = ["Connector", "build_connectors"]

log = logging.getLogger("shopdesk.connectors")


@runtime_checkable
class Connector(Protocol):
    """A running channel integration; started and stopped with the server."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_connectors(
    app: web.Application,
    *,
    settings: BotSettings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Any,
    senders: Any,
    on_inbound: Callable[[Any], Awaitable[None]],
    telegram_polling: bool = False,
) -> list[Connector]:
    """Build the configured connectors, mount their routes on ``app`` and register their senders."""
    connectors: list[Connector] = []
    if settings.telegram_enabled:
        from bot.connectors.telegram import TelegramConnector

        telegram = TelegramConnector(settings=settings, sessions=sessions, on_inbound=on_inbound,
                                     polling=telegram_polling)
        telegram.setup_routes(app)
        senders.register(telegram.sender)
        connectors.append(telegram)
    elif telegram_polling:
        log.warning("--telegram-polling ignored: SHOPDESK_TELEGRAM_TOKEN is not set")

    if settings.slack_enabled:
        from bot.connectors.slack import SlackConnector

        slack = SlackConnector(settings=settings, sessions=sessions, bus=bus)
        slack.setup_routes(app)
        senders.register(slack.sender)  # the outbox delivers Slack alerts through it
        connectors.append(slack)
    elif settings.slack_bot_token is not None or settings.slack_signing_secret is not None:
        log.warning("Slack is off: it needs both SHOPDESK_SLACK_BOT_TOKEN and SHOPDESK_SLACK_SIGNING_SECRET")

    log.info("connectors: %s", ", ".join(c.name for c in connectors) or "none (web widget only)")
    return connectors
