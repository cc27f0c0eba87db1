"""Batch understanding (:func:`bot.nlu.analyze_many`, ``predict_many``, ``hostility_many``) gives
exactly what one message at a time gives, and the shortcuts of the fast path (shared
normalisation, cached n-gram columns, skipped regex passes, English/Spanish without lingua)
change no answer. Failures report numbers, never held-out sentences."""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bot.nlu as nlu
from bot.nlu import entities, intents, language, linear
from bot.nlu.intents import IntentClassifier
from bot.nlu.tone import ToneClassifier

TESTS = Path(__file__).parent
HINTS = [None, "en", "es-MX", "ru", "vi", "zh-TW", "zh-CN", "fr"]
ODD = ["", "   ", "\t\n", "ok", "👍", "🤬🤬", "1001", "#1001", "hola", "x" * 5000, "{{ order.id }}", "order1001 please",
       "Где мой заказ №1001?", "đơn hàng 1001 của tôi đâu", "我的订单1001在哪里", "我的訂單在哪裡", "gde moy zakaz",
       "don hang cua toi dau", "a  b\t\tc", "where   is\u00a0my\u3000order", "mail me at Ann@Example.com",
       "see https://example.com/x?y=1 and www.shop.com", "ＳＷ１Ａ １ＡＡ", "\ue001 \ue003", "ﬁle ½ ² Ⅷ",
       "the pedido is not here yet amigo", "where is my order " * 80]


def _texts() -> list[str]:
    texts: list[str] = []
    for path in [TESTS / "nlu_heldout.csv", *sorted((TESTS / "nlu_heldout").glob("*.csv")), TESTS / "tone_heldout.csv"]:
        with path.open(encoding="utf-8", newline="") as fh:
            texts += [row["text"] for row in csv.DictReader(fh)]
    return texts + ODD


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache = tmp_path_factory.mktemp("nlu-batch-cache")
    clf, tone = IntentClassifier.load_or_train(cache_dir=cache), ToneClassifier.load_or_train(cache_dir=cache)
    nlu.set_classifier(clf)
    nlu.set_tone(tone)
    yield clf, tone
    nlu.set_classifier(None)
    nlu.set_tone(None)


def test_analyze_many_equals_one_at_a_time(models: Any) -> None:
    texts = _texts()
    hints = [HINTS[i % len(HINTS)] for i in range(len(texts))]
    alone = [nlu.analyze(t, h) for t, h in zip(texts, hints)]
    together = nlu.analyze_many(texts, hints)
    assert len(together) == len(texts)
    mismatched = sum(a != b for a, b in zip(alone, together))
    assert mismatched == 0, f"{mismatched} of {len(texts)} differ"
    # in smaller batches, in another order: still the same answers
    order = list(range(len(texts)))[::-3] + [i for i in range(len(texts)) if i % 3 != (len(texts) - 1) % 3]
    for start in range(0, len(order), 7):
        chunk = order[start:start + 7]
        assert nlu.analyze_many([texts[i] for i in chunk], [hints[i] for i in chunk]) == [alone[i] for i in chunk]


def test_analyze_many_without_hints_and_odd_input(models: Any) -> None:
    assert nlu.analyze_many([]) == []
    results = nlu.analyze_many(["where is my order #1001?", None, 12])  # type: ignore[list-item]
    assert [r.intent for r in results][0] == "track_order"
    assert results[0] == nlu.analyze("where is my order #1001?")
    assert results[1].text == "" and results[1].intent == "unknown" and results[1].hostility == 0.0
    assert results[2].text == "12"
    with pytest.raises(ValueError):
        nlu.analyze_many(["a", "b"], ["en"])


def test_predict_many_and_hostility_many_equal_single_calls(models: Any) -> None:
    clf, tone = models
    texts = _texts()
    assert clf.predict_many(texts) == [clf.predict(t) for t in texts]
    assert tone.hostility_many(texts) == [tone.hostility(t) for t in texts]
    # the batch is the same model: the held-out intents come out as before
    heldout = [r for r in csv.DictReader((TESTS / "nlu_heldout.csv").open(encoding="utf-8"))]
    correct = sum(p.intent == r["intent"] for p, r in zip(clf.predict_many([r["text"] for r in heldout]), heldout))
    assert correct / len(heldout) >= 0.94


def test_the_word_cache_is_bounded_and_changes_nothing(models: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clf, _ = models
    texts = _texts()[:200]
    expected = clf.predict_many(texts)
    views = [v for v in clf._linear.views if isinstance(v, linear.TfidfView) and v.analyzer == "char_wb"]
    assert views
    monkeypatch.setattr(linear, "WORD_CACHE_SIZE", 50)
    for view in views:
        view._word_columns.clear()
    assert clf.predict_many(texts) == expected  # filled and evicted on the way
    assert all(0 < len(v._word_columns) <= 50 for v in views)
    assert clf.predict_many(texts) == expected  # read from the cache


def _reference_normalize(text: str) -> str:
    """normalize_text with every substitution applied unconditionally."""
    text = unicodedata.normalize("NFKC", text[:intents.MAX_CLASSIFY_CHARS]).lower()
    text = intents._EMAIL_RE.sub(f" {intents._PH_EMAIL} ", text)
    text = intents._URL_RE.sub(f" {intents._PH_URL} ", text)
    text = intents._GLUED_WORD_ID_RE.sub(r"\1 \2", text)
    text = intents._ID_RE.sub(intents._id_placeholder, text)
    return re.sub(r"\s+", " ", text).strip()


_PIECES = st.sampled_from(["a", "Z", "o", "O", " ", "  ", "\t", "\u00a0", "\u3000", "@", ".", "-", "#", "№", "/", ":",
                           "http://", "WWW.", "1", "0", "42", "１２３", "ｏ", "é", "đ", "заказ", "订单", "ﬁ", "½", "²",
                           "order", "zip", "SW1A 1AA", "+1 (555) ", "x@y.io", "🤬"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=20).map("".join))
def test_normalize_text_skips_only_substitutions_that_cannot_match(text: str) -> None:
    assert intents.normalize_text(text) == _reference_normalize(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=20).map("".join))
def test_entities_need_a_digit_or_an_at_sign(text: str) -> None:
    folded = entities._fold(text)
    found = [c for finder in entities._FINDERS for c in finder(folded)]
    if "@" not in folded and not re.search("[0-9]", folded):
        assert found == [] and entities.extract_entities(text) == []


def test_english_and_spanish_without_lingua_agree_with_lingua(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the word model decides English or Spanish, lingua gives the same answer on the
    held-out sets, whatever the hint (numbers only)."""
    texts = _texts()
    real = language._get_detector
    calls: list[str] = []

    class Spy:
        def compute_language_confidence_values(self, sample: str) -> Any:
            calls.append(sample)
            return real().compute_language_confidence_values(sample)

    decided = disagree = 0
    for i, text in enumerate(texts):
        hint = HINTS[i % len(HINTS)]
        calls.clear()
        monkeypatch.setattr(language, "_FAST_EN_ES", True)
        monkeypatch.setattr(language, "_get_detector", Spy)
        fast = language.detect_language(text, hint)
        monkeypatch.setattr(language, "_get_detector", real)
        if calls:
            continue
        monkeypatch.setattr(language, "_FAST_EN_ES", False)
        slow = language.detect_language(text, hint)
        if fast in ("en", "es") and fast != slow:
            disagree += 1
        decided += fast in ("en", "es")
    assert decided >= 100  # the shortcut is taken (most English and Spanish messages)
    assert disagree == 0, f"{disagree} of {decided} decisions differ from lingua"


def test_warm_up_loads_lingua_which_english_no_longer_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's warm-up sentence is English, decided without lingua: ``warm_up`` loads
    lingua's models before the first customer instead."""
    monkeypatch.setattr(language, "_detector", None)
    assert language.detect_language("could you please tell me the status of my parcel") == "en"
    assert language._detector is None
    language.warm_up()
    assert language._detector is not None
