"""The schema: migrations build exactly what the models describe, on both databases."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlmodel import select

from ordersvc.models import Customer, Order
from shopdesk.db import current_revision, ping


async def test_migrations_match_models(engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    from shopdesk.db import import_models

    import_models()

    def diff(connection):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(ctx, SQLModel.metadata)

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    # FTS helper tables are created by hand-written migrations and have no model
    changes = [c for c in changes if not _is_search_object(c) and not _is_rollup_pending(c)]
    assert changes == [], f"models and migrations differ; regenerate or add a migration: {changes}"


def _is_search_object(change: tuple) -> bool:  # type: ignore[type-arg]
    """Full-text search objects (SQLite FTS5 tables, PostgreSQL tsvector column and GIN index) come from
    0004, not the models."""
    kind, obj = change[0], change[-1]  # remove_column: (kind, schema, table, column)
    return (
        (kind == "remove_table" and obj.name.startswith(("message_fts", "contact_fts")))
        or (kind == "remove_index" and obj.name in ("ix_message_search_vector", "ix_contact_search_vector"))
        or (kind == "remove_column" and obj.name == "search_vector")  # PostgreSQL's generated tsvector
    )


def _is_rollup_pending(change: tuple) -> bool:  # type: ignore[type-arg]
    """PostgreSQL's analytics changes waiting for their commit (0025): written and emptied by
    triggers within one transaction, never by the application."""
    return change[0] == "remove_table" and change[-1].name in ("conversation_daily_pending", "response_daily_pending")


async def test_database_is_at_head_and_answers(engine) -> None:
    assert await ping(engine)
    assert (await current_revision(engine)) is not None


async def test_sqlite_pragmas(sqlite_url: str) -> None:
    from shopdesk.db import create_engine

    eng = create_engine(sqlite_url)
    try:
        async with eng.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
    finally:
        await eng.dispose()


async def test_money_and_big_ids_round_trip_exactly(sessions) -> None:
    big = "820982911946154508"  # beyond 2**53
    async with sessions() as session:
        customer = Customer(external_id=big, email="a@example.com")
        session.add(customer)
        await session.flush()
        session.add(
            Order(external_id=big, name="#1001", customer_id=customer.id, total_price=Decimal("404.95"),
                  subtotal_price=Decimal("0.10"), currency="EUR")
        )
        await session.commit()
    async with sessions() as session:
        order = (await session.exec(select(Order).where(Order.external_id == big))).one()
        assert order.total_price == Decimal("404.95")
        assert isinstance(order.total_price, Decimal)
        assert order.subtotal_price == Decimal("0.10")
        assert order.placed_at.tzinfo is not None


async def test_foreign_keys_are_enforced(sessions) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    async with sessions() as session:
        session.add(Order(external_id="x1", name="#1", customer_id=999999))
        with pytest.raises(IntegrityError):
            await session.commit()
