"""Agent sign-in: encrypted cookie sessions, CSRF synchronizer tokens, throttling, login/logout.

* The session cookie is aiohttp-session's ``EncryptedCookieStorage`` (Fernet; HttpOnly,
  SameSite=Lax, Secure behind https). Signing in starts a NEW session (no fixation).
* A cookie cannot be revoked server-side, so the session also carries the agent's
  ``session_version``; every request compares it with the database, and bumping it
  (log out everywhere, deactivation, password change) ends every session at once.
* Every state-changing request carries the session's CSRF token as the form field
  ``csrf_token`` or the header ``X-CSRF-Token``; webhooks, Slack, the token API and the
  widget socket are exempt (they authenticate otherwise or carry no cookies).
* Sign-in failures are counted per email and per client address; past the limit the
  answer is 429 before the password is even checked.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp_session import Session, get_session, new_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.agent_login import agent_login
from inbox.actions.agent_update import agent_update
from inbox.actions.login_failures import login_failure_record, login_failures_clear
from inbox.auth import normalize_email
from inbox.models import Agent
from inbox.queries.login import recent_failures
from inbox.web.i18n import N_, translations_for
from inbox.web.proxies import client_address
from inbox.web.rendering import error_response, render, wants_json
from inbox.web.state import AGENT, STATE, ThrottleConfig, WebConfig, derive_key
from shopbase.clock import utcnow

__all__ = [
    "SESSION_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "CSRF_EXEMPT_PREFIXES",
    "LoginThrottle",
    "browser_middleware",
    "SESSIONLESS_PREFIXES",
    "csrf_token",
    "csrf_middleware",
    "agent_middleware",
    "login_page",
    "login",
    "logout",
    "logout_everywhere",
]

log = logging.getLogger("inbox.web.auth")

SESSION_COOKIE = "shopdesk_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_EXEMPT_PREFIXES = ("/webhooks/", "/slack/", "/api/v1/", "/widget/ws")
#: paths whose handlers never read a cookie session, a CSRF token or the agent (the platforms'
#: webhooks authenticate by their own secret or signature): :func:`browser_middleware` passes them
#: straight on. Nothing under ``/inbox`` can start so (the agent check stays on every inbox path).
SESSIONLESS_PREFIXES = ("/webhooks/",)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# shown through error_response, which translates them (N_ marks them for extraction)
_STALE_MESSAGE = N_("This form has expired or is missing its security token. Reload the page and try again.")
_ENDED_MESSAGE = N_("Your session has ended. Please sign in again.")
_BAD_FORM_MESSAGE = N_("The form data could not be read (it must be UTF-8 form fields). Reload the page and try again.")


class LoginThrottle:
    """Counts sign-in failures per key (email, client address) in a sliding window.

    The counts are rows of ``login_failure`` so that every server process on one database
    sees the same ones (and a restart forgets nothing). Keys are stored as an HMAC under the
    server's secret: the table never holds an email or an address.
    """

    def __init__(self, config: ThrottleConfig, sessions: async_sessionmaker[AsyncSession], secret: bytes) -> None:
        self._config = config
        self._sessions = sessions
        self._secret = secret

    def _hash(self, key: str) -> str:
        return hmac.new(self._secret, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    @property
    def _window(self) -> timedelta:
        return timedelta(seconds=self._config.window_seconds)

    async def retry_after(self, keys: list[str], now: datetime | None = None) -> float:
        """Seconds until a new try is allowed (0 when allowed now)."""
        now = now or utcnow()
        hashed = [self._hash(k) for k in keys]
        async with self._sessions() as db:
            recent = await recent_failures(db, hashed, now - self._window)
        wait = 0.0
        limit = self._config.max_failures
        for times in recent.values():
            if len(times) >= limit:
                oldest_counted = times[limit - 1]  # newest first: the limit-th newest failure
                wait = max(wait, (oldest_counted + self._window - now).total_seconds())
        return wait

    async def record_failure(self, keys: list[str], now: datetime | None = None) -> None:
        async with self._sessions() as db:
            await login_failure_record(db, [self._hash(k) for k in keys], now=now or utcnow(), window=self._window)
            await db.commit()

    async def reset(self, key: str) -> None:
        async with self._sessions() as db:
            await login_failures_clear(db, self._hash(key))
            await db.commit()


class _CookieStorage(EncryptedCookieStorage):
    """Marks the cookie ``Secure`` when the public URL is https or the request came over https
    (directly, or as a trusted proxy says: ``inbox.web.proxies``)."""

    def __init__(self, *args: Any, always_secure: bool, **kwargs: Any) -> None:
        super().__init__(*args, secure=always_secure, **kwargs)
        self._always_secure = always_secure

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        # no await happens between setting the flag and writing the cookie (save_cookie is sync)
        self._cookie_params["secure"] = bool(self._always_secure or request.secure)
        await super().save_session(request, response, session)


def _cookie_storage(config: WebConfig) -> _CookieStorage:
    return _CookieStorage(
        derive_key(config.secret_key, "inbox session cookie"),
        cookie_name=SESSION_COOKIE,
        max_age=config.session_max_age,
        httponly=True,
        always_secure=config.secure_cookies,
        samesite="Lax",
    )


def browser_middleware(config: WebConfig) -> Any:
    """aiohttp-session's cookie session, then :func:`csrf_middleware`, then :func:`agent_middleware`,
    as ONE middleware of the app. A path under :data:`SESSIONLESS_PREFIXES` skips all three: they
    would only pass it on (the CSRF check exempts it, the agent check is for ``/inbox``, nothing
    reads its session), and three middleware layers were a measurable part of a Telegram webhook's
    CPU. Every other request runs the same three, in the same order, as before."""
    session = session_middleware(_cookie_storage(config))

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return await handler(request)
        agent = functools.partial(agent_middleware, handler=handler)
        return await session(request, functools.partial(csrf_middleware, handler=agent))

    return middleware


async def csrf_token(request: web.Request) -> str:
    """The session's CSRF token, created on first use."""
    session = await get_session(request)
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _exempt(path: str) -> bool:
    return path.startswith(CSRF_EXEMPT_PREFIXES)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method in _SAFE_METHODS or _exempt(request.path):
        return await handler(request)
    session = await get_session(request)
    expected = session.get("csrf")
    provided = request.headers.get(CSRF_HEADER)
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # parsed here once for every form (aiohttp caches it for the handler): a body that is
        # not valid form data (bad UTF-8, unknown charset, broken multipart) is a 400, not a 500
        try:
            form = await request.post()
        except (ValueError, LookupError):
            return error_response(request, 400, _BAD_FORM_MESSAGE)
        value = form.get(CSRF_FIELD)
        if provided is None:
            provided = value if isinstance(value, str) else None
    if (
        not isinstance(expected, str)
        or not expected
        or not provided
        or not hmac.compare_digest(expected.encode(), provided.encode())
    ):
        log.info("csrf check failed", extra={"path": request.path})
        return error_response(request, 403, _STALE_MESSAGE)
    return await handler(request)


def _in_inbox(path: str) -> bool:
    return path == "/inbox" or path.startswith("/inbox/")


async def _load_agent(request: web.Request) -> Agent | None:
    session = await get_session(request)
    agent_id = session.get("agent_id")
    version = session.get("sv")
    if not isinstance(agent_id, int) or not isinstance(version, int):
        return None
    state = request.app[STATE]
    async with state.sessions() as db:
        agent = await db.get(Agent, agent_id)
    if agent is None or not agent.is_active or agent.session_version != version:
        session.invalidate()
        return None
    return agent


@web.middleware
async def agent_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Everything under /inbox needs a signed-in, active agent whose session is still current."""
    if not _in_inbox(request.path):
        return await handler(request)
    agent = await _load_agent(request)
    if agent is None:
        if request.method == "GET" and not wants_json(request) and request.path != "/inbox/ws":
            target = request.path_qs
            raise web.HTTPSeeOther(f"/login?next={quote(target, safe='')}")
        response = error_response(request, 401, _ENDED_MESSAGE)
        response.headers["HX-Redirect"] = "/login"
        return response
    request[AGENT] = agent
    return await handler(request)


def _safe_next(value: str | None) -> str:
    """Only a local inbox path may be a post-login target (no open redirect)."""
    if not value or not value.startswith("/inbox") or "//" in value or "\\" in value:
        return "/inbox"
    return value


async def login_page(request: web.Request) -> web.Response:
    session = await get_session(request)
    if isinstance(session.get("agent_id"), int) and await _load_agent(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return render(
        request,
        "inbox/login.html",
        {
            "csrf_token": await csrf_token(request),
            "error": None,
            "email": "",
            "next": _safe_next(request.query.get("next")),
        },
    )


def _client_address(request: web.Request) -> str:
    # the real client behind a trusted proxy (inbox.web.proxies); a client's own
    # X-Forwarded-For never counts
    return client_address(request)


async def login(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await request.post()
    email = str(form.get("email") or "")
    password = str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or ""))
    email_key = "email:" + normalize_email(email)[:320]
    keys = [email_key, "ip:" + _client_address(request)]

    wait = await state.throttle.retry_after(keys)
    if wait > 0:
        minutes = max(1, int(wait // 60) + (1 if wait % 60 else 0))
        log.warning("sign-in throttled", extra={"client": _client_address(request)})
        response = render(
            request,
            "inbox/login.html",
            {
                "csrf_token": await csrf_token(request),
                "error": translations_for(request).ngettext(
                    "Too many failed sign-in attempts. Try again in %(num)d minute.",
                    "Too many failed sign-in attempts. Try again in %(num)d minutes.",
                    minutes,
                ) % {"num": minutes},
                "email": email[:320],
                "next": target,
            },
            status=429,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    async with state.sessions() as db:
        agent = await agent_login(db, email, password)
        if agent is not None:
            await db.commit()
    if agent is None:
        await state.throttle.record_failure(keys)
        log.info("sign-in failed", extra={"client": _client_address(request)})
        return render(
            request,
            "inbox/login.html",
            {
                "csrf_token": await csrf_token(request),
                "error": translations_for(request).gettext("Wrong email or password."),
                "email": email[:320],
                "next": target,
            },
            status=401,
        )
    await state.throttle.reset(email_key)
    session = await new_session(request)
    session["agent_id"] = agent.id
    session["sv"] = agent.session_version
    session["csrf"] = secrets.token_urlsafe(32)
    log.info("agent signed in", extra={"agent_id": agent.id, "client": _client_address(request)})
    raise web.HTTPSeeOther(target)


async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")


async def logout_everywhere(request: web.Request) -> web.Response:
    """End every session of the signed-in agent (all browsers and devices)."""
    agent = request[AGENT]
    state = request.app[STATE]
    async with state.sessions() as db:
        fresh = await db.get(Agent, agent.id)
        if fresh is not None:
            await agent_update(db, fresh, "sign_out", by=fresh)
            await db.commit()
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")
