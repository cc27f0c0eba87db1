"""Abuse of the order lookup, through the real pipeline on SQLite and PostgreSQL.

Someone who guesses order numbers and emails learns nothing and gets few tries: at most
``MAX_FAILURES`` (5) proofs are even evaluated per conversation and per order in a window,
whether the 1,000 guesses come from one customer or from a thousand; an order that exists and
one that does not get the same answers, and take about the same time.
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import pytest
from bot_chat import Chat, days_ago
from ordersvc_builders import make_customer, make_order, make_shipment

import bot.dialog.verify
from bot.dialog.verify import MAX_FAILURES
from inbox.models import Owner

GUESSES = 1000


@pytest.fixture
def evaluated(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order references whose proof was actually checked (``verify_customer`` calls)."""
    calls: list[str] = []
    real = bot.dialog.verify.verify_customer

    async def counting(session: Any, order_ref: str, proof: str) -> Any:
        calls.append(order_ref)
        return await real(session, order_ref, proof)

    monkeypatch.setattr(bot.dialog.verify, "verify_customer", counting)
    return calls


async def _orders(sessions: Any, names: list[str]) -> None:
    async with sessions() as session:
        for i, name in enumerate(names):
            customer = await make_customer(session, email=f"owner{i}@example.com")
            order, rows = await make_order(session, [{"sku": "TEE", "title": "Linen tee", "quantity": 1,
                                                      "unit_price": "25.00"}], name=name, customer=customer,
                                           email=f"owner{i}@example.com")
            await make_shipment(session, order, lines=[(ln, ln.quantity) for ln in rows],
                                shipped_at=days_ago(2))
        await session.commit()


def _same_shape(text: str) -> str:
    return re.sub(r"#?\d{3,}", "#N", text)


async def test_a_thousand_guesses_from_one_customer_evaluate_five(sessions: Any, settings: Any,
                                                                   evaluated: list[str]) -> None:
    await _orders(sessions, ["#1001"])
    chat = Chat(sessions, settings, user="guesser")
    await chat.send("Track my order", postback="intent:track_order")
    answers = []
    for i in range(GUESSES):
        await chat.send(f"#1001 guess{i}@example.com")
        answers.append(chat.text)
    assert len(evaluated) <= MAX_FAILURES
    assert "For your security" in "\n".join(answers[:MAX_FAILURES])
    assert (await chat.conversation()).owner == Owner.agent  # a person takes over
    assert "Linen tee" not in await chat.all_bot_text()


async def test_a_thousand_guessers_against_one_order_evaluate_five(sessions: Any, settings: Any,
                                                                     evaluated: list[str]) -> None:
    """Many customers, each one guess at the same existing order, and as many at a missing
    one: the answers to both are identical, and each order's proofs are checked at most 5 times."""
    await _orders(sessions, ["#1001"])
    answers: dict[str, list[str]] = {"#1001": [], "#4040": []}
    for i in range(GUESSES // 2):
        for ref in answers:
            chat = Chat(sessions, settings, user=f"guesser-{ref[1:]}-{i}")
            await chat.send(f"where is my order {ref}? my email is guess{i}@example.com")
            answers[ref].append(_same_shape(chat.text))
    assert evaluated.count("#1001") <= MAX_FAILURES
    assert evaluated.count("#4040") <= MAX_FAILURES
    assert answers["#1001"] == answers["#4040"]
    assert any("For your security" in a for a in answers["#1001"])


async def test_existing_and_missing_orders_take_the_same_time(sessions: Any, settings: Any) -> None:
    """Wrong proof for an order that exists against any proof for one that does not: the
    medians of interleaved tries differ by less than the issue's 50 ms (each order is tried
    once, so no lockout interferes)."""
    tries = 15
    await _orders(sessions, [f"#{2000 + i}" for i in range(tries)])
    existing: list[float] = []
    missing: list[float] = []
    for i in range(tries):
        for ref, bucket in ((f"#{2000 + i}", existing), (f"#{7000 + i}", missing)):
            chat = Chat(sessions, settings, user=f"timer-{ref[1:]}")
            await chat.send("Track my order", postback="intent:track_order")
            started = time.perf_counter()
            await chat.send(f"{ref} wrong{i}@example.com")
            bucket.append(time.perf_counter() - started)
            assert "couldn't find an order matching" in chat.text
    difference = abs(statistics.median(existing) - statistics.median(missing))
    assert difference < 0.050, f"existing {statistics.median(existing):.4f}s, missing {statistics.median(missing):.4f}s"
