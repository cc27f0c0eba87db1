"""Logs never carry customer emails, passwords, tokens, webhook secrets or session cookies.

Two angles, on SQLite and PostgreSQL:

* **Every record, at DEBUG.** Realistic flows run against the real app (``build_app``, served
  the way ``serve`` serves it: no access log) while every logger is opened to DEBUG and each
  record is read raw (message, arguments, exception text, extra fields): a widget conversation
  in which the bot verifies a customer by order number and email (after a wrong email), an
  agent's reply, Shopify webhooks full of customer emails, API calls with good and forged
  bearer tokens, sign-ins with right and wrong passwords. None of the secrets may appear.
  A few libraries print SQL parameters (``aiosqlite``, ``sqlalchemy.engine``) or request URLs
  with the Telegram token (``httpx``) below WARNING: production pins those loggers at WARNING
  (checked below), so they are held to the same rule from WARNING up.
* **What a server writes.** ``shopdesk.logs.configure_logging``, which ``serve`` installs (also
  checked), sends the same flows, plus a Telegram conversation whose bot token is part of every
  Bot API URL, into JSON lines that hold none of the secrets, whatever logger they came from.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from sqlmodel import col, select

from inbox.models import Contact, Message
from ordersvc.api_tokens import create_token
from shopdesk.logs import JsonFormatter, RedactingFilter, configure_logging, redact
from tests.ordersvc_builders import make_customer, make_order, make_shipment
from tests.test_bad_input import (
    SHOPIFY_SECRET,
    SLACK_BOT_TOKEN,
    SLACK_SIGNING_SECRET,
    TELEGRAM_SECRET,
    TELEGRAM_TOKEN,
    app_settings,
    lift_widget_rate_limit,
    open_widget,
    shopify_headers,
    sign_in,
)
from tests.web_helpers import PASSWORD, add_agent, csrf_from, fast_hashing  # noqa: F401  (fast_hashing is autouse)

CUSTOMER_EMAIL = "jane.doe@example.com"
CUSTOMER_PHONE = "+15555550123"  # in the Shopify fixtures
STRANGER_EMAIL = "mallory.spray@evil.example"
SHOPIFY_EMAIL = "jon.snow@example.com"
ADMIN_EMAIL = "boss.privacy@shop.test"
WRONG_PASSWORD = "hunter2-is-not-the-password"
FORGED_API_TOKEN = "sdk_forgedForgedForgedForgedForgedForged12"
#: libraries that print SQL parameters or request URLs below WARNING; configure_logging pins them
PINNED_LIBRARIES = ("aiosqlite", "sqlalchemy.engine", "httpx", "httpcore", "telegram")


# --------------------------------------------------------------------------- reading records


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could print from a record."""
    parts: list[str] = []
    try:
        parts.append(record.getMessage())
    except Exception:
        parts.append(str(record.msg))
    parts.append(repr(record.args))
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts.extend(str(x) for x in (record.exc_text, record.stack_info) if x)
    parts.extend(repr(v) for k, v in record.__dict__.items() if k not in _STANDARD_FIELDS)
    return "\n".join(parts)


_STANDARD_FIELDS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def forms_of(secret: str) -> set[str]:
    """The secret as it could be printed: as is, lower-cased, URL-encoded."""
    return {secret, secret.lower(), quote(secret, safe=""), quote(secret.lower(), safe="")}


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    lowered = text.lower()
    return [name for name, value in secrets.items() if any(form.lower() in lowered for form in forms_of(value))]


@pytest.fixture
def every_logger(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], None]]:
    """Every logger at DEBUG into ``caplog``, non-propagating ones too; call again after imports."""
    saved: dict[logging.Logger, tuple[int, bool]] = {}
    attached: list[logging.Logger] = []

    def open_all() -> None:
        caplog.set_level(logging.DEBUG)
        for logger in list(logging.root.manager.loggerDict.values()):
            if not isinstance(logger, logging.Logger):
                continue
            saved.setdefault(logger, (logger.level, logger.disabled))
            logger.setLevel(logging.DEBUG)
            logger.disabled = False
            if not logger.propagate and caplog.handler not in logger.handlers:
                logger.addHandler(caplog.handler)
                attached.append(logger)

    open_all()
    yield open_all
    for logger, (level, disabled) in saved.items():
        logger.setLevel(level)
        logger.disabled = disabled
    for logger in attached:
        logger.removeHandler(caplog.handler)


# --------------------------------------------------------------------------- the flows


@dataclass
class Flows:
    client: Any
    app: web.Application
    sessions: Any
    api_token: str = ""
    cookie: str = ""
    csrf: str = ""
    visitor_token: str = ""

    def secrets(self) -> dict[str, str]:
        found = {
            "customer email": CUSTOMER_EMAIL,
            "stranger email": STRANGER_EMAIL,
            "shopify customer email": SHOPIFY_EMAIL,
            "agent email": ADMIN_EMAIL,
            "customer phone": CUSTOMER_PHONE,
            "password": PASSWORD,
            "wrong password": WRONG_PASSWORD,
            "api token": self.api_token,
            "forged api token": FORGED_API_TOKEN,
            "shopify secret": SHOPIFY_SECRET,
            "session cookie": self.cookie,
            "csrf token": self.csrf,
            "widget visitor token": self.visitor_token,
            "telegram token": TELEGRAM_TOKEN,
            "telegram webhook secret": TELEGRAM_SECRET,
            "slack bot token": SLACK_BOT_TOKEN,
            "slack signing secret": SLACK_SIGNING_SECRET,
        }
        assert all(found.values()), [k for k, v in found.items() if not v]
        return found


async def start_app(aiohttp_client: Any, settings: Any) -> tuple[Any, web.Application]:
    """The real app, served like ``serve`` serves it (``AppRunner(app, access_log=None)``)."""
    from shopdesk.app import build_app

    app = build_app(settings, migrate_on_start=False)
    server = TestServer(app)
    await server.start_server(access_log=None)
    return await aiohttp_client(server), app


async def seed_order(sessions: Any) -> None:
    async with sessions() as db:
        customer = await make_customer(db, email=CUSTOMER_EMAIL, first_name="Jane", last_name="Doe",
                                       phone=CUSTOMER_PHONE)
        order, lines = await make_order(db, name="#1001", customer=customer, email=CUSTOMER_EMAIL)
        await make_shipment(db, order, lines=[(lines[0], 1)])
        await db.commit()


async def _bot_settled(sessions: Any, contact_external_id: str) -> bool:
    async with sessions() as db:
        contact = (await db.exec(select(Contact).where(Contact.external_id == contact_external_id))).first()
        if contact is None:
            return False
        pending = (await db.exec(
            select(Message.id).where(Message.direction == "in", col(Message.processed).is_(False))
        )).all()
        return not pending


async def say(flows: Flows, ws: Any, visitor: str, text: str, client_id: str) -> None:
    await ws.send_json({"type": "message", "text": text, "client_id": client_id})
    deadline = asyncio.get_running_loop().time() + 20
    await asyncio.sleep(0.05)
    while not await _bot_settled(flows.sessions, visitor):
        assert asyncio.get_running_loop().time() < deadline, f"the bot did not process {text!r}"
        await asyncio.sleep(0.05)


async def run_flows(flows: Flows) -> None:
    client = flows.client
    await seed_order(flows.sessions)

    # sign-ins: a wrong password, then the right one
    await add_agent(flows.sessions, ADMIN_EMAIL, name="Boss", admin=True)
    token = csrf_from(await (await client.get("/login")).text())
    resp = await client.post("/login", data={"email": ADMIN_EMAIL, "password": WRONG_PASSWORD, "csrf_token": token})
    assert resp.status == 401
    flows.csrf = await sign_in(client, ADMIN_EMAIL)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["shopdesk_session"].value
    flows.cookie = cookie
    assert len(cookie) > 20

    # the widget: ask for an order, fail verification with someone else's email, then pass
    lift_widget_rate_limit(flows.app)
    ws, session = await open_widget(client)
    visitor, flows.visitor_token = session["visitor"], session["token"]
    await say(flows, ws, visitor, "Hi! Where is my order #1001? It was for jane, my email is " + CUSTOMER_EMAIL, "m1")
    await say(flows, ws, visitor, "#1001", "m2")
    await say(flows, ws, visitor, STRANGER_EMAIL, "m3")
    await say(flows, ws, visitor, "where is my order #1001", "m4")
    await say(flows, ws, visitor, CUSTOMER_EMAIL, "m5")
    async with flows.sessions() as db:
        contact = (await db.exec(select(Contact).where(Contact.external_id == visitor))).one()
        assert contact.customer_id is not None, "the bot never verified the customer"
        conversation_id = (
            await db.exec(select(Message.conversation_id).where(Message.channel_message_id == "m5"))
        ).one()
    await ws.close()

    # an agent opens the conversation and answers, quoting the email
    page = await client.get(f"/inbox/c/{conversation_id}")
    assert page.status == 200
    resp = await client.post(f"/inbox/c/{conversation_id}/reply",
                             data={"text": f"I have sent it to {CUSTOMER_EMAIL} again.", "csrf_token": flows.csrf},
                             allow_redirects=False)
    assert resp.status == 303
    await client.get(f"/inbox?q={quote(CUSTOMER_EMAIL)}&status=any")

    # the API: a token, a forged token, an email in the query
    async with flows.sessions() as db:
        flows.api_token = await create_token(db, "privacy check")
        await db.commit()
    good = {"Authorization": f"Bearer {flows.api_token}"}
    assert (await client.get(f"/api/v1/orders?email={quote(CUSTOMER_EMAIL)}", headers=good)).status == 200
    assert (await client.get(f"/api/v1/orders?email={quote(STRANGER_EMAIL)}&nope=1", headers=good)).status == 400
    assert (await client.get(f"/api/v1/orders/{quote(CUSTOMER_EMAIL)}", headers=good)).status == 404
    forged = {"Authorization": f"Bearer {FORGED_API_TOKEN}"}
    assert (await client.get("/api/v1/orders", headers=forged)).status == 401

    # Shopify: an order, its duplicate, a refused payload, a bad signature, the GDPR topics
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "shopify"
    order = (fixtures / "webhook_order_create.json").read_bytes()
    headers = shopify_headers(order)
    assert (await client.post("/webhooks/shopify", data=order, headers=headers)).status == 200
    assert (await client.post("/webhooks/shopify", data=order, headers=headers)).status == 200
    broken = json.loads(order)
    broken["email"] = f"not an address {SHOPIFY_EMAIL} <{SHOPIFY_EMAIL}>"
    broken["customer"]["email"] = [SHOPIFY_EMAIL]
    broken["line_items"][0]["quantity"] = SHOPIFY_EMAIL
    body = json.dumps(broken).encode()
    assert (await client.post("/webhooks/shopify", data=body, headers=shopify_headers(body))).status == 422
    bad = shopify_headers(order, secret="wrong")
    assert (await client.post("/webhooks/shopify", data=order, headers=bad)).status == 401
    for topic, name in (("customers/data_request", "customers_data_request.json"),
                        ("customers/redact", "customers_redact.json")):
        payload = (fixtures / name).read_bytes()
        resp = await client.post("/webhooks/shopify", data=payload, headers=shopify_headers(payload, topic))
        assert resp.status == 200, await resp.text()


# --------------------------------------------------------------------------- every record, at DEBUG


def pinned(record: logging.LogRecord) -> bool:
    """A library record that production does not let through (below WARNING on a pinned logger)."""
    return record.levelno < logging.WARNING and record.name.startswith(PINNED_LIBRARIES)


async def test_no_record_carries_a_secret(aiohttp_client: Any, aiohttp_server: Any, settings: Any, sessions: Any,
                                          every_logger: Callable[[], None],
                                          caplog: pytest.LogCaptureFixture) -> None:
    from tests.test_bad_input import start_fake_slack

    client, app = await start_app(aiohttp_client, app_settings(settings, await start_fake_slack(aiohttp_server)))
    every_logger()  # the loggers the app's imports created
    flows = Flows(client=client, app=app, sessions=sessions)
    await run_flows(flows)
    secrets = flows.secrets()

    records = list(caplog.records)
    names = {r.name for r in records}
    # the capture really saw the app at DEBUG (else the check below would prove nothing)
    assert any(r.levelno == logging.DEBUG for r in records)
    assert {"ordersvc.webhooks", "inbox.web.auth"} <= names, sorted(names)
    problems = []
    for record in records:
        if pinned(record):
            continue
        found = leaks(record_text(record), secrets)
        if found:
            problems.append(f"{record.name} {record.levelname}: {found}: {record_text(record)[:300]!r}")
    assert not problems, "\n".join(problems[:30])


def test_database_errors_do_not_echo_their_parameters() -> None:
    """A failed statement's message (which ends up in a logged traceback) shows no values."""
    import sqlalchemy as sa

    from shopdesk.db import create_engine

    async def run() -> str:
        engine = create_engine("sqlite+aiosqlite:///:memory:")
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("CREATE TABLE t (email TEXT UNIQUE)"))
                await conn.execute(sa.text("INSERT INTO t VALUES (:e)"), {"e": CUSTOMER_EMAIL})
                await conn.execute(sa.text("INSERT INTO t VALUES (:e)"), {"e": CUSTOMER_EMAIL})
        except sa.exc.IntegrityError as exc:
            return str(exc)
        finally:
            await engine.dispose()
        raise AssertionError("the duplicate was accepted")

    message = asyncio.run(run())
    assert "UNIQUE" in message
    assert CUSTOMER_EMAIL not in message


# --------------------------------------------------------------------------- what a server writes


@pytest.fixture
def served_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """``configure_logging("DEBUG")`` writing into a buffer; the logging setup is restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    touched = (*PINNED_LIBRARIES, "telegram.ext", "aiohttp.access")
    levels = {name: logging.getLogger(name).level for name in touched}
    buffer = io.StringIO()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", buffer)
        configure_logging("DEBUG")
    ours = root.handlers[:]
    assert len(ours) == 1
    root.handlers[:] = handlers + ours  # keep pytest's own capture as well
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def installed_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if any(isinstance(f, RedactingFilter) for f in h.filters)]


def test_configure_logging_redacts_every_logger(served_logs: io.StringIO) -> None:
    handlers = installed_handlers()
    assert len(handlers) == 1 and isinstance(handlers[0].formatter, JsonFormatter)
    for name in PINNED_LIBRARIES + ("telegram.ext", "telegram.Bot", "sqlalchemy.engine.Engine"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name

    logging.getLogger("some.library").warning("user %s sent %s", CUSTOMER_EMAIL, f"Bearer {FORGED_API_TOKEN}")
    logging.getLogger("httpx").warning("HTTP Request: POST https://api.telegram.org/bot%s/sendMessage", TELEGRAM_TOKEN)
    logging.getLogger("slack_sdk").error("call failed with %s", SLACK_BOT_TOKEN)
    try:
        raise RuntimeError(f"lookup failed for {SHOPIFY_EMAIL}")
    except RuntimeError:
        logging.getLogger("shopdesk").exception("boom for %s", STRANGER_EMAIL)
    lines = [json.loads(line) for line in served_logs.getvalue().splitlines()]
    assert len(lines) == 4
    text = served_logs.getvalue()
    for secret in (CUSTOMER_EMAIL, FORGED_API_TOKEN, TELEGRAM_TOKEN, SLACK_BOT_TOKEN, SHOPIFY_EMAIL, STRANGER_EMAIL):
        assert secret not in text, secret
    assert "<email>" in lines[0]["message"] and "Bearer <" in lines[0]["message"]
    assert "<telegram-token>" in lines[1]["message"]
    assert "<email>" in lines[3]["error"]
    assert redact("mail me: A.B+c@Sub.Example.co.uk") == "mail me: <email>"


async def test_a_served_app_writes_no_secret(aiohttp_client: Any, aiohttp_server: Any, settings: Any,
                                             sessions: Any, served_logs: io.StringIO) -> None:
    """The flows plus a Telegram chat, through the logging a server installs."""
    from tests.fakes.telegram import FakeTelegram, make_message_update
    from tests.test_bad_input import start_fake_slack

    telegram = FakeTelegram(TELEGRAM_TOKEN)
    server = await aiohttp_server(telegram.app)
    telegram.base_url = str(server.make_url("")).rstrip("/")
    s = app_settings(settings, await start_fake_slack(aiohttp_server), telegram_api_url=telegram.ptb_base_url,
                     telegram_per_chat_per_second=1000.0, telegram_overall_per_second=1000.0,
                     access_log=True)  # the access log's lines are held to the same rule
    client, app = await start_app(aiohttp_client, s)
    flows = Flows(client=client, app=app, sessions=sessions)
    await run_flows(flows)

    update = make_message_update(777, 4242, f"order #1001, email {CUSTOMER_EMAIL}", first_name="Jane")
    secret_header = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    resp = await client.post("/webhooks/telegram", json=update, headers=secret_header)
    assert resp.status == 200
    deadline = asyncio.get_running_loop().time() + 20
    while not telegram.sent_messages(4242):
        assert asyncio.get_running_loop().time() < deadline, "no Telegram reply was sent"
        await asyncio.sleep(0.05)
    resp = await client.post("/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
    assert resp.status == 403

    text = served_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line["logger"].startswith("ordersvc") for line in lines), "nothing was logged"
    access = [line for line in lines if line["logger"] == "shopdesk.access"]
    assert {"/login", "/webhooks/shopify", "/webhooks/telegram"} <= {line["path"] for line in access}
    found = leaks(text, flows.secrets())
    assert not found, [line for line in text.splitlines() if leaks(line, flows.secrets())][:10]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_installs_the_redacting_logs(sqlite_url: str, tmp_path: Any) -> None:
    from shopdesk.app import serve
    from shopdesk.settings import load_settings

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    touched = (*PINNED_LIBRARIES, "telegram.ext", "aiohttp.access")
    levels = {name: logging.getLogger(name).level for name in touched}
    settings = load_settings(database_url=sqlite_url, secret_key="k" * 40, data_dir=tmp_path / "data")
    port = _free_port()
    task = asyncio.create_task(serve(settings, host="127.0.0.1", port=port))
    try:
        async with ClientSession() as http:
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                assert not task.done(), task.exception()
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, "serve did not come up"
                await asyncio.sleep(0.05)
        installed = installed_handlers()
        assert len(installed) == 1 and isinstance(installed[0].formatter, JsonFormatter)
        for name in PINNED_LIBRARIES:
            assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


# --------------------------------------------------------------------------- extra fields and the access log


def _format(**extra: Any) -> dict[str, Any]:
    record = logging.LogRecord("shopdesk.test", logging.INFO, __file__, 1, "turn for %s", ("conversation 7",), None)
    for name, value in extra.items():
        setattr(record, name, value)
    RedactingFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_json_lines_keep_extra_fields_but_never_customer_text_emails_or_tokens() -> None:
    line = _format(conversation_id=7, agent_id=3, path="/inbox/c/7", rma_number="RMA-1001-1", attempts=2,
                   ok=True, ids=[1, 2], detail={"order_id": 5, "email": CUSTOMER_EMAIL},
                   reason=f"mail bounced for {CUSTOMER_EMAIL}", text="my card number is 4111",
                   customer_email=CUSTOMER_EMAIL, preview="hello", api_token=FORGED_API_TOKEN,
                   header=f"Bearer {FORGED_API_TOKEN}", obj=object())
    assert line["message"] == "turn for conversation 7"
    assert line["conversation_id"] == 7 and line["agent_id"] == 3 and line["path"] == "/inbox/c/7"
    assert line["rma_number"] == "RMA-1001-1" and line["attempts"] == 2 and line["ok"] is True
    assert line["ids"] == [1, 2] and line["detail"] == {"order_id": 5}
    assert line["reason"] == "mail bounced for <email>"
    assert line["header"].startswith("Bearer <")
    for dropped in ("text", "customer_email", "preview", "api_token"):
        assert dropped not in line, dropped
    raw = json.dumps(line)
    for secret in (CUSTOMER_EMAIL, FORGED_API_TOKEN, "4111"):
        assert secret not in raw
    assert len(_format(reason="x" * 10_000)["reason"]) <= 300


async def test_lines_inside_a_request_carry_its_id_path_and_agent(aiohttp_client: Any, settings: Any,
                                                                  sessions: Any, served_logs: io.StringIO) -> None:
    """With the access log on: one line per request, agent id once signed in, no query string, no email."""
    from shopdesk.app import build_app

    app = build_app(app_settings(settings, access_log=True), migrate_on_start=False)

    async def noisy(request: web.Request) -> web.Response:
        logging.getLogger("shopdesk.test").warning("about to answer", extra={"conversation_id": 42})
        return web.json_response({"ok": True})

    app.router.add_get("/test-noisy/{anything}", noisy)
    server = TestServer(app)
    await server.start_server(access_log=None)
    client = await aiohttp_client(server)
    await add_agent(sessions, ADMIN_EMAIL, name="Boss", admin=True)
    await sign_in(client, ADMIN_EMAIL)
    assert (await client.get(f"/inbox?q={quote(CUSTOMER_EMAIL)}&status=any")).status == 200
    assert (await client.get(f"/test-noisy/{quote(CUSTOMER_EMAIL)}?token=sekrit-query-token")).status == 200
    assert (await client.get(f"/files/invoices/1.pdf?t=1.{FORGED_API_TOKEN}")).status == 404

    text = served_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    for secret in (CUSTOMER_EMAIL, "sekrit-query-token", FORGED_API_TOKEN, quote(CUSTOMER_EMAIL)):
        assert secret not in text, secret
    access = [line for line in lines if line["logger"] == "shopdesk.access"]
    inbox = [line for line in access if line["path"] == "/inbox"]
    assert inbox and inbox[-1]["status"] == 200 and inbox[-1]["method"] == "GET"
    assert isinstance(inbox[-1]["agent_id"], int) and inbox[-1]["route"] == "/inbox"
    assert inbox[-1]["duration_ms"] >= 0 and len(inbox[-1]["request_id"]) == 16
    noisy_lines = [line for line in lines if line["logger"] == "shopdesk.test"]
    assert len(noisy_lines) == 1
    inner = noisy_lines[0]
    assert inner["conversation_id"] == 42 and inner["path"] == "/test-noisy/<email>"
    noisy_access = [line for line in access if line["path"] == "/test-noisy/<email>"]
    assert noisy_access and noisy_access[0]["request_id"] == inner["request_id"]
    assert noisy_access[0]["route"] == "/test-noisy/{anything}"
    assert any(line["path"] == "/files/invoices/1.pdf" and line["status"] == 404 for line in access)


async def test_no_access_log_unless_asked(aiohttp_client: Any, settings: Any, served_logs: io.StringIO) -> None:
    from shopdesk.app import build_app

    app = build_app(settings, migrate_on_start=False)
    server = TestServer(app)
    await server.start_server(access_log=None)
    client = await aiohttp_client(server)
    assert (await client.get("/healthz")).status == 200
    assert '"shopdesk.access"' not in served_logs.getvalue()


# --------------------------------------------------------------------------- phone numbers

#: customers' phone numbers in the shapes people and platforms write them
PHONE_SHAPES = (
    CUSTOMER_PHONE,  # E.164, as Shopify sends it
    "+1 (512) 555-0143",
    "+1 512 555 0143",
    "+1-512-555-0143",
    "+44 7700 900999",
    "+44 (0)20 7946 0018",
    "+4930123456",
    "(512) 555-0143",
    "512-555-0143",
    "512.555.0143",
    "07700 900999",
    "030-1234567",
    "0612 34 56 78",
    "%2B15125550143",  # URL-encoded, in a logged query string
)

#: look like numbers, are not phone numbers: must survive redaction untouched
NOT_PHONES = (
    "order #1001",
    "order #F12 (order_number 90012, id 7000012)",
    "shopify order 5678123456789 and customer 207119551",
    "telegram update 8001 from chat 50019, message 123456789",
    "2026-12-03T07:37:10.971+00:00",
    "slack ts 1700000000.000100",
    "took 1234.567 ms; retry in 0.5 s after attempt 3",
    "127.0.0.1:8080 and [::1]:443",
    "RMA-1001-1",
    "tracking 1Z999AA10123456784 / 9400 1118 9922 3033 0055 55",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "epoch 1796283431.022 and 2026-12-03 07:37:10",
    "amount 1234567.89 USD, 10 000 000 VND",
    "version 1.22.333, up to +1 attempt, load +0.75",
)


@pytest.mark.parametrize("phone", PHONE_SHAPES)
def test_phone_numbers_are_redacted_in_every_shape(phone: str) -> None:
    line = f"customer {phone} asked about order #1001"
    assert redact(line) == "customer <phone> asked about order #1001"
    assert redact(f"GET /api/customers?phone={phone}&x=1") == "GET /api/customers?phone=<phone>&x=1"


@pytest.mark.parametrize("text", NOT_PHONES)
def test_order_numbers_ids_and_timestamps_are_not_taken_for_phone_numbers(text: str) -> None:
    assert redact(text) == text


def test_phone_numbers_never_reach_a_json_line() -> None:
    """Through the handler ``serve`` installs: in the message, its arguments, extra fields and an
    exception's text (a field named ``phone`` is dropped whole)."""
    record = logging.LogRecord("shopdesk.test", logging.WARNING, __file__, 1, "lookup by %s failed", (CUSTOMER_PHONE,),
                               None)
    try:
        raise ValueError("no customer with phone +44 7700 900999")
    except ValueError:
        record.exc_info = sys.exc_info()
    record.reason = "call (512) 555-0143 back"
    record.phone = "+1 512 555 0143"
    record.order_id = 5678123456789
    RedactingFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    raw = json.dumps(line)
    for phone in (CUSTOMER_PHONE, "7700 900999", "555-0143", "555 0143"):
        assert phone not in raw, phone
    assert line["message"] == "lookup by <phone> failed"
    assert line["reason"] == "call <phone> back" and "phone" not in line
    assert "<phone>" in line["error"] and line["order_id"] == 5678123456789
    # a bot token's digits are the token's, not a phone number's
    assert redact(f"POST /bot{TELEGRAM_TOKEN}/sendMessage") == "POST /bot<telegram-token>/sendMessage"
