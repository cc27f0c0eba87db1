"""The agents' UI in six languages, canned responses per language, and the translation aid.

- every msgid that ``make i18n-extract`` finds is translated (non-empty, not fuzzy, same
  placeholders) in all six catalogs;
- the inbox renders in the agent's chosen language, else the browser's, with no leaking
  between concurrent requests;
- a canned response is inserted in the conversation's language, or the shop's default with a
  warning; existing bodies migrate to the shop's default language;
- the customer's language shows on their messages; "Translate" exists only with a configured
  LibreTranslate server (tested against a loopback fake).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from babel.messages.pofile import read_po
from sqlmodel import select

from inbox.actions.canned_save import canned_save
from inbox.actions.message_answer import message_answer
from inbox.models import Agent, CannedResponse, Conversation, Message
from inbox.web.i18n import LANGUAGES, js_catalog, negotiate, po_path, translations
from shopbase.refusal import Refused
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    add_agent,
    build_web_app,
    customer_says,
    fast_hashing,
    login,
    make_config,
)

ROOT = Path(__file__).resolve().parent.parent
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


async def post(client: Any, url: str, token: str, **data: Any) -> Any:
    return await client.post(url, data={"csrf_token": token, **data}, allow_redirects=False)


# --------------------------------------------------------------------------- catalogs


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The template ``make i18n-extract`` writes, extracted now from the current code."""
    out = tmp_path_factory.mktemp("i18n") / "messages.pot"
    keywords = re.search(r"^BABEL_KEYWORDS := (.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert keywords, "the Makefile names the extra extraction keywords"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", *keywords.group(1).split(),
         "--no-wrap", "-o", str(out), "."],
        cwd=ROOT, check=True, capture_output=True,
    )
    with out.open("rb") as fp:
        return read_po(fp)


def test_extraction_finds_templates_python_and_javascript(extracted: Any) -> None:
    sources = {path.split("/")[0] + "/" + path.split("/")[1] for m in extracted for path, _ in m.locations}
    assert {"templates/inbox", "inbox/web", "inbox/actions"} <= sources
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    assert "Cannot reach the server. Check your connection." in ids  # inbox.js
    assert "Canned responses" in ids  # a template
    assert "There is no such conversation, or you do not have access to it." in ids  # views.py
    assert "Snoozed" in ids  # a humanized status (inbox/web/labels.py)
    assert len(ids) > 250


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_extracted_message_is_translated(extracted: Any, language: str) -> None:
    with po_path(language).open("rb") as fp:
        catalog = read_po(fp, locale=language.replace("-", "_"))
    problems = []
    for message in extracted:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        key = message.id if isinstance(message.id, str) else message.id[0]
        if found is None:
            problems.append(f"missing: {key!r}")
            continue
        strings = [found.string] if isinstance(found.string, str) else list(found.string)
        if found.fuzzy or not all(s and s.strip() for s in strings):
            problems.append(f"untranslated or fuzzy: {key!r}")
            continue
        wanted = sorted(_PLACEHOLDER.findall(key))
        values = {name: 1 for name in re.findall(r"%\((\w+)\)", key)}
        for s in strings:
            if sorted(set(_PLACEHOLDER.findall(s))) != sorted(set(wanted)):
                problems.append(f"placeholders differ: {key!r} -> {s!r}")
            try:  # Jinja's newstyle gettext always %-formats: a stray "%" would break the page
                s % values
            except (KeyError, ValueError, TypeError):
                problems.append(f"does not format: {s!r}")
    assert not problems, f"{language}: " + "; ".join(problems[:20])


def test_translations_are_read_from_the_po_files() -> None:
    assert translations("ru").gettext("Inbox") == "Входящие"
    assert translations("zh-Hant").gettext("Inbox") == "收件匣"
    assert translations("zh-Hans").gettext("Inbox") == "收件箱"
    assert translations("en").gettext("Inbox") == "Inbox"
    assert translations("ru").ngettext("%(num)d line", "%(num)d lines", 5) % {"num": 5} == "5 позиций"
    assert js_catalog("vi")["Cannot reach the server."] == "Không kết nối được máy chủ."
    assert "Inbox" not in js_catalog("vi")  # only the script's own strings go to the page
    assert js_catalog("en") == {}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"),
        ("de-DE,de;q=0.9,es;q=0.5", "es"),
        ("zh-TW,zh;q=0.9", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-Hant-TW", "zh-Hant"),
        ("zh-CN,zh;q=0.9", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("en;q=0.2,vi;q=0.8", "vi"),
        ("fr, de", "en"),
        ("es;q=0", "en"),
        ("*", "en"),
        ("ru;q=abc", "en"),
        ("\x00<script>;q=1", "en"),
        ("x" * 5000, "en"),
    ],
)
def test_browser_language_negotiation(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


# --------------------------------------------------------------------------- the inbox in a language


@pytest.fixture
def web_app(sessions: Any) -> Any:
    return build_web_app(sessions, config=make_config(default_language="en"))


@pytest.fixture
async def client(aiohttp_client: Any, web_app: Any) -> Any:
    return await aiohttp_client(web_app.app)


async def test_agent_picks_a_language_in_their_profile(client: Any, sessions: Any) -> None:
    ana = await add_agent(sessions)
    await customer_says(sessions, "hola, ¿dónde está mi pedido?")
    token = await login(client)
    page = await (await client.get("/inbox")).text()
    assert '<html lang="en">' in page and ">Inbox</a>" in page

    profile = await (await client.get("/inbox/account")).text()
    assert 'name="language"' in profile and "Русский" in profile and "繁體中文" in profile

    resp = await post(client, "/inbox/account/language", token, language="ru")
    assert resp.status == 303
    profile = await (await client.get("/inbox/account")).text()
    assert "Язык сохранён." in profile  # the flash, in the language just chosen
    page = await (await client.get("/inbox")).text()
    assert '<html lang="ru">' in page
    assert "Входящие" in page and "Поиск по сообщениям и именам" in page
    assert ">Открыт (" in page  # a status label in the filter
    assert "Нет связи с сервером." in page  # the script's catalog travels with the page
    assert ">Inbox</a>" not in page
    # Python-side messages too: a missing conversation
    missing = await client.get("/inbox/c/999999", headers={"Accept": "text/html"})
    assert missing.status == 404 and "Такого диалога нет" in await missing.text()

    for bad in ("xx", "ru-RU", "<script>", "e" * 300):
        resp = await post(client, "/inbox/account/language", token, language=bad)
        assert resp.status == 400
    async with sessions() as db:
        assert (await db.get(Agent, ana.id)).language == "ru"  # type: ignore[union-attr]

    # back to "as my browser"
    assert (await post(client, "/inbox/account/language", token, language="")).status == 303
    page = await (await client.get("/inbox", headers={"Accept-Language": "zh-CN,zh;q=0.9"})).text()
    assert '<html lang="zh-Hans">' in page and "收件箱" in page


async def test_chinese_from_the_browser_and_no_leaks_between_concurrent_requests(
    aiohttp_client: Any, web_app: Any, sessions: Any
) -> None:
    await add_agent(sessions, "ana@shop.test", name="Ana")
    bo = await add_agent(sessions, "bo@shop.test", name="Bo")
    await customer_says(sessions, "where is my parcel")
    ana_client = await aiohttp_client(web_app.app)
    bo_client = await aiohttp_client(web_app.app)
    await login(ana_client, "ana@shop.test")
    await login(bo_client, "bo@shop.test")
    async with sessions() as db:
        row = await db.get(Agent, bo.id)
        assert row is not None
        row.language = "ru"
        db.add(row)
        await db.commit()

    page = await (await ana_client.get("/inbox", headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"})).text()
    assert '<html lang="zh-Hant">' in page and "收件匣" in page and "處理中" in page
    # the agent's choice beats the browser's
    page = await (await bo_client.get("/inbox", headers={"Accept-Language": "zh-TW"})).text()
    assert "Входящие" in page and "收件匣" not in page

    async def fetch(which: str) -> tuple[str, str]:
        c = ana_client if which == "zh" else bo_client
        resp = await c.get("/inbox/fragments/list", headers={"Accept-Language": "zh-TW"})
        return which, await resp.text()

    results = await asyncio.gather(*(fetch("zh" if i % 2 else "ru") for i in range(24)))
    for which, body in results:
        if which == "zh":
            assert "處理中" in body and "Открыт" not in body
        else:
            assert "Открыт" in body and "處理中" not in body


async def test_login_page_and_errors_follow_the_browser(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    page = await (await client.get("/login", headers={"Accept-Language": "es-MX,es;q=0.9"})).text()
    assert '<html lang="es">' in page and "Iniciar sesión" in page
    from tests.web_helpers import csrf_from

    token = csrf_from(page)
    resp = await client.post("/login", data={"email": "ana@shop.test", "password": "wrong-password-x",
                                             "csrf_token": token}, headers={"Accept-Language": "vi"})
    assert resp.status == 401 and "Email hoặc mật khẩu không đúng." in await resp.text()


# --------------------------------------------------------------------------- canned responses per language


async def _conversation_in(sessions: Any, language: str | None, text: str = "hello") -> int:
    rec = await customer_says(sessions, text, contact=f"visitor-{language or 'none'}-aaaaaaaa")
    async with sessions() as db:
        conv = await db.get(Conversation, rec.conversation_id)
        assert conv is not None
        conv.language = language
        db.add(conv)
        await db.commit()
    return rec.conversation_id


async def test_canned_response_is_inserted_in_the_conversations_language(client: Any, sessions: Any) -> None:
    await add_agent(sessions, admin=True)
    token = await login(client)
    resp = await post(client, "/inbox/admin/canned", token, shortcut="thanks", title="Thanks",
                      body_en="Thanks, {{ customer.display_name }}!", body_ru="Спасибо, {{ customer.display_name }}!",
                      **{"body_zh-Hant": "謝謝！"})
    assert resp.status == 303, await resp.text()
    async with sessions() as db:
        row = (await db.exec(select(CannedResponse))).one()
    assert row.bodies == {"en": "Thanks, {{ customer.display_name }}!", "ru": "Спасибо, {{ customer.display_name }}!",
                          "zh-Hant": "謝謝！"}
    admin_page = await (await client.get("/inbox/admin/canned")).text()
    for code in LANGUAGES:
        assert f'name="body_{code}"' in admin_page
    assert "Спасибо" in admin_page

    ru = await _conversation_in(sessions, "ru")
    data = await (await client.get(f"/inbox/c/{ru}/canned/{row.id}")).json()
    assert data["text"] == "Спасибо, Jane!" and data["language"] == "ru" and data["fallback"] is False
    assert data["warning"] == ""

    vi = await _conversation_in(sessions, "vi")
    data = await (await client.get(f"/inbox/c/{vi}/canned/{row.id}")).json()
    assert data["text"] == "Thanks, Jane!" and data["language"] == "en" and data["fallback"] is True
    assert "Tiếng Việt" in data["warning"] and "English" in data["warning"]
    # without JavaScript: the pre-filled page shows the same warning, visibly
    page = await (await client.get(f"/inbox/c/{vi}?canned={row.id}")).text()
    assert re.search(r'id="canned-warning" role="status" >[^<]*Tiếng Việt', page)
    page = await (await client.get(f"/inbox/c/{ru}?canned={row.id}")).text()
    assert 'id="canned-warning" role="status" hidden>' in page

    unknown = await _conversation_in(sessions, None)
    data = await (await client.get(f"/inbox/c/{unknown}/canned/{row.id}")).json()
    assert data["language"] == "en" and data["fallback"] is False

    # the reply box's slash-insert list gets the shortcuts as JSON data (no inline script runs)
    page = await (await client.get(f"/inbox/c/{ru}")).text()
    match = re.search(r"id=\"canned-data\" hidden data-canned='([^']*)'", page)
    assert match
    data = json.loads(match.group(1))
    assert [(c["shortcut"], c["languages"]) for c in data] == [("thanks", ["en", "ru", "zh-Hant"])]

    # editing replaces the bodies; an emptied language disappears; a broken one names its language
    resp = await post(client, f"/inbox/admin/canned/{row.id}", token, shortcut="thanks", title="Thanks",
                      body_en="Thank you!", body_es="¡Gracias!")
    assert resp.status == 303
    async with sessions() as db:
        assert (await db.get(CannedResponse, row.id)).bodies == {"en": "Thank you!", "es": "¡Gracias!"}  # type: ignore[union-attr]
    resp = await post(client, f"/inbox/admin/canned/{row.id}", token, shortcut="thanks", body_en="ok", body_ru="{% if %}")
    assert resp.status == 400 and "Русский" in await resp.text()
    resp = await post(client, "/inbox/admin/canned", token, shortcut="empty", body_en="  ")
    assert resp.status == 400 and "at least one language" in await resp.text()


async def test_canned_falls_back_to_the_shops_default_language(aiohttp_client: Any, sessions: Any) -> None:
    app = build_web_app(sessions, config=make_config(default_language="es"))
    client = await aiohttp_client(app.app)
    await add_agent(sessions)
    async with sessions() as db:
        row = await canned_save(db, "hola", "Hola", {"es": "¡Hola!", "en": "Hello!"})
        await db.commit()
    await login(client)
    ru = await _conversation_in(sessions, "ru")
    data = await (await client.get(f"/inbox/c/{ru}/canned/{row.id}")).json()
    assert data["text"] == "¡Hola!" and data["fallback"] is True and "Español" in data["warning"]


async def test_canned_save_is_the_one_writer_and_checks_languages(sessions: Any) -> None:
    async with sessions() as db:
        with pytest.raises(Refused) as exc:
            await canned_save(db, "x", "", {"fr": "Bonjour"})
        assert exc.value.code == "bad_language"
        with pytest.raises(Refused):
            await canned_save(db, "x", "", {"en": "", "ru": "   "})
        row = await canned_save(db, "x", "", {"ru": "Привет", "en": ""})
        assert row.bodies == {"ru": "Привет"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_existing_canned_bodies_move_to_the_shops_default_language(
    kind: str, tmp_path: Path, monkeypatch: Any, request: pytest.FixtureRequest
) -> None:
    import sqlalchemy as sa

    from shopdesk.db import create_engine, migrate
    from tests.conftest import _pg_admin

    drop: list[str] = []
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = f"m0005_{abs(hash(str(tmp_path))) % 10**8}"
        await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
        url = server.url(name)
        drop.append(name)
    monkeypatch.setenv("SHOPDESK_DEFAULT_LANGUAGE", "ru")
    engine = create_engine(url)
    try:
        await migrate(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO canned_response (shortcut, title, body, created_at) "
                                       "VALUES ('hi', 'Hi', 'Здравствуйте!', CURRENT_TIMESTAMP)"))
        await migrate(engine, "head")
        async with engine.connect() as conn:
            bodies = (await conn.execute(sa.text("SELECT bodies FROM canned_response"))).scalar_one()
        assert (json.loads(bodies) if isinstance(bodies, str) else bodies) == {"ru": "Здравствуйте!"}
        async with engine.begin() as conn:
            from alembic import command

            from shopdesk.db import _alembic_config

            await conn.run_sync(lambda sync: command.downgrade(_alembic_config(sync), "0003"))
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT body FROM canned_response"))).scalar_one() == "Здравствуйте!"
    finally:
        await engine.dispose()
        for name in drop:
            await _pg_admin(request.getfixturevalue("pg_server"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- the customer's language, translation


async def test_customer_messages_show_their_language(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    rec = await customer_says(sessions, "где мой заказ?")
    async with sessions() as db:
        conv = await db.get(Conversation, rec.conversation_id)
        msg = await db.get(Message, rec.message_id)
        assert conv is not None and msg is not None
        await message_answer(db, conv, msg, replies=[], bot_state={}, language="ru", intent="track_order")
        await db.commit()
        assert (await db.get(Message, rec.message_id)).language == "ru"  # type: ignore[union-attr]
    token = await login(client)
    page = await (await client.get(f"/inbox/c/{rec.conversation_id}")).text()
    assert 'class="badge badge-lang" data-lang="ru" title="Customer language: Русский">ru</span>' in page
    # nothing pretends: no translation server configured, no button, and the route says so
    assert "data-translate-url" not in page and ">Translate</button>" not in page
    resp = await client.post(f"/inbox/c/{rec.conversation_id}/messages/{rec.message_id}/translate",
                             headers={"X-CSRF-Token": token})
    assert resp.status == 404


@pytest.fixture
async def fake_libretranslate(aiohttp_server: Any) -> Any:
    """A loopback LibreTranslate: ``POST /translate`` answers ``{"translatedText"}`` (or fails on demand)."""
    calls: list[dict[str, Any]] = []
    state = {"fail": False}

    async def translate(request: web.Request) -> web.Response:
        payload = await request.json()
        calls.append(payload)
        if state["fail"]:
            return web.json_response({"error": "overloaded"}, status=500)
        return web.json_response({"translatedText": f"[{payload['target']}] {payload['q'][::-1]}"})

    app = web.Application()
    app.router.add_post("/translate", translate)
    server = await aiohttp_server(app)
    return server, calls, state


async def test_translate_action_with_a_configured_libretranslate(
    aiohttp_client: Any, sessions: Any, fake_libretranslate: Any
) -> None:
    server, calls, state = fake_libretranslate
    app = build_web_app(sessions, config=make_config(translate_url=str(server.make_url("/")), translate_api_key="k-1"))
    client = await aiohttp_client(app.app)
    ana = await add_agent(sessions)
    async with sessions() as db:
        row = await db.get(Agent, ana.id)
        assert row is not None
        row.language = "zh-Hant"
        db.add(row)
        await db.commit()
    rec = await customer_says(sessions, "где мой заказ?")
    token = await login(client)
    page = await (await client.get(f"/inbox/c/{rec.conversation_id}")).text()
    url = f"/inbox/c/{rec.conversation_id}/messages/{rec.message_id}/translate"
    assert f'data-translate-url="{url}">翻譯</button>' in page

    resp = await client.post(url, headers={"X-CSRF-Token": token})
    assert resp.status == 200
    assert await resp.json() == {"text": "[zt] " + "где мой заказ?"[::-1], "language": "zh-Hant"}
    assert calls[-1] == {"q": "где мой заказ?", "source": "auto", "target": "zt", "format": "text", "api_key": "k-1"}

    assert (await client.post(url)).status == 403  # CSRF, like every POST
    other = f"/inbox/c/{rec.conversation_id}/messages/999999/translate"
    assert (await client.post(other, headers={"X-CSRF-Token": token})).status == 404

    state["fail"] = True
    resp = await client.post(url, headers={"X-CSRF-Token": token})
    assert resp.status == 502 and (await resp.json())["error"] == "翻譯服務沒有回應，請稍後再試。"
    await server.close()
    resp = await client.post(url, headers={"X-CSRF-Token": token})
    assert resp.status == 502
