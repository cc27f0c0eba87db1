"""Settings: ``SHOPDESK_*`` environment variables over an optional ``shopdesk.toml``.

Load them with :func:`load_settings`; a bad value raises :class:`SettingsError` whose
message is one line naming the setting. Secrets are ``SecretStr`` so that printing the
settings object never shows them; :func:`describe` renders the masked table that
``shopdesk config`` prints.
"""

from __future__ import annotations

import difflib
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "SettingsError", "load_settings", "describe"]

TOML_FILE_ENV = "SHOPDESK_CONFIG"


class SettingsError(Exception):
    """A setting has a bad value; ``str(exc)`` is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPDESK_", extra="ignore", toml_file="shopdesk.toml")

    database_url: str = "sqlite+aiosqlite:///./shopdesk.db"
    # PostgreSQL only: connections each server process may open, pool + overflow, all kept open once
    # opened (see engine_options); every process also holds 3 of its own (event fan-out, job leadership)
    db_pool_size: int = Field(default=10, ge=1, le=500)
    db_max_overflow: int = Field(default=20, ge=0, le=500)
    # PostgreSQL only: micro-batches of bot turns a process runs at once (SQLite: always one). One
    # at a time makes the next batch bigger (messages arriving meanwhile join it), and a batch's
    # fixed cost is most of a message's: tests.bench.pgcost, 60 customers, fsync on, 1 -> 5 batches:
    # 789 -> 661 msg/s with one process, 777 -> 554 with two. More may help a database far away
    # (each batch waits several round trips); never more than half the pool (db_pool_size // 2)
    bot_batches: int = Field(default=1, ge=1, le=8)
    secret_key: SecretStr | None = None
    data_dir: Path = Path(".shopdesk")
    public_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "INFO"
    #: reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For / Forwarded
    #: and scheme headers count; from every other peer they are ignored (default: none)
    trusted_proxies: str = ""
    #: one JSON line per HTTP request on the "shopdesk.access" logger (path without query, status, time)
    access_log: bool = False
    #: bearer token for GET /metrics; unset: /metrics answers direct loopback requests only
    metrics_token: SecretStr | None = None
    #: several processes on one host: the directory where each writes its metric values, so that
    #: /metrics in any of them adds up all (prometheus-client multiprocess mode; also read from
    #: PROMETHEUS_MULTIPROC_DIR); unset: each process serves its own numbers
    metrics_dir: Path | None = None

    shop_name: str = "Demo Shop"
    shop_timezone: str = "UTC"
    default_language: str = "en"
    #: a LibreTranslate server for the inbox's "Translate" action on customer messages (none: not offered)
    translate_url: str | None = None
    translate_api_key: SecretStr | None = None
    reopen_days: int = Field(default=7, ge=0, le=365)
    max_message_chars: int = Field(default=4096, ge=1, le=65536)
    # the chat widget's flood limit per socket: a burst of frames at once, then this many per
    # second (0 turns the limit off: a load test, a trusted embedding)
    widget_burst: int = Field(default=8, ge=1, le=100_000)
    widget_per_second: float = Field(default=2.0, ge=0)

    shopify_webhook_secret: SecretStr | None = None
    shopify_webhook_secret_previous: SecretStr | None = None
    # Shopify deliveries whose transactions run at once (the others wait, cheaply): a burst of
    # webhooks then no longer starves the outbox's sends on the event loop. Unset: 4 on SQLite
    # (one connection; a transaction runs without yielding), 16 on PostgreSQL
    shopify_webhook_concurrency: int | None = Field(default=None, ge=1, le=1024)

    telegram_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    # Telegram's flood limits (1 message/s to one chat, about 30/s in all); 0 turns a limit off
    # (a self-hosted Bot API server, the benchmark)
    telegram_per_chat_per_second: float = Field(default=1.0, ge=0)
    telegram_overall_per_second: float = Field(default=30.0, ge=0)
    # python-telegram-bot's HTTP client: connections to the Bot API kept open and reused; at least
    # outbox_concurrency (a send waiting for a free connection would time out)
    telegram_connection_pool_size: int = Field(default=64, ge=1, le=1024)
    # with the merchant's paid broadcasts on (Bot API's allow_paid_broadcast, a fee in Stars per message
    # over the free 30/s), proactive updates may go out at up to this many per second in all
    telegram_paid_per_second: float = Field(default=1000.0, ge=0, le=1000)
    # sends the outbox dispatcher keeps in flight at once (all channels). More helps against a slow
    # network; it also widens the crash window: a process killed mid-send may repeat up to this many
    # replies (tests/test_fault_cluster.py bounds it at 20 a kill), so keep it modest
    outbox_concurrency: int = Field(default=16, ge=1, le=1024)
    # a bot turn inserts its replies already claimed by this process's outbox dispatcher when they can
    # go out at once, and hands them over after the commit: no claim transaction (inbox.outbox_handoff)
    outbox_born_claimed: bool = True
    telegram_keepalive_seconds: float = Field(default=30.0, ge=0, le=3600)
    # how long a send waits for the Bot API's answer; after it the outcome is unknown and the
    # message is not sent again (no duplicate check on Telegram), so keep it well above its worst case
    telegram_read_timeout: float = Field(default=60.0, ge=1, le=600)
    # python-telegram-bot's HTTP client: "aiohttp" (bot.connectors.telegram.aiohttp_request; about a
    # tenth of httpx's CPU per send) or "httpx" (PTB's own HTTPXRequest)
    telegram_http_client: Literal["aiohttp", "httpx"] = "aiohttp"

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_alert_channel: str | None = None
    slack_api_url: str = "https://slack.com/api/"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        value = value.strip()
        if value.startswith(("postgres://", "postgresql://")):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            value = "sqlite+aiosqlite:///" + value[len("sqlite:///") :]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("public_url", "telegram_api_url", "slack_api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        import ipaddress

        items = [item.strip() for item in value.replace(";", ",").split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return ", ".join(items)

    @field_validator("default_language")
    @classmethod
    def _check_language(cls, value: str) -> str:
        languages = ("en", "es", "ru", "vi", "zh-Hans", "zh-Hant")
        if value not in languages:
            raise ValueError(f"must be one of {', '.join(languages)}")
        return value

    @field_validator("translate_url")
    @classmethod
    def _check_translate_url(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("shop_timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _check_tg_secret(cls, value: SecretStr | None) -> SecretStr | None:
        import re

        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get(TOML_FILE_ENV, "shopdesk.toml")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        """Without an explicit SHOPDESK_PUBLIC_URL, links (return labels, the inbox) point at the
        address the server listens on, so ``SHOPDESK_PORT=8099`` needs nothing else."""
        if "public_url" not in self.model_fields_set:
            host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
            self.public_url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        return self

    @model_validator(mode="after")
    def _pool_fits_the_outbox(self) -> Settings:
        pool, in_flight = self.telegram_connection_pool_size, self.outbox_concurrency
        if pool < in_flight:
            raise ValueError(
                f"SHOPDESK_TELEGRAM_CONNECTION_POOL_SIZE ({pool}) must be at least "
                f"SHOPDESK_OUTBOX_CONCURRENCY ({in_flight}): sends waiting for a connection time out")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def webhook_concurrency(self) -> int:
        """``SHOPDESK_SHOPIFY_WEBHOOK_CONCURRENCY``, or the default for the database."""
        if self.shopify_webhook_concurrency is not None:
            return self.shopify_webhook_concurrency
        return 4 if self.is_sqlite else 16

    def engine_options(self) -> dict[str, Any]:
        """``create_engine`` options from the settings (SQLite keeps its one inline connection)."""
        if self.is_sqlite:
            return {}
        # the overflow is kept open like the pool (same cap): SQLAlchemy closes an overflow
        # connection at every check-in, and under load that was a new PostgreSQL backend (fork,
        # cold caches, asyncpg's set-up) every few messages, about half of PostgreSQL's CPU.
        # Last in, first out: a light load keeps reusing a few warm connections (one idle for 2 s
        # is pinged first, shopdesk.pgpool) while the others wait for the next burst
        return {"pool_size": self.db_pool_size + self.db_max_overflow, "max_overflow": 0, "pool_use_lifo": True}

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_token is not None

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None

    @property
    def files_dir(self) -> Path:
        """Where stored files live (labels, invoices, per-customer files): ``<data dir>/files``."""
        return self.data_dir / "files"

    def secret_key_bytes(self) -> bytes:
        assert self.secret_key is not None, "ensure_secret_key() runs at start-up"
        return self.secret_key.get_secret_value().encode()

    def ensure_secret_key(self) -> None:
        """Use SHOPDESK_SECRET_KEY, or the key persisted in the data dir, or make and persist one."""
        if self.secret_key is not None:
            return
        path = self.data_dir / "secret_key"
        if path.exists():
            key = path.read_text().strip()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(48)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key + "\n")
            os.replace(tmp, path)
        self.secret_key = SecretStr(key)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raise SettingsError with one line naming the first bad one."""
    explicit = os.environ.get(TOML_FILE_ENV)
    if explicit and explicit != os.devnull and not Path(explicit).is_file():
        raise SettingsError(f"bad setting {TOML_FILE_ENV}: no such file {explicit!r}")
    _check_toml_keys(Path(explicit or "shopdesk.toml"))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "SHOPDESK_" + str(err["loc"][0]).upper() if err.get("loc") else "settings"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"bad setting {name}: {message}") from None
    except Exception as exc:  # a broken shopdesk.toml
        raise SettingsError(f"cannot read settings: {exc}".splitlines()[0]) from None


def _check_toml_keys(path: Path) -> None:
    """A misspelt key in shopdesk.toml must not silently fall back to a default (say, a
    different database): name it, with the closest real setting."""
    if str(path) == os.devnull or not path.is_file():
        return
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read settings: {path}: {exc}".splitlines()[0]) from None
    known = set(Settings.model_fields)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key.lower(), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(f"bad setting in {path.name}: unknown key {key!r}{hint}")


def _mask(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "(set, hidden)" if value.get_secret_value() else "(empty)"
    if value is None:
        return "(not set)"
    if value == "":
        return "(empty)"
    return str(value)


def _mask_url(url: str) -> str:
    """Hide a password inside a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def describe(settings: Settings) -> list[tuple[str, str]]:
    rows = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        shown = _mask_url(value) if name == "database_url" else _mask(value)
        rows.append(("SHOPDESK_" + name.upper(), shown))
    return rows
