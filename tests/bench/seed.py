"""A large inbox, fast: ``conversations`` contacts with one conversation each and ``messages``
messages between them, in the six languages, written with bulk inserts (``executemany`` on raw
``sqlite3``, ``COPY`` on PostgreSQL) instead of the ORM.

Values are produced as the application would store them: SQLite values go through the bind
processors of the models' own column types (enums by value, JSON, UTC timestamps); PostgreSQL
gets typed values for ``COPY``. Columns this generator does not know (a later migration's) are
left to their defaults; one that is NOT NULL without a default stops the seed with its name.

Search indexes are whatever the migrations made; a ``search_text`` column is filled the way the
application fills it (``inbox.models.search_text_of``). SQLite: when every trigger on ``message`` only
feeds FTS5 tables whose content is ``message`` itself, the triggers are dropped for the bulk
insert, recreated from their own SQL and those tables rebuilt (much faster than a trigger per
row); any other trigger stays and fires per row. PostgreSQL: rows go in under the indexes.
Then the planner statistics are refreshed (``ANALYZE``). Explicit ids are used, and PostgreSQL's sequences are moved past them.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.bench.texts import LANGUAGES, seed_corpus

__all__ = ["seed_postgresql", "seed_sqlite"]

CHUNK = 20_000
_NAMES = {
    "en": ["Emma Johnson", "Liam Smith", "Olivia Brown", "Noah Davis", "Ava Wilson"],
    "es": ["Lucía García", "Mateo López", "Sofía Martínez", "Hugo Sánchez", "Martina Pérez"],
    "ru": ["Анна Иванова", "Дмитрий Смирнов", "Мария Кузнецова", "Иван Попов", "Ольга Соколова"],
    "vi": ["Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường", "Phạm Thu Dung", "Võ Minh Đức"],
    "zh-Hans": ["王伟", "李娜", "张敏", "刘洋", "陈静"],
    "zh-Hant": ["陳志明", "林美玲", "黃建宏", "張淑芬", "李家豪"],
}
_STATUSES = (("open", 0.25), ("pending", 0.1), ("snoozed", 0.05), ("resolved", 0.6))
_NO_ITEMS: list[Any] = []  # shared by every row (never mutated), so its stored form is computed once
_NO_STATE: dict[str, Any] = {}
_INTENTS = ("track_order", "return_request", "cancel_order", "shipping_info", "return_policy", "greeting", None)
_PRIORITIES = (("low", 0.1), ("normal", 0.7), ("high", 0.15), ("urgent", 0.05))


def _triage(status: str, last: datetime, now: datetime, assignees: Sequence[int],
            rng: random.Random) -> dict[str, Any]:
    """Who owns a conversation, who is assigned, its priority and SLA clock, spread the way a
    busy shop's inbox looks (every triage view non-empty): about a third owned by agents, most of
    those assigned (round the given agents), the open and pending ones of agents with an SLA due
    time, some already past. Drawn from their own random stream, so the texts stay the same."""
    owner = "agent" if rng.random() < 0.35 else "bot"
    assignee = None
    if owner == "agent" and assignees and rng.random() < 0.7:
        assignee = assignees[rng.randrange(len(assignees))]
    priority = rng.choices([p for p, _ in _PRIORITIES], [w for _, w in _PRIORITIES])[0]
    due = None
    if owner == "agent" and status in ("open", "pending"):
        due = max(last, now - timedelta(days=2)) + timedelta(hours=rng.uniform(-6, 24))
    return {"owner": owner, "assignee_id": assignee, "priority": priority, "sla_due_at": due}


def _rows(conversations: int, messages: int, rng: random.Random, assignees: Sequence[int] = (),
          spread: random.Random | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """("contact"|"conversation"|"message", row) in an order that satisfies the foreign keys;
    ``assignees``: agent ids that conversations may be assigned to; ``spread``: the random stream
    of the triage columns (:func:`_triage`)."""
    spread = spread or random.Random(0)
    corpus = seed_corpus()
    statuses = [s for s, _ in _STATUSES]
    weights = [w for _, w in _STATUSES]
    now = datetime.now(UTC).replace(microsecond=0)
    per_conv = messages / conversations
    message_id = 0
    remaining = messages
    for cid in range(1, conversations + 1):
        lang = LANGUAGES[cid % len(LANGUAGES)]
        customer_texts, reply_texts = corpus[lang]
        channel = "telegram" if cid % 5 < 2 else "webchat"
        started = now - timedelta(days=180) + timedelta(seconds=cid * (180 * 86400 / conversations))
        left = conversations - cid + 1
        count = remaining if left == 1 else max(1, min(remaining - (left - 1), int(rng.uniform(0.3, 1.7) * per_conv)))
        remaining -= count
        status = rng.choices(statuses, weights)[0]
        last = started + timedelta(minutes=3 * count)
        external = str(20_000_000 + cid) if channel == "telegram" else f"seed-visitor-{cid:08d}"
        yield "contact", {
            "id": cid, "channel": channel, "external_id": external, "display_name": rng.choice(_NAMES[lang]),
            "username": None, "language": lang, "customer_id": None, "verified_at": None,
            "undeliverable_at": None, "created_at": started, "last_seen_at": last,
        }
        yield "conversation", {
            "id": cid, "contact_id": cid, "channel": channel, "status": status,
            **_triage(status, last, now, assignees, spread), "team_id": None, "labels": _NO_ITEMS, "language": lang,
            "last_intent": rng.choice(_INTENTS), "summary": None, "bot_state": _NO_STATE,
            "snoozed_until": now + timedelta(days=2) if status == "snoozed" else None,
            "first_response_at": started + timedelta(seconds=2),
            "resolved_at": last if status == "resolved" else None,
            "last_message_at": last, "created_at": started, "updated_at": last,
        }
        for n in range(count):
            message_id += 1
            inbound = n % 2 == 0
            if inbound:
                text = rng.choice(customer_texts)
                if message_id % 7 == 0:
                    text = f"{text} #{1000 + message_id % 9000}"
            else:
                text = rng.choice(reply_texts)
            yield "message", {
                "id": message_id, "conversation_id": cid, "channel": channel, "direction": "in" if inbound else "out",
                "author": "customer" if inbound else ("agent" if n % 6 == 5 else "bot"), "agent_id": None,
                "is_internal": False, "text": text, "attachments": _NO_ITEMS, "quick_replies": _NO_ITEMS,
                "dedupe_key": f"seed-{message_id}" if inbound else None, "channel_message_id": None,
                "intent": None, "postback": None, "start_payload": None, "processed": True,
                "delivery_status": None if inbound else "sent",
                "created_at": started + timedelta(minutes=3 * n),
            }


def _search_text() -> Any:
    """The application's own ``search_text`` of a row (``inbox.models.search_text_of``), memoised
    (the seed repeats its texts), or None when the models have no such column."""
    try:
        from inbox.models import Contact, Message, search_text_of
    except ImportError:
        return None
    models = {"contact": Contact, "message": Message}
    memo: dict[tuple[str, Any, Any], str] = {}

    def compute(table: str, row: dict[str, Any]) -> str | None:
        if table not in models:
            return None
        key = (table, row.get("text"), (row.get("display_name"), row.get("username")))
        if key not in memo:
            memo[key] = search_text_of(models[table], row)
        return memo[key]

    return compute


def _batches(conversations: int, messages: int, seed_value: int,
             assignees: Sequence[int] = ()) -> Iterator[dict[str, list[dict[str, Any]]]]:
    batch: dict[str, list[dict[str, Any]]] = {"contact": [], "conversation": [], "message": []}
    size = 0
    search_text = _search_text()
    for table, row in _rows(conversations, messages, random.Random(seed_value), assignees,
                             random.Random(seed_value + 1)):
        if search_text is not None and table != "conversation":
            row["search_text"] = search_text(table, row)
        batch[table].append(row)
        size += 1
        if size >= CHUNK and table == "message":
            yield batch
            batch = {"contact": [], "conversation": [], "message": []}
            size = 0
    if size:
        yield batch


def _model_tables() -> dict[str, Any]:
    from inbox.models import Contact, Conversation, Message

    return {"contact": Contact.__table__, "conversation": Conversation.__table__, "message": Message.__table__}


def _check_columns(table: str, known: set[str], columns: list[tuple[str, bool, bool]]) -> list[str]:
    """The columns to fill; raises on a required column this generator cannot fill."""
    for name, notnull, has_default in columns:
        if name not in known and notnull and not has_default:
            raise RuntimeError(f"seed: {table}.{name} is required and unknown to tests/bench/seed.py")
    present = {name for name, _, _ in columns}
    return [c for c in known if c in present]


def _converter(process: Any) -> Any:
    """The column's bind processor, skipping NULLs and remembering the shared empty JSON values."""
    if process is None:
        return None
    memo: dict[int, Any] = {}

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if value is _NO_ITEMS or value is _NO_STATE:
            if id(value) not in memo:
                memo[id(value)] = process(value)
            return memo[id(value)]
        return process(value)

    return convert


_WRITES_TO = re.compile(r"\bINSERT\s+INTO\s+[\"'`]?(\w+)", re.IGNORECASE)
_EXTERNAL_CONTENT = re.compile(r"content\s*=\s*[\"']?message[\"']?\s*[,)]", re.IGNORECASE)


def _rebuildable_search(db: sqlite3.Connection) -> tuple[list[tuple[str, str]], list[str]]:
    """The triggers on ``message`` that can be dropped during the bulk insert, and the FTS tables
    to rebuild afterwards. That is only done when every such trigger writes to FTS5 tables whose
    content is ``message`` itself (a rebuild then recreates exactly what the triggers would
    have written); otherwise ([], []) and the rows go in with every trigger firing."""
    triggers = [(str(n), str(q)) for n, q in db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'message'")]
    tables = {str(n): str(q or "") for n, q in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")}
    targets = {t for _, sql in triggers for t in _WRITES_TO.findall(sql)}
    for table in targets:
        sql = tables.get(table, "")
        if "fts5" not in sql.lower() or not _EXTERNAL_CONTENT.search(sql):
            return [], []
    return triggers, sorted(targets)


def seed_sqlite(path: str, conversations: int, messages: int, seed_value: int = 7,
                assignees: Sequence[int] = ()) -> dict[str, Any]:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    tables = _model_tables()
    sample = next(_batches(1, 1, 0))
    started = time.perf_counter()
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA foreign_keys=ON")
        plans = {}
        for name, table in tables.items():
            info = db.execute(f"PRAGMA table_info({name})").fetchall()  # cid, name, type, notnull, dflt, pk
            cols = _check_columns(name, set(sample[name][0]),
                                  [(r[1], bool(r[3]) and not r[5], r[4] is not None) for r in info])
            procs = [_converter(table.c[col].type.dialect_impl(dialect).bind_processor(dialect)) for col in cols]
            sql = f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            plans[name] = (cols, procs, sql)
        triggers, rebuild = _rebuildable_search(db)
        with db:
            for name, _ in triggers:
                db.execute(f'DROP TRIGGER "{name}"')
        for batch in _batches(conversations, messages, seed_value, assignees):
            with db:
                for name in ("contact", "conversation", "message"):
                    cols, procs, sql = plans[name]
                    db.executemany(sql, ([p(row[c]) if p else row[c] for c, p in zip(cols, procs)]
                                         for row in batch[name]))
        inserted = time.perf_counter() - started
        with db:
            for _, sql in triggers:
                db.execute(sql)
            for table in rebuild:
                db.execute(f"INSERT INTO \"{table}\"(\"{table}\") VALUES ('rebuild')")
        db.execute("ANALYZE")
        db.commit()
    finally:
        db.close()
    return {"insert_seconds": round(inserted, 1), "total_seconds": round(time.perf_counter() - started, 1)}


async def seed_postgresql(host: str, port: int, user: str, database: str, conversations: int, messages: int,
                          seed_value: int = 7, assignees: Sequence[int] = ()) -> dict[str, Any]:
    import asyncpg

    sample = next(_batches(1, 1, 0))
    started = time.perf_counter()
    conn = await asyncpg.connect(host=host, port=port, user=user, database=database, timeout=30)
    try:
        plans = {}
        for name in ("contact", "conversation", "message"):
            info = await conn.fetch(
                "SELECT column_name, is_nullable, column_default, data_type FROM information_schema.columns "
                "WHERE table_name = $1", name)
            cols = _check_columns(name, set(sample[name][0]),
                                  [(r["column_name"], r["is_nullable"] == "NO", r["column_default"] is not None)
                                   for r in info])
            kinds = {r["column_name"]: r["data_type"] for r in info}
            json_cols = {c for c in cols if kinds[c] in ("json", "jsonb")}
            naive_cols = {c for c in cols if kinds[c] == "timestamp without time zone"}
            plans[name] = (cols, json_cols, naive_cols)

        def record(name: str, row: dict[str, Any]) -> tuple[Any, ...]:
            cols, json_cols, naive_cols = plans[name]
            out = []
            for c in cols:
                value = row[c]
                if c in json_cols:
                    value = json.dumps(value)
                elif c in naive_cols and value is not None:
                    value = value.replace(tzinfo=None)
                out.append(value)
            return tuple(out)

        for batch in _batches(conversations, messages, seed_value, assignees):
            async with conn.transaction():
                for name in ("contact", "conversation", "message"):
                    if batch[name]:
                        await conn.copy_records_to_table(name, records=[record(name, r) for r in batch[name]],
                                                         columns=plans[name][0], timeout=600)
        for name in ("contact", "conversation", "message"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                               f"(SELECT coalesce(max(id), 1) FROM {name}))")
        inserted = time.perf_counter() - started
        await conn.execute("VACUUM ANALYZE", timeout=1800)
    finally:
        await conn.close()
    return {"insert_seconds": round(inserted, 1), "total_seconds": round(time.perf_counter() - started, 1)}
