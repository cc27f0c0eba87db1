"""Tests for bot.nlu: language detection, intents, entities, analyze() and the batch tools.

One classifier trained on all examples (session fixture) and one trained on a
deterministic 80% split are shared by every test; cache tests train small models on a
copy of the English examples only.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import string
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bot.nlu as nlu
from bot.nlu import NLUResult, analyze, detect_language, extract_entities, normalize_language
from bot.nlu import entities as entities_mod
from bot.nlu.entities import Entity
from bot.nlu.intents import (
    CLARIFY_BELOW,
    CONFIDENT,
    DATA_DIR,
    INTENTS,
    IntentClassifier,
    load_examples,
    normalize_text,
    split_examples,
)
from bot.nlu.language import SUPPORTED_LANGUAGES, _chinese_sets
from bot.nlu.tools import EvalReport, classify_stream, evaluate_csv, format_report

HELDOUT_CSV = Path(__file__).with_name("nlu_heldout.csv")
HELDOUT_SPLIT_BAR = 0.82
HELDOUT_CSV_BAR = 0.90


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> IntentClassifier:
    clf = IntentClassifier.load_or_train(cache_dir=tmp_path_factory.mktemp("nlu-cache"))
    nlu.set_classifier(clf)
    yield clf
    nlu.set_classifier(None)


@pytest.fixture(scope="session")
def examples():
    return load_examples()


@pytest.fixture(scope="session")
def split_model(examples):
    train, test = split_examples(examples, test_fraction=0.2, seed=0)
    return IntentClassifier.train(train), test


@pytest.fixture()
def en_data_dir(tmp_path: Path) -> Path:
    """A small data dir: the first 8 English examples of every intent (trains in a blink)."""
    import yaml

    per_intent: dict[str, list[str]] = defaultdict(list)
    for e in load_examples(DATA_DIR):
        if e.language == "en" and len(per_intent[e.intent]) < 8:
            per_intent[e.intent].append(e.text)
    data = tmp_path / "data"
    data.mkdir()
    (data / "en.yaml").write_text(yaml.safe_dump(dict(per_intent), allow_unicode=True), encoding="utf-8")
    return data


def _loose(text: str) -> str:
    """Normalised text without punctuation or spaces: 'Hi there!' == 'hi there'."""
    return "".join(ch for ch in normalize_text(text) if ch.isalnum() or "\ue000" <= ch <= "\uf8ff")


def _heldout_rows() -> list[dict[str, str]]:
    with HELDOUT_CSV.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi, where is my order? It should have arrived last week", "en"),
        ("the shoes don't fit, how do I send them back", "en"),
        ("Hola, ¿dónde está mi pedido? Ya pasaron dos semanas", "es"),
        ("quiero devolver las zapatillas porque no me quedan", "es"),
        ("Здравствуйте, где мой заказ? Жду уже две недели", "ru"),
        ("да", "ru"),
        ("Xin chào, đơn hàng của tôi đâu rồi?", "vi"),
        ("cảm ơn", "vi"),
        ("cho em gặp admin", "vi"),
        ("你好，我的订单什么时候发货？", "zh-Hans"),
        ("我想退货，这个尺码不合适", "zh-Hans"),
        ("你好，我的訂單什麼時候出貨？", "zh-Hant"),
        ("我想退貨，這個尺寸不合適", "zh-Hant"),
        ("订单＃１００１到哪了", "zh-Hans"),
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", ["ok", "1001", "#1001", "👍", "", "   ", "🙂🙂🙂", "{{ 7*7 }}", "#1001 👍"])
@pytest.mark.parametrize(("hint", "expected"), [("es-MX", "es"), ("zh-TW", "zh-Hant"), ("ru", "ru"), (None, "en"), ("pt-br", "en")])
def test_short_or_letterless_text_uses_the_hint(text: str, hint: str | None, expected: str) -> None:
    assert detect_language(text, hint) == expected


def test_chinese_without_distinguishing_characters_follows_a_chinese_hint() -> None:
    assert detect_language("你好", "zh-HK") == "zh-Hant"
    assert detect_language("你好", "zh-CN") == "zh-Hans"
    assert detect_language("你好", "en") == "zh-Hans"
    assert detect_language("你好") == "zh-Hans"


def test_confident_detection_beats_the_hint_and_unsure_detection_does_not() -> None:
    assert detect_language("where is my order, it is very late", "es") == "en"
    assert detect_language("mi pedido no ha llegado todavía", "en") == "es"
    # unaccented Vietnamese is hard to tell from English/Spanish: the hint decides
    assert detect_language("cam on shop", "vi") == "vi"
    assert detect_language("hello", "vi") == "vi"
    assert detect_language("gracias", "en") == "es"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en", "en"), ("EN-us", "en"), ("es-MX", "es"), ("es_419", "es"), ("ru", "ru"), ("vi", "vi"),
        ("zh", "zh-Hans"), ("zh-CN", "zh-Hans"), ("zh-hans", "zh-Hans"), ("zh-SG", "zh-Hans"),
        ("zh-TW", "zh-Hant"), ("zh-HK", "zh-Hant"), ("zh-Hant", "zh-Hant"), ("zh_hant_tw", "zh-Hant"),
        ("zh-Hans-HK", "zh-Hans"), ("pt-br", None), ("uk", None), ("", None), (None, None), ("-", None),
    ],
)
def test_normalize_language(code: str | None, expected: str | None) -> None:
    assert normalize_language(code) == expected


def test_detect_language_always_returns_a_supported_code() -> None:
    for text in ["hola where is my order", "заказ #1001 where", "订单 where is it", "x" * 10_000, "\x00\ufeff", "🙂 a"]:
        assert detect_language(text) in SUPPORTED_LANGUAGES
        assert detect_language(text, "zh-TW") in SUPPORTED_LANGUAGES


# --- training data ----------------------------------------------------------------------


def test_every_language_file_has_every_intent_with_enough_examples(examples) -> None:
    counts = Counter((e.language, e.intent) for e in examples)
    assert {e.language for e in examples} == set(SUPPORTED_LANGUAGES)
    assert len(INTENTS) == 15 and "unknown" in INTENTS
    for lang in SUPPORTED_LANGUAGES:
        for intent in INTENTS:
            minimum = 40 if lang == "en" else 25
            assert counts[(lang, intent)] >= minimum, (lang, intent, counts[(lang, intent)])


def test_no_utterance_is_labelled_with_two_intents(examples) -> None:
    labels: dict[str, set[str]] = defaultdict(set)
    for e in examples:
        labels[normalize_text(e.text)].add(e.intent)
    assert {t: i for t, i in labels.items() if len(i) > 1} == {}


def test_chinese_files_use_their_own_script(examples) -> None:
    trad_only, simp_only = _chinese_sets()
    for e in examples:
        if e.language == "zh-Hant":
            assert not set(e.text) & simp_only, e.text
        elif e.language == "zh-Hans":
            assert not set(e.text) & trad_only, e.text


def test_unknown_intent_name_in_yaml_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("track_order: |\n  where is it\nrefnud: |\n  money\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown intent 'refnud'"):
        load_examples(tmp_path)


# --- intent classification --------------------------------------------------------------


def test_heldout_phrasings_are_not_in_the_training_data(examples) -> None:
    trained = {_loose(e.text) for e in examples}
    rows = _heldout_rows()
    assert len(rows) >= 2 * len(INTENTS) * len(SUPPORTED_LANGUAGES)
    copied = [r["text"] for r in rows if _loose(r["text"]) in trained]
    assert copied == []


def test_heldout_phrasings_per_intent_and_language(classifier) -> None:
    rows = _heldout_rows()
    predictions = classifier.predict_many([r["text"] for r in rows])
    right: dict[tuple[str, str], int] = Counter()
    seen: set[tuple[str, str]] = set()
    for row, pred in zip(rows, predictions):
        key = (row["intent"], row["lang"])
        seen.add(key)
        right[key] += pred.intent == row["intent"]
    assert seen == {(i, lang) for i in INTENTS for lang in SUPPORTED_LANGUAGES}
    weak = {key: right[key] for key in seen if right[key] < 2}
    assert weak == {}, f"cells with fewer than 2 of 4 right: {weak}"


def test_heldout_csv_accuracy(classifier) -> None:
    report = evaluate_csv(HELDOUT_CSV, classifier=classifier)
    print("\n" + format_report(report))
    assert report.accuracy >= HELDOUT_CSV_BAR
    assert set(report.per_language) == set(SUPPORTED_LANGUAGES)


def test_heldout_split_accuracy(split_model) -> None:
    """Train on a deterministic stratified 80% of the examples, test on the other 20%."""
    model, test = split_model
    predictions = model.predict_many([e.text for e in test])
    hits: dict[str, list[bool]] = defaultdict(list)
    for example, pred in zip(test, predictions):
        hits[example.intent].append(pred.intent == example.intent)
    accuracy = sum(sum(v) for v in hits.values()) / len(test)
    worst = sorted((sum(v) / len(v), k) for k, v in hits.items())[:3]
    print(f"\nheld-out split: accuracy {accuracy:.3f} on {len(test)}; worst {worst}")
    assert accuracy >= HELDOUT_SPLIT_BAR


OUT_OF_SCOPE = [
    "what's the best pizza topping", "how many legs does a spider have", "explain quantum physics to me",
    "who painted the mona lisa", "is it safe to swim after eating", "what's a black hole",
    "how do i change a flat tire", "do you sell iphone cases", "lkjhgfdsa poiuyt",
    "recomiéndame un libro de terror", "cuál es el río más largo del mundo", "qué significa la palabra efímero",
    "dónde queda japón", "a ver si llueve el finde",
    "кто написал войну и мир", "как научиться играть на гитаре", "какой фильм посмотреть вечером",
    "почему небо голубое",
    "con chó của tôi bị ốm", "ai là người giàu nhất việt nam", "hôm nay ăn gì ngon", "bóng đá tối nay ai đá",
    "长城有多长", "明天股市会涨吗", "怎么做红烧肉",
    "推薦一首好聽的歌", "台北哪裡有好吃的牛肉麵", "今年的颱風多嗎",
    "mmmmmm hmmmm", "qwpoeiru zmxncbv", "{{ 7*7 }}", "what's the square root of 144",
]


def test_out_of_scope_messages_come_out_unknown(classifier) -> None:
    predictions = classifier.predict_many(OUT_OF_SCOPE)
    missed = [(t, p.intent, round(p.confidence, 2)) for t, p in zip(OUT_OF_SCOPE, predictions) if p.intent != "unknown"]
    recall = 1 - len(missed) / len(OUT_OF_SCOPE)
    print(f"\nout-of-scope recall {recall:.2f}; missed {missed}")
    assert recall >= 0.75
    # whatever is missed is at least not a confident answer
    assert all(conf < 0.8 for _, _, conf in missed)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("it's been 2 weeks and nothing arrived", "track_order"),
        ("the shoes don't fit", "start_return"),
        ("i was charged twice", "payment_issue"),
        ("where is my order #1001?", "track_order"),
        ("WHERE IS MY ORDER 113-1234567-1234567", "track_order"),
        ("i need an invoice for order 1001 please, my email is a.b@example.com", "invoice"),
    ],
)
def test_phrases_named_in_the_spec(classifier, text: str, intent: str) -> None:
    """Sanity on phrases the spec names (some are training examples; the held-out tests
    above are the real generalisation check)."""
    assert classifier.predict(text).intent == intent


def test_prediction_shape_and_thresholds(classifier) -> None:
    assert 0 < CLARIFY_BELOW < CONFIDENT < 1
    pred = classifier.predict("where is my order")
    assert pred.intent == "track_order" and pred.confidence >= CONFIDENT and not pred.needs_clarification
    names = [name for name, _ in pred.ranking]
    assert sorted(names) == sorted(INTENTS)
    probs = [p for _, p in pred.ranking]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-3
    assert pred.confidence == pred.ranking[0][1]


@pytest.mark.parametrize("text", ["", "   ", "👍", "🙂🙂", "???", "...", "\x00"])
def test_texts_without_words_are_unknown(classifier, text: str) -> None:
    pred = classifier.predict(text)
    assert pred.intent == "unknown"


def test_order_numbers_and_emails_do_not_drive_the_intent(classifier) -> None:
    a = classifier.predict("cancel order #1001")
    b = classifier.predict("cancel order 98765432")
    c = classifier.predict("cancel order 113-1234567-1234567")
    assert a.intent == b.intent == c.intent == "cancel_order"
    assert normalize_text("mail me: John@Example.com") == normalize_text("mail me: x@y.org")


def test_long_text_is_truncated_not_rejected(classifier) -> None:
    text = "where is my order #1001? " * 400  # 10,000 characters
    assert classifier.predict(text).intent == "track_order"


# --- training determinism and the cache -------------------------------------------------


def test_training_is_deterministic(en_data_dir: Path) -> None:
    examples = load_examples(en_data_dir)
    texts = ["where is my order", "refund pls", "the box arrived crushed", "hello?", "what is love", "订单"]
    first = IntentClassifier.train(examples).predict_many(texts)
    second = IntentClassifier.train(list(reversed(examples))).predict_many(texts)
    assert [p.ranking for p in first] == [p.ranking for p in second]


def test_cache_is_reused_rebuilt_on_change_and_corruption(en_data_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = IntentClassifier.load_or_train(cache_dir=cache, data_dir=en_data_dir)
    assert first.trained_now
    files = sorted(cache.glob("*.npz"))
    assert len(files) == 1
    import sklearn

    assert re.fullmatch(rf"intents-sklearn{re.escape(sklearn.__version__)}-[0-9a-f]{{64}}\.npz", files[0].name)
    assert not list(cache.glob(".intents-*"))  # no temp files left behind

    again = IntentClassifier.load_or_train(cache_dir=cache, data_dir=en_data_dir)
    assert not again.trained_now
    assert again.predict("where is my parcel").ranking == first.predict("where is my parcel").ranking

    # Changing the examples changes the key: a new model is trained and cached.
    path = en_data_dir / "en.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# a comment changes the bytes too\n", encoding="utf-8")
    changed = IntentClassifier.load_or_train(cache_dir=cache, data_dir=en_data_dir)
    assert changed.trained_now and changed.fingerprint != first.fingerprint
    assert len(list(cache.glob("*.npz"))) == 2

    # A corrupt cache file is ignored and replaced.
    current = cache / next(p.name for p in cache.glob("*.npz") if changed.fingerprint in p.name)
    current.write_bytes(b"not a pickle at all")
    repaired = IntentClassifier.load_or_train(cache_dir=cache, data_dir=en_data_dir)
    assert repaired.trained_now
    assert not IntentClassifier.load_or_train(cache_dir=cache, data_dir=en_data_dir).trained_now


def test_unwritable_cache_still_gives_a_classifier(en_data_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    clf = IntentClassifier.load_or_train(cache_dir=blocker / "sub", data_dir=en_data_dir)
    assert clf.predict("where is my order").intent == "track_order"


def test_default_cache_dir_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot.nlu.intents import default_cache_dir

    monkeypatch.setenv("SHOPDESK_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "nlu"
    monkeypatch.delenv("SHOPDESK_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "shopdesk" / "nlu"


# --- entities ---------------------------------------------------------------------------


def _spans(text: str) -> list[tuple[str, str, str]]:
    return [(e.type, e.value, text[e.start : e.end]) for e in extract_entities(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is my order #1001?", [("order_number", "#1001", "#1001")]),
        ("1001", [("order_number", "#1001", "1001")]),
        ("order 1001 status", [("order_number", "#1001", "1001")]),
        ("order number: 20045", [("order_number", "#20045", "20045")]),
        ("заказ №1001 где", [("order_number", "#1001", "№1001")]),
        ("номер заказа 4521", [("order_number", "#4521", "4521")]),
        ("mi pedido 5566 no llega", [("order_number", "#5566", "5566")]),
        ("đơn hàng 7788 đâu rồi", [("order_number", "#7788", "7788")]),
        ("订单1001到哪了", [("order_number", "#1001", "1001")]),
        ("我的订单号：１００１", [("order_number", "#1001", "１００１")]),
        ("order #US-1001 please", [("order_number", "#US-1001", "#US-1001")]),
        ("amazon 113-1234567-1234567 pls", [("order_number", "113-1234567-1234567", "113-1234567-1234567")]),
        ("ebay 12-12345-12345", [("order_number", "12-12345-12345", "12-12345-12345")]),
        ("mail me at John.Doe@Example.COM.", [("email", "John.Doe@example.com", "John.Doe@Example.COM")]),
        ("邮箱abc@qq.com谢谢", [("email", "abc@qq.com", "abc@qq.com")]),
        ("call +1 (555) 123-4567", [("phone", "+15551234567", "+1 (555) 123-4567")]),
        ("мой телефон 8 (912) 345-67-89", [("phone", "89123456789", "8 (912) 345-67-89")]),
        ("sdt 0912 345 678", [("phone", "0912345678", "0912 345 678")]),
        ("电话13812345678", [("phone", "13812345678", "13812345678")]),
        ("+44 20 7946 0958", [("phone", "+442079460958", "+44 20 7946 0958")]),
        ("0044 20 7946 0958", [("phone", "+442079460958", "0044 20 7946 0958")]),
        ("1001 555-123-4567", [("order_number", "#1001", "1001"), ("phone", "5551234567", "555-123-4567")]),
        ("my zip code is 94103", [("postal_code", "94103", "94103")]),
        ("Springfield, IL 62704", [("postal_code", "62704", "62704")]),
        ("zip 94103-1234", [("postal_code", "94103-1234", "94103-1234")]),
        ("London SW1A 1AA", [("postal_code", "SW1A 1AA", "SW1A 1AA")]),
        ("postcode sw1a1aa", [("postal_code", "SW1A 1AA", "sw1a1aa")]),
        ("Toronto M5V 3L9", [("postal_code", "M5V 3L9", "M5V 3L9")]),
        ("индекс 101000", [("postal_code", "101000", "101000")]),
        ("邮编100000", [("postal_code", "100000", "100000")]),
        ("mã bưu chính 700000", [("postal_code", "700000", "700000")]),
        ("código postal 28001", [("postal_code", "28001", "28001")]),
    ],
)
def test_extract_entities(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert _spans(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I paid $120 and 1500 usd",
        "it cost 1.250.000đ",
        "ordered on May 3, 2024",
        "12/05/2024",
        "2024-05-12 10:30",
        "apt 305",
        "1234 main street",
        "100%",
        "it took 300 days",
        "{{ 7*7 }}",
        "I ordered 2 items",
        "version 2.5.1",
        "价格是500元",
        "",
    ],
)
def test_numbers_that_are_not_entities(text: str) -> None:
    assert extract_entities(text) == []


def test_entity_is_frozen_and_serialisable() -> None:
    (entity,) = extract_entities("#1001")
    assert entity == Entity("order_number", "#1001", 0, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entity.value = "x"  # type: ignore[misc]
    assert entity.to_dict() == {"type": "order_number", "value": "#1001", "start": 0, "end": 5}


def test_tracking_numbers_from_ordersvc() -> None:
    text = "UPS 1Z999AA10123456784, call me on +1 555 123 4567"
    assert _spans(text) == [
        ("tracking_number", "1Z999AA10123456784", "1Z999AA10123456784"),
        ("phone", "+15551234567", "+1 555 123 4567"),
    ]
    # spaced as printed on a label
    assert _spans("tracking 1Z 999 AA1 01 2345 6784") == [
        ("tracking_number", "1Z999AA10123456784", "1Z 999 AA1 01 2345 6784")
    ]


def test_a_labelled_order_number_beats_a_dhl_reading() -> None:
    from ordersvc.tracking import detect_carrier

    number = next(f"{n:010d}" for n in range(1_234_567_000, 1_234_568_000) if detect_carrier(f"{n:010d}"))
    assert _spans(f"my order number is {number}") == [("order_number", f"#{number}", number)]
    assert _spans(f"DHL {number}")[0][0] == "tracking_number"


@pytest.fixture()
def fake_tracking(monkeypatch: pytest.MonkeyPatch):
    """Make the tracking finder report every 12-digit run, to test priorities alone."""

    @dataclasses.dataclass(frozen=True)
    class Match:
        carrier: str
        number: str
        start: int
        end: int

    def finder(text: str):
        return [Match("fake", m.group(), m.start(), m.end()) for m in re.finditer(r"(?<![\d+])\d{12}(?!\d)", text)]

    monkeypatch.setattr(entities_mod, "_tracking_finder", finder)
    monkeypatch.setattr(entities_mod, "_tracking_loaded", True)
    return finder


def test_priority_tracking_over_phone_and_bare_order(fake_tracking) -> None:
    text = "parcel 123456789012 and order 555"
    assert _spans(text) == [
        ("tracking_number", "123456789012", "123456789012"),
        ("order_number", "#555", "555"),
    ]
    assert _spans("+123456789012") == [("phone", "+123456789012", "+123456789012")]


def test_priority_email_over_everything(fake_tracking) -> None:
    text = "write to 123456789012@shop.example or 5551234567@x.io"
    assert [t for t, _, _ in _spans(text)] == ["email", "email"]


def test_a_broken_tracking_module_does_not_break_extraction(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(text: str):
        raise RuntimeError("bug")

    monkeypatch.setattr(entities_mod, "_tracking_finder", boom)
    monkeypatch.setattr(entities_mod, "_tracking_loaded", True)
    assert _spans("order #1001") == [("order_number", "#1001", "#1001")]


# property-based --------------------------------------------------------------------------

_filler_chars = st.characters(
    blacklist_categories=("Nd", "Cs", "Co", "Cn"),
    blacklist_characters="#№＃@＠",
)
_filler = st.text(_filler_chars, max_size=40)
_cjk = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=10)
_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _one_of_type(text: str, type_: str) -> list[Entity]:
    return [e for e in extract_entities(text) if e.type == type_]


@_PROPERTY
@given(before=_filler, after=_filler, number=st.integers(min_value=100, max_value=9_999_999_999))
def test_property_hash_order_number_found_with_exact_offsets(before: str, after: str, number: int) -> None:
    token = f"#{number}"
    text = f"{before} {token} {after}"
    start = len(before) + 1
    found = _one_of_type(text, "order_number")
    assert Entity("order_number", token, start, start + len(token)) in found


@_PROPERTY
@given(before=_cjk, after=_cjk, number=st.integers(min_value=100, max_value=9_999_999_999), hashed=st.booleans())
def test_property_order_number_next_to_chinese(before: str, after: str, number: int, hashed: bool) -> None:
    token = f"#{number}" if hashed else str(number)
    text = f"{before}订单{token}{after}"
    start = len(before) + 2
    assert Entity("order_number", f"#{number}", start, start + len(token)) in _one_of_type(text, "order_number")


@_PROPERTY
@given(before=_filler, after=_filler, digits=st.text("0123456789", min_size=17, max_size=17))
def test_property_amazon_order_found_with_exact_offsets(before: str, after: str, digits: str) -> None:
    token = f"{digits[:3]}-{digits[3:10]}-{digits[10:]}"
    text = f"{before} {token} {after}"
    start = len(before) + 1
    assert Entity("order_number", token, start, start + len(token)) in _one_of_type(text, "order_number")


_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
_emails = st.builds(
    lambda local, extra, domain, tld: f"{local}{'.' + extra if extra else ''}@{domain}.{tld}",
    _label,
    st.one_of(st.just(""), _label),
    _label,
    st.text(string.ascii_lowercase, min_size=2, max_size=6),
)


@_PROPERTY
@given(before=_filler, after=_filler, email=_emails)
def test_property_email_found_with_exact_offsets(before: str, after: str, email: str) -> None:
    text = f"{before} {email} {after}"
    start = len(before) + 1
    assert Entity("email", email, start, start + len(email)) in extract_entities(text)


@_PROPERTY
@given(text=st.text(max_size=300))
def test_property_entities_never_overlap_and_index_the_original(text: str) -> None:
    found = extract_entities(text)
    assert found == sorted(found, key=lambda e: e.start)
    for prev, nxt in zip(found, found[1:]):
        assert prev.end <= nxt.start
    for e in found:
        assert 0 <= e.start < e.end <= len(text)
        assert text[e.start : e.end].strip() == text[e.start : e.end]


# --- analyze ----------------------------------------------------------------------------


def test_analyze_end_to_end(classifier) -> None:
    result = analyze("Hi, where is my order #1001? My email is ann@example.com", hint_lang="en-US")
    assert isinstance(result, NLUResult)
    assert result.language == "en"
    assert result.intent == "track_order" and result.confidence >= CONFIDENT
    assert [(e.type, e.value) for e in result.entities] == [("order_number", "#1001"), ("email", "ann@example.com")]
    assert result.ranking[0] == (result.intent, result.confidence)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.intent = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "hint", "language", "intent"),
    [
        ("¿Dónde está mi pedido 5566?", "en", "es", "track_order"),
        ("Хочу вернуть куртку, не подошёл размер", None, "ru", "start_return"),
        ("Shop ơi, tôi muốn hủy đơn #3321", None, "vi", "cancel_order"),
        ("请帮我开发票，订单1001", None, "zh-Hans", "invoice"),
        ("請問運費多少？", "zh-TW", "zh-Hant", "shipping_info"),
        ("1001", "es", "es", None),
        ("👍", "ru", "ru", "unknown"),
        ("", "vi", "vi", "unknown"),
    ],
)
def test_analyze_languages(classifier, text: str, hint: str | None, language: str, intent: str | None) -> None:
    result = analyze(text, hint)
    assert result.language == language
    if intent is not None:
        assert result.intent == intent


@pytest.mark.parametrize(
    "text",
    [
        "",
        "🙂" * 50,
        "x" * 10_000,
        ("where is my order #1001? " * 500)[:10_000],
        "{{ 7*7 }} {% if x %}${{7*7}}<script>alert(1)</script>",
        "hola where is my 订单 заказ đơn hàng",
        "\x00\x01\ufeff\u202e",
        "\n\n\t",
    ],
)
def test_analyze_never_raises(classifier, text: str) -> None:
    result = analyze(text, "zh-HK")
    assert result.language in SUPPORTED_LANGUAGES
    assert result.intent in INTENTS
    assert 0.0 <= result.confidence <= 1.0
    assert result.text == text


def test_analyze_uses_the_process_wide_classifier(classifier) -> None:
    assert nlu.get_classifier() is classifier


# --- tools ------------------------------------------------------------------------------


def test_classify_stream(classifier) -> None:
    lines = [
        json.dumps({"text": "where is my order #1001", "lang": "en"}),
        "",
        "   ",
        "我要退货",
        json.dumps({"text": "hola", "lang": "es"}, ensure_ascii=False),
        "[1, 2, 3]",
        '{"not": "a message"}',
        "{broken json",
        json.dumps({"text": "спасибо"}, ensure_ascii=False),
        '{"text": 5}',
        '{"text": "bad \\ud800 escape"}',
        "lone \udcff surrogate from a non-UTF-8 byte",
        json.dumps({"text": "thanks", "lang": ["en"]}),
        "where is my parcel",
    ]
    out = io.StringIO()
    counts = classify_stream(io.StringIO("\n".join(lines) + "\n"), out, classifier=classifier)
    everything = [json.loads(line) for line in out.getvalue().splitlines()]
    assert counts == (7, 5) and len(everything) == 12  # one output line per non-blank input line
    errors = [r for r in everything if "error" in r]
    assert [e["line"] for e in errors] == [7, 10, 11, 12, 13]
    assert 'string "text"' in errors[0]["error"] and "Unicode" in errors[2]["error"]
    assert everything[-1]["intent"] == "track_order"  # the lines after a bad one go on
    records = [r for r in everything if "error" not in r]
    for record in records:
        assert set(record) == {"text", "intent", "confidence", "language", "entities"}
    assert records[0]["intent"] == "track_order"
    assert records[0]["entities"] == [{"type": "order_number", "value": "#1001", "start": 18, "end": 23}]
    assert records[1]["text"] == "我要退货" and records[1]["language"] == "zh-Hans"
    assert "我要退货" in out.getvalue()  # not \u-escaped
    assert records[2]["language"] == "es" and records[2]["intent"] == "greeting"
    assert records[3]["text"] == "[1, 2, 3]"
    assert records[4]["text"] == "{broken json"
    assert records[5]["intent"] == "thanks" and records[5]["language"] == "ru"


def test_evaluate_csv_report(classifier, tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_text(
        "text,intent,lang\n"
        "where is my order,track_order,en\n"
        "\"i want my money back, where is the refund\",refund_status,en\n"
        "tell me a joke,unknown,en\n"
        "hola,greeting,es\n"
        "where is my order,cancel_order,en\n",
        encoding="utf-8",
    )
    report = evaluate_csv(path, classifier=classifier)
    assert isinstance(report, EvalReport)
    assert (report.total, report.correct) == (5, 4) and report.accuracy == pytest.approx(0.8)
    assert report.per_intent["cancel_order"].recall == 0.0 and report.per_intent["cancel_order"].support == 1
    assert report.per_intent["track_order"].precision == 0.5
    assert report.confusions == [("cancel_order", "track_order", 1)]
    assert report.per_language == {"en": 0.75, "es": 1.0}
    text = format_report(report)
    assert "accuracy 0.800 (4/5)" in text and "cancel_order -> track_order: 1" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("message,label\nhi,greeting\n", "columns text,intent"),
        ("text,intent\nhi,greetings\n", "unknown intent 'greetings'"),
        ("text,intent\n", "no rows"),
        ("", "columns text,intent"),
        ("text,intent\nhi,\n", "missing text or intent"),
    ],
)
def test_evaluate_csv_rejects_bad_files(classifier, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        evaluate_csv(path, classifier=classifier)
    assert "\n" not in str(info.value)


def test_evaluate_csv_missing_file(classifier, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot open"):
        evaluate_csv(tmp_path / "nope.csv", classifier=classifier)


def test_cli_evaluate(classifier, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shopdesk.cli import app

    result = CliRunner().invoke(app, ["nlu", "eval", str(HELDOUT_CSV)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["nlu", "eval", str(bad)])
    assert result.exit_code != 0 and "error" in result.output.lower()


def test_served_probabilities_equal_scikit_learns(classifier: IntentClassifier, tmp_path: Path) -> None:
    """The numpy model read from the cache (no scikit-learn) gives scikit-learn's probabilities
    and the same rankings, on the held-out sets and on odd texts."""
    import numpy as np

    from bot.nlu.evaluate import read_labelled
    from bot.nlu.intents import normalize_text

    assert classifier.pipeline is not None  # trained in this session: the reference is at hand
    texts = [r.text for r in read_labelled(Path(__file__).with_name("nlu_heldout"))]
    texts += ["where is my order?", "quiero devolver", "我的订单在哪里", "asdkjh qwe", "a  b\t\tc", "x" * 2000,
              "cancel my order 1001 please", "спасибо", "Đơn hàng của tôi đâu", "\ue001 \ue003"]
    classifier.save(tmp_path / "model.npz")
    served = IntentClassifier.load(tmp_path / "model.npz", classifier.fingerprint)
    assert served.pipeline is None and served.classes == classifier.classes
    normalized = [normalize_text(t) for t in texts]
    fast = served.predict_proba(normalized)
    reference = classifier.pipeline.predict_proba(normalized)
    assert np.allclose(fast, reference, atol=1e-6)  # float32 features: rounding only
    assert (fast.argmax(axis=1) == reference.argmax(axis=1)).all()
    assert [p.ranking for p in served.predict_many(texts)] == [p.ranking for p in classifier.predict_many(texts)]


def test_serving_imports_no_scikit_learn(tmp_path: Path, en_data_dir: Path) -> None:
    """A cached model is read and used without importing scikit-learn (it costs ~75 MB)."""
    import subprocess
    import sys

    IntentClassifier.load_or_train(cache_dir=tmp_path, data_dir=en_data_dir)
    code = (
        "import sys\n"
        "from bot.nlu.intents import IntentClassifier\n"
        f"clf = IntentClassifier.load_or_train(cache_dir={str(tmp_path)!r}, data_dir={str(en_data_dir)!r})\n"
        "assert not clf.trained_now\n"
        "print(clf.predict('where is my order').intent)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sklearn', 'scipy', 'joblib'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split("\n")[:2] == ["track_order", "[]"], out.stdout + out.stderr


# --- tone (strongly negative messages) ------------------------------------------------------

TONE_HELDOUT_CSV = Path(__file__).with_name("tone_heldout.csv")


@pytest.fixture(scope="session")
def tone_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from bot.nlu.tone import ToneClassifier

    return ToneClassifier.load_or_train(cache_dir=tmp_path_factory.mktemp("tone-cache"))


def test_tone_files_have_both_labels_in_every_language() -> None:
    import yaml

    from bot.nlu.tone import TONE_DIR

    for lang in SUPPORTED_LANGUAGES:
        data = yaml.safe_load((TONE_DIR / f"{lang}.yaml").read_text(encoding="utf-8"))
        assert set(data) == {"hostile", "calm"}, lang
        assert len(data["hostile"].splitlines()) >= 90 and len(data["calm"].splitlines()) >= 60, lang


def test_tone_on_heldout_phrasings(tone_model: Any) -> None:
    """New phrasings: most hostile ones are caught and no calm one is (a calm customer must
    never be treated as abusive), in every language."""
    from bot.nlu.tone import HOSTILE_AT

    rows = list(csv.DictReader(TONE_HELDOUT_CSV.open(encoding="utf-8")))
    scores = tone_model.hostility_many([r["text"] for r in rows])
    caught: Counter[str] = Counter()
    for row, score in zip(rows, scores):
        if row["label"] == "calm":
            assert score < HOSTILE_AT, (row["text"], score)
        elif score >= HOSTILE_AT:
            caught[row["lang"]] += 1
    hostile = Counter(r["lang"] for r in rows if r["label"] == "hostile")
    assert sum(caught.values()) / sum(hostile.values()) >= 0.65, caught
    for lang in SUPPORTED_LANGUAGES:  # Russian is the weakest (about a third): see the closing note
        assert caught[lang] / hostile[lang] >= 0.3, (lang, caught[lang], hostile[lang])


def test_tone_on_a_second_sweep_of_everyday_chat(tone_model: Any) -> None:
    """tests/tone_sweep.csv: 384 everyday messages (answers, thanks, "!!!", all caps, emoji,
    impatience) and 90 abusive ones, written apart from the training data. A calm customer is
    almost never handed off as abusive; most abuse is."""
    from bot.nlu.tone import HOSTILE_AT

    rows = list(csv.DictReader(Path(__file__).with_name("tone_sweep.csv").open(encoding="utf-8")))
    scores = tone_model.hostility_many([r["text"] for r in rows])
    calm_flagged = [r["text"] for r, s in zip(rows, scores) if r["label"] == "calm" and s >= HOSTILE_AT]
    hostile = [s for r, s in zip(rows, scores) if r["label"] == "hostile"]
    assert len(calm_flagged) <= 0.01 * sum(r["label"] == "calm" for r in rows), calm_flagged
    assert sum(s >= HOSTILE_AT for s in hostile) >= 0.75 * len(hostile)


def test_ordinary_requests_are_not_hostile(tone_model: Any) -> None:
    from bot.nlu.tone import HOSTILE_AT

    rows = [r for r in _heldout_rows() if r["intent"] not in ("complaint", "human_agent")]
    scores = tone_model.hostility_many([r["text"] for r in rows])
    flagged = [(r["text"], s) for r, s in zip(rows, scores) if s >= HOSTILE_AT]
    assert flagged == []
    for text in ("where is my order?", "¿dónde está mi pedido?", "где мой заказ", "đơn hàng của tôi đâu rồi",
                 "我的订单在哪", "我的訂單在哪裡", "cancel my order please", "the mug arrived broken",
                 "верните деньги за заказ 1001", "我要退款"):
        assert tone_model.hostility(text) < 0.4, text


@pytest.mark.parametrize("text", [
    "pablo.ruiz@example.org",  # answers to the bot's questions: verification, addresses, names, items
    "#1001 pablo.ruiz@example.org",
    "742 Evergreen Terrace, Springfield, OR 97403, USA",
    "Gran Vía 28, 28013 Madrid, España",
    "пр. Мира 10, кв. 4, Санкт-Петербург 190000",
    "45 Lê Lợi, Phường Bến Nghé, Quận 1, TP.HCM",
    "上海市浦东新区世纪大道100号",
    "ROBERT BROWN",
    "Linen tee, size L, sand",
    "2",
    "Store credit",
])
def test_answers_and_addresses_are_not_hostile(tone_model: Any, text: str) -> None:
    from bot.nlu.tone import HOSTILE_AT

    assert tone_model.hostility(text) < HOSTILE_AT


@pytest.mark.parametrize("text", [
    "you are all idiots",
    "where the hell is my order, you useless scammers",
    "Вы мошенники и воры, где мой заказ?!",
    "sois unos estafadores, devolvedme mi dinero YA",
    "lừa đảo, trả tiền cho tao",
    "你们这些骗子，退钱！",
    "騙子！垃圾店！",
])
def test_abuse_is_hostile_whatever_it_asks(tone_model: Any, text: str) -> None:
    from bot.nlu.tone import HOSTILE_AT

    assert tone_model.hostility(text) >= HOSTILE_AT


def test_tone_model_is_deterministic_and_ignores_empty_text(tone_model: Any) -> None:
    from bot.nlu.tone import ToneClassifier, load_tone_examples

    again = ToneClassifier.train(load_tone_examples())
    texts = ["you idiots", "hello", "где мой заказ"]
    assert again.hostility_many(texts) == tone_model.hostility_many(texts)
    assert tone_model.hostility_many(["", "   ", "🤷", "!!!"])[:2] == [0.0, 0.0]
    assert analyze("you are all useless idiots", "en").hostile
    assert not analyze("where is my order #1001?", "en").hostile


def test_tone_fast_path_equals_scikit_learn(tone_model: Any, tmp_path: Path) -> None:
    import numpy as np

    from bot.nlu.tone import ToneClassifier

    texts = [r["text"] for r in csv.DictReader(TONE_HELDOUT_CSV.open(encoding="utf-8"))]
    texts += ["where is my order?!?! 🤬", "x", "1001"]
    assert tone_model.pipeline is not None  # trained in this session
    tone_model.save(tmp_path / "tone.npz")
    served = ToneClassifier.load(tmp_path / "tone.npz", tone_model.fingerprint)
    assert served.pipeline is None
    fast = np.asarray(served._hostile_probability(texts))
    reference = tone_model.pipeline.predict_proba(texts)[:, tone_model._hostile_column]
    assert np.allclose(fast, reference, atol=1e-6)
