"""Choices offered as quick replies, and reading the customer's answer back.

Channels with buttons send the button's value as a postback. Everyone else types, and types
as people do: "2", "2.", "#2", "number 2", "the second one", "второй", "第二个", "like new",
"I'd like a refund please", "demasiado pequeno" (no tilde), "refnd" (a typo), "cả hai".
:func:`pick` reads all of those against the choices last offered with :func:`offer`; the
words come from ``bot/dialog/data/<lang>.yaml`` (see the README there) plus the button labels.

Reading order, first hit wins:

1. the button's label or value, or a listed phrase, is the whole answer;
2. a position: a number in range ("2", "#2", "number 2", "2.") or an ordinal word, or "last";
3. exactly one choice has a phrase inside the answer (the longest phrase wins, so
   "opened, like new" beats "new"); a phrase right after "not" does not count;
4. every content word of a short answer is part of exactly one label ("the tote");
5. one close spelling (difflib) of a phrase of five letters or more.

Answers are compared folded: NFKC, case-folded, accents and tone marks dropped (ё→е, đ→d),
punctuation as spaces. The customer's language is tried first, then the others.

:func:`yes_no` is the one understanding of every confirmation. After two failed answers to
the same question, :func:`offer` hands the conversation to a person instead of asking again.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.dialog.turn import Turn
from inbox.replies import SUPPORTED_LANGUAGES

__all__ = [
    "offer", "pick", "match", "is_cancel", "is_yes", "is_no", "yes_no", "wants_all", "amount", "fold",
    "vocabulary", "has_correction", "MAX_MISSES", "updates_request", "stars", "clear_text_cache",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
#: failed answers to the same question before a person takes over
MAX_MISSES = 2
#: answers longer than this are sentences, not menu answers (phrases are still looked for)
_SHORT_WORDS = 7
_MAX_ANSWER_CHARS = 300
_FUZZY_MIN_CHARS = 5
_FUZZY_CUTOFF = 0.86


# --------------------------------------------------------------------------- folding


def _strip_marks(text: str) -> str:
    text = text.replace("đ", "d").replace("ё", "е")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


#: folding is pure and the same labels, phrases and answers come back on every turn: the folded
#: forms of texts up to FOLD_CACHED_CHARS are kept, at most FOLD_CACHE_SIZE of them (the menus'
#: own phrases are ~1,900 in all six languages). Bounded in count AND length: measured full, it
#: holds ~2.3 MB of 60-character English texts and ~18 MB at worst (256 emoji each); bounded in
#: count only (16,384 texts of up to 4,096 characters), new customer texts could grow it to ~0.5 GB.
FOLD_CACHED_CHARS = 256
FOLD_CACHE_SIZE = 8192


def fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of ``text`` (``"¡Sí, por favor!"`` → ``"si por favor"``)."""
    if not text:
        return ""
    return _fold_cached(text) if len(text) <= FOLD_CACHED_CHARS else _fold(text)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch for ch in text if ch.isprintable() or ch.isspace())
    text = _strip_marks(text)
    text = re.sub(r"(?<=\w)['’`](?=\w)", "", text)  # "it's" → "its", "don't" → "dont"
    # keep letters, digits, '#' and emoji; everything else separates words
    text = re.sub(r"[^\w#\s\U0001F300-\U0001FAFF\u2600-\u27BF]", " ", text)
    text = text.replace("_", " ")
    return " ".join(text.split())


_fold_cached = lru_cache(maxsize=FOLD_CACHE_SIZE)(_fold)


def clear_text_cache() -> None:
    """Forget the kept folded forms, customers' answers among them (``bot.forget``: a customer
    was erased). The menus' own phrases are folded again as they come back."""
    _fold_cached.cache_clear()


#: Chinese characters (CJK extension A, unified ideographs, compatibility ideographs)
_CJK_CHAR = re.compile("[\u3400-\u9fff\uf900-\ufaff]")


def _cjk(text: str) -> bool:
    return _CJK_CHAR.search(text) is not None


@lru_cache(maxsize=16384)
def _word_pattern(phrase: str) -> re.Pattern[str] | None:
    """The whole-word pattern of a menu phrase, built once; None where a phrase matches anywhere
    (Chinese, or a phrase that does not start with a word character)."""
    if _cjk(phrase) or not re.match(r"\w", phrase[0]):
        return None
    return re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)")


def _find(phrase: str, text: str) -> list[int]:
    """Start offsets of ``phrase`` in ``text`` as whole words (anywhere for Chinese)."""
    if not phrase or phrase not in text:  # a plain substring test first: most phrases are not there
        return []
    pattern = _word_pattern(phrase)
    if pattern is None:
        starts, at = [], text.find(phrase)
        while at >= 0:
            starts.append(at)
            at = text.find(phrase, at + 1)
        return starts
    return [m.start() for m in pattern.finditer(text)]


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Vocabulary:
    lang: str
    yes: tuple[str, ...] = ()
    no: tuple[str, ...] = ()
    cancel: frozenset[str] = frozenset()
    all: tuple[str, ...] = ()
    last: tuple[str, ...] = ()
    ordinals: dict[int, tuple[str, ...]] = field(default_factory=dict)
    numbers: dict[int, tuple[str, ...]] = field(default_factory=dict)
    fillers: frozenset[str] = frozenset()
    number_words: tuple[str, ...] = ()
    negations: frozenset[str] = frozenset()
    corrections: tuple[str, ...] = ()
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    updates_stop: tuple[str, ...] = ()
    updates_start: tuple[str, ...] = ()


def _words(items: Any) -> tuple[str, ...]:
    out: list[str] = []
    for item in items or []:
        folded = fold(str(item))
        if folded and folded not in out:
            out.append(folded)
    return tuple(sorted(out, key=len, reverse=True))


@cache
def vocabulary(lang: str) -> Vocabulary:
    """The answer words of one language (``bot/dialog/data/<lang>.yaml``)."""
    path = DATA_DIR / f"{lang}.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data = data or {}
    return Vocabulary(
        lang=lang,
        yes=_words(data.get("yes")),
        no=_words(data.get("no")),
        cancel=frozenset(_words(data.get("cancel"))),
        all=_words(data.get("all")),
        last=_words(data.get("last")),
        ordinals={int(k): _words(v) for k, v in (data.get("ordinals") or {}).items()},
        numbers={int(k): _words(v) for k, v in (data.get("numbers") or {}).items()},
        fillers=frozenset(_words(data.get("fillers"))),
        number_words=_words(data.get("number_words")),
        negations=frozenset(_words(data.get("negations"))),
        corrections=_words(data.get("corrections")),
        choices={str(k): _words(v) for k, v in (data.get("choices") or {}).items()},
        updates_stop=_words(data.get("updates_stop")),
        updates_start=_words(data.get("updates_start")),
    )


def _languages(lang: str | None) -> list[Vocabulary]:
    first = lang if lang in SUPPORTED_LANGUAGES else "en"
    return [vocabulary(first)] + [vocabulary(other) for other in SUPPORTED_LANGUAGES if other != first]


@lru_cache(maxsize=64)
def _cjk_fillers(fillers: frozenset[str]) -> tuple[str, ...]:
    """A language's Chinese fillers, longest first (once per vocabulary, not per answer)."""
    return tuple(sorted((f for f in fillers if _cjk(f)), key=len, reverse=True))


def _without_fillers(text: str, voc: Vocabulary) -> str:
    words = [w for w in text.split() if w not in voc.fillers]
    if _cjk(text):
        joined = " ".join(words)
        for filler in _cjk_fillers(voc.fillers):
            joined = joined.replace(filler, "")
        return " ".join(joined.split())
    return " ".join(words)


# --------------------------------------------------------------------------- yes / no / cancel


def _starts_with(text: str, phrases: tuple[str, ...]) -> str | None:
    for phrase in phrases:  # longest first
        if text == phrase or (text.startswith(phrase) and (_cjk(phrase) or not text[len(phrase)].isalnum())):
            return phrase
    return None


def yes_no(text: str, lang: str | None = None) -> str | None:
    """``"yes"``, ``"no"`` or None: "yes please", "sure", "ok do it", "是的，取消吧", "да, отменяйте",
    "vâng", "sí, por favor" are yes; "no thanks", "не надо", "không", "不用", "no, gracias" are no."""
    folded = fold(text)
    if not folded or len(folded) > _MAX_ANSWER_CHARS:
        return None
    for voc in _languages(lang):
        no = _starts_with(folded, voc.no)
        yes = _starts_with(folded, voc.yes)
        if yes and no:  # "no" inside "not really"? the longer reading wins ("不是" over "不")
            if len(yes) == len(no):
                return None
            return "yes" if len(yes) > len(no) else "no"
        if yes:
            return "yes"
        if no:
            return "no"
    return None


def is_yes(text: str, lang: str | None = None) -> bool:
    return yes_no(text, lang) == "yes"


def is_no(text: str, lang: str | None = None) -> bool:
    return yes_no(text, lang) == "no"


def updates_request(text: str, lang: str | None = None) -> str | None:
    """``"stop"`` or ``"start"`` when the whole message asks to turn delivery updates off or
    on ("STOP", "unsubscribe", "стоп", "dừng", "退订"; "start", "подписаться", "开始"), else None."""
    folded = fold(text)
    if not folded or len(folded) > 60:
        return None
    if _cjk(folded):
        if not _updates_words(chars=True).issuperset(folded.replace(" ", "")):
            return None  # a character of no such phrase and no filler, in any language
    elif not _updates_words().issuperset(folded.split()):
        return None  # a word that is neither in such a phrase nor a filler, in any language
    for voc in _languages(lang):
        bare = _without_fillers(folded, voc)
        for answer, phrases in (("stop", voc.updates_stop), ("start", voc.updates_start)):
            if folded in phrases or bare in phrases:
                return answer
    return None


@cache
def _updates_words(chars: bool = False) -> frozenset[str]:
    """Every word of a stop/start phrase or a filler, in every language: an answer (not Chinese)
    with any other word is neither a phrase nor a phrase with fillers around it. ``chars``: their
    characters instead (Chinese fillers are cut out of words, so there it is the characters:
    what is left after the fillers are gone is one of the phrases)."""
    words: set[str] = set()
    for lang in SUPPORTED_LANGUAGES:
        voc = vocabulary(lang)
        for item in (*voc.fillers, *voc.updates_stop, *voc.updates_start):
            words.update(item.replace(" ", "") if chars else item.split())
    return frozenset(words)


_STAR_CHARS = "★⭐✩☆*"
_RATING = re.compile(r"^\s*([1-5])\s*(?:(?:/|out of|of|из|trên|de)\s*5)?(?:\s+\w+)?\s*[.!]*\s*$", re.IGNORECASE)


def stars(text: str) -> int | None:
    """A 1–5 rating written as a number ("5", "4/5", "4 stars", "5 звёзд") or as stars
    ("★★★★", "⭐⭐⭐"); None for anything else."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw or len(raw) > 40:
        return None
    compact = raw.replace(" ", "").replace("\ufe0f", "")
    if compact and all(ch in _STAR_CHARS for ch in compact) and set(compact) - {"☆", "✩", "*"}:
        count = sum(1 for ch in compact if ch in "★⭐")
        return count if 1 <= count <= 5 else None
    found = _RATING.match(raw)
    return int(found.group(1)) if found else None


def is_cancel(text: str, lang: str | None = None) -> bool:
    """"never mind", "olvídalo", "забудь", "thôi", "算了": leave the open flow."""
    folded = fold(text)
    return bool(folded) and any(folded in voc.cancel for voc in _languages(lang))


def has_correction(text: str, lang: str | None = None) -> bool:
    """The message announces a correction ("sorry, it's 1001", "я имел в виду", "打错了")."""
    folded = fold(text)
    if not folded or len(folded) > _MAX_ANSWER_CHARS:
        return False
    return any(_find(phrase, folded) for voc in _languages(lang) for phrase in voc.corrections)


def wants_all(text: str, lang: str | None = None) -> bool:
    """"both", "all of them", "оба", "cả hai", "两个都": every offered item."""
    folded = fold(text)
    if not folded or len(folded.split()) > _SHORT_WORDS:
        return False
    for voc in _languages(lang):
        rest = _without_fillers(folded, voc)
        if rest in voc.all or folded in voc.all:
            return True
    return False


def amount(text: str, lang: str | None = None) -> int | None:
    """A typed quantity: "2", "#2", "two", "dos", "два", "hai", "两个"."""
    folded = fold(text)
    if not folded or len(folded.split()) > _SHORT_WORDS or re.match(r"\s*[-−–]\s*\d", text or ""):
        return None  # "-1" is not one
    digits = re.fullmatch(r"#?\s*(\d{1,5})", folded)
    if digits:
        return int(digits.group(1))
    for voc in _languages(lang):
        rest = _without_fillers(folded, voc)
        found = re.fullmatch(r"#?\s*(\d{1,5})", rest)
        if found:
            return int(found.group(1))
        for number, phrases in voc.numbers.items():
            if rest in phrases or folded in phrases:
                return number
    return None


# --------------------------------------------------------------------------- matching one answer


def _position(folded: str, voc: Vocabulary, count: int) -> int | None:
    """1-based position named by the answer, if any ("2", "2.", "#2", "number 2", "the second one", "last")."""
    rest = _without_fillers(folded, voc)
    for candidate in (folded, rest):
        for word in voc.number_words:
            if candidate.startswith(word + " ") or (candidate.startswith(word) and candidate[len(word):].strip().isdigit()):
                candidate = candidate[len(word):].strip()
                break
        digits = re.fullmatch(r"#?\s*(\d{1,2})", candidate)
        if digits:
            number = int(digits.group(1))
            return number if 1 <= number <= count else None
    if len(folded.split()) > _SHORT_WORDS or len(folded) > 60:
        return None
    if rest in voc.last or folded in voc.last:
        return count
    found = {n for n, phrases in voc.ordinals.items() for p in phrases if _find(p, rest or folded)}
    if any(_find(p, folded) for p in voc.last):
        found.add(count)
    if len(found) == 1:
        number = found.pop()
        return number if 1 <= number <= count else None
    return None


def _phrases(value: str, label: str, voc: Vocabulary) -> tuple[str, ...]:
    return _phrases_of(value, label, voc.lang, voc.choices.get(value, ()))


@lru_cache(maxsize=4096)
def _phrases_of(value: str, label: str, lang: str, listed: tuple[str, ...]) -> tuple[str, ...]:
    """The phrases that choose ``value`` (its label, its readable tail, the language's synonyms);
    the same menus come back on every turn, so they are built once."""
    own = [fold(label)]
    tail = value.split(":", 1)[-1]
    if ":" in value and re.fullmatch(r"[a-z_]+", tail):  # "reason:too_small" → "too small"; never "order:5"
        own.append(tail.replace("_", " "))
    return tuple(p for p in (*own, *listed) if p)


def _negated(text: str, start: int, voc: Vocabulary) -> bool:
    before = text[:start].rstrip()
    if not before:
        return False
    if _cjk(before[-1:]):
        return before[-1] in voc.negations or before[-2:] in voc.negations
    last = before.split()[-1]
    return last in voc.negations


#: phrases of another language than the customer's must be this long (Vietnamese "to" is "big")
_FOREIGN_MIN_CHARS = 5


def _contained(folded: str, options: list[tuple[str, str]], voc: Vocabulary, primary: bool = True) -> str | None:
    best: dict[str, int] = {}
    for label, value in options:
        for phrase in _phrases(value, label, voc):
            if not primary and not _cjk(phrase) and len(phrase) < _FOREIGN_MIN_CHARS:
                continue
            if any(not _negated(folded, at, voc) for at in _find(phrase, folded)):
                best[value] = max(best.get(value, 0), len(phrase))
    if not best:
        return None
    longest = max(best.values())
    winners = [v for v, n in best.items() if n == longest]
    return winners[0] if len(winners) == 1 else None


def _partial(folded: str, options: list[tuple[str, str]], voc: Vocabulary, primary: bool = True) -> str | None:
    """Every content word of a short answer is part of exactly one label ("tote" → "Canvas tote")."""
    words = _without_fillers(folded, voc).split()
    if not primary or not words or len(words) > 4 or _cjk(folded) or all(len(w) < 3 for w in words):
        return None
    hits = []
    for label, value in options:
        label_words = fold(label).split()
        if all(any(lw.startswith(w) for lw in label_words) for w in words):
            hits.append(value)
    return hits[0] if len(hits) == 1 else None


@lru_cache(maxsize=4096)
def _fuzzy_phrases(value: str, label: str, lang: str, listed: tuple[str, ...]) -> tuple[tuple[str, int, Counter[str]], ...]:
    """The phrases of ``value`` that a typo may stand for (five letters or more, no digit: numbers
    are never "close enough", #1002 is not #1001), each with its word count and letter counts;
    built once per menu, like :func:`_phrases_of`."""
    return tuple((phrase, len(phrase.split()), Counter(phrase)) for phrase in _phrases_of(value, label, lang, listed)
                 if len(phrase.replace(" ", "")) >= _FUZZY_MIN_CHARS and not any(ch.isdigit() for ch in phrase))


def _fuzzy(folded: str, options: list[tuple[str, str]], voc: Vocabulary, primary: bool = True) -> str | None:
    """One close spelling: "refnd" → refund, "damagd" → damaged (Latin and Cyrillic words only)."""
    if not primary or _cjk(folded) or len(folded) > 80:
        return None
    words = folded.split()
    #: word count -> the answer's windows of that many words (no digit), with their letter counts
    windows_of: dict[int, list[tuple[str, Counter[str]]]] = {}
    scores: dict[str, float] = {}
    for label, value in options:
        for phrase, size, letters in _fuzzy_phrases(value, label, voc.lang, voc.choices.get(value, ())):
            windows = windows_of.get(size)
            if windows is None:
                spans = {" ".join(words[i:i + size]) for i in range(max(1, len(words) - size + 1))}
                windows = windows_of[size] = [(w, Counter(w)) for w in spans if not any(ch.isdigit() for ch in w)]
            for window, counts in windows:
                # difflib's cheap upper bounds first (real_quick_ratio: the lengths; quick_ratio:
                # the letters in common), computed as difflib does, then the ratio itself
                total = len(window) + len(phrase)
                if 2.0 * min(len(window), len(phrase)) / total < _FUZZY_CUTOFF:
                    continue
                if 2.0 * sum(min(n, letters[ch]) for ch, n in counts.items()) / total < _FUZZY_CUTOFF:
                    continue
                ratio = difflib.SequenceMatcher(None, window, phrase).ratio()
                if ratio >= _FUZZY_CUTOFF:
                    scores[value] = max(scores.get(value, 0.0), ratio)
    if not scores:
        return None
    top = max(scores.values())
    winners = [v for v, s in scores.items() if s == top]
    return winners[0] if len(winners) == 1 else None


def match(text: str, options: list[tuple[str, str]] | list[list[str]], lang: str | None = None, *,
          positions: bool = True, loose: bool = True) -> str | None:
    """The value among ``options`` ((label, value) pairs) that ``text`` answers, or None.
    ``loose=False`` leaves out partial words and typos (for answers nobody asked for yet)."""
    pairs = [(str(label), str(value)) for label, value in options]
    folded = fold(text)
    if not folded or not pairs or len(folded) > _MAX_ANSWER_CHARS:
        return None
    vocabularies = _languages(lang)
    for voc in vocabularies:  # 1. the whole answer is a label, a value or a listed phrase
        for label, value in pairs:
            if folded in _phrases(value, label, voc) or folded == fold(value):
                return value
    values = {value for _, value in pairs}
    if {"yes", "no"} <= values:  # a confirmation: one yes/no understanding everywhere
        answer = yes_no(text, lang)
        if answer is not None:
            return answer
    if positions:  # 2. a position
        for voc in vocabularies:
            number = _position(folded, voc, len(pairs))
            if number is not None:
                return pairs[number - 1][1]
    for finder in (_contained, _partial, _fuzzy) if loose else (_contained,):  # 3-5, the customer's language first
        for index, voc in enumerate(vocabularies):
            found = finder(folded, pairs, voc, index == 0)
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------- offering and picking


def offer(turn: Turn, template: str, choices: list[tuple[str, str]], **context: Any) -> None:
    """Say ``template`` with ``choices`` as quick replies and remember them for :func:`pick`.

    A re-ask (``again=True`` or a ``*_again`` template) counts a failed answer; the
    :data:`MAX_MISSES`-th one hands the conversation to a person instead of asking again.
    """
    if context.get("again") or template.endswith("_again"):
        misses = int(turn.state.slots.get("misses") or 0) + 1
        if misses >= MAX_MISSES:
            give_up(turn)
            return
        turn.state.slots["misses"] = misses
    else:
        turn.state.slots["misses"] = 0
    turn.state.slots["choices"] = [[label, value] for label, value in choices]
    turn.say(template, choices=choices, **context)


def give_up(turn: Turn) -> None:
    """The customer and the bot do not understand each other: a person takes over."""
    turn.say("handoff_unsure")
    turn.escalate("not_understood", note=f"step: {turn.state.flow}/{turn.state.step}",
                  facts={"flow": turn.state.flow, "step": turn.state.step})


def pick(turn: Turn, *, positions: bool = True) -> str | None:
    """The value the customer chose from the last offered choices, or None."""
    choices: list[list[str]] = turn.state.slots.get("choices") or []
    values = [value for _, value in choices]
    if turn.postback is not None:
        return turn.postback if turn.postback in values else None
    pairs = tuple((str(label), str(value)) for label, value in choices)
    key = (turn.text, turn.lang, positions, pairs)
    if key not in turn.picked:  # read once per turn and set of choices
        turn.picked[key] = match(turn.text, list(pairs), turn.lang, positions=positions)
    return turn.picked[key]
