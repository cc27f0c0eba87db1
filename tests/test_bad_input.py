"""Adversarial sweep of the assembled app (``shopdesk.app.build_app``) on SQLite and PostgreSQL.

Every route of the real app (the /api/v1 sub-application included) is enumerated from the
router and hit with bad bodies, bad path parameters, bad query strings, unknown methods and
missing or wrong credentials. Whatever comes in, the answer is never a 5xx, never carries a
Python traceback, and a 4xx says what was wrong in words. Each check collects every offender
before failing, so one run shows the whole list.

Also here: CSRF and cross-agent (IDOR) spot checks on the inbox, garbage frames on the widget
socket, forged ``/files`` links, and customer text that looks like a Jinja template.

Telegram and Slack are switched on, pointed at a closed loopback port: their routes are mounted
and authenticate as in production, and nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import logging
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import ClientError, ClientSession, WSMsgType, web
from pydantic import SecretStr
from sqlmodel import col, select
from yarl import URL

from inbox.models import CannedResponse, Conversation, Message, Team
from ordersvc.api_tokens import create_token
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    PASSWORD,
    add_agent,
    csrf_from,
    customer_says,
    fast_hashing,
    remember_session_secrets,
)

TELEGRAM_TOKEN = "123456789:" + "T" * 35
TELEGRAM_SECRET = "tg-webhook-secret-for-tests"
SLACK_BOT_TOKEN = "xoxb-000-111-abcdefabcdefabcdef"
SLACK_SIGNING_SECRET = "slack-signing-secret-for-tests"
SHOPIFY_SECRET = "shpss_bad_input_secret"
ADMIN_EMAIL = "boss@shop.test"
AGENT_EMAIL = "bo@shop.test"

MISSING_ID = "999999"
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")
_TAGS = re.compile(r"<[^>]*>")


# --------------------------------------------------------------------------- the app under test


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_settings(settings: Any, slack_api_url: str | None = None, **extra: Any) -> Any:
    """The fixture's settings with every integration switched on.

    The Telegram Bot API is a closed loopback port (webhooks need no outbound call). Slack's
    Web API is the loopback fake when given: bolt calls ``auth.test`` before dispatching.
    """
    dead = f"http://127.0.0.1:{closed_port()}"
    values: dict[str, Any] = {
        "shopify_webhook_secret": SecretStr(SHOPIFY_SECRET),
        "telegram_token": SecretStr(TELEGRAM_TOKEN),
        "telegram_webhook_secret": SecretStr(TELEGRAM_SECRET),
        "telegram_api_url": f"{dead}/bot",
        "slack_bot_token": SecretStr(SLACK_BOT_TOKEN),
        "slack_signing_secret": SecretStr(SLACK_SIGNING_SECRET),
        "slack_api_url": slack_api_url or f"{dead}/api/",
        "public_url": "http://127.0.0.1:8080",
    }
    values.update(extra)
    return settings.model_copy(update=values)


def shopify_headers(body: bytes, topic: str = "orders/create", secret: str = SHOPIFY_SECRET) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
    }


def slack_headers(body: bytes, secret: str = SLACK_SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(),
    }


@dataclass
class Desk:
    """The running app, a signed-in admin, an API token and a few rows to point routes at."""

    app: web.Application
    client: Any
    sessions: Any
    api_token: str
    csrf: str
    admin_id: int
    agent_id: int
    conversation_id: int
    hidden_conversation_id: int
    canned_id: int
    problems: list[str] = field(default_factory=list)

    def auth_headers(self, path: str, body: bytes) -> dict[str, str]:
        """The credentials this route expects, made for exactly this body."""
        if path.startswith("/api/v1"):
            return {"Authorization": f"Bearer {self.api_token}"}
        if path == "/webhooks/shopify":
            return shopify_headers(body)
        if path == "/webhooks/telegram":
            return {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        if path == "/slack/events":
            return slack_headers(body)
        return {"X-CSRF-Token": self.csrf}

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        label: str = "",
    ) -> tuple[int, str]:
        """Send one request and record every rule it breaks in ``self.problems``."""
        all_headers = dict(headers or {})
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        what = f"{method} {url} [{label}]"
        try:
            resp = await self.client.request(method, url, data=body, headers=all_headers, allow_redirects=False)
            text = (await resp.read()).decode("utf-8", "replace")
        except ClientError as exc:  # the server may hang up on a body it refuses to read
            if body is not None and len(body) > 1024 * 1024:
                return 0, ""
            self.problems.append(f"{what}: connection failed ({type(exc).__name__}: {exc})")
            return 0, ""
        problem = response_problem(method, resp.status, resp.headers.get("Content-Type", ""), text)
        if problem:
            self.problems.append(f"{what}: {problem}")
        return resp.status, text

    def check(self) -> None:
        if self.problems:
            shown = "\n".join(self.problems[:200])
            more = f"\n... and {len(self.problems) - 200} more" if len(self.problems) > 200 else ""
            pytest.fail(f"{len(self.problems)} bad answers:\n{shown}{more}")


def response_problem(method: str, status: int, content_type: str, text: str) -> str | None:
    """What is wrong with an answer to hostile input, or None."""
    if status >= 500:
        return f"status {status}: {text[:200]!r}"
    if _TRACEBACK.search(text):
        return f"status {status} carries a traceback: {text[:200]!r}"
    if 400 <= status < 500 and method != "HEAD":
        readable = readable_message(content_type, text)
        if not readable:
            return f"status {status} without a readable message: {text[:200]!r}"
    return None


def readable_message(content_type: str, text: str) -> str:
    """The human message of an error body: JSON ``error``, the text of a page, or plain text."""
    if "json" in content_type:
        try:
            data = json.loads(text)
        except ValueError:
            return ""
        # {"error": code, "message": ...} (the API), {"error": message} (the other routes)
        message = (data.get("message") or data.get("error")) if isinstance(data, dict) else None
        if isinstance(message, dict):  # e.g. {"error": {"message": ...}}
            message = message.get("message")
        return message if isinstance(message, str) and len(message.strip()) >= 3 else ""
    if "html" in content_type:
        words = " ".join(html.unescape(_TAGS.sub(" ", text)).split())
        return words if re.search(r"[A-Za-z]{3,}", words) else ""
    words = text.strip()
    return words if re.search(r"[A-Za-z]{3,}", words) else ""


async def start_fake_slack(aiohttp_server: Any) -> str:
    """The Slack Web API fake on a loopback port; returns its API base URL."""
    from tests.fakes.slack import FakeSlack

    slack = FakeSlack(SLACK_BOT_TOKEN)
    server = await aiohttp_server(slack.app)
    slack.base_url = str(server.make_url("")).rstrip("/")
    return slack.api_url


@pytest.fixture
async def desk(aiohttp_client: Any, aiohttp_server: Any, settings: Any, sessions: Any) -> Desk:
    from shopdesk.app import build_app

    app = build_app(app_settings(settings, await start_fake_slack(aiohttp_server)), migrate_on_start=False)
    client = await aiohttp_client(app)
    async with sessions() as db:
        sales = Team(name="Sales")
        db.add(sales)
        await db.flush()
        canned = CannedResponse(shortcut="hi", title="Hi", bodies={"en": "Hello {{ customer.display_name }}!"})
        db.add(canned)
        api_token = await create_token(db, "bad-input sweep")
        await db.commit()
    admin = await add_agent(sessions, ADMIN_EMAIL, name="Boss", admin=True)
    agent = await add_agent(sessions, AGENT_EMAIL, name="Bo")
    visible = await customer_says(sessions, "where is my parcel?", contact="visitor-aaaaaaaaaaaaaaaa")
    hidden = await customer_says(sessions, "a sales question", contact="visitor-bbbbbbbbbbbbbbbb")
    async with sessions() as db:
        conversation = await db.get(Conversation, hidden.conversation_id)
        assert conversation is not None
        conversation.team_id = sales.id  # Bo is in no team: he cannot see it
        db.add(conversation)
        await db.commit()
    csrf = await sign_in(client, ADMIN_EMAIL)
    assert admin.id and agent.id and canned.id
    return Desk(
        app=app,
        client=client,
        sessions=sessions,
        api_token=api_token,
        csrf=csrf,
        admin_id=admin.id,
        agent_id=agent.id,
        conversation_id=visible.conversation_id,
        hidden_conversation_id=hidden.conversation_id,
        canned_id=canned.id,
    )


async def sign_in(client: Any, email: str) -> str:
    page = await client.get("/login")
    token = csrf_from(await page.text())
    resp = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    csrf = csrf_from(await (await client.get("/inbox")).text())
    remember_session_secrets(client, csrf)
    return csrf


# --------------------------------------------------------------------------- the route table


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/inbox/c/{cid}" (regexes stripped)
    static: bool = False

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.template)

    def url(self, values: dict[str, str]) -> str:
        path = self.template
        for name in self.params:
            path = path.replace("{" + name + "}", values[name])
        if self.static:
            path += "/inbox.css" if path.endswith("/web") else "/htmx.min.js"
        return path


def _strip_regex(path: str) -> str:
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)


def enumerate_routes(app: web.Application) -> list[Route]:
    """Every (method, path) the app serves, read from its routers (the /api/v1 sub-app included)."""
    import ordersvc.api

    found: list[Route] = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "*":
            continue
        info = resource.get_info()
        if "prefix" in info and "directory" in info:
            found.append(Route(route.method, info["prefix"], static=True))
        else:
            found.append(Route(route.method, _strip_regex(info.get("formatter") or info.get("path") or "")))
    api = app[ordersvc.api.API_APP]
    for route in api.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or ""
        if route.method == "*":
            continue
        if not path.startswith(ordersvc.api.API_PREFIX):
            path = ordersvc.api.API_PREFIX + path
        found.append(Route(route.method, _strip_regex(path)))
    return list(dict.fromkeys(found))


EXPECTED_ROUTES = {
    ("POST", "/webhooks/shopify"),
    ("POST", "/webhooks/telegram"),
    ("POST", "/slack/events"),
    ("GET", "/widget/ws"),
    ("GET", "/files/invoices/{order_id}.pdf"),
    ("GET", "/files/labels/{rma_number}.pdf"),
    ("GET", "/api/v1/orders/{ref}"),
    ("PUT", "/api/v1/inventory/{warehouse}/{sku}"),
    ("POST", "/inbox/c/{cid}/reply"),
    ("POST", "/inbox/admin/agents/{id}"),
    ("POST", "/login"),
}

#: routes that end the admin's session; swept last, on their own
_SESSION_ENDERS = {"/logout", "/inbox/account/logout-everywhere"}


def good_values(desk: Desk, route: Route) -> dict[str, str]:
    """Path values that reach the handler (deleting routes get an id that does not exist)."""
    deleting = route.template.endswith("/delete")
    return {
        "cid": str(desk.conversation_id),
        "part": "head",
        "canned_id": str(desk.canned_id),
        "macro_id": "999999",
        "op": "notes",
        "order_id": "1",
        "mid": "1",
        "action": "cancel",
        "id": MISSING_ID if deleting else (str(desk.canned_id) if "/canned/" in route.template else str(desk.agent_id)),
        "ref": "1001",
        "rma_number": "RMA-1001-1",
        "warehouse": "MAIN",
        "sku": "SKU-1",
    }


def swept_routes(desk: Desk) -> list[Route]:
    routes = [r for r in enumerate_routes(desk.app) if r.template not in _SESSION_ENDERS]
    return sorted(routes, key=lambda r: (r.template, r.method))


# --------------------------------------------------------------------------- hostile inputs

_MIB = 1024 * 1024
_DEEP = b"[" * 100_000 + b"]" * 100_000
_DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000

#: (label, Content-Type, body)
BODIES: list[tuple[str, str | None, bytes | None]] = [
    ("no body", None, None),
    ("empty json", "application/json", b""),
    ("not json", "application/json", b"this is { not json"),
    ("plain text", "text/plain", b"hello there"),
    ("json list", "application/json", b"[]"),
    ("json number", "application/json", b"42"),
    ("json string", "application/json", b'"x"'),
    ("json null", "application/json", b"null"),
    ("json wrong types", "application/json",
     b'{"text": 5, "on_hand": "many", "safety_stock": [], "event": "x", "type": "event_callback", "update_id": "a",'
     b' "message": 7, "id": {"$gt": ""}}'),
    ("deep json array", "application/json", _DEEP),
    ("deep json object", "application/json", _DEEP_OBJECT),
    ("invalid utf-8 json", "application/json", b'{"text": "\xff\xfe\xc3(", "update_id": 1}'),
    ("nul json", "application/json", b'{"text": "a\\u0000b", "on_hand": 1, "update_id": 7}'),
    ("invalid utf-8 form", "application/x-www-form-urlencoded", b"text=\xff\xfe&status=\xc3&csrf_token=\xff"),
    ("nul form", "application/x-www-form-urlencoded", b"text=a%00b&name=%00&action=%00&status=open%00"),
    ("form bad charset", "application/x-www-form-urlencoded; charset=no-such-charset", b"text=hi"),
    ("multipart without boundary", "multipart/form-data", b"--x\r\nnot really\r\n"),
    ("multipart broken", "multipart/form-data; boundary=zzz", b"--zzz\r\nContent-Disposition: form-data\r\n\r\n"),
    ("2 MiB json", "application/json", b'{"text": "' + b"a" * (2 * _MIB) + b'"}'),
    ("2 MiB form", "application/x-www-form-urlencoded", b"text=" + b"a" * (2 * _MIB)),
]
_GET_BODIES = {"no body", "deep json array", "2 MiB json"}

#: bad values for a path parameter (already percent-encoded where needed)
PATH_VALUES = [
    "abc",
    "-1",
    "0",
    str(2**31),  # one past PostgreSQL's integer
    "99999999999",
    str(2**63),  # one past bigint
    str(2**70),
    "99999999999999999999999999999999999999999",
    "1%27%20OR%20%271%27%3D%271",  # 1' OR '1'='1
    "1%3B%20DROP%20TABLE%20agent%3B--",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%00",
    "%C2%B2",  # "²": str.isdigit() says yes, int() says no
    "%D9%A1%D9%A2",  # Arabic-Indic "١٢"
    "%FF%FE",  # not UTF-8
    "a" * 3000,
]

#: bad query strings (raw, already encoded)
QUERIES = [
    "zzz=1&zzz=2&__proto__=x",
    "q=%00&status=%00&view=%00&t=%00&lang=%00&email=%00",
    "q=%FF%FE&status=%C3&t=%FF&email=%FF&list=%FF",
    "limit=-1&late=maybe&low=2&status=nope&view=nope&updated_since=yesterday",
    "list=" + "%26view%3D%00" * 50 + "&next=%2F%2Fevil.example",
    "t=1.AAAA&lang=../../etc/passwd&email=a%40b.c%27%20OR%201%3D1--",
    "q=" + "x" * 7000,
]
_NUMERIC_QUERIES = len(QUERIES)
#: the numeric parameters of the GET routes one at a time (one bad value must not hide behind another's 400)
QUERIES += [f"{name}={value}" for name in ("current", "canned", "cursor", "before", "limit")
            for value in ("%C2%B2", "-5", str(2**31), str(2**70))]


# --------------------------------------------------------------------------- the sweep


async def test_the_route_table_is_what_we_sweep(desk: Desk) -> None:
    """The enumeration sees the app's real routes (a sweep over nothing would prove nothing)."""
    seen = {(r.method, r.template) for r in enumerate_routes(desk.app)}
    assert EXPECTED_ROUTES <= seen, EXPECTED_ROUTES - seen
    assert len(seen) >= 50


#: a few answers pinned down, so the sweep provably reaches the handlers behind the authentication
EXPECTED_STATUSES = {
    ("PUT", "/api/v1/inventory/{warehouse}/{sku}", "json list"): 400,
    ("PUT", "/api/v1/inventory/{warehouse}/{sku}", "json wrong types"): 400,
    ("PUT", "/api/v1/inventory/{warehouse}/{sku}", "2 MiB json"): 413,
    ("POST", "/webhooks/shopify", "json list"): 422,
    ("POST", "/webhooks/shopify", "not json"): 400,
    ("POST", "/webhooks/shopify", "deep json object"): 400,
    ("POST", "/webhooks/shopify", "2 MiB json"): 413,
    ("POST", "/webhooks/telegram", "not json"): 400,
    ("POST", "/slack/events", "json list"): 400,
    ("POST", "/inbox/c/{cid}/reply", "invalid utf-8 form"): 400,
    ("POST", "/inbox/c/{cid}/reply", "multipart without boundary"): 400,
    ("POST", "/inbox/c/{cid}/reply", "nul form"): 400,
    ("POST", "/inbox/c/{cid}/reply", "2 MiB form"): 413,
    ("POST", "/inbox/c/{cid}/status", "json null"): 400,
    ("POST", "/inbox/admin/agents/{id}", "nul form"): 400,
}


async def test_bad_bodies_on_every_route(desk: Desk) -> None:
    seen: dict[tuple[str, str, str], int] = {}
    for route in swept_routes(desk):
        url = route.url(good_values(desk, route))
        for label, content_type, body in BODIES:
            if route.method in ("GET", "HEAD") and label not in _GET_BODIES:
                continue
            headers = desk.auth_headers(route.template, body or b"")
            status, _ = await desk.request(route.method, url, body=body, content_type=content_type, headers=headers,
                                           label=label)
            seen[(route.method, route.template, label)] = status
    desk.check()
    assert {key: seen.get(key) for key in EXPECTED_STATUSES} == EXPECTED_STATUSES


async def test_bad_path_parameters_on_every_route(desk: Desk) -> None:
    for route in swept_routes(desk):
        good = good_values(desk, route)
        for name in route.params:
            for value in PATH_VALUES:
                url = URL(route.url({**good, name: value}), encoded=True)
                body = b'{"on_hand": 1}' if route.method == "PUT" else None
                ctype = "application/json" if body else None
                headers = desk.auth_headers(route.template, body or b"")
                await desk.request(route.method, url, body=body, content_type=ctype, headers=headers,
                                   label=f"{name}={value[:30]}")
    # traversal out of the static folders (aiohttp's static handler answers a missing file with an
    # empty 404, so only the status and the content are checked here)
    for prefix in ("/static/web/", "/static/htmx/", "/files/labels/", "/files/invoices/"):
        for tail in ("..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "..%5C..%5Capp.py",
                     "%2e%2e%5c%2e%2e%5cwidget.py"):
            resp = await desk.client.get(URL(prefix + tail, encoded=True), allow_redirects=False)
            text = await resp.text(errors="replace")
            if not 400 <= resp.status < 500 or "root:" in text or "import" in text:
                desk.problems.append(f"GET {prefix}{tail}: traversal answered {resp.status}: {text[:80]!r}")
    desk.check()


async def test_bad_query_strings_on_every_route(desk: Desk) -> None:
    for route in swept_routes(desk):
        if route.method == "HEAD":  # the GET beside it is swept
            continue
        base = route.url(good_values(desk, route))
        for query in QUERIES if route.method == "GET" else QUERIES[:_NUMERIC_QUERIES]:
            body = b'{"on_hand": 1}' if route.method == "PUT" else None
            ctype = "application/json" if body else None
            headers = desk.auth_headers(route.template, body or b"")
            await desk.request(route.method, URL(f"{base}?{query}", encoded=True), body=body, content_type=ctype,
                               headers=headers, label=query[:40])
    # a query string longer than the server's line limit is refused by the HTTP parser (4xx)
    status, _ = await desk.request("GET", URL("/inbox?q=" + "x" * 20_000, encoded=True), label="20k query")
    assert 400 <= status < 500
    desk.check()


async def test_unknown_methods_on_every_path(desk: Desk) -> None:
    paths = {route.url(good_values(desk, route)) for route in enumerate_routes(desk.app)}
    for path in sorted(paths):
        for method in ("PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"):
            headers = desk.auth_headers(path, b"")
            status, _ = await desk.request(method, path, headers=headers, label="method")
            if 200 <= status < 300 and method not in ("OPTIONS",):
                desk.problems.append(f"{method} {path}: accepted ({status})")
    desk.check()


async def test_unknown_paths_and_methods_say_so_in_json_or_a_page(desk: Desk) -> None:
    client = desk.client
    resp = await client.get("/no/such/page")
    assert resp.status == 404 and await resp.json() == {"error": "not found"}
    resp = await client.delete("/webhooks/shopify")
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
    assert "DELETE" in (await resp.json())["error"]
    resp = await client.get("/no/such/page", headers={"Accept": "text/html,*/*"})
    assert resp.status == 404 and resp.content_type == "text/html"
    assert "Not found" in await resp.text()


async def test_session_ending_routes_with_bad_bodies(desk: Desk) -> None:
    """/logout and logout-everywhere: garbage never breaks them (signed in again after each)."""
    for path in sorted(_SESSION_ENDERS):
        for label, content_type, body in BODIES:
            await desk.request("POST", path, body=body, content_type=content_type,
                               headers={"X-CSRF-Token": desk.csrf}, label=label)
            desk.csrf = await sign_in(desk.client, ADMIN_EMAIL)
    desk.check()


_HUGE = str(2**70)
#: form fields with hostile values, per action (sent signed in, with the CSRF token)
FORMS: dict[str, list[dict[str, str]]] = {
    "/inbox/c/{cid}/reply": [{"text": "x" * 100_000}, {"text": "a\x00b"}, {"text": "\u202e\u0000"}, {"text": " "}],
    "/inbox/c/{cid}/note": [{"text": "x" * 100_000}, {"text": "\x00"}],
    "/inbox/c/{cid}/assign": [{"agent_id": v} for v in ("\u00b2", "-1", _HUGE, str(2**31), "1 OR 1=1", "\x00")],
    "/inbox/c/{cid}/status": [
        {"status": "nope"},
        {"status": "snoozed"},
        {"status": "snoozed", "snoozed_until": "9999-12-31T23:59", "tz_offset": "840"},
        {"status": "snoozed", "snoozed_until": "0001-01-01T00:00", "tz_offset": "-840"},
        {"status": "snoozed", "snoozed_until": "2030-01-01T00:00", "tz_offset": _HUGE},
        {"status": "snoozed", "snoozed_until": "2030-02-30T25:61", "tz_offset": "\u00b2"},
        {"status": "snoozed", "snoozed_until": "\x00" * 10},
    ],
    "/inbox/c/{cid}/priority": [{"priority": "\x00"}, {"priority": "x" * 10_000}],
    "/inbox/c/{cid}/labels": [{"labels": "x" * 10_000}, {"labels": "\x00"}, {"new_label": "\u202e" * 500},
                               {"new_label": " , ,, "}],
    "/inbox/c/{cid}/orders/{order_id}/{action}": [{"line_1": _HUGE, "resolution": "refund"}, {"line_x": "1"}],
    "/inbox/admin/agents": [{"email": "x" * 500 + "@a.b", "password": "p"}, {"email": "\x00@a.b"},
                            {"email": "a@b.c", "password": "x" * 100_000}, {"email": "", "name": "\x00"}],
    "/inbox/admin/agents/{id}": [{"action": "slack", "slack_user_id": "\x00"}, {"action": "password", "password": ""},
                                 {"action": "password", "password": "x" * 100_000}, {"action": "\u00b2"}],
    "/inbox/admin/canned": [{"shortcut": "a", "body": "{{ 7*7 "}, {"shortcut": "b", "body": "{% for %}"},
                            {"shortcut": "c", "body": "x" * 100_000}, {"shortcut": "\x00", "body": "hi"},
                            {"shortcut": "d", "body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
                            {"shortcut": "e", "body": "{{ 10**10**10 }}"}],
    "/inbox/admin/canned/{id}": [{"shortcut": "hi", "body": "{% endfor %}"}],
    "/inbox/admin/labels": [{"name": "x" * 10_000}, {"name": "ok", "color": "red;}"}, {"name": "\x00"}],
    "/login": [{"email": "x" * 100_000, "password": "p"}, {"email": "\x00", "password": "\x00"},
               {"email": ADMIN_EMAIL, "password": "x" * 1_000_000}, {"next": "//evil.example"}],
}


async def test_hostile_form_values_on_inbox_actions(desk: Desk) -> None:
    routes = {r.template: r for r in swept_routes(desk) if r.method == "POST"}
    assert set(FORMS) <= set(routes), set(FORMS) - set(routes)
    for template, forms in FORMS.items():
        route = routes[template]
        url = route.url(good_values(desk, route))
        for form in forms:
            await desk.request("POST", url, body=urlencode({**form, "csrf_token": desk.csrf}).encode(),
                               content_type="application/x-www-form-urlencoded", label=str(form)[:60])
    # a template that loops a billion times is cut off, it does not hang the server
    async with desk.sessions() as db:
        db.add(CannedResponse(shortcut="loop", title="", bodies={"en": "{% for x in range(10**9) %}x{% endfor %}"}))
        await db.commit()
        loop_id = (await db.exec(select(CannedResponse.id).where(CannedResponse.shortcut == "loop"))).one()
    status, _ = await asyncio.wait_for(
        desk.request("GET", f"/inbox/c/{desk.conversation_id}/canned/{loop_id}", label="billion loop"), 20)
    assert status == 422  # the sandbox refuses ranges that large
    desk.check()


def _strangers(route: Route, body: bytes) -> Iterator[tuple[str, dict[str, str]]]:
    """Credentials that must not work: none, and wrong ones of the right shape."""
    yield "no credentials", {}
    if route.template.startswith("/api/v1"):
        yield "wrong token", {"Authorization": "Bearer sdk_" + "x" * 43}
        yield "not bearer", {"Authorization": "Basic YWRtaW46YWRtaW4="}
        yield "bearer non-ascii", {"Authorization": "Bearer sdk_\u00e9\u00e9\u00e9"}
    elif route.template == "/webhooks/shopify":
        yield "wrong hmac", shopify_headers(body, secret="not-the-secret")
        yield "garbage hmac", {"X-Shopify-Hmac-Sha256": "%%%not base64\u00e9", "X-Shopify-Topic": "orders/create",
                               "X-Shopify-Webhook-Id": "1"}
    elif route.template == "/webhooks/telegram":
        yield "wrong secret", {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET + "x"}
        yield "non-ascii secret", {"X-Telegram-Bot-Api-Secret-Token": "\u00e9\u00e9"}
    elif route.template == "/slack/events":
        yield "wrong signature", slack_headers(body, secret="not-the-secret")
        yield "stale timestamp", slack_headers(body, timestamp=int(time.time()) - 301)
        yield "future garbage timestamp", {"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=00"}
    else:
        yield "wrong csrf", {"X-CSRF-Token": "x" * 43}


#: routes anyone may call (the widget socket authenticates inside; /files with its link token)
#: /metrics answers loopback without a token (the test client is loopback); tests/test_metrics.py checks the rest
_PUBLIC = re.compile(r"^(/|/healthz|/metrics|/login|/shop|/widget\.js|/widget/ws|/static/.*|/api/v1/openapi\.json)$")


async def test_strangers_are_refused_everywhere(desk: Desk) -> None:
    """Without the session cookie, or with wrong tokens, signatures or CSRF: never a 2xx, never a 3xx
    (except the inbox pages' redirect to the sign-in page)."""
    stranger = desk
    stranger.client.session.cookie_jar.clear()
    body = b'{"update_id": 1, "type": "event_callback", "event": {"type": "message"}, "on_hand": 3}'
    for route in swept_routes(desk):
        if _PUBLIC.match(route.template):
            continue
        url = route.url(good_values(desk, route))
        if route.template.startswith("/files/"):
            url += "?t=" + "1" * 10 + "." + "A" * 43
        for label, headers in _strangers(route, body):
            status, text = await stranger.request(route.method, url, body=body, content_type="application/json",
                                                  headers=headers, label=label)
            if 200 <= status < 300:
                stranger.problems.append(f"{route.method} {url} [{label}]: accepted ({status}): {text[:120]!r}")
            if route.method == "GET" and route.template.startswith("/inbox") and status in (301, 302, 303):
                continue
            if 300 <= status < 400:
                stranger.problems.append(f"{route.method} {url} [{label}]: redirected ({status})")
    stranger.check()


def _poisoned_order(kind: str) -> dict[str, Any]:
    """A real-shaped Shopify order whose strings carry NUL bytes, control characters or huge values."""
    from pathlib import Path

    order = json.loads((Path(__file__).parent / "fixtures" / "shopify" / "webhook_order_create.json").read_text())
    order["id"] = 9007199254740993 + len(kind)
    order["name"] = f"#NUL{len(kind)}"
    if kind == "nul":
        order["note"] = "leave at the door\x00"
        order["customer"]["first_name"] = "Jo\x00n"
        order["shipping_address"]["city"] = "Castle\x00Black"
        order["line_items"][0]["title"] = "boots\x00"
        order["tags"] = "a\x00b"
    elif kind == "surrogates":  # valid JSON escapes (\ud800) that no encoder or database accepts
        order["note"] = "a\ud800b"
        order["customer"]["first_name"] = "Jo\udcffn"
        order["tags"] = "vip, \udfff"
        order["shipping_address"]["city"] = "Wint\ud83derfell"
    elif kind == "huge":
        order["line_items"][0]["quantity"] = 2**70
        order["customer"]["id"] = 2**70
        order["total_price"] = "1e400"
    elif kind == "types":
        order["line_items"] = {"not": "a list"}
        order["customer"] = "jon"
        order["shipping_address"] = ["x"]
    return order


async def test_shopify_orders_with_poisoned_fields(desk: Desk) -> None:
    """A signed order whose fields PostgreSQL cannot store is refused (4xx), not retried forever (5xx)."""
    for kind in ("nul", "huge", "types"):
        body = json.dumps(_poisoned_order(kind)).encode()
        await desk.request("POST", "/webhooks/shopify", body=body, content_type="application/json",
                           headers=shopify_headers(body), label=kind)
    desk.check()


async def test_shopify_order_with_lone_surrogates_is_stored_with_replacement_characters(
        desk: Desk, sessions: Any) -> None:
    from ordersvc.models import Customer, Order

    body = json.dumps(_poisoned_order("surrogates")).encode()
    assert b"\\ud800" in body  # json.dumps keeps the lone surrogate as an escape
    status, text = await desk.request("POST", "/webhooks/shopify", body=body, content_type="application/json",
                                      headers=shopify_headers(body), label="surrogates")
    desk.check()
    assert status == 200, text
    async with sessions() as s:
        order = (await s.exec(select(Order).where(Order.name == _poisoned_order("surrogates")["name"]))).one()
        customer = await s.get(Customer, order.customer_id)
    assert order.note == "a\ufffdb"
    assert "\ufffd" in order.tags and order.shipping_address["city"] == "Wint\ufffderfell"
    assert customer.first_name == "Jo\ufffdn"


# --------------------------------------------------------------------------- inbox: CSRF and other agents' ids


async def test_inbox_writes_need_csrf_and_stay_inside_the_agents_access(desk: Desk, sessions: Any) -> None:
    client = desk.client
    cid = desk.conversation_id
    before = await _message_count(sessions, cid)

    # signed in, but no token / a wrong token / the token in a form that is not ours
    for headers, data in (
        ({}, {"text": "hello"}),
        ({"X-CSRF-Token": "forged"}, {"text": "hello"}),
        ({}, {"text": "hello", "csrf_token": ""}),
        ({"X-CSRF-Token": desk.csrf + "x"}, {"text": "hello"}),
    ):
        for action in ("reply", "note", "status", "assign", "labels"):
            resp = await client.post(f"/inbox/c/{cid}/{action}", data=data, headers=headers, allow_redirects=False)
            assert resp.status == 403, (action, headers, resp.status)
            assert "security token" in await resp.text()
    resp = await client.post("/inbox/admin/labels", data={"name": "x"}, allow_redirects=False)
    assert resp.status == 403
    resp = await client.post(f"/inbox/admin/agents/{desk.agent_id}", data={"action": "deactivate"},
                             allow_redirects=False)
    assert resp.status == 403
    assert await _message_count(sessions, cid) == before

    # Bo (no team) signs in: the Sales conversation does not exist for him, also for actions
    desk.client.session.cookie_jar.clear()
    csrf = await sign_in(client, AGENT_EMAIL)
    hidden = desk.hidden_conversation_id
    hidden_before = await _message_count(sessions, hidden)
    for action in ("reply", "note", "claim", "status", "assign", "hand-back", "orders/1/cancel"):
        resp = await client.post(f"/inbox/c/{hidden}/{action}", data={"text": "mine now", "status": "resolved",
                                                                      "csrf_token": csrf}, allow_redirects=False)
        assert resp.status == 404, (action, resp.status)
    for path in (f"/inbox/c/{hidden}", f"/inbox/c/{hidden}/fragments/transcript",
                 f"/inbox/c/{hidden}/canned/{desk.canned_id}"):
        resp = await client.get(path, headers={"Accept": "application/json"}, allow_redirects=False)
        assert resp.status == 404, (path, resp.status)
        assert "a sales question" not in await resp.text()
    listing = await (await client.get("/inbox?status=any")).text()
    assert f"/inbox/c/{hidden}" not in listing
    assert await _message_count(sessions, hidden) == hidden_before
    # and the admin pages are not there for him at all
    for path in ("/inbox/admin/agents", "/inbox/admin/canned", "/inbox/admin/telegram"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 404, (path, resp.status)
    resp = await client.post(f"/inbox/admin/agents/{desk.admin_id}", data={"action": "deactivate", "csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 404
    # the visible conversation is still fine for him (the 404s above are about access, not breakage)
    resp = await client.post(f"/inbox/c/{cid}/note", data={"text": "looked at it", "csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 303


async def _message_count(sessions: Any, conversation_id: int) -> int:
    async with sessions() as db:
        return len((await db.exec(select(Message.id).where(Message.conversation_id == conversation_id))).all())


# --------------------------------------------------------------------------- the widget socket


async def _recv(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == WSMsgType.TEXT, (msg.type, msg.data)
    return json.loads(msg.data)


async def _recv_until(ws: Any, kind: str, timeout: float = 30.0) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            frame = await _recv(ws, timeout)
            if frame.get("type") == kind:
                return frame

    return await asyncio.wait_for(loop(), timeout)


async def open_widget(client: Any) -> tuple[Any, dict[str, Any]]:
    ws = await client.ws_connect("/widget/ws")
    await ws.send_json({"type": "hello", "lang": "en"})
    session = await _recv_until(ws, "session")
    await _recv_until(ws, "history")
    return ws, session


def lift_widget_rate_limit(app: web.Application) -> None:
    """The per-socket frame limit has its own tests (test_widget.py); here it would only add waiting."""
    from dataclasses import replace

    from inbox.web.state import STATE

    state = app[STATE]
    state.config = replace(state.config, widget_burst=1000, widget_rate=1000.0)


async def test_widget_socket_survives_garbage_frames(desk: Desk, sessions: Any) -> None:
    lift_widget_rate_limit(desk.app)
    ws, _session = await open_widget(desk.client)
    garbage: list[tuple[str, Any]] = [
        ("binary", b"\x00\x01\xff binary"),
        ("not json", "{not json"),
        ("json list", "[1, 2, 3]"),
        ("json null", "null"),
        ("json number", "12"),
        ("deep json", "[" * 10_000 + "]" * 10_000),
        ("no type", json.dumps({"text": "hi"})),
        ("unknown type", json.dumps({"type": "__proto__"})),
        ("type not a string", json.dumps({"type": ["message"]})),
        ("no client id", json.dumps({"type": "message", "text": "hi"})),
        ("bad client id", json.dumps({"type": "message", "text": "hi", "client_id": "../../x"})),
        ("text not a string", json.dumps({"type": "message", "text": {"a": 1}, "client_id": "c1"})),
        ("nul text", json.dumps({"type": "message", "text": "a\x00b", "client_id": "c2"})),
        ("empty text", json.dumps({"type": "message", "text": "   ", "client_id": "c3"})),
        ("lone surrogate", '{"type": "message", "text": "\\ud800", "client_id": "c4"}'),
        ("huge text", json.dumps({"type": "message", "text": "x" * 40_000, "client_id": "c5"})),
        ("bad postback", json.dumps({"type": "postback", "value": 5, "client_id": "c6"})),
        ("hello with forged token", json.dumps({"type": "hello", "visitor": "visitor-aaaaaaaaaaaaaaaa",
                                                "token": "1.deadbeef", "lang": {"x": 1}})),
        ("hello with a superscript issued time", json.dumps({"type": "hello", "visitor": "visitor-aaaaaaaaaaaaaaaa",
                                                             "token": "\u00b2.deadbeef"})),
        ("hello with junk types", json.dumps({"type": "hello", "visitor": ["x"], "token": 5, "lang": "x" * 5000})),
    ]
    for label, data in garbage:
        if isinstance(data, bytes):
            await ws.send_bytes(data)
        else:
            await ws.send_str(data)
        frame = await _recv(ws)
        if label.startswith("hello"):
            assert frame["type"] == "session", frame
            assert frame["visitor"] != "visitor-aaaaaaaaaaaaaaaa"  # a new identity, not the victim's
            history = await _recv_until(ws, "history")
            assert history["messages"] == []
            continue
        assert frame["type"] == "error", (label, frame)
        assert isinstance(frame["message"], str) and len(frame["message"]) > 5, (label, frame)
        assert "Traceback" not in frame["message"]
    # still up: a ping and a real message work on the same socket
    await ws.send_json({"type": "ping"})
    assert (await _recv_until(ws, "pong"))["type"] == "pong"
    await ws.send_json({"type": "message", "text": "still there?", "client_id": "ok-1"})
    echoed = await _recv_until(ws, "message")
    assert echoed["text"] == "still there?" and echoed.get("client_id") == "ok-1"
    await ws.close()

    # a frame above the socket's size limit closes that socket (1009), and the server keeps serving
    big = await desk.client.ws_connect("/widget/ws")
    await big.send_json({"type": "hello"})
    await _recv_until(big, "history")
    await big.send_str(json.dumps({"type": "message", "text": "y" * 200_000, "client_id": "big"}))
    msg = await asyncio.wait_for(big.receive(), 10)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR)
    again, _ = await open_widget(desk.client)
    await again.close()
    async with sessions() as db:
        stored = (await db.exec(select(Message.text))).all()
    assert not [t for t in stored if "\x00" in t or t.startswith("[[[") or t.startswith("y" * 100)]


async def test_agent_socket_survives_garbage_frames(desk: Desk) -> None:
    ws = await desk.client.ws_connect("/inbox/ws", headers={"Origin": "http://127.0.0.1:8080"})
    assert (await _recv(ws))["type"] == "hello"
    for data in ("[" * 4000 + "]" * 90, "{nope", "null", json.dumps({"type": "view", "conversation_id": 2**70}),
                 json.dumps({"type": "view", "conversation_id": "1 OR 1=1"}), json.dumps({"type": 5})):
        await ws.send_str(data)
    await ws.send_bytes(b"\x00\xff")
    await ws.send_json({"type": "ping"})
    assert (await _recv_until(ws, "pong"))["type"] == "pong"
    await ws.close()
    # a cross-site page cannot open it with the agent's cookies
    resp = await desk.client.get("/inbox/ws", headers={"Origin": "https://evil.example", "Connection": "Upgrade",
                                                       "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 403


# --------------------------------------------------------------------------- signed files


async def test_forged_file_links_are_404(desk: Desk) -> None:
    from bot.files import file_token

    secret = b"test-secret-key-0123456789abcdef0123456789"
    future = int(time.time()) + 3600
    forged = [
        "",
        "garbage",
        f"{future}." + "A" * 43,
        f"{future}." + file_token(b"another-secret-key-0123456789abcdef", "invoices", "1", future).split(".")[1],
        file_token(secret, "labels", "1", future),  # a label's token on an invoice
        file_token(secret, "invoices", "2", future),  # another order's token
        file_token(secret, "invoices", "1", int(time.time()) - 10),  # expired
        f"{2**70}." + "A" * 43,
        "1." + "A" * 43 + "%00",
        "%FF%FE",
    ]
    for token in forged:
        for path in ("/files/invoices/1.pdf", "/files/labels/RMA-1001-1.pdf"):
            url = URL(f"{path}?t={token}", encoded=True)
            status, text = await desk.request("GET", url, label="forged token")
            assert status == 404, (url, status, text[:200])
            assert json.loads(text) == {"error": "not found"}
    desk.check()


# --------------------------------------------------------------------------- template injection

INJECTIONS = ("{{ 7*7 }}", "{% for x in range(10**9) %}x{% endfor %}", "{{ ''.__class__.__mro__ }}", "${7*7}")


async def test_template_syntax_from_customers_stays_text(desk: Desk, sessions: Any) -> None:
    from inbox.web.canned import canned_context, render_canned

    lift_widget_rate_limit(desk.app)
    ws, _session = await open_widget(desk.client)
    pushed: list[dict[str, Any]] = []
    for i, text in enumerate(INJECTIONS):
        await ws.send_json({"type": "message", "text": text, "client_id": f"inj-{i}"})
        while True:  # the bot's answers to earlier lines may come first
            frame = await _recv_until(ws, "message")
            pushed.append(frame)
            if frame.get("client_id") == f"inj-{i}":
                break
        assert frame["text"] == text
    # the bot answers every one of them; wait until it did, then read what it said
    deadline = asyncio.get_running_loop().time() + 20
    async with sessions() as db:
        contact_conv = (
            await db.exec(select(Message.conversation_id).where(Message.text == INJECTIONS[0]))
        ).first()
    assert contact_conv is not None
    while True:
        async with sessions() as db:
            inbound = (await db.exec(
                select(Message).where(Message.conversation_id == contact_conv, Message.direction == "in")
            )).all()
            bot_lines = (await db.exec(
                select(Message.text).where(Message.conversation_id == contact_conv, Message.author == "bot")
            )).all()
        if all(m.processed for m in inbound) and bot_lines:
            break
        assert asyncio.get_running_loop().time() < deadline, "the bot did not answer"
        await asyncio.sleep(0.1)
    for line in [*bot_lines, *(f["text"] for f in pushed if f["author"] == "bot")]:
        assert "49" not in line, line
        assert "<class" not in line and "xxxxxxxxxx" not in line, line
    await ws.close()

    # the agent's view shows the characters, escaped, and never their value
    page = await desk.client.get(f"/inbox/c/{contact_conv}")
    assert page.status == 200
    body = await page.text()
    assert "{{ 7*7 }}" in body
    assert html.escape("{{ ''.__class__.__mro__ }}") in body or "{{ &#39;&#39;.__class__.__mro__ }}" in body
    assert "{% for x in range(10**9) %}x{% endfor %}" in body
    assert ">49<" not in body and "<class" not in body

    # a customer whose name is template syntax: the canned response prints the name, not 49
    named = await customer_says(sessions, "hello", contact="visitor-cccccccccccccccc", name="{{7*7}} Smith")
    async with sessions() as db:
        conversation = await db.get(Conversation, named.conversation_id)
        assert conversation is not None
        text = render_canned("Hi {{ customer.display_name }}, thanks!", await canned_context(db, conversation))
    assert text == "Hi {{7*7}}, thanks!"  # the first word of the name, verbatim
    resp = await desk.client.get(f"/inbox/c/{named.conversation_id}/canned/{desk.canned_id}")
    assert resp.status == 200
    preview = (await resp.json())["text"]
    assert preview == "Hello {{7*7}}!"


@pytest.mark.parametrize("body, problem", [
    ("{{ 9**9**9**9 }}", "exponent too large"),
    ('{{ "x" * 10**9 }}', "repeated text too long"),
    ("{% for i in range(999) %}{% for j in range(999) %}x{% endfor %}{% endfor %}", "loops too long"),
    ('{% for i in range(10) %}{{ "y" * 3999 }}{% endfor %}', "too long"),
])
def test_canned_response_bodies_cannot_exhaust_the_server(body: str, problem: str) -> None:
    from inbox.web.canned import CannedError, check_canned_body, render_canned

    check_canned_body(body)  # valid syntax: only rendering is refused (and compiling never folds it)
    with pytest.raises(CannedError, match=problem):
        render_canned(body, {})
    assert render_canned('{{ 2**10 }} {{ "ab" * 2 }} {% for i in range(3) %}{{ i }}{% endfor %}', {}) == "1024 abab 012"


async def test_a_client_gone_in_the_middle_of_a_body_is_no_server_error(settings: Any, sessions: Any,
                                                                         caplog: Any) -> None:
    """A webhook sender or browser that disconnects half-way through its body: nothing stored,
    no 500, no traceback in the log (it is the client's problem, logged at INFO). Served the way
    `shopdesk serve` serves (AppRunner + TCPSite), where the handler sees the reset."""
    from shopdesk.app import build_app

    app = build_app(app_settings(settings), migrate_on_start=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = "127.0.0.1", closed_port()
    await web.TCPSite(runner, host, port).start()
    body = b'{"update_id": 1, "message": {"text": "half'
    cases = {
        "/webhooks/telegram": {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
                               "Content-Type": "application/json"},
        "/webhooks/shopify": shopify_headers(body),
        "/slack/events": slack_headers(body),
        "/login": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    caplog.set_level(logging.INFO)
    try:
        for path, headers in cases.items():
            reader, writer = await asyncio.open_connection(host, port)
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4096\r\n{head}\r\n".encode()
                         + body)
            await writer.drain()
            await asyncio.sleep(0.1)  # the handler is now waiting for the rest of the body
            writer.close()
            await writer.wait_closed()
        for _ in range(100):
            if sum("client disconnected" in r.getMessage() for r in caplog.records) >= len(cases):
                break
            await asyncio.sleep(0.05)
        async with ClientSession() as http, http.get(f"http://{host}:{port}/healthz") as resp:
            assert resp.status == 200  # the server is fine
    finally:
        await runner.cleanup()
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, [r.getMessage() for r in problems]
    noted = [r for r in caplog.records if "client disconnected" in r.getMessage()]
    assert len(noted) == len(cases), [(r.name, r.getMessage()) for r in caplog.records]
    async with sessions() as db:
        assert not (await db.exec(select(Message).where(col(Message.text).contains("half")))).all()
