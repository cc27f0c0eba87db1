"""Loopback fake of the Telegram Bot API (an aiohttp application) plus update builders.

Point python-telegram-bot at it::

    fake = FakeTelegram()
    server = await aiohttp_server(fake.app)
    url = str(server.make_url(""))           # "http://127.0.0.1:PORT/" (note the trailing slash)
    ptb = (Application.builder().token(fake.token)
           .base_url(f"{url}bot").base_file_url(f"{url}file/bot")
           .updater(None).build())

Wire behaviour emulated (see the Bot API docs and PTB's ``_baserequest.py``):

* ``POST|GET /bot{token}/{method}``; the method name is case-insensitive, as on the real server.
* Bodies: ``application/x-www-form-urlencoded`` (what PTB sends), ``multipart/form-data`` (PTB, when
  a file is uploaded), JSON, or the query string. PTB JSON-encodes every non-string value, so
  ``chat_id`` arrives as ``'42'`` and ``reply_markup`` as ``'{"inline_keyboard": ...}'``. Those
  values are decoded back, except in free-text fields (``text``, ``caption``...), which stay strings.
* Success: HTTP 200 ``{"ok": true, "result": ...}``. Errors: HTTP status == ``error_code``,
  ``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``.
* ``editMessageText``/``editMessageReplyMarkup`` without ``reply_markup`` REMOVE the inline keyboard,
  and an edit that changes nothing is ``400 message is not modified``, as on the real server.
* ``getUpdates``: ``offset`` is the first update_id to return (real semantics: ``update_id >= offset``;
  PTB sends ``last_update_id + 1``). Smaller ids are confirmed and dropped. The wait is
  ``min(timeout, long_poll_cap)`` seconds. While a webhook is set, getUpdates is ``409 Conflict``.

Faults and slowness (for the delivery tests): ``fail_next`` (the next N calls, optionally only
to one ``chat_id``), ``fail_for`` (every call for a while, e.g. a 429 storm with ``retry_after``
or 500s), ``answer_after`` (the call takes effect at once, as on the real server, but the answer
comes ``seconds`` later: a slow or hanging Bot API). Every call records when it arrived
(``Call.at``, ``time.monotonic()``).

Not emulated: parse_mode rendering (``text`` is stored as sent, tags included), Telegram's own
flood limits (use the faults above), chats the bot has never seen (every chat id is accepted).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Opt in to PTB's timedelta return values (RetryAfter.retry_after etc.) so that tests using these
# fakes do not trigger PTBDeprecationWarning. PTB reads the variable at use time.
os.environ.setdefault("PTB_TIMEDELTA", "1")

__all__ = [
    "BOT_FIRST_NAME",
    "BOT_ID",
    "BOT_USERNAME",
    "DEFAULT_TOKEN",
    "Call",
    "FakeTelegram",
    "UploadedFile",
    "make_callback_update",
    "make_message_update",
    "make_start_update",
    "start_fake",
]

DEFAULT_TOKEN = "123456789:AAFakeTokenForShopdeskTests_0123456789"
BOT_ID = 123456789
BOT_USERNAME = "shopdesk_test_bot"
BOT_FIRST_NAME = "Shopdesk"

BLOCKED_DESCRIPTION = "Forbidden: bot was blocked by the user"
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: BLOCKED_DESCRIPTION,
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)

# Parameters that are free text: never JSON-decoded ("42" stays "42" in a message text).
_STRING_PARAMS = frozenset(
    {
        "text", "caption", "url", "secret_token", "parse_mode", "callback_query_id",
        "inline_message_id", "ip_address", "query", "title", "description", "short_description",
        "name", "emoji", "first_name", "last_name", "phone_number", "address", "filename",
        "business_connection_id", "message_effect_id", "custom_emoji_id", "question",
        "language_code",
    }
)
# Methods that "send to a chat" and are refused for blocked chats.
_SEND_PREFIXES = ("send", "copymessage", "forwardmessage", "editmessage")

_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass
class UploadedFile:
    """A multipart file part received by the fake (e.g. ``document`` in sendDocument)."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Call:
    """One request to the fake. ``params`` are decoded (ints, dicts); uploads are UploadedFile."""

    method: str
    params: dict[str, Any]
    token: str
    status: int = 200
    result: Any = None  # the ``result`` returned on success, or the error body on failure
    at: float = field(default_factory=time.monotonic)  # when the request arrived

    @property
    def chat_id(self) -> Any:
        return _norm_chat_id(self.params.get("chat_id"))

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None
    migrate_to_chat_id: int | None
    times: int
    until: float | None = None  # time-based (``fail_for``): every call until then
    chat_id: Any = None  # only calls to this chat


@dataclass
class _Slow:
    seconds: float
    times: int | None  # None: every call


def _decode_value(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in _STRING_PARAMS:
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value  # e.g. chat_id="@channelname", plain strings
    if isinstance(decoded, str):
        return value  # keep '"x"' style values untouched
    return decoded


def _now() -> int:
    return int(time.time())


class FakeTelegram:
    """State + aiohttp app of a fake Bot API server for one bot token."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_id: int | None = None,
        username: str = BOT_USERNAME,
        first_name: str = BOT_FIRST_NAME,
        long_poll_cap: float = 1.0,
    ) -> None:
        self.token = token
        if bot_id is None:
            head = token.split(":", 1)[0]
            bot_id = int(head) if head.isdigit() else BOT_ID
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.long_poll_cap = long_poll_cap
        # Set this to the server's root URL (no trailing slash) once it is served, e.g.
        # ``fake.base_url = str(server.make_url("")).rstrip("/")``; enables the *_url properties.
        self.base_url: str | None = None
        self.calls: list[Call] = []
        # (chat_id, message_id) -> Message dict, for everything the bot sent (edits update it).
        self.messages: dict[tuple[Any, int], dict[str, Any]] = {}
        self.chats: dict[Any, dict[str, Any]] = {}  # optional overrides of the Chat object
        self.blocked_chats: set[Any] = set()
        self.answered_callbacks: list[dict[str, Any]] = []
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}  # file_id -> (File, content)
        self.stubs: dict[str, Any] = {}
        self.webhook: dict[str, Any] = {"url": ""}
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        self._faults: dict[str, list[_Fault]] = {}
        self._slow: dict[str, _Slow] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._next_message_id = 1
        self._next_file = 1
        self._waiters: list[asyncio.Future[None]] = []
        self.app = self._build_app()

    # ------------------------------------------------------------------ configuration / control
    def fail_next(
        self,
        method: str,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        *,
        migrate_to_chat_id: int | None = None,
        chat_id: Any = None,
        _until: float | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` ("*" = any method) fail (only those to
        ``chat_id`` when given).

        ``status`` is both the HTTP status and ``error_code``. ``retry_after`` adds
        ``parameters.retry_after`` (PTB raises RetryAfter), ``migrate_to_chat_id`` adds
        ``parameters.migrate_to_chat_id`` (PTB raises ChatMigrated).
        """
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after or 5}"
                retry_after = retry_after or 5
            elif migrate_to_chat_id is not None:
                description = "Bad Request: group chat was upgraded to a supergroup chat"
            else:
                description = _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        self._faults.setdefault(method.lower(), []).append(
            _Fault(status, description, retry_after, migrate_to_chat_id, times, _until,
                   None if chat_id is None else _norm_chat_id(chat_id))
        )

    def fail_for(self, method: str, status: int, seconds: float, description: str | None = None,
                 retry_after: int | None = None, *, chat_id: Any = None) -> None:
        """Every call of ``method`` fails for the next ``seconds`` (e.g. a 429 storm, a 500 outage)."""
        self.fail_next(method, status, description, retry_after, times=1, chat_id=chat_id,
                       _until=time.monotonic() + seconds)

    def answer_after(self, method: str, seconds: float, times: int | None = None) -> None:
        """The next ``times`` calls of ``method`` (None: all) take effect at once but are answered
        ``seconds`` later; ``answer_after(method, 0, times=0)`` ends it."""
        if times == 0:
            self._slow.pop(method.lower(), None)
        else:
            self._slow[method.lower()] = _Slow(seconds, times)

    def block_chat(self, chat_id: Any) -> None:
        """Every send/edit to this chat now fails with 403 "bot was blocked by the user"."""
        self.blocked_chats.add(_norm_chat_id(chat_id))

    def unblock_chat(self, chat_id: Any) -> None:
        self.blocked_chats.discard(_norm_chat_id(chat_id))

    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates (assigns ``update_id`` when missing); wakes long polls."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
        self._updates.append(update)
        self._updates.sort(key=lambda u: u["update_id"])
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        return update

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self._updates)

    def set_webhook_error(self, message: str, date: int | None = None) -> None:
        """Simulate Telegram failing to deliver to our webhook (shown by getWebhookInfo)."""
        self.last_error_message = message
        self.last_error_date = date if date is not None else _now()

    def add_file(
        self, data: bytes, filename: str = "file.bin", mime_type: str | None = None
    ) -> dict[str, Any]:
        """Register a file (e.g. a customer's photo) for getFile + download; returns the File."""
        return self._store_file(data, filename, mime_type)

    def stub(self, method: str, result: Any) -> None:
        """Answer ``method`` (e.g. "setMyCommands") with ``{"ok": true, "result": result}``."""
        self.stubs[method.lower()] = result

    @property
    def ptb_base_url(self) -> str:
        """Value for PTB's ``base_url`` (PTB appends the token and the method)."""
        return f"{self._root()}/bot"

    @property
    def ptb_base_file_url(self) -> str:
        """Value for PTB's ``base_file_url``."""
        return f"{self._root()}/file/bot"

    def _root(self) -> str:
        if not self.base_url:
            raise RuntimeError("set fake.base_url to the served root URL first")
        return self.base_url.rstrip("/")

    # ------------------------------------------------------------------ inspection helpers
    def calls_for(self, method: str) -> list[Call]:
        m = method.lower()
        return [c for c in self.calls if c.method.lower() == m]

    def sent_messages(self, chat_id: Any = None) -> list[dict[str, Any]]:
        """Message objects the fake returned for successful send* calls, oldest first.

        Each is the current state (edits applied): message_id, date, chat, text/caption,
        reply_markup (inline keyboards only, as Telegram echoes them), document...
        """
        want = None if chat_id is None else _norm_chat_id(chat_id)
        return [
            m
            for (cid, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
            if want is None or cid == want
        ]

    # ------------------------------------------------------------------ HTTP layer
    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=50 * 1024 * 1024)  # Bot API upload limit
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        return app

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    raw.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        raw[key] = UploadedFile(
                            key, value.filename, value.content_type, value.file.read()
                        )
                    else:
                        raw[key] = value
        params = {k: _decode_value(k, v) for k, v in raw.items()}
        # Resolve attach://name references to the uploaded part.
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                part = params.get(value[len("attach://") :])
                if isinstance(part, UploadedFile):
                    params[key] = part
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        params = await self._read_params(request)
        call = Call(method, params, token)
        self.calls.append(call)

        if token != self.token:
            return self._error(call, 401, "Unauthorized")

        m = method.lower()
        fault = self._take_fault(m, params)
        if fault is not None:
            parameters: dict[str, Any] = {}
            if fault.retry_after is not None:
                parameters["retry_after"] = fault.retry_after
            if fault.migrate_to_chat_id is not None:
                parameters["migrate_to_chat_id"] = fault.migrate_to_chat_id
            return self._error(call, fault.status, fault.description, parameters or None)

        if m.startswith(_SEND_PREFIXES) and "chat_id" in params:
            if _norm_chat_id(params["chat_id"]) in self.blocked_chats:
                return self._error(call, 403, BLOCKED_DESCRIPTION)

        if m in self.stubs:
            return self._ok(call, self.stubs[m])
        handler = getattr(self, f"_m_{m}", None)
        if handler is None:
            return self._error(call, 404, "Not Found")
        try:
            result = await handler(params)
        except _ApiError as exc:
            return self._error(call, exc.status, exc.description)
        slow = self._slow.get(m)
        if slow is not None:  # done already (the message exists); only the answer is late
            if slow.times is not None:
                slow.times -= 1
                if slow.times <= 0:
                    self._slow.pop(m, None)
            await asyncio.sleep(slow.seconds)
        return self._ok(call, result)

    def _take_fault(self, method: str, params: dict[str, Any] | None = None) -> _Fault | None:
        chat = _norm_chat_id((params or {}).get("chat_id"))
        now = time.monotonic()
        for key in (method, "*"):
            queue = self._faults.get(key)
            if not queue:
                continue
            queue[:] = [f for f in queue if f.until is None or f.until > now]  # storms that are over
            for fault in queue:
                if fault.chat_id is not None and fault.chat_id != chat:
                    continue
                if fault.until is None:
                    fault.times -= 1
                    if fault.times <= 0:
                        queue.remove(fault)
                return fault
        return None

    @staticmethod
    def _ok(call: Call, result: Any) -> web.Response:
        call.result = result
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(
        call: Call, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        call.status = status
        call.result = body
        return web.json_response(body, status=status)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["path"]
        for file_obj, data in self.files.values():
            if file_obj.get("file_path") == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    # ------------------------------------------------------------------ object helpers
    def _chat(self, chat_id: Any) -> dict[str, Any]:
        cid = _norm_chat_id(chat_id)
        if cid in self.chats:
            return dict(self.chats[cid])
        if isinstance(cid, int) and cid > 0:
            return {"id": cid, "first_name": "Ana", "type": "private"}
        if isinstance(cid, int) and str(cid).startswith("-100"):
            return {"id": cid, "title": "Shop support", "type": "supergroup"}
        if isinstance(cid, int):
            return {"id": cid, "title": "Shop support", "type": "group"}
        raise _ApiError(400, "Bad Request: chat not found")

    def _new_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        if params.get("chat_id") in (None, ""):
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chat(params["chat_id"])
        msg: dict[str, Any] = {
            "message_id": self._next_message_id,
            "from": dict(self.bot_user_short),
            "chat": chat,
            "date": _now(),
        }
        self._next_message_id += 1
        if params.get("message_thread_id") is not None:
            msg["message_thread_id"] = params["message_thread_id"]
        reply_to = params.get("reply_to_message_id")
        if reply_to is None and isinstance(params.get("reply_parameters"), dict):
            reply_to = params["reply_parameters"].get("message_id")
        if reply_to is not None and (chat["id"], reply_to) in self.messages:
            msg["reply_to_message"] = dict(self.messages[(chat["id"], reply_to)])
        msg.update({k: v for k, v in content.items() if v is not None})
        markup = _inline_markup(params.get("reply_markup"))
        if markup is not None:
            msg["reply_markup"] = markup
        self.messages[(chat["id"], msg["message_id"])] = msg
        return msg

    @property
    def bot_user_short(self) -> dict[str, Any]:
        return {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}

    def _store_file(self, data: bytes, filename: str | None, mime_type: str | None) -> dict:
        n = self._next_file
        self._next_file += 1
        ext = os.path.splitext(filename or "")[1]
        file_obj = {
            "file_id": f"BQACAgIAAxkBAAI{n:06d}fake",
            "file_unique_id": f"AgAD{n:06d}",
            "file_size": len(data),
            "file_path": f"documents/file_{n}{ext}",
        }
        self.files[file_obj["file_id"]] = (
            {**file_obj, "file_name": filename, "mime_type": mime_type},
            data,
        )
        return file_obj

    def _find_message(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if params.get("inline_message_id"):
            return None
        if params.get("chat_id") in (None, "") or params.get("message_id") is None:
            raise _ApiError(400, "Bad Request: message identifier is not specified")
        key = (_norm_chat_id(params["chat_id"]), params["message_id"])
        if key not in self.messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return self.messages[key]

    # ------------------------------------------------------------------ Bot API methods
    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return dict(self.bot_user)

    async def _m_logout(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_close(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        text = params.get("text")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(str(text)) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        return self._new_message(params, text=str(text))

    async def _m_senddocument(self, params: dict[str, Any]) -> Any:
        doc = params.get("document")
        if isinstance(doc, UploadedFile):
            if doc.size == 0:
                raise _ApiError(400, "Bad Request: file must be non-empty")
            stored = self._store_file(doc.data, doc.filename, doc.content_type)
            document = {
                "file_name": doc.filename,
                "mime_type": doc.content_type,
                "file_id": stored["file_id"],
                "file_unique_id": stored["file_unique_id"],
                "file_size": doc.size,
            }
        elif isinstance(doc, str) and doc:
            known = self.files.get(doc)
            document = {"file_id": doc, "file_unique_id": f"AgAD{zlib.crc32(doc.encode()):08x}"}
            if known:
                meta = known[0]
                document.update(
                    file_name=meta.get("file_name"),
                    mime_type=meta.get("mime_type"),
                    file_size=meta["file_size"],
                    file_unique_id=meta["file_unique_id"],
                )
        else:
            raise _ApiError(400, "Bad Request: there is no document in the request")
        document = {k: v for k, v in document.items() if v is not None}
        return self._new_message(params, document=document, caption=params.get("caption"))

    async def _m_sendchataction(self, params: dict[str, Any]) -> Any:
        self._chat(params.get("chat_id"))
        return True

    async def _m_editmessagetext(self, params: dict[str, Any]) -> Any:
        text = params.get("text")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        msg = self._find_message(params)
        if msg is None:
            return True  # inline message
        new_markup = _inline_markup(params.get("reply_markup"))
        if msg.get("text") == text and msg.get("reply_markup") == new_markup:
            raise _ApiError(400, NOT_MODIFIED)
        msg["text"] = str(text)
        _set_markup(msg, new_markup)
        msg["edit_date"] = _now()
        return dict(msg)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        msg = self._find_message(params)
        if msg is None:
            return True
        new_markup = _inline_markup(params.get("reply_markup"))
        if msg.get("reply_markup") == new_markup:
            raise _ApiError(400, NOT_MODIFIED)
        _set_markup(msg, new_markup)
        msg["edit_date"] = _now()
        return dict(msg)

    async def _m_deletemessage(self, params: dict[str, Any]) -> Any:
        key = (_norm_chat_id(params.get("chat_id")), params.get("message_id"))
        if self.messages.pop(key, None) is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> Any:
        if not params.get("callback_query_id"):
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired or "
                            "query ID is invalid")
        self.answered_callbacks.append(params)
        return True

    async def _m_getfile(self, params: dict[str, Any]) -> Any:
        known = self.files.get(str(params.get("file_id")))
        if known is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        meta = known[0]
        return {k: meta[k] for k in ("file_id", "file_unique_id", "file_size", "file_path")}

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url") or ""
        if url and not str(url).startswith("https://"):
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for "
                            "webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.match(str(secret)):
            raise _ApiError(400, "Bad Request: bad webhook: secret token contains unallowed "
                            "characters")
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()
        self.webhook = {"url": url}
        for key in ("secret_token", "max_connections", "allowed_updates", "ip_address"):
            if params.get(key) is not None:
                self.webhook[key] = params[key]
        self.webhook["has_custom_certificate"] = isinstance(params.get("certificate"),
                                                            UploadedFile)
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()
        self.webhook = {"url": ""}
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": bool(self.webhook.get("has_custom_certificate", False)),
            "pending_update_count": len(self._updates),
        }
        if info["url"]:
            info["max_connections"] = self.webhook.get("max_connections", 40)
            if self.webhook.get("ip_address"):
                info["ip_address"] = self.webhook["ip_address"]
            if self.webhook.get("allowed_updates") is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        return info

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        if self.webhook.get("url"):
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                            "use deleteWebhook to delete the webhook first")
        offset = _as_int(params.get("offset"), 0)
        limit = max(1, min(_as_int(params.get("limit"), 100), 100))
        timeout = max(0.0, float(params.get("timeout") or 0))
        allowed = params.get("allowed_updates")
        if offset > 0:  # confirm everything before offset
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, self.long_poll_cap)
        while True:
            found = _select_updates(self._updates, offset, allowed)
            remaining = deadline - loop.time()
            if found or remaining <= 0:
                return found[:limit]
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                pass


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _select_updates(
    updates: list[dict[str, Any]], offset: int, allowed: Any
) -> list[dict[str, Any]]:
    if offset < 0:
        selected = updates[offset:]
    else:
        selected = list(updates)
    if allowed:
        kinds = set(allowed)
        selected = [u for u in selected if kinds & (set(u) - {"update_id"})]
    return selected


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _norm_chat_id(chat_id: Any) -> Any:
    if isinstance(chat_id, str):
        try:
            return int(chat_id)
        except ValueError:
            return chat_id
    return chat_id


def _inline_markup(markup: Any) -> dict[str, Any] | None:
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        return markup
    return None


def _set_markup(msg: dict[str, Any], markup: dict[str, Any] | None) -> None:
    if markup is None:
        msg.pop("reply_markup", None)
    else:
        msg["reply_markup"] = markup


# ---------------------------------------------------------------------- update builders
def _user(user_id: int, first_name: str, language_code: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        user["language_code"] = language_code
    return user


def _command_entities(text: str) -> list[dict[str, Any]]:
    if not text.startswith("/"):
        return []
    command = text.split(maxsplit=1)[0] if text.strip() else text
    # Offsets/lengths are UTF-16 code units; commands are ASCII, so len() is right.
    return [{"offset": 0, "length": len(command.encode("utf-16-le")) // 2, "type": "bot_command"}]


def make_message_update(
    update_id: int,
    chat_id: int,
    text: str,
    *,
    user_id: int | None = None,
    first_name: str = "Ana",
    language_code: str | None = "en",
    message_id: int | None = None,
    date: int | None = None,
    username: str | None = None,
) -> dict[str, Any]:
    """A private-chat text message update as Telegram delivers it (webhook body / getUpdates item).

    ``user_id`` defaults to ``chat_id`` (in a private chat they are equal), ``message_id`` to
    ``update_id``. Text starting with "/" gets a ``bot_command`` entity.
    """
    uid = chat_id if user_id is None else user_id
    sender = _user(uid, first_name, language_code)
    chat: dict[str, Any] = {"id": chat_id, "first_name": first_name, "type": "private"}
    if username:
        sender["username"] = username
        chat["username"] = username
    message: dict[str, Any] = {
        "message_id": update_id if message_id is None else message_id,
        "from": sender,
        "chat": chat,
        "date": _now() if date is None else date,
        "text": text,
    }
    entities = _command_entities(text)
    if entities:
        message["entities"] = entities
    return {"update_id": update_id, "message": message}


def make_start_update(
    update_id: int, chat_id: int, payload: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """``/start <payload>``, what a t.me/<bot>?start=<payload> deep link produces.

    Extra keyword arguments go to :func:`make_message_update`.
    """
    text = f"/start {payload}" if payload else "/start"
    return make_message_update(update_id, chat_id, text, **kwargs)


def make_callback_update(
    update_id: int,
    chat_id: int,
    data: str,
    *,
    message_id: int = 1,
    user_id: int | None = None,
    first_name: str = "Ana",
    language_code: str | None = "en",
    message_text: str = "How can we help?",
    reply_markup: dict[str, Any] | None = None,
    callback_query_id: str | None = None,
    bot: dict[str, Any] | None = None,
    message_date: int | None = None,
) -> dict[str, Any]:
    """A callback_query update for a button on a message the bot sent to a private chat.

    ``message_id`` should be the id of the bot's message (e.g. ``fake.sent_messages(42)[-1]
    ["message_id"]``); ``reply_markup`` defaults to a one-button keyboard carrying ``data``.
    ``bot`` is the bot's User dict (defaults to the FakeTelegram default bot).
    """
    uid = chat_id if user_id is None else user_id
    bot_user = bot or {
        "id": BOT_ID,
        "is_bot": True,
        "first_name": BOT_FIRST_NAME,
        "username": BOT_USERNAME,
    }
    if reply_markup is None:
        reply_markup = {"inline_keyboard": [[{"text": data, "callback_data": data}]]}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": callback_query_id or str(4_000_000_000_000_000_000 + update_id),
            "from": _user(uid, first_name, language_code),
            "message": {
                "message_id": message_id,
                "from": dict(bot_user),
                "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
                "date": _now() if message_date is None else message_date,
                "text": message_text,
                "reply_markup": reply_markup,
            },
            "chat_instance": str(-4_291_612_063_202_133_648 + chat_id),
            "data": data,
        },
    }


# ---------------------------------------------------------------------- standalone runner
async def start_fake(app: web.Application, host: str = "127.0.0.1", port: int = 0):
    """Start ``app`` outside pytest-aiohttp; returns ``(runner, base_url)``.

    ``base_url`` has no trailing slash, e.g. ``"http://127.0.0.1:41234"``.
    Stop with ``await runner.cleanup()``.
    """
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, f"http://{host}:{bound_port}"
