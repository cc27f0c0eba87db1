"""The web app's configuration and the state its handlers share (one ``WebState`` per app)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:
    import jinja2

    from inbox.models import Agent
    from inbox.web.auth import LoginThrottle
    from inbox.web.live import AgentHub
    from inbox.web.webchat import VisitorHub

__all__ = ["ThrottleConfig", "WebConfig", "WebState", "STATE", "AGENT", "derive_key"]


@dataclass(frozen=True)
class ThrottleConfig:
    """Sign-in failures allowed per email and per client address within ``window_seconds``."""

    max_failures: int = 5
    window_seconds: float = 15 * 60


@dataclass(frozen=True)
class WebConfig:
    secret_key: bytes
    public_url: str = "http://127.0.0.1:8080"
    shop_name: str = "Demo Shop"
    max_message_chars: int = 4096
    reopen_days: int = 7
    #: times on the pages are shown in the shop's time zone; the demo shop's prices in its language
    shop_timezone: str = "UTC"
    default_language: str = "en"
    secure_cookies: bool = False
    #: ``SHOPDESK_TRUSTED_PROXIES``: peers whose X-Forwarded-For / Forwarded / scheme headers count
    #: (``inbox.web.proxies``); empty: none
    trusted_proxies: str = ""
    login_throttle: ThrottleConfig = field(default_factory=ThrottleConfig)
    #: how long an agent's sign-in lasts
    session_max_age: int = 12 * 3600
    #: widget frames: burst size and sustained frames per second per socket (rate 0: no limit)
    widget_burst: int = 8
    widget_rate: float = 2.0
    #: how long a visitor token stays valid (it is re-issued on every connect)
    visitor_token_days: int = 180
    #: a LibreTranslate server (``https://translate.example/``) for the agents' "Translate" action;
    #: None (the default): no translation is offered
    translate_url: str | None = None
    translate_api_key: str | None = field(default=None, repr=False)

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()


def derive_key(secret: bytes, purpose: str) -> bytes:
    """32 raw bytes for one purpose (session cookie, visitor tokens), HKDF-SHA256 from the secret."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"shopdesk-web", info=purpose.encode()).derive(secret)


def sign(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


@dataclass
class WebState:
    sessions: async_sessionmaker[AsyncSession]
    bus: Any
    config: WebConfig
    jinja: jinja2.Environment
    throttle: LoginThrottle
    agents: AgentHub
    visitors: VisitorHub
    visitor_key: bytes
    on_inbound: Callable[[Any], Awaitable[None]] | None = None
    unsubscribe: list[Callable[[], Any]] = field(default_factory=list)


STATE = web.AppKey("inbox_web_state", WebState)
AGENT: web.RequestKey[Agent] = web.RequestKey("inbox_agent")
