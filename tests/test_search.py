"""Inbox search in every language, on SQLite and PostgreSQL: folding, CJK bigrams, prefixes,
stems, accents, ranking, hostile input (also over HTTP), the index's use and migration 0004."""

from __future__ import annotations

import random
import re
import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col

from inbox.actions.message_record import message_record
from inbox.messages import InboundMessage
from inbox.models import Agent, Channel, Contact, Conversation, Message, Role
from inbox.queries.conversations import count_conversations, list_conversations
from inbox.queries.filters import InvalidQuery
from inbox.search import fts5_query, tsquery_text
from shopbase.search_text import fold, index_text, query_terms
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    add_agent,
    build_web_app,
    customer_says,
    fast_hashing,
    login,
)

# one customer message per conversation, in the six languages (and a few more scripts)
CORPUS = {
    "en_return": "Hi, I want to return the shoes I bought last week",
    "en_returns": "What is your returns policy for sale items?",
    "es": "¿Dónde está mi pedido? Quiero la devolución de la canción",
    "ru": "Где мой заказ? Ёлка пришла сломанной",
    "vi": "Đơn hàng của tôi ở đâu? Tôi muốn đổi trả",
    "zh_hans": "我的订单在哪里？我想退货，包裹还没到",
    "zh_hant": "請問我的訂單在哪裡？包裹已經寄出了嗎",
    "ja": "注文した商品がまだ届きません",
    "ko": "주문한 상품이 아직 도착하지 않았어요",
}


async def seed(sessions: Any, corpus: dict[str, str] = CORPUS) -> dict[str, int]:
    """One conversation per entry (in order, so later ones are more recent); name -> conversation id."""
    ids: dict[str, int] = {}
    for i, (name, text) in enumerate(corpus.items()):
        result = await message_record(
            sessions,
            InboundMessage(
                channel=Channel.telegram,
                dedupe_key=f"k-{name}",
                contact_external_id=f"c-{i}",
                text=text,
                display_name=f"Customer {i}",
            ),
        )
        ids[name] = result.conversation_id
    return ids


async def admin(sessions: Any) -> Agent:
    async with sessions() as s:
        agent = Agent(email="admin@example.test", name="Admin", password_hash="x", role=Role.admin)
        s.add(agent)
        await s.commit()
        return agent


async def found(sessions: Any, agent: Agent, q: str, **kw: Any) -> list[int]:
    async with sessions() as s:
        return [row.id for row in await list_conversations(s, agent, q=q, limit=200, **kw)]


# --------------------------------------------------------------------------- folding (no database)


def test_fold_and_tokens_in_every_language() -> None:
    assert index_text("我的订单在哪里") == "我的 的订 订单 单在 在哪 哪里 里"
    assert index_text("我的訂單在哪裡？") == index_text("我的订单在哪里")  # traditional -> simplified
    assert index_text("Đơn hàng của tôi ở đâu") == "don hang cua toi o dau"
    assert index_text("¿Dónde está mi PEDIDO?") == "donde esta mi pedido"
    assert index_text("Ёлка и йогурт") == "елка и йогурт"  # ё folds to е, й stays a letter
    assert index_text("ＡＢＣ１２３ iPhone手机") == "abc123 iphone 手机 机"  # NFKC; scripts split
    assert index_text("Straße") == "strasse"
    assert index_text("한국어") == "한국 국어 어"  # Hangul stays composed
    assert index_text("が") == "が"  # a voiced kana keeps its mark
    assert index_text("x\ud800y \x00 NEAR(*)") == "x y near"  # invalid Unicode and syntax are no tokens
    assert index_text("") == "" and index_text(None) == ""
    assert len(max(index_text("a" * 5000).split(), key=len)) == 64
    assert fold("ĐƠN") == "don"


def test_query_terms_prefix_stems_and_phrases() -> None:
    def alternatives(q: str) -> list[list[str]]:
        return [[" ".join(a.tokens) + ("*" if a.prefix else "") for a in t.alternatives] for t in query_terms(q)]

    assert alternatives("returns") == [["returns*", "return*"]]
    assert alternatives("pedidos") == [["pedidos*", "pedido*"]]
    assert alternatives("заказы") == [["заказы*", "заказ*"]]
    assert alternatives("don hang") == [["don*"], ["hang*"]]
    assert alternatives("訂單") == [["订单"]]
    assert alternatives("在哪里") == [["在哪 哪里"]]  # a phrase: the bigrams in order
    assert alternatives("订") == [["订*"]]  # one CJK character: a prefix of the bigrams
    assert alternatives("a") == [["a"]]  # one letter: exact, "a*" would match half the index
    assert alternatives('"" * - NEAR AND OR') == [["near*"], ["and*"], ["or*"]]
    assert alternatives("word " * 50) == [["word*"]]  # repeated terms once
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == 12
    assert query_terms("") == [] and query_terms("\ud800") == [] and query_terms("!!! ...") == []
    # the database queries are built from tokens only
    assert fts5_query('say "hi" OR NEAR(x)') == '"say"* AND "hi"* AND "or"* AND "near"* AND "x"'
    assert fts5_query("returns 订单") == '("returns"* OR "return"*) AND "订单"'
    assert tsquery_text("returns 在哪里") == "('returns':* | 'return':*) & ('在哪' <-> '哪里')"
    assert fts5_query("\"'-") is None and tsquery_text("*") is None


_SCRIPTS = st.sampled_from(
    [
        "abcdefghijklmnopqrstuvwxyz ABC 0123456789",
        "áàảãạăắặâấđêếệíóôốơớưứýñüç ÁĐ",
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя ЁЙ",
        "我的订单在哪里退货包裹訂單哪裡請問寄出",
        "がぎカタカナー한국어주문",
        " ,.!?\"'*-():^{}[]|&<>~%_\\\n\t\x00\u200b\ud800🙂",
    ]
)


@st.composite
def _texts(draw: st.DrawFn) -> str:
    alphabet = draw(st.lists(_SCRIPTS, min_size=1, max_size=3))
    return draw(st.text(alphabet="".join(alphabet), max_size=60))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts(), other=_texts())
def test_any_text_finds_itself_and_no_query_is_syntax(text: str, other: str) -> None:
    """The FTS5 index as built by migration 0004: a message is found by its own text, and no
    query, however odd, is an FTS5 syntax error."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(search_text, tokenize='ascii')")
    db.execute("INSERT INTO t(rowid, search_text) VALUES (1, ?)", (index_text(text),))
    assert all(re.fullmatch(r"[^\W_]+", token) for token in index_text(text).split())
    for query in (text, other, text + " " + other):
        match = fts5_query(query)
        if match is not None:
            found = db.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall()
            if query == text:
                assert found == [(1,)], (text, match)
    db.close()


# --------------------------------------------------------------------------- both databases


async def test_random_texts_find_themselves(sessions: Any) -> None:
    """On both databases, a message is found by its own text, whatever the mix of scripts (the
    PostgreSQL parser must split the stored tokens exactly where Python put the spaces)."""
    rng = random.Random(12)
    pool = "abcxyz019 áđêốưñü абвёйя 订单在哪里訂單裡 がカナー한국 _-.@/:+'*\"\t"
    texts = {f"r{i}": "".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for i in range(40)}
    texts.update(mixed="abc123def x1.5 user@host.example a/b/c abcабв 12订单34 ab_cd e-mail")
    ids = await seed(sessions, texts)
    me = await admin(sessions)
    for name, text in texts.items():
        if query_terms(text):
            assert ids[name] in await found(sessions, me, text), (name, text, index_text(text))


async def test_chinese_words_inside_sentences(sessions: Any) -> None:
    ids = await seed(sessions)
    me = await admin(sessions)
    for word in ("订单", "退货", "包裹", "哪里", "我的"):
        assert ids["zh_hans"] in await found(sessions, me, word), word
    # simplified finds traditional and the other way round
    assert set(await found(sessions, me, "订单")) == {ids["zh_hans"], ids["zh_hant"]}
    assert set(await found(sessions, me, "訂單")) == {ids["zh_hans"], ids["zh_hant"]}
    assert await found(sessions, me, "寄出") == [ids["zh_hant"]]
    assert await found(sessions, me, "退货包裹") == []  # a phrase: not adjacent in the message
    assert await found(sessions, me, "我想退货") == [ids["zh_hans"]]
    # one character, anywhere in a run (first, middle, last)
    assert ids["zh_hans"] in await found(sessions, me, "退")
    assert ids["zh_hans"] in await found(sessions, me, "到")  # the last character of a run
    assert await found(sessions, me, "鬼") == []
    # Japanese and Korean the same way
    assert await found(sessions, me, "商品") == [ids["ja"]]
    assert await found(sessions, me, "상품") == [ids["ko"]]


async def test_prefixes_stems_and_accents(sessions: Any) -> None:
    ids = await seed(sessions)
    me = await admin(sessions)
    assert set(await found(sessions, me, "retur")) == {ids["en_return"], ids["en_returns"]}
    assert set(await found(sessions, me, "returns")) == {ids["en_return"], ids["en_returns"]}
    assert await found(sessions, me, "RETURN shoes") == [ids["en_return"]]  # every word must match
    assert await found(sessions, me, "bought yesterday") == []
    # Spanish without accents, plural to singular
    assert await found(sessions, me, "donde esta mi pedido") == [ids["es"]]
    assert await found(sessions, me, "pedidos") == [ids["es"]]
    assert await found(sessions, me, "devolucion cancion") == [ids["es"]]
    assert await found(sessions, me, "devoluciones") == [ids["es"]]
    # Vietnamese without accents, and with them
    assert await found(sessions, me, "don hang") == [ids["vi"]]
    assert await found(sessions, me, "Đơn hàng") == [ids["vi"]]
    assert await found(sessions, me, "doi tra") == [ids["vi"]]
    # Russian: ё/е, case, inflection
    assert await found(sessions, me, "елка") == [ids["ru"]]
    assert await found(sessions, me, "ЁЛКА") == [ids["ru"]]
    assert await found(sessions, me, "заказы") == [ids["ru"]]
    assert await found(sessions, me, "сломан") == [ids["ru"]]


async def test_contact_names_are_folded_too(sessions: Any) -> None:
    ids = {}
    for key, name in (("vi", "Nguyễn Văn An"), ("zh", "王小明"), ("ru", "Пётр Иванов")):
        rec = await message_record(
            sessions,
            InboundMessage(
                channel=Channel.telegram,
                dedupe_key=f"k-{key}",
                contact_external_id=f"c-{key}",
                text="hello",
                display_name=name,
                username=f"user_{key}",
            ),
        )
        ids[key] = rec.conversation_id
    me = await admin(sessions)
    assert await found(sessions, me, "nguyen van") == [ids["vi"]]
    assert await found(sessions, me, "小明") == [ids["zh"]]
    assert await found(sessions, me, "петр") == [ids["ru"]]
    assert await found(sessions, me, "user_ru") == [ids["ru"]]  # the username too
    async with sessions() as s:
        contact = (await s.exec(sa.select(Contact).where(col(Contact.external_id) == "c-ru"))).one()[0]
        contact.display_name = "Ольга"  # an ORM change re-derives search_text
        await s.commit()
    assert await found(sessions, me, "петр") == []
    assert await found(sessions, me, "ольга") == [ids["ru"]]
    # a known customer writing again under a new name (the recorder's Core fast path)
    await message_record(
        sessions,
        InboundMessage(channel=Channel.telegram, dedupe_key="k-vi-2", contact_external_id="c-vi",
                       text="again", display_name="Trần Thị Bích"),
    )
    assert await found(sessions, me, "tran thi bich") == [ids["vi"]]
    assert await found(sessions, me, "nguyen") == []
    assert await found(sessions, me, "again") == [ids["vi"]]  # the fast path's Core insert is indexed too


async def test_counts_follow_the_search(sessions: Any) -> None:
    ids = await seed(sessions)
    me = await admin(sessions)
    async with sessions() as s:
        counts = await count_conversations(s, me, q="訂單")
        nothing = await count_conversations(s, me, q="鬼")
    assert counts["all"] == 2 and counts["open"] == 2
    assert nothing["all"] == 0
    assert ids


async def test_ranking_by_relevance_then_recency(sessions: Any) -> None:
    ids = await seed(
        sessions,
        {
            "once_long": "refund " + " ".join(f"filler{i}" for i in range(40)),
            "often_short": "refund refund, I need a refund",
            "older_same": "where is my parcel",
            "newer_same": "where is my parcel",
            "unrelated": "hello there",
        },
    )
    me = await admin(sessions)
    assert await found(sessions, me, "refund") == [ids["often_short"], ids["once_long"]]
    assert await found(sessions, me, "parcel") == [ids["newer_same"], ids["older_same"]]  # equal text: newest first
    # a contact whose name matches comes first
    named = await message_record(
        sessions,
        InboundMessage(
            channel=Channel.telegram,
            dedupe_key="k-named",
            contact_external_id="c-named",
            text="hi",
            display_name="Parcel Pete",
        ),
    )
    assert (await found(sessions, me, "parcel"))[0] == named.conversation_id
    # the relevance order pages with its cursor
    async with sessions() as s:
        first = await list_conversations(s, me, q="parcel", limit=2)
        rest = await list_conversations(s, me, q="parcel", limit=2, before=first[-1].cursor)
        with pytest.raises(InvalidQuery):
            await list_conversations(s, me, q="parcel", before="0|2030-01-01T00:00:00+00:00|1")  # a list cursor
        with pytest.raises(InvalidQuery):
            await list_conversations(s, me, q="parcel", before="s|nan|2030-01-01T00:00:00+00:00|1")
    assert [r.id for r in first + rest] == [named.conversation_id, ids["newer_same"], ids["older_same"]]


async def test_search_respects_access_and_filters(sessions: Any) -> None:
    ids = await seed(sessions)
    async with sessions() as s:
        loner = Agent(email="loner@example.test", name="Loner", password_hash="x", role=Role.agent)
        s.add(loner)
        conv = await s.get(Conversation, ids["zh_hans"])
        assert conv is not None
        conv.labels = ["vip"]
        await s.commit()
    me = await admin(sessions)
    assert await found(sessions, me, "订单", label="vip") == [ids["zh_hans"]]
    assert await found(sessions, me, "订单", view="mine") == []
    assert await found(sessions, me, "订单", status="resolved") == []
    assert set(await found(sessions, loner, "订单")) <= {ids["zh_hans"], ids["zh_hant"]}


HOSTILE = [
    "",
    " ",
    '"',
    '""',
    "'",
    "*",
    "-",
    "- -",
    "NEAR",
    "NEAR(a b)",
    "a NEAR/2 b",
    "AND",
    "OR",
    "NOT",
    "a AND OR b",
    "-订单",
    '"订单"*',
    "col:val",
    "search_text:x",
    "^x",
    "x:*",
    "!x & y | z <-> w",
    "' OR 1=1 --",
    "(",
    ")",
    "{a b}",
    "a",
    "订",
    "\\",
    "%_",
    "\x00",
    "\ud800",
    "\udfff订单",
    "a" * 1000,
    "订单" * 500,
    "订单" * 100,
    " ".join(["x"] * 500),
    "🙂",
    "\u200b",
]


async def test_hostile_queries_give_results_or_nothing(sessions: Any) -> None:
    ids = await seed(sessions)
    me = await admin(sessions)
    async with sessions() as s:
        for q in HOSTILE:
            rows = await list_conversations(s, me, q=q)
            counts = await count_conversations(s, me, q=q)
            assert counts["all"] == len(rows) or len(rows) == 50, q
    assert ids["zh_hans"] in await found(sessions, me, '"订单"*')
    assert ids["zh_hans"] in await found(sessions, me, "\udfff订单")


async def test_hostile_queries_over_http(aiohttp_client: Any, sessions: Any) -> None:
    app = build_web_app(sessions)
    client = await aiohttp_client(app.app)
    await add_agent(sessions)
    order = await customer_says(sessions, "我的订单在哪里", contact="v-order-0000000000001")
    await login(client)
    for q in HOSTILE:
        for path in ("/inbox", "/inbox/fragments/list"):
            resp = await client.get(path, params={"q": q, "status": "any"})
            # 1,000 Chinese characters are 9,000 bytes of URL: over aiohttp's request-line limit (a 400);
            # the search box sends at most 200 characters (maxlength)
            too_long = len(q.encode("utf-8", "surrogatepass")) * 3 > 8000
            assert resp.status == (400 if too_long else 200), (path, q[:20], resp.status)
    # raw bytes that are not UTF-8, and a percent-encoded lone surrogate
    for raw in ("/inbox?q=%FF%FE", "/inbox?q=%ED%A0%80", "/inbox?q=%22%2A%20NEAR"):
        resp = await client.get(raw)
        assert resp.status in (200, 400), raw
    body = await (await client.get("/inbox", params={"q": "订单"})).text()
    assert re.findall(r'data-id="(\d+)"', body).count(str(order.conversation_id)) >= 1


async def test_new_messages_are_indexed_from_every_write_path(sessions: Any) -> None:
    rec = await message_record(
        sessions,
        InboundMessage(channel=Channel.telegram, dedupe_key="k1", contact_external_id="c1", text="hola"),
    )
    me = await admin(sessions)
    async with sessions() as s:
        # a Core insert without search_text gets it from the column default
        await s.exec(
            sa.insert(Message).values(
                conversation_id=rec.conversation_id,
                channel="telegram",
                direction="out",
                author="agent",
                text="Ваш заказ в пути",
            )
        )
        await s.commit()
    async with sessions() as s:
        texts = (
            await s.exec(
                sa.select(Message.search_text)
                .where(col(Message.conversation_id) == rec.conversation_id)
                .order_by(col(Message.id))
            )
        ).all()
    assert [t for (t,) in texts] == ["hola", "ваш заказ в пути"]
    assert await found(sessions, me, "заказ") == [rec.conversation_id]


async def test_the_index_is_used(sessions: Any, engine: Any) -> None:
    from inbox.queries.filters import ConversationFilters

    await seed(sessions)
    hits = ConversationFilters(q="订单").search_hits(engine.dialect.name)
    assert hits is not None
    stmt = sa.select(hits.c.conversation_id)
    compiled = stmt.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = (await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))).all()
            plan = " ".join(str(r) for r in rows)
            assert "SCAN contact_fts VIRTUAL TABLE INDEX" in plan and "SCAN message_fts VIRTUAL TABLE INDEX" in plan
            # the index hands out rows newest first: no sort of all matches, the LIMIT stops early
            index_reads = {r[0] for r in rows if r[3] in ("MATERIALIZE hit", "MATERIALIZE named")}
            assert len(index_reads) == 2, plan
            assert not [r for r in rows if r[1] in index_reads and "B-TREE" in r[3]], plan
        else:
            await conn.execute(sa.text("SET enable_seqscan = off"))  # a tiny table would be scanned anyway
            plan = " ".join(str(r) for r in (await conn.execute(sa.text(f"EXPLAIN {compiled}"))).all())
            assert "ix_message_search_vector" in plan and "ix_contact_search_vector" in plan, plan


# --------------------------------------------------------------------------- migration 0004


async def _alembic(engine: Any, action: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from shopdesk.db import MIGRATIONS_DIR

    def run(connection: Any) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = connection
        getattr(command, action)(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def test_migration_0004_indexes_existing_messages(sessions: Any, engine: Any) -> None:
    ids = await seed(sessions)
    me = await admin(sessions)
    await _alembic(engine, "downgrade", "0003")
    async with engine.connect() as conn:
        columns = {c["name"] for c in await conn.run_sync(lambda c: sa.inspect(c).get_columns("message"))}
        assert "search_text" not in columns
        # 0003's index is back: whole words only, so a Chinese word inside a sentence is not found there
        if engine.dialect.name == "sqlite":
            old = (
                await conn.execute(sa.text("SELECT count(*) FROM message_fts WHERE message_fts MATCH 'shoes'"))
            ).scalar()
            assert old == 1
        # rows written before 0004 (no search_text), in bulk
        await conn.execute(sa.text("UPDATE message SET text = text || ' extra' WHERE id > 0"))
        await conn.commit()
    await _alembic(engine, "upgrade", "head")
    await engine.dispose()
    assert set(await found(sessions, me, "订单")) == {ids["zh_hans"], ids["zh_hant"]}
    assert await found(sessions, me, "don hang") == [ids["vi"]]
    assert await found(sessions, me, "елка") == [ids["ru"]]
    assert await found(sessions, me, "pedidos") == [ids["es"]]
    assert len(await found(sessions, me, "extra")) == len(ids)
    async with sessions() as s:
        assert (await s.exec(sa.select(sa.func.count()).where(col(Message.search_text).is_(None)))).one()[0] == 0


async def test_fill_search_text_batches(sessions: Any, engine: Any) -> None:
    import importlib

    migration = importlib.import_module("shopdesk.migrations.versions.0004_search_all_languages")
    await seed(sessions)
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE message SET search_text = NULL"))
        written = await conn.run_sync(lambda c: migration.fill_search_text(c, batch=2))
    assert written == len(CORPUS)
    async with sessions() as s:
        values = (await s.exec(sa.select(Message.text, Message.search_text))).all()
    assert all(st == index_text(t) for t, st in values)
