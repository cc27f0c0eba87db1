"""Loopback fake of the Slack Web API (an aiohttp application) plus signed inbound-request builders.

Point slack_sdk / bolt at it::

    fake = FakeSlack(users={"ana@shop.test": "U0ANA"})
    server = await aiohttp_server(fake.app)
    client = AsyncWebClient(token=fake.token, base_url=str(server.make_url("/api/")))

Wire behaviour emulated (Slack docs + python-slack-sdk's own mock server):

* ``POST|GET /api/{method}``. slack_sdk sends chat.*/views.* as JSON, auth.test as a form, and
  users.lookupByEmail / users.info / conversations.info as GET with a query string. All are accepted.
* Auth: ``Authorization: Bearer <token>`` (or a ``token`` body field, which Slack also accepts).
  Missing → ``not_authed``, wrong → ``invalid_auth``. Both are HTTP 200 with ``ok: false``, as on Slack.
* Errors are HTTP 200 ``{"ok": false, "error": "..."}``; rate limits are HTTP 429 with the wait ONLY
  in the ``Retry-After`` header and body ``{"ok": false, "error": "ratelimited"}``.
* ``POST /response_url/{id}`` receives ``respond()`` calls (no auth, JSON body), recorded in
  ``.responses``. Build a URL with ``server.make_url(FakeSlack.response_url_path("abc"))``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

__all__ = [
    "API_APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_TOKEN",
    "TEAM_ID",
    "Call",
    "FakeSlack",
    "ResponseUrlCall",
    "block_actions_body",
    "event_callback_body",
    "message_event",
    "sign",
    "signed_headers",
    "slash_command_body",
    "url_verification_body",
]

DEFAULT_TOKEN = "xoxb-1-fake-shopdesk-token"
TEAM_ID = "T1"
API_APP_ID = "A1"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"

# Methods Slack serves without a bearer token.
NO_AUTH_METHODS = frozenset({"api.test", "oauth.v2.access", "oauth.access", "oauth.v2.exchange"})
# Parameters that hold JSON when a caller posts them as a form field.
_JSON_PARAMS = frozenset({"blocks", "attachments", "view", "metadata", "unfurls", "user_auth_blocks", "files"})


@dataclass
class Call:
    """One request to ``/api/{method}``; ``params`` merged from query, form or JSON body."""

    method: str
    params: dict[str, Any]
    token: str | None
    http_verb: str = "POST"
    status: int = 200
    response: dict[str, Any] | None = None
    at: float = field(default_factory=time.monotonic)  # when the request arrived

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))


@dataclass
class ResponseUrlCall:
    """One POST to a response_url (what bolt's ``respond()`` sends)."""

    id: str
    body: dict[str, Any]
    content_type: str


@dataclass
class _Fault:
    status: int
    error: str
    retry_after: int | None
    times: int


class FakeSlack:
    """State + aiohttp app of a fake Slack Web API for one workspace."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        extra_tokens: tuple[str, ...] = (),
        users: dict[str, Any] | None = None,
        channels: dict[str, dict[str, Any]] | None = None,
        team_id: str = TEAM_ID,
        team: str = "Shopdesk",
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        api_app_id: str = API_APP_ID,
        ts_start: int = 1_700_000_000,
    ) -> None:
        self.token = token
        self.tokens = {token, *extra_tokens}
        self.team_id = team_id
        self.team = team
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.api_app_id = api_app_id
        self.users: dict[str, dict[str, Any]] = {}  # user id -> User object
        for email, user in (users or {}).items():
            if isinstance(user, str):
                self.add_user(user, email)
            else:
                self.add_user(user["id"], email, **{k: v for k, v in user.items() if k != "id"})
        self.channels: dict[str, dict[str, Any]] = dict(channels or {})
        self.calls: list[Call] = []
        self.responses: list[ResponseUrlCall] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message
        self.ephemeral: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._ts_sec = ts_start
        self._ts_seq = 0
        self._view_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        #: files_upload_v2: file id -> {"filename", "length", "data", "title", "channel", "thread_ts", "comment"}
        self.files: dict[str, dict[str, Any]] = {}
        # Set this to the server's root URL (no trailing slash) once it is served, e.g.
        # ``fake.base_url = str(server.make_url("")).rstrip("/")``; enables api_url/response_url().
        self.base_url: str | None = None
        self.app = self._build_app()

    # ------------------------------------------------------------------ configuration / control
    def add_user(
        self, user_id: str, email: str | None = None, name: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Add a workspace member (found by users.lookupByEmail and users.info)."""
        name = name or (email.split("@")[0] if email else user_id.lower())
        profile = {"real_name": name.title(), "display_name": name, **extra.pop("profile", {})}
        if email:
            profile["email"] = email
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": profile["real_name"],
            "tz": "Europe/Lisbon",
            "is_bot": False,
            "is_admin": False,
            "profile": profile,
            **extra,
        }
        self.users[user_id] = user
        return user

    def fail_next(
        self,
        method: str,
        status: int | None = None,
        *,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` ("*" = any) fail.

        ``fail_next(m, 429, retry_after=1)`` → HTTP 429, ``Retry-After: 1``, ``error=ratelimited``.
        ``fail_next(m, error="not_in_channel")`` → HTTP 200 ``{"ok": false, "error": ...}``.
        """
        if status is None:
            status = 429 if retry_after is not None else 200
        if status == 429:
            error = error or "ratelimited"
            retry_after = 1 if retry_after is None else retry_after
        elif error is None:
            error = "fatal_error" if status >= 500 else "invalid_arguments"
        self._faults.setdefault(method, []).append(_Fault(status, error, retry_after, times))

    def clear_faults(self) -> None:
        """Forget every fault set with :meth:`fail_next` (the API answers normally again)."""
        self._faults.clear()

    @staticmethod
    def response_url_path(response_id: str) -> str:
        return f"/response_url/{response_id}"

    @property
    def api_url(self) -> str:
        """Value for ``AsyncWebClient(base_url=...)`` (ends with a slash, as slack_sdk expects)."""
        return f"{self._root()}/api/"

    def response_url(self, response_id: str) -> str:
        """Absolute response_url served by this fake (for slash command / action builders)."""
        return self._root() + self.response_url_path(response_id)

    def _root(self) -> str:
        if not self.base_url:
            raise RuntimeError("set fake.base_url to the served root URL first")
        return self.base_url.rstrip("/")

    # ------------------------------------------------------------------ inspection helpers
    def calls_for(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posted_messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages posted with chat.postMessage (current state, chat.update applied), oldest first.

        Each has ``channel``, ``ts``, ``text``, ``blocks`` (if sent), ``thread_ts`` (if sent).
        """
        return [
            m
            for (ch, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
            if channel is None or ch == channel
        ]

    # ------------------------------------------------------------------ HTTP layer
    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/response_url/{id}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        return app

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """Step 2 of files_upload_v2: the bytes, POSTed to the URL files.getUploadURLExternal gave."""
        upload = self.files.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="unknown upload")
        upload["data"] = await request.read()
        return web.Response(text=f"OK - {len(upload['data'])}")

    def shared_files(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Files completed with files.completeUploadExternal (oldest first)."""
        return [f for f in self.files.values() if f.get("channel") and (channel is None or f["channel"] == channel)]

    @staticmethod
    async def _read_params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                params.update({k: v for k, v in (await request.post()).items()
                               if isinstance(v, str)})
        for key in _JSON_PARAMS & params.keys():
            value = params[key]
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    pass
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._read_params(request)
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else params.pop("token", None)
        call = Call(method, params, token, http_verb=request.method)
        self.calls.append(call)

        if method not in NO_AUTH_METHODS:
            if not token:
                return self._reply(call, {"ok": False, "error": "not_authed"})
            if token not in self.tokens:
                return self._reply(call, {"ok": False, "error": "invalid_auth"})

        fault = self._take_fault(method)
        if fault is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            return self._reply(call, {"ok": False, "error": fault.error}, fault.status, headers)

        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._reply(call, {"ok": False, "error": "unknown_method", "req_method": method})
        try:
            result = await handler(params)
        except _SlackError as exc:
            return self._reply(call, {"ok": False, "error": exc.error})
        return self._reply(call, {"ok": True, **result})

    def _take_fault(self, method: str) -> _Fault | None:
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                fault = queue[0]
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
                return fault
        return None

    @staticmethod
    def _reply(
        call: Call, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        call.status = status
        call.response = body
        return web.json_response(body, status=status, headers=headers)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        text = await request.text()
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {"_raw": text}
        self.responses.append(
            ResponseUrlCall(request.match_info["id"], body, request.content_type)
        )
        return web.Response(text="ok", content_type="text/html")

    # ------------------------------------------------------------------ object helpers
    def _next_ts(self) -> str:
        self._ts_seq += 100
        if self._ts_seq > 999_999:
            self._ts_sec += 1
            self._ts_seq = 100
        return f"{self._ts_sec}.{self._ts_seq:06d}"

    def _channel(self, channel_id: str) -> dict[str, Any]:
        if channel_id in self.channels:
            return self.channels[channel_id]
        is_im = channel_id.startswith("D")
        return {
            "id": channel_id,
            "name": channel_id.lower(),
            "is_channel": channel_id.startswith("C"),
            "is_group": channel_id.startswith("G"),
            "is_im": is_im,
            "is_private": channel_id.startswith(("G", "D")),
            "is_archived": False,
            "is_general": False,
            "is_member": True,
            "created": 1_600_000_000,
            "creator": "U0ADMIN",
            "context_team_id": self.team_id,
        }

    def _message(self, params: dict[str, Any], ts: str) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.api_app_id,
            "text": params.get("text") or "",
            "team": self.team_id,
            "bot_profile": {"id": self.bot_id, "app_id": self.api_app_id, "name": "Shopdesk",
                            "team_id": self.team_id, "deleted": False},
        }
        for key in ("blocks", "attachments", "metadata", "thread_ts"):
            if params.get(key) is not None:
                msg[key] = params[key]
        return msg

    @staticmethod
    def _need(params: dict[str, Any], key: str, error: str) -> Any:
        value = params.get(key)
        if value in (None, ""):
            raise _SlackError(error)
        return value

    # ------------------------------------------------------------------ Web API methods
    async def _m_api_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"args": params} if params else {}

    async def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team.lower()}.slack.com/",
            "team": self.team,
            "user": "shopdesk",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._need(params, "channel", "channel_not_found")
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise _SlackError("no_text")
        ts = self._next_ts()
        msg = self._message(params, ts)
        self.messages[(channel, ts)] = {"channel": channel, **msg}
        return {"channel": channel, "ts": ts, "message": msg}

    async def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._need(params, "channel", "channel_not_found")
        ts = self._need(params, "ts", "message_not_found")
        stored = self.messages.get((channel, ts))
        if stored is None:
            raise _SlackError("message_not_found")
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise _SlackError("no_text")
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                stored[key] = params[key]
        stored["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        message = {k: v for k, v in stored.items() if k != "channel"}
        return {"channel": channel, "ts": ts, "text": stored.get("text", ""), "message": message}

    async def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._need(params, "channel", "channel_not_found")
        user = self._need(params, "user", "user_not_found")
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise _SlackError("no_text")
        ts = self._next_ts()
        self.ephemeral.append({"channel": channel, "user": user, "message_ts": ts, **params})
        return {"message_ts": ts}

    async def _m_users_lookupByEmail(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").lower()
        for user in self.users.values():
            if str(user["profile"].get("email", "")).lower() == email and email:
                return {"user": user}
        raise _SlackError("users_not_found")

    async def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": user}

    async def _m_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._need(params, "channel", "channel_not_found")
        return {"channel": self._channel(channel)}

    async def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = self._need(params, "filename", "invalid_arguments")
        length = int(self._need(params, "length", "invalid_arguments"))
        file_id = f"F{next(self._file_ids):010d}"
        self.files[file_id] = {"id": file_id, "filename": filename, "length": length, "data": None}
        return {"upload_url": f"{self._root()}/upload/{file_id}", "file_id": file_id}

    async def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise _SlackError("invalid_arguments")
        channel = params.get("channel_id") or params.get("channels")
        if channel:
            self._channel(str(channel).split(",")[0])
        done = []
        for item in files:
            upload = self.files.get(str(item.get("id")))
            if upload is None or upload["data"] is None or len(upload["data"]) != upload["length"]:
                raise _SlackError("file_upload_size_mismatch" if upload else "file_not_found")
            upload.update(title=item.get("title") or upload["filename"], channel=str(channel or "") or None,
                          thread_ts=params.get("thread_ts"), comment=params.get("initial_comment"))
            done.append({"id": upload["id"], "name": upload["filename"], "title": upload["title"]})
        return {"files": done}

    async def _m_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        self._need(params, "trigger_id", "invalid_trigger_id")
        view = params.get("view")
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            raise _SlackError("invalid_arguments")
        vid = f"V{next(self._view_ids):010d}"
        opened = {
            "id": vid,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "title": view.get("title"),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": None,
            "root_view_id": vid,
            "app_id": self.api_app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self.views.append(opened)
        return {"view": opened}


class _SlackError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


# ---------------------------------------------------------------------- inbound request builders
def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack request-signing headers for ``body``: v0 HMAC-SHA256 of ``v0:{ts}:{body}``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    base = f"v0:{ts}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def signed_headers(
    secret: str, body: bytes, timestamp: int | None = None, *, content_type: str | None = None
) -> dict[str, str]:
    """:func:`sign` plus the Content-Type Slack uses (JSON for events, form for the rest)."""
    if content_type is None:
        content_type = (
            "application/json" if body.lstrip().startswith(b"{")
            else "application/x-www-form-urlencoded"
        )
    return {"Content-Type": content_type, **sign(secret, body, timestamp)}


def _rich_text(text: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "rich_text",
            "block_id": uuid.uuid4().hex[:4],
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


def message_event(
    channel: str,
    user: str,
    text: str,
    ts: str,
    thread_ts: str | None = None,
    *,
    team: str = TEAM_ID,
    channel_type: str = "channel",
    parent_user_id: str | None = None,
) -> dict[str, Any]:
    """A ``message`` event (user message, no subtype) as found in ``event_callback.event``."""
    event: dict[str, Any] = {
        "client_msg_id": str(uuid.uuid4()),
        "type": "message",
        "text": text,
        "user": user,
        "ts": ts,
        "blocks": _rich_text(text),
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        if parent_user_id is not None:
            event["parent_user_id"] = parent_user_id
    return event


def event_callback_body(
    event: dict[str, Any],
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = API_APP_ID,
    *,
    event_time: int | None = None,
    bot_user_id: str = BOT_USER_ID,
) -> bytes:
    """Events API ``event_callback`` envelope (JSON bytes) around ``event``."""
    body = {
        "token": "verification_token",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }
    return json.dumps(body).encode()


def url_verification_body(challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P") -> bytes:
    return json.dumps(
        {"token": "verification_token", "challenge": challenge, "type": "url_verification"}
    ).encode()


def block_actions_body(
    action_id: str,
    value: str,
    user_id: str,
    channel: str,
    message_ts: str,
    response_url: str | None = None,
    trigger_id: str = "13345224609.738474920.8088930838d88f008e0",
    *,
    block_id: str = "actions",
    team_id: str = TEAM_ID,
    api_app_id: str = API_APP_ID,
    message_text: str = "New ticket",
    message_blocks: list[dict[str, Any]] | None = None,
    user_name: str = "agent",
) -> bytes:
    """Interactivity ``block_actions`` request body for a button click on a bot message.

    Form encoded: ``payload=<urlquoted JSON>`` (Content-Type application/x-www-form-urlencoded).
    """
    action = {
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": action_id, "emoji": True},
        "value": value,
        "type": "button",
        "action_ts": f"{int(time.time())}.{uuid.uuid4().int % 1_000_000:06d}",
    }
    blocks = message_blocks or [
        {"type": "actions", "block_id": block_id,
         "elements": [{k: action[k] for k in ("type", "action_id", "text", "value")}]}
    ]
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "shopdesk"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "support"},
        "message": {
            "user": BOT_USER_ID,
            "type": "message",
            "ts": message_ts,
            "bot_id": BOT_ID,
            "app_id": api_app_id,
            "text": message_text,
            "team": team_id,
            "blocks": blocks,
        },
        "state": {"values": {}},
        "response_url": response_url
        or f"https://hooks.slack.com/actions/{team_id}/111/random-value",
        "actions": [action],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def slash_command_body(
    command: str,
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    *,
    team_id: str = TEAM_ID,
    api_app_id: str = API_APP_ID,
    trigger_id: str = "111.111.xxx",
    user_name: str = "agent",
    channel_name: str = "support",
    team_domain: str = "shopdesk",
) -> bytes:
    """Slash command request body (application/x-www-form-urlencoded), fields in Slack's order."""
    fields = {
        "token": "verification_token",
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode()
