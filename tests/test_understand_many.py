"""The micro-batch's vectorized understanding (``bot.understand_many.analyze_many``, used by
``Pipeline.process_many``) gives exactly what one-at-a-time ``analyze`` gives, and a batch of
turns answers exactly as the same messages answered one at a time."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.nlu import analyze
from bot.understand_many import analyze_many
from inbox.actions.message_record import message_record
from inbox.messages import InboundMessage
from inbox.models import Channel, Conversation, Direction, Message

HELDOUT = Path(__file__).resolve().parent / "nlu_heldout.csv"

ODD_TEXTS = ["", "   ", "🙂🙂", "{{ 7*7 }}", "x" * 10_000, "where is my order #1001?", "ok", "Madrid",
             "I WANT MY MONEY BACK NOW you idiots", "10115", "你好", "asdkjh qwe zzz", "hi, I want to return my shoes"]


def corpus() -> list[str]:
    with HELDOUT.open(encoding="utf-8") as f:
        rows = [row["text"] for row in csv.DictReader(f)]
    return rows[::3][:200] + ODD_TEXTS


def test_analyze_many_is_analyze_for_every_text_and_hint() -> None:
    hints = [None, "en", "en-US", "ru", "es", "zh-Hant", "vi"]
    items = [(text, hints[i % len(hints)]) for i, text in enumerate(corpus())]
    assert analyze_many(items) == [analyze(text, hint_lang=hint) for text, hint in items]
    assert analyze_many([]) == []


BATCH_TEXTS = [
    ("en", "hi"), ("en", "how long does shipping take?"), ("es", "¿cuál es la política de devoluciones?"),
    ("ru", "спасибо"), ("vi", "giao hàng mất bao lâu?"), ("zh-Hans", "退货政策是什么？"),
    (None, "what is your return policy?"), ("en", "where is my order #1001?"), (None, "gracias"),
    ("en", "I WANT MY MONEY BACK NOW you idiots"),
]


async def _record_all(sessions: Any, prefix: str) -> list[int]:
    ids = []
    for i, (lang, text) in enumerate(BATCH_TEXTS):
        result = await message_record(sessions, InboundMessage(Channel.telegram, f"{prefix}-{i}", f"{prefix}{i}", text,
                                                               language_hint=lang))
        ids.append(result.message_id)
    return ids


async def _outcome(sessions: Any, message_id: int) -> tuple[Any, ...]:
    async with sessions() as s:
        message = await s.get(Message, message_id)
        conversation = await s.get(Conversation, message.conversation_id)
        replies = (await s.exec(select(Message.text).where(col(Message.conversation_id) == conversation.id,
                                                           col(Message.direction) == Direction.outbound)
                                .order_by(col(Message.id)))).all()
        return (message.processed, message.intent, message.language, conversation.language,
                conversation.last_intent, conversation.owner, conversation.bot_state, list(replies))


@pytest.fixture
def pipeline(sessions: Any, settings: Any) -> Any:
    from bot.pipeline import Pipeline
    from inbox.events import EventBus

    return Pipeline(sessions=sessions, bus=EventBus(), settings=settings)


async def test_a_batch_answers_as_one_at_a_time(sessions: Any, pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.pipeline as pipeline_module

    single = await _record_all(sessions, "one")
    for message_id in single:
        await pipeline.process(message_id)

    batched = await _record_all(sessions, "many")
    calls: list[int] = []

    def counted(items: Any) -> Any:
        calls.append(len(items))
        return analyze_many(items)

    def unexpected(*_: Any, **__: Any) -> Any:
        raise AssertionError("a batch understands its texts in one vectorized call")

    monkeypatch.setattr(pipeline_module, "analyze_many", counted)
    monkeypatch.setattr(pipeline_module, "analyze", unexpected)
    stats: list[Any] = []
    pipeline.on_turn = stats.append
    assert await pipeline.process_many(batched) == dict.fromkeys(batched)
    assert calls == [len(BATCH_TEXTS)]  # one call, every text of the batch
    assert len(stats) == len(BATCH_TEXTS) and all(s.understanding_seconds is not None for s in stats)
    for one, many in zip(single, batched, strict=True):
        outcome = await _outcome(sessions, many)
        assert outcome == await _outcome(sessions, one)
        assert outcome[0] is True and outcome[-1]  # processed, with its replies
