"""PostgreSQL: a micro-batch reads its turns' rows with the ids as ONE array parameter, so the
statement's text is the same whatever the batch's size (prepared once per connection, not parsed
and planned again for every size as an expanding IN list was; issue 16, helper pgstmts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from inbox.actions.message_record import message_record
from inbox.events import EventBus
from inbox.messages import InboundMessage
from inbox.models import Channel
from shopdesk.db import create_engine, session_maker
from shopdesk.settings import load_settings


async def test_batches_of_any_size_read_their_rows_with_one_statement_text(pg_url: str, tmp_path: Any) -> None:
    from bot.pipeline import Pipeline

    engine = create_engine(pg_url)
    try:
        sessions = session_maker(engine)
        bus = EventBus()
        bus.bind(sessions)
        settings = load_settings(database_url=pg_url, secret_key="test-secret-key-0123456789abcdef0123456789",
                                 data_dir=tmp_path / "data", shopify_webhook_secret="shpss_test_secret")
        pipeline = Pipeline(sessions=sessions, bus=bus, settings=settings)
        ids = [(await message_record(sessions, InboundMessage(Channel.telegram, f"b{i}", f"c{i}", "hi"))).message_id
               for i in range(5)]
        reads: list[str] = []

        def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            if sql.lstrip().startswith("SELECT message.id"):
                reads.append(" ".join(sql.split()))

        event.listen(engine.sync_engine, "before_cursor_execute", statement)
        assert await pipeline.process_many(ids[:2]) == dict.fromkeys(ids[:2])
        assert await pipeline.process_many(ids[2:]) == dict.fromkeys(ids[2:])
        assert len(reads) == 2 and reads[0] == reads[1] and "ANY" in reads[0]
        async with sessions() as db:
            from sqlmodel import col, select

            from inbox.models import Message
            processed = (await db.exec(select(Message.processed).where(col(Message.id).in_(ids)))).all()
        assert processed == [True] * 5
    finally:
        await engine.dispose()
