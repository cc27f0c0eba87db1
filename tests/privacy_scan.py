"""Search a whole database (every table, every column, cast to text) and a directory of files
for strings: what the erasure tests use to prove that nothing of a person is left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shopbase.search_text import index_text


def _table_names(sync_conn: Any) -> list[str]:
    return sa.inspect(sync_conn).get_table_names()


async def find_in_database(engine: Any, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every column of every table holding a needle (case-insensitive);
    SQLite's FTS5 shadow tables (blobs) included, PostgreSQL tsvectors cast to text."""
    wanted = _forms(needles)
    found: set[tuple[str, str, str]] = set()
    async with engine.connect() as conn:
        tables = await conn.run_sync(_table_names)
        if conn.dialect.name == "sqlite":
            rows = await conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            tables = sorted(set(tables) | {r[0] for r in rows})
        for table in tables:
            quoted = conn.dialect.identifier_preparer.quote(table)
            if conn.dialect.name == "sqlite":
                columns = [r[1] for r in (await conn.execute(sa.text(f"PRAGMA table_info({quoted})"))).all()]
            else:
                columns = [c["name"] for c in await conn.run_sync(lambda c, t=table: sa.inspect(c).get_columns(t))]
            if not columns:
                continue
            if conn.dialect.name == "postgresql":
                select = ", ".join(f"CAST({conn.dialect.identifier_preparer.quote(c)} AS TEXT)" for c in columns)
            else:
                select = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
            for row in (await conn.execute(sa.text(f"SELECT {select} FROM {quoted}"))).all():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = value.decode("utf-8", "ignore") if isinstance(value, bytes) else str(value)
                    text = text.lower()
                    for needle in wanted:
                        if needle in text:
                            found.add((table, column, needle))
    return sorted(found)


def _forms(needles: list[str]) -> list[str]:
    """Each needle lowercased, as JSON escapes it (SQLite's JSON text) and as the search index
    folds it (no accents, one space between words)."""
    forms: set[str] = set()
    for needle in needles:
        lowered = needle.lower()
        forms.update({lowered, json.dumps(lowered)[1:-1], index_text(needle)})
    return sorted(f for f in forms if f)


def find_in_files(directory: Path, needles: list[str]) -> list[tuple[str, str]]:
    wanted = _forms(needles)
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "ignore").lower()
            found.extend((str(path.relative_to(directory)), n) for n in wanted if n in text)
    return found
