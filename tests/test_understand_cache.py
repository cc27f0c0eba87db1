"""The micro-batch's kept results (``bot.understand_many``): a kept result is exactly what the
uncached ``bot.nlu.analyze`` gives for that text and hint, in all six languages, and the cache
is keyed by the hint, bounded, skips long texts and is dropped when a model is replaced."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

import bot.understand_many as understand_many
from bot import nlu
from bot.nlu import analyze

HELDOUT = Path(__file__).resolve().parent / "nlu_heldout"
LANGS = ["en", "es", "ru", "vi", "zh-Hans", "zh-Hant"]
HINTS = [None, "en", "en-US", "es", "ru", "vi", "zh-Hans", "zh-Hant"]
ODD = ["", "   ", "🙂🙂", "{{ 7*7 }}", "ok", "Madrid", "10115", "#1001", "a@b.co", "你好", "2", "yes", "no",
       "спасибо", "gracias", "cảm ơn", "謝謝", "I WANT MY MONEY BACK NOW idiots"]


def texts() -> list[str]:
    out: list[str] = []
    for lang in LANGS:
        with (HELDOUT / f"{lang}.csv").open(encoding="utf-8", newline="") as fh:
            rows = [row["text"] for row in csv.DictReader(fh)]
        out += rows[::4][:25]
    return out + ODD


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    understand_many.clear_cache()
    yield
    understand_many.clear_cache()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many texts reached the models in each call."""
    seen: list[int] = []
    real = nlu.analyze_many

    def counting(batch: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("classifier") is not None:  # from the cache's module, not the reference analyze()
            seen.append(len(batch))
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(understand_many.nlu, "analyze_many", counting)
    return seen


def test_kept_results_equal_uncached_analyze_in_six_languages_and_every_hint(calls: list[int]) -> None:
    corpus = texts()
    assert {len(t) <= understand_many.CACHED_CHARS for t in corpus} == {True, False}
    items = [(text, hint) for i, text in enumerate(corpus) for hint in (HINTS[i % len(HINTS)], HINTS[(i + 3) % len(HINTS)])]
    expected = [analyze(text, hint_lang=hint) for text, hint in items]
    first = understand_many.analyze_many(items)
    second = understand_many.analyze_many(items)  # short ones from the cache now
    shuffled = understand_many.analyze_many(items[::-1])
    assert first == expected
    assert second == expected
    assert shuffled == expected[::-1]
    long_items = sum(len(text) > understand_many.CACHED_CHARS for text, _ in items)
    assert calls[0] == len(items)
    assert calls[1:] == [long_items, long_items]


def test_the_hint_is_part_of_the_key() -> None:
    # a short text whose language follows the hint
    en = understand_many.analyze_many([("ok", "en")])[0]
    ru = understand_many.analyze_many([("ok", "ru")])[0]
    assert en.language == analyze("ok", hint_lang="en").language
    assert ru.language == analyze("ok", hint_lang="ru").language
    assert understand_many.analyze_many([("ok", "en"), ("ok", "ru")]) == [en, ru]


def test_bounded_least_recently_used_first(monkeypatch: pytest.MonkeyPatch, calls: list[int]) -> None:
    monkeypatch.setattr(understand_many, "CACHE_SIZE", 3)
    understand_many.analyze_many([("hi", "en"), ("thanks", "en"), ("yes", "en")])
    understand_many.analyze_many([("hi", "en")])  # hit: now the most recent
    understand_many.analyze_many([("no", "en")])  # drops "thanks"
    assert calls == [3, 1]
    understand_many.analyze_many([("hi", "en"), ("yes", "en"), ("no", "en")])
    assert calls == [3, 1]
    assert understand_many.analyze_many([("thanks", "en")]) == [analyze("thanks", hint_lang="en")]
    assert calls == [3, 1, 1]


def test_a_replaced_model_drops_the_kept_results(monkeypatch: pytest.MonkeyPatch, calls: list[int]) -> None:
    understand_many.analyze_many([("hi", "en")])
    understand_many.analyze_many([("hi", "en")])
    assert calls == [1]
    tone = nlu.get_tone()

    class OtherTone:  # another object with the same model: results equal, but not kept across
        def __getattr__(self, name: str) -> Any:
            return getattr(tone, name)

    monkeypatch.setattr(understand_many.nlu, "get_tone", lambda: OtherTone())
    monkeypatch.setattr(nlu, "get_tone", lambda: OtherTone())
    assert understand_many.analyze_many([("hi", "en")]) == [analyze("hi", hint_lang="en", tone=tone)]
    assert calls == [1, 1]


def test_split_requests_kept_answers_equal_the_uncached_split(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.dialog import requests

    classifier = nlu.get_classifier()
    several = ["where is my order 1001 and can I return it?", "¿dónde está mi pedido? y quiero devolverlo",
               "где мой заказ? как вернуть товар?", "我的订单在哪里？我想退货", "đơn hàng của tôi đâu? tôi muốn trả hàng",
               "我的訂單在哪裡？我想退貨"]
    corpus = several + texts()
    expected = [requests._split(text, classifier) if len(text) <= requests._MAX_CHARS else [] for text in corpus]
    assert sum(len(e) >= 2 for e in expected) >= 3
    seen: list[str] = []
    real = requests._split
    monkeypatch.setattr(requests, "_split", lambda text, clf: seen.append(text) or real(text, clf))
    requests._split_kept.clear()
    for _ in range(2):
        assert [requests.split_requests(text, "en") for text in corpus] == expected
    assert seen == [t for t in dict.fromkeys(corpus) if t]  # each text split once
    answer = requests.split_requests(several[0], "en")
    answer.clear()  # a caller's list is its own
    assert requests.split_requests(several[0], "en") == expected[0]

    monkeypatch.setattr(requests, "get_classifier", lambda: classifier.__class__.__new__(classifier.__class__))
    seen.clear()
    requests.split_requests("hi", "en")  # another classifier: nothing kept is used
    assert seen == ["hi"] and list(requests._split_kept) == ["hi"]
