"""Telegram connector: ``connector`` (routes, polling), ``translate`` (update → InboundMessage),
``send`` (the outbox Sender), ``setup`` (client, webhook set-up and status), ``admin`` (page).

The names below are re-exported for callers that import ``bot.connectors.telegram``;
importing this package changes no environment variable and no logger level.
"""

from bot.connectors.telegram.admin import ADMIN_PATH
from bot.connectors.telegram.connector import (
    MAX_UPDATE_BYTES,
    SECRET_HEADER,
    TelegramConnector,
)
from bot.connectors.telegram.send import (
    MAX_TEXT,
    SendPacer,
    TelegramSender,
    keyboard,
    render_text,
)
from bot.connectors.telegram.setup import (
    ALLOWED_UPDATES,
    WEBHOOK_PATH,
    TelegramSetupError,
    WebhookStatus,
    make_bot,
    redact,
    set_webhook,
    webhook_status,
    webhook_status_text,
)
from bot.connectors.telegram.translate import (
    MAX_CALLBACK_DATA,
    START_POSTBACK,
    CallbackRef,
    MalformedUpdate,
    Translation,
    callback_data_for,
    translate_update,
)

__all__ = [
    "ADMIN_PATH",
    "ALLOWED_UPDATES",
    "MAX_CALLBACK_DATA",
    "MAX_TEXT",
    "MAX_UPDATE_BYTES",
    "SECRET_HEADER",
    "START_POSTBACK",
    "WEBHOOK_PATH",
    "CallbackRef",
    "MalformedUpdate",
    "SendPacer",
    "TelegramConnector",
    "TelegramSender",
    "TelegramSetupError",
    "Translation",
    "WebhookStatus",
    "callback_data_for",
    "keyboard",
    "make_bot",
    "redact",
    "render_text",
    "set_webhook",
    "translate_update",
    "webhook_status",
    "webhook_status_text",
]
