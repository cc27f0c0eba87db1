"""What the bot and its connectors read from the settings.

``shopdesk.settings.Settings`` (the composition root) satisfies this protocol; bot code types its
``settings`` parameters with it, so that it never imports upward and never takes ``Any``.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import SecretStr


class BotSettings(Protocol):
    """The settings the bot, the pipeline and the Telegram and Slack connectors use."""

    shop_name: str
    shop_timezone: str
    #: the language of Slack alerts' amounts and dates (and the fallback for customers)
    default_language: str
    public_url: str
    secret_key: SecretStr | None
    reopen_days: int
    max_message_chars: int

    telegram_token: SecretStr | None
    telegram_webhook_secret: SecretStr | None
    telegram_api_url: str
    telegram_per_chat_per_second: float
    telegram_overall_per_second: float
    telegram_connection_pool_size: int
    telegram_paid_per_second: float
    telegram_keepalive_seconds: float
    telegram_read_timeout: float
    telegram_http_client: Literal["aiohttp", "httpx"]

    slack_bot_token: SecretStr | None
    slack_signing_secret: SecretStr | None
    slack_app_token: SecretStr | None
    slack_alert_channel: str | None
    slack_api_url: str

    @property
    def telegram_enabled(self) -> bool: ...

    @property
    def slack_enabled(self) -> bool: ...

    def secret_key_bytes(self) -> bytes: ...
