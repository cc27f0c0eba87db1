"""shopbase: one text-cleaning function per purpose, postal-code forms, delivery dedupe, row locks."""

from __future__ import annotations

from typing import Any

import pytest
from db_helpers import count

from ordersvc.models import Customer
from shopbase.dedupe import DuplicateDelivery, WebhookDelivery, claim_delivery
from shopbase.rows import locked
from shopbase.text import (
    clean_for_pdf,
    clean_line,
    clean_text,
    postal_code_for_storage,
    postal_code_match_key,
    storable,
)


def test_clean_line_is_one_safe_line() -> None:
    assert clean_line("  Ana\n\tMaría  ") == "Ana María"
    assert clean_line("evil\u202egnp.exe") == "evilgnp.exe"  # bidi override dropped
    assert clean_line("a\x00b\x07c") == "abc"
    assert clean_line("ab\ud800") == "ab\ufffd"
    assert clean_line("zero\u200dwidth") == "zero\u200dwidth"  # ZWJ kept
    assert clean_line("x" * 10, 4) == "xxxx"
    assert clean_line(None) == ""


def test_clean_text_keeps_lines_and_drops_controls() -> None:
    assert clean_text(" Hi\r\nthere\rfriend\x00\x1b ") == "Hi\nthere\nfriend"
    assert clean_text("tab\there") == "tab\there"
    assert clean_text("bad \ud800") == "bad \ufffd"
    assert clean_text("abcdef  ", 4) == "abcd"
    assert clean_text(None) == ""


def test_clean_for_pdf_drops_what_no_font_draws_and_ellipsizes() -> None:
    assert clean_for_pdf("a\ue000b\ud800c") == "abc"
    assert clean_for_pdf("x" * 20, 5) == "xxxx…"


def test_storable_cleans_every_string_of_a_document() -> None:
    doc = {"na\x00me": ["a\x00b", {"k": "\udc00"}], "n": 1, "f": None}
    assert storable(doc) == {"name": ["ab", {"k": "\ufffd"}], "n": 1, "f": None}


def test_postal_codes_have_a_stored_form_and_a_match_key() -> None:
    assert postal_code_for_storage(" k1a 0b1 ") == "K1A0B1"
    assert postal_code_for_storage("  ") is None
    assert postal_code_for_storage("1" * 40) == "1" * 16
    assert postal_code_match_key("k1a-0b1") == postal_code_match_key("K1A 0B1") == "K1A0B1"
    assert postal_code_match_key("１２３\u2013４５") == "12345"  # full-width digits, en dash


async def test_a_delivery_is_claimed_once(sessions: Any) -> None:
    async with sessions() as session:
        await claim_delivery(session, "shopify", "abc", "orders/create")
        await session.commit()
    async with sessions() as session:
        with pytest.raises(DuplicateDelivery):
            await claim_delivery(session, "shopify", "abc", "orders/create")
        await session.rollback()
    async with sessions() as session:
        await claim_delivery(session, "slack", "abc", "x" * 100)  # another source: its own id space
        await session.commit()
    assert await count(sessions, WebhookDelivery) == 2


async def test_locked_reads_the_stored_row(sessions: Any) -> None:
    async with sessions() as session:
        customer = Customer(email="a@example.test", first_name="Ana")
        session.add(customer)
        await session.commit()
        async with sessions() as other:  # someone else changes the row meanwhile
            row = await other.get(Customer, customer.id)
            row.first_name = "Anabel"
            await other.commit()
        assert customer.first_name == "Ana"  # the identity map's copy is stale
        fresh = await locked(session, Customer, customer.id)
        assert fresh is customer and fresh.first_name == "Anabel"
