"""The cheaper forms of a turn's steps (issue 11, CPU of a turn in a batch) give what the plain
forms gave: control characters by regex, Chinese by regex, the menu's typo reading, the
delivery-updates words, the dialog state's copy, and the policy replies rendered once per
stored policy, language and shop (with the memo's keys and its limits)."""

from __future__ import annotations

import copy
import csv
import difflib
import os
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from bot.dialog import choices
from bot.dialog.turn import BotConfig, DialogState, Turn
from inbox import replies
from inbox.replies import SUPPORTED_LANGUAGES, render_reply, render_reply_memo, reply_label
from ordersvc.returns.policy import DEFAULT_RETURN_POLICY, ReturnPolicy, policy_from_stored
from ordersvc.service import DEFAULT_SHIPPING_POLICY, setting_over
from shopbase.text import _CONTROLS, clean_text

HELDOUT = Path(__file__).parent / "nlu_heldout.csv"


def _texts(langs: tuple[str, ...] = SUPPORTED_LANGUAGES) -> list[str]:
    """Customer texts of ``langs``, the menus' own words, and typo'd and padded forms of them."""
    texts: list[str] = []
    if HELDOUT.exists():
        with HELDOUT.open(encoding="utf-8", newline="") as fh:
            texts += [row["text"] for row in csv.DictReader(fh) if row.get("text") and row.get("lang") in langs]
    for lang in langs:
        voc = choices.vocabulary(lang)
        words = [*voc.updates_stop, *voc.updates_start, *voc.yes, *voc.no, *voc.cancel]
        for phrases in voc.choices.values():
            words += phrases
        for word in words:
            filler = sorted(voc.fillers)[0] if voc.fillers else "please"
            texts += [word, word.upper(), f"{filler} {word}", f"{word} {filler}", word[:-1], word[1:],
                      word[:2] + word[3:], f"{word} 1001"]
    return list(dict.fromkeys(texts))


TEXTS = _texts()


# --------------------------------------------------------------------------- regexes


def test_clean_text_drops_exactly_the_control_characters_but_tab_and_newline() -> None:
    controls = {chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)) == "Cc"} - {"\n", "\t"}
    matched = {chr(i) for i in range(sys.maxunicode + 1)
               if not 0xD800 <= i <= 0xDFFF and _CONTROLS.match(chr(i))}
    assert matched == controls and len(controls) == 63
    assert clean_text("a\x00b\x1b[31mc\x7fd\x85e\x9f\tf\r\ng\u200dh") == "ab[31mcde\tf\ng\u200dh"


def test_chinese_is_found_as_before() -> None:
    def before(text: str) -> bool:
        return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)

    for i in range(0x10000):
        assert choices._cjk(chr(i)) == before(chr(i)), hex(i)
    assert choices._cjk("order 退货 please") and not choices._cjk("возврат")


# --------------------------------------------------------------------------- menus and words


def _fuzzy_before(folded: str, options: list[tuple[str, str]], voc: Any, primary: bool = True) -> str | None:
    """``choices._fuzzy`` as it was: a SequenceMatcher per phrase and its ratio bounds."""
    if not primary or choices._cjk(folded) or len(folded) > 80:
        return None
    words = folded.split()
    scores: dict[str, float] = {}
    for label, value in options:
        for phrase in choices._phrases(value, label, voc):
            if len(phrase.replace(" ", "")) < choices._FUZZY_MIN_CHARS or any(ch.isdigit() for ch in phrase):
                continue
            size = len(phrase.split())
            windows = {" ".join(words[i:i + size]) for i in range(max(1, len(words) - size + 1))}
            matcher = difflib.SequenceMatcher(None, "", phrase)
            for window in windows:
                if any(ch.isdigit() for ch in window):
                    continue
                matcher.set_seq1(window)
                if matcher.real_quick_ratio() < choices._FUZZY_CUTOFF or matcher.quick_ratio() < choices._FUZZY_CUTOFF:
                    continue
                ratio = matcher.ratio()
                if ratio >= choices._FUZZY_CUTOFF:
                    scores[value] = max(scores.get(value, 0.0), ratio)
    if not scores:
        return None
    top = max(scores.values())
    winners = [v for v, s in scores.items() if s == top]
    return winners[0] if len(winners) == 1 else None


def _menus(lang: str) -> list[list[tuple[str, str]]]:
    voc = choices.vocabulary(lang)
    intents = [(reply_label("intent_" + n, lang), f"intent:{n}")
               for n in ("track_order", "start_return", "cancel_order", "human_agent")]
    listed = [(value.split(":", 1)[-1].replace("_", " ").title(), value) for value in voc.choices]
    return [intents, listed[:6], listed[6:14]]


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_typos_are_read_as_before(lang: str) -> None:
    voc = choices.vocabulary(lang)
    found = 0
    texts = _texts((lang,))
    for menu in _menus(lang):
        for text in texts:
            folded = choices.fold(text)
            if not folded:
                continue
            expected = _fuzzy_before(folded, menu, voc)
            assert choices._fuzzy(folded, menu, voc) == expected, (text, menu)
            found += expected is not None
    # the corpus has typos that are read (the comparison is not vacuous); none in Chinese (never fuzzy)
    assert found > 20 if not lang.startswith("zh") else found == 0


def _updates_before(text: str, lang: str | None = None) -> str | None:
    folded = choices.fold(text)
    if not folded or len(folded) > 60:
        return None
    for voc in choices._languages(lang):
        bare = choices._without_fillers(folded, voc)
        for answer, phrases in (("stop", voc.updates_stop), ("start", voc.updates_start)):
            if folded in phrases or bare in phrases:
                return answer
    return None


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_delivery_update_words_are_read_as_before(lang: str) -> None:
    answers = [choices.updates_request(text, lang) for text in TEXTS]
    assert answers == [_updates_before(text, lang) for text in TEXTS]
    assert answers.count("stop") > 10 and answers.count("start") > 10 and answers.count(None) > 100


# --------------------------------------------------------------------------- dialog state


def test_the_dialog_state_is_a_deep_copy_of_its_json() -> None:
    stored: dict[str, Any] = {
        "flow": "returns", "step": "items", "low_confidence_turns": 1, "unknown_key": [1],
        "slots": {"choices": [["Tee", "line:1"], ["Cap", "line:2"]], "order_id": 7, "note": None,
                  "amount": 2.5, "free_text": True, "items": {"1": {"qty": 2}}},
        "queued": [{"intent": "track_order", "ranking": [["track_order", 0.9]]}],
        "suspended": {"flow": "cancel", "slots": {"order_id": 3}},
    }
    before = copy.deepcopy(stored)
    state = DialogState.from_json(stored)
    assert state == DialogState.from_json(before) and state.slots == before["slots"]
    state.slots["choices"][0][0] = "changed"
    state.slots["items"]["1"]["qty"] = 9
    state.queued[0]["ranking"].append(["x", 0.1])
    assert state.suspended is not None
    state.suspended["slots"]["order_id"] = 4
    assert stored == before  # nothing of the loaded JSON changed
    odd = {"slots": {"pair": ([1], "a")}}  # not JSON (a tuple holding a list): copied by deepcopy
    copied = DialogState.from_json(odd)
    copied.slots["pair"][0].append(2)
    assert odd == {"slots": {"pair": ([1], "a")}}


# --------------------------------------------------------------------------- replies kept per policy


def _config(shop: str = "Tee Shop", tz: str = "UTC") -> BotConfig:
    return BotConfig(shop_name=shop, timezone=tz)


def _turn(lang: str, config: BotConfig | None = None) -> Turn:
    return Turn(session=None, conversation=None, contact=None, text="", postback=None,  # type: ignore[arg-type]
                lang=lang, now=None, config=config or _config(), state=DialogState())  # type: ignore[arg-type]


CUSTOM_RETURNS = {"window_days": 45, "final_sale_excluded": False}
CUSTOM_SHIPPING = {"handling_days": 4, "carriers": ["Royal Mail"], "zones": []}


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_policy_replies_say_what_render_reply_says(lang: str) -> None:
    for stored in (None, CUSTOM_RETURNS):
        for _ in range(2):  # rendered, then kept
            turn = _turn(lang)
            turn.say_memo("return_policy", ("r", repr(stored)), lambda s=stored: {"policy": policy_from_stored(s)})
            assert turn.replies[0].text == render_reply("return_policy", lang, shop="Tee Shop", tz="UTC",
                                                        policy=policy_from_stored(stored))
            assert turn.said == ["return_policy"] and turn.replies[0].quick_replies == ()
    for stored in (None, CUSTOM_SHIPPING):
        turn = _turn(lang)
        turn.say_memo("shipping_info", ("s", repr(stored)),
                      lambda s=stored: {"policy": setting_over(s, DEFAULT_SHIPPING_POLICY)})
        assert turn.replies[0].text == render_reply("shipping_info", lang, shop="Tee Shop", tz="UTC",
                                                    policy=setting_over(stored, DEFAULT_SHIPPING_POLICY))


def test_the_memo_is_kept_per_language_shop_and_key() -> None:
    calls: list[str] = []

    def context(days: int) -> dict[str, Any]:
        calls.append("built")
        return {"policy": ReturnPolicy(window_days=days)}

    def said(lang: str, key: Any, days: int, config: BotConfig | None = None) -> str:
        turn = _turn(lang, config)
        turn.say_memo("return_policy", ("test-memo", key), lambda: context(days))
        return turn.replies[0].text

    english = said("en", 1, 31)
    assert "31 days" in english and len(calls) == 1
    assert said("en", 1, 99) == english and len(calls) == 1  # same key: the kept text, context not built
    spanish = said("es", 1, 31)
    assert spanish != english and "31" in spanish and len(calls) == 2
    assert "32 days" in said("en", 2, 32) and len(calls) == 3
    said("en", 1, 31, _config(tz="Europe/Madrid"))
    said("en", 1, 31, _config(shop="Other"))
    assert len(calls) == 5  # the shop and its zone are part of the key
    assert said("en", 1, 99) == english and len(calls) == 5


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replies, "MEMO_SIZE", 3)
    for key in range(10):
        render_reply_memo("thanks", "en", ("bounded", key), lambda: {"shop": "S", "tz": "UTC"})
    assert len(replies._MEMO) <= 3
    assert ("bounded", 9) in {k[2] for k in replies._MEMO} and ("bounded", 0) not in {k[2] for k in replies._MEMO}


@pytest.fixture
def overrides(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "en").mkdir()
    replies.configure_overrides(tmp_path)
    try:
        yield tmp_path / "en"
    finally:
        replies.configure_overrides(None)


def test_an_edited_template_is_rendered_again(overrides: Path) -> None:
    path = overrides / "thanks.txt"
    path.write_text("Thanks from {{ shop }}!", encoding="utf-8")
    assert render_reply_memo("thanks", "en", "k", lambda: {"shop": "S", "tz": "UTC"}) == "Thanks from S!"
    path.write_text("Cheers from {{ shop }}!", encoding="utf-8")
    stat = path.stat()
    os.utime(path, (stat.st_atime + 5, stat.st_mtime + 5))  # a later mtime, as an edit gets
    assert render_reply_memo("thanks", "en", "k", lambda: {"shop": "S", "tz": "UTC"}) == "Cheers from S!"


@pytest.mark.parametrize("source", [
    "{{ ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']|random }}{{ ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']|random }}",
    "{{ lipsum(1, false, 3, 5) }}",
    "{% include 'other.txt' %}",
])
def test_a_template_that_can_say_something_else_is_never_kept(overrides: Path, source: str) -> None:
    (overrides / "thanks.txt").write_text(source, encoding="utf-8")
    (overrides / "other.txt").write_text("{{ n }}", encoding="utf-8")
    calls: list[int] = []

    def context() -> dict[str, Any]:
        calls.append(1)
        return {"shop": "S", "tz": "UTC", "n": len(calls)}

    texts = {render_reply_memo("thanks", "en", "same", context) for _ in range(12)}
    assert len(calls) == 12  # rendered every time
    assert len(texts) > 1


def test_the_default_policy_is_a_fresh_copy() -> None:
    first, second = policy_from_stored(None), policy_from_stored({})
    assert first == DEFAULT_RETURN_POLICY and first is not DEFAULT_RETURN_POLICY and first is not second
    with pytest.raises(ValueError, match="invalid"):
        policy_from_stored({"window_days": "many"})


def test_a_message_with_several_requests_is_split_as_before() -> None:
    from bot.dialog import requests
    from bot.nlu import get_classifier

    def before(text: str, lang: str) -> list[Any]:
        parts = requests._parts(text)
        if len(parts) < 2 or len(parts) > requests.MAX_PARTS:
            return []
        found: list[Any] = []
        for part in parts:
            prediction = get_classifier().predict(part)
            if prediction.intent in requests._SOCIAL or prediction.confidence < requests.CLARIFY_BELOW:
                continue
            if prediction.confidence < requests.CONFIDENT and (
                    prediction.intent in requests._HANDOFF or not requests._sentence(part)):
                continue
            if any(r.intent == prediction.intent for r in found):
                continue
            ranking = tuple((str(i), float(c)) for i, c in prediction.ranking[:5])
            found.append(requests.Request(part, prediction.intent, float(prediction.confidence), ranking))
        return found if len(found) >= 2 else []

    texts = ["where is my order 1001 and can I return it?", "hi. what is your return policy? and shipping?",
             "¿dónde está mi pedido? y quiero devolverlo", "где мой заказ? как вернуть товар?",
             "我的订单在哪里？我想退货", "how long does shipping take? thanks"]
    texts += [t for t in TEXTS if len(requests._parts(t)) >= 2][:300]
    split = 0
    for text in texts:
        expected = before(text, "en")
        assert requests.split_requests(text, "en") == expected, text
        split += bool(expected)
    assert split >= 3


def test_a_turn_reads_its_answer_once_per_set_of_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = choices.match

    def counted(text: str, options: Any, lang: str | None = None, **kwargs: Any) -> str | None:
        calls.append(text)
        return real(text, options, lang, **kwargs)

    monkeypatch.setattr(choices, "match", counted)
    turn = _turn("en")
    turn.text = "the second one"
    turn.state.slots["choices"] = [["Track my order", "intent:track_order"], ["Start a return", "intent:start_return"]]
    assert choices.pick(turn) == choices.pick(turn) == "intent:start_return" and len(calls) == 1
    assert choices.pick(turn, positions=False) is None and len(calls) == 2  # another question: read again
    turn.state.slots["choices"] = [["Yes", "yes"], ["No", "no"]]
    assert choices.pick(turn) == "no" and len(calls) == 3  # new choices: read again ("second" of two)
    turn.text = "yes please"
    assert choices.pick(turn) == "yes" and len(calls) == 4  # another text (a later step): read again
    other = _turn("en")
    other.text, other.state.slots["choices"] = "yes please", [["Yes", "yes"], ["No", "no"]]
    assert choices.pick(other) == "yes" and len(calls) == 5  # nothing shared between turns
