"""Which of the six product languages a customer message is written in.

:func:`detect_language` combines three sources, cheapest first:

1. **Script.** Cyrillic can only be Russian here, Han characters only Chinese, and Latin
   letters such as ``ơ ư đ ả ệ`` only Vietnamese; these decide even a two-letter message.
2. **Short universal words.** ``ok``, ``hi``, ``thx``, ``👍``, ``1001``: too little text to
   tell anything, so the platform hint (Telegram ``language_code``, Slack locale) wins,
   else English. A small table also knows a few unmistakable one-word messages
   (``hola``, ``gracias``, ``cam on``, ``spasibo``).
3. **Russian in Latin letters, Vietnamese without tones**: a word model learnt from our own
   intent examples (:func:`_latin_words_guess`) decides when it is clearly one of them.
4. **lingua** restricted to English, Spanish, Russian, Vietnamese and Chinese (built once,
   lazily). Its answer is used when it is confident; otherwise the hint, otherwise its best
   guess.

Chinese is then split into ``zh-Hans``/``zh-Hant`` by counting characters that exist only
in the Simplified or only in the Traditional system (CC-CEDICT character lists shipped in
the ``zhon`` package); text written only with characters common to both (``你好``) follows a
Chinese hint, else Simplified.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lingua import LanguageDetector

__all__ = [
    "SUPPORTED_LANGUAGES",
    "DEFAULT_LANGUAGE",
    "MIN_CONFIDENCE",
    "detect_language",
    "normalize_language",
    "chinese_variant",
    "warm_up",
]

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "es", "ru", "vi", "zh-Hans", "zh-Hant")
DEFAULT_LANGUAGE = "en"

#: lingua's relative confidence (0..1 over the five candidate languages) that its best
#: language must reach, with a lead of :data:`MIN_LEAD` over the runner-up, to override
#: the platform hint.
MIN_CONFIDENCE = 0.6
MIN_LEAD = 0.2
#: Fewer letters than this (after dropping numbers, URLs and e-mail addresses) and no
#: decisive script: the text is "too short" and the hint decides.
MIN_LETTERS = 3
#: Only the start of a long message is looked at.
MAX_DETECT_CHARS = 1000

_PRIMARY = {
    "en": "en", "eng": "en",
    "es": "es", "spa": "es",
    "ru": "ru", "rus": "ru",
    "vi": "vi", "vie": "vi",
}
_CHINESE_PRIMARY = {"zh", "zho", "chi", "cmn", "yue"}
_TRADITIONAL_REGIONS = {"tw", "hk", "mo"}


def normalize_language(code: str | None) -> str | None:
    """Map a platform language tag to one of :data:`SUPPORTED_LANGUAGES`, or ``None``.

    Accepts BCP 47-ish tags in any case with ``-`` or ``_``: ``"es-MX"`` → ``"es"``,
    ``"zh-TW"``/``"zh-HK"``/``"zh-Hant"`` → ``"zh-Hant"``, ``"zh"``/``"zh-CN"``/
    ``"zh-hans"`` → ``"zh-Hans"``; an explicit script subtag wins over the region
    (``"zh-Hans-HK"`` → ``"zh-Hans"``). Unsupported or empty tags give ``None``.
    """
    if not code or not isinstance(code, str):
        return None
    parts = [p for p in code.strip().replace("_", "-").lower().split("-") if p]
    if not parts:
        return None
    primary, rest = parts[0], parts[1:]
    if primary in _CHINESE_PRIMARY:
        if "hans" in rest:
            return "zh-Hans"
        if "hant" in rest or primary == "yue" or any(p in _TRADITIONAL_REGIONS for p in rest):
            return "zh-Hant"
        return "zh-Hans"
    return _PRIMARY.get(primary)


# --- Chinese variant -------------------------------------------------------------------

_variant_sets: tuple[frozenset[str], frozenset[str]] | None = None


def _chinese_sets() -> tuple[frozenset[str], frozenset[str]]:
    """(Traditional-only, Simplified-only) characters, from CC-CEDICT via ``zhon``."""
    global _variant_sets
    if _variant_sets is None:
        from zhon import cedict

        trad, simp = set(cedict.traditional), set(cedict.simplified)
        _variant_sets = (frozenset(trad - simp), frozenset(simp - trad))
    return _variant_sets


def chinese_variant(text: str, hint: str | None = None) -> str:
    """``"zh-Hant"`` or ``"zh-Hans"`` for Chinese *text*, by counting script-only characters.

    Ties (including text that only uses characters shared by both systems) follow a
    Chinese *hint* and otherwise default to Simplified.
    """
    trad_only, simp_only = _chinese_sets()
    trad = sum(1 for ch in text if ch in trad_only)
    simp = sum(1 for ch in text if ch in simp_only)
    if trad > simp:
        return "zh-Hant"
    if simp > trad:
        return "zh-Hans"
    hinted = normalize_language(hint)
    return hinted if hinted in ("zh-Hans", "zh-Hant") else "zh-Hans"


# --- lingua ----------------------------------------------------------------------------

_detector: LanguageDetector | None = None
_detector_lock = threading.Lock()
_LINGUA_TO_CODE: dict[Any, str] = {}


def _get_detector() -> LanguageDetector:
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                from lingua import Language, LanguageDetectorBuilder

                _LINGUA_TO_CODE.update(
                    {
                        Language.ENGLISH: "en",
                        Language.SPANISH: "es",
                        Language.RUSSIAN: "ru",
                        Language.VIETNAMESE: "vi",
                        Language.CHINESE: "zh",
                    }
                )
                # lazily loaded models: only Latin-script text reaches lingua (the script rules
                # decide Chinese and Russian), so only the en/es/vi models are ever read, about
                # 80 MB; preloading all five would add 75 MB for nothing. The server's warm-up
                # reads them before the first customer (shopdesk.app._load_models).
                _detector = LanguageDetectorBuilder.from_languages(*_LINGUA_TO_CODE).build()
    return _detector


def warm_up() -> None:
    """Load now what the first messages would load lazily: the word model and lingua's models of
    the Latin-script languages (the only text that reaches lingua). Most English and Spanish
    messages never reach lingua, so a warm-up sentence no longer loads it by itself."""
    _latin_word_model()
    detector = _get_detector()
    for sample in ("could you please tell me the status of my parcel", "me puedes decir dónde está mi pedido"):
        detector.compute_language_confidence_values(sample)


# --- Russian in Latin letters, Vietnamese without tones --------------------------------

# lingua knows Russian only in Cyrillic and reads toneless Vietnamese as anything. A word
# model learnt from our own intent examples (Russian transliterated, Vietnamese with its
# tones dropped, English and Spanish as written) recognises the typical words of those two
# ("gde moy zakaz", "don hang cua toi dau"); it only decides when it is sure.
_LATIN_LANGS = ("en", "es", "ru", "vi")
#: log-likelihood lead (natural log) of Russian/Vietnamese over the runner-up to decide
LATIN_MIN_LEAD = 6.0
_latin_model: tuple[dict[str, dict[str, float]], dict[str, float]] | None = None
_latin_lock = threading.Lock()


def _latin_word_model() -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per language, log P(word) with add-one smoothing, and the log probability of an
    unseen word."""
    global _latin_model
    if _latin_model is None:
        with _latin_lock:
            if _latin_model is None:
                import math
                from collections import Counter

                from .intents import _fold_accents, _transliterate, load_examples

                counts: dict[str, Counter[str]] = {lang: Counter() for lang in _LATIN_LANGS}
                for e in load_examples():
                    if e.language not in counts:
                        continue
                    text = e.text.lower()
                    if e.language == "ru":
                        text = _transliterate(text)
                    elif e.language in ("vi", "es"):
                        text = _fold_accents(text)
                    counts[e.language].update(re.findall(r"[a-z]+", text))
                vocabulary = set().union(*counts.values())
                logp: dict[str, dict[str, float]] = {}
                unseen: dict[str, float] = {}
                for lang, c in counts.items():
                    total = sum(c.values()) + len(vocabulary)
                    logp[lang] = {w: math.log((n + 1) / total) for w, n in c.items()}
                    unseen[lang] = math.log(1 / total)
                _latin_model = (logp, unseen)
    return _latin_model


def _latin_words_guess(words: str) -> str | None:
    """``"ru"`` or ``"vi"`` when the (accent-free, ASCII) words of a text are clearly
    transliterated Russian or toneless Vietnamese, else ``None``."""
    tokens = words.split()
    if len(tokens) < 2 or not all(t.isascii() for t in tokens):
        return None
    try:
        logp, unseen = _latin_word_model()
    except Exception:  # pragma: no cover - missing data must not break detection
        return None
    known = [t for t in tokens if any(t in logp[lang] for lang in ("ru", "vi"))]
    if len(known) < 2:
        return None
    scores = {lang: sum(logp[lang].get(t, unseen[lang]) for t in tokens) for lang in _LATIN_LANGS}
    ranked = sorted(scores, key=lambda lang: -scores[lang])
    best, second = ranked[0], ranked[1]
    if best in ("ru", "vi") and scores[best] - scores[second] >= LATIN_MIN_LEAD:
        return best
    return None


#: English or Spanish is decided by the same word model, without lingua, when its lead over the
#: runner-up is at least this (natural log), with three words or more and most of them known.
#: On the held-out sets lingua agrees with every such decision (lingua costs ~0.1 ms a text).
EN_ES_MIN_LEAD = 10.0
EN_ES_MIN_KNOWN = 0.6
_FAST_EN_ES = True


def _en_es_words_guess(words: str) -> str | None:
    """``"en"`` or ``"es"`` when the words of a Latin-script text (Spanish accents folded) are
    clearly one of them by the word model, else ``None`` (lingua decides)."""
    from .intents import _fold_accents

    tokens = _fold_accents(words).split()
    if len(tokens) < 3 or not all(t.isascii() for t in tokens):
        return None
    try:
        logp, unseen = _latin_word_model()
    except Exception:  # pragma: no cover - missing data must not break detection
        return None
    scores = {lang: sum(logp[lang].get(t, unseen[lang]) for t in tokens) for lang in _LATIN_LANGS}
    ranked = sorted(scores, key=lambda lang: -scores[lang])
    best, second = ranked[0], ranked[1]
    if best not in ("en", "es") or scores[best] - scores[second] < EN_ES_MIN_LEAD:
        return None
    known = logp[best]
    if sum(t in known for t in tokens) < EN_ES_MIN_KNOWN * len(tokens):
        return None
    return best


# --- script analysis -------------------------------------------------------------------

# Tokens that carry no language: URLs, e-mail addresses, anything with a digit in it
# (order and tracking numbers such as 1Z999AA10123456784).
# ASCII classes only: Chinese has no spaces, so "\S+" would swallow a whole sentence.
_NOISE = re.compile(
    r"(?:https?://|www\.)[A-Za-z0-9._~:/?#@!$&'()*+,;=%\-]+"
    r"|[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+"
    r"|[A-Za-z0-9#№_\-]*[0-9][A-Za-z0-9#№_\-]*",
    re.IGNORECASE,
)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[\x00-\x7f\u00c0-\u024f\u1e00-\u1eff]")
_WORDS = re.compile(r"[^\W\d_]+")
# Latin letters that occur in Vietnamese but never in Spanish or English.
_SPANISH_ACCENTED = set("áéíóúüñ")
_VI_BASE = set("ăâêôơưđ")


def _is_vi_strong(ch: str) -> bool:
    """ơ ư đ ă and the stacked-diacritic letters (ạ ả ấ … ỹ): Vietnamese and little else."""
    ch = ch.lower()
    return ch in "ơưđă" or "\u1ea0" <= ch <= "\u1ef9"


def _is_vi_letter(ch: str) -> bool:
    ch = ch.lower()
    if ch in _SPANISH_ACCENTED:
        return False
    if ch in _VI_BASE:
        return True
    if "\u1ea0" <= ch <= "\u1ef9":  # Latin Extended Additional: ạ ả ấ ầ ẩ ẫ ậ ... ỹ
        return True
    return ch in "àèìòùỳãẽĩõũỹ"


# One-word messages whose language is clear, or that mean nothing about the language
# ("*": prefer the hint). First listed language wins when the hint is not among them.
_SHORT_WORDS: dict[str, tuple[str, ...]] = {
    **{w: ("en", "*") for w in (
        "ok", "okay", "oke", "okie", "k", "kk", "hi", "hii", "hello", "helo", "hey", "yo",
        "thx", "thanks", "thank you", "ty", "tks", "tysm", "bye", "bye bye", "byebye",
        "test", "lol", "hmm", "hm", "yes", "yep", "yeah", "ya", "pls", "plz", "please",
        "help", "sorry", "cool", "nice", "great", "sure", "good", "fine", "wow",
        "hiya", "hiii", "heyy", "cya", "human", "agent", "operator", "bot",
    )},
    **{w: ("es",) for w in (
        "hola", "holi", "gracias", "grax", "vale", "bueno", "buenas", "adios", "porfa",
        "dale", "listo", "claro", "ayuda", "perdon", "genial",
    )},
    **{w: ("es", "en") for w in ("no", "si")},
    **{w: ("es", "vi") for w in ("chao", "alo")},
    **{w: ("vi",) for w in ("cam on", "xin chao", "vang", "shop oi", "cam on shop")},
    **{w: ("vi", "ru") for w in ("da",)},
    **{w: ("ru",) for w in ("spasibo", "privet", "poka", "zdravstvuyte")},
}


def _resolve(langs: tuple[str, ...], hint: str | None) -> str:
    if hint is not None and (hint in langs or "*" in langs):
        return hint
    first = langs[0]
    return DEFAULT_LANGUAGE if first == "*" else first


def detect_language(text: str, hint: str | None = None) -> str:
    """Return the language of *text* as one of :data:`SUPPORTED_LANGUAGES`.

    *hint* is the platform's idea of the user's language (Telegram ``language_code``,
    Slack locale, a stored preference), normalised with :func:`normalize_language`.
    Text that is empty, has no letters (emoji, ``1001``, ``#1001``) or is too short to
    judge (``ok``) gives the hint if supported, else ``"en"``. Never raises.
    """
    hint_code = normalize_language(hint)
    fallback = hint_code or DEFAULT_LANGUAGE
    if not text or not isinstance(text, str):
        return fallback
    sample = unicodedata.normalize("NFKC", text[:MAX_DETECT_CHARS])
    sample = _NOISE.sub(" ", sample)
    letters = [ch for ch in sample if ch.isalpha()]
    if not letters:
        return fallback

    if sample.isascii():  # plain Latin: no Han, Cyrillic or Vietnamese letters to count
        han = cyrillic = vi_letters = vi_strong = 0
        latin = letters
    else:
        joined = "".join(letters)
        han = len(_HAN.findall(joined))
        cyrillic = len(_CYRILLIC.findall(joined))
        latin = _LATIN.findall(joined)
        accented = [ch for ch in latin if not ch.isascii()]  # ASCII letters are never Vietnamese
        vi_letters = sum(1 for ch in accented if _is_vi_letter(ch))
        vi_strong = sum(1 for ch in accented if _is_vi_strong(ch))
    others = len(letters) - han
    if han and han * 2 >= others:
        return chinese_variant(sample, hint_code)
    if cyrillic and cyrillic * 2 >= len(letters):
        return "ru"
    if latin and vi_letters and vi_letters >= 0.15 * len(latin):
        return "vi"

    words = " ".join(_WORDS.findall(sample.lower()))
    if words in _SHORT_WORDS:
        return _resolve(_SHORT_WORDS[words], hint_code)
    if len(letters) < MIN_LETTERS:
        return fallback

    latin_guess = _latin_words_guess(words)
    if latin_guess is not None:
        return latin_guess
    if not vi_strong and _FAST_EN_ES and hint_code in (None, "en", "es"):
        guess = _en_es_words_guess(words)
        if guess is not None and hint_code in (None, guess):
            return guess

    try:
        values = _get_detector().compute_language_confidence_values(sample)
    except Exception:  # pragma: no cover - lingua failing must not break the bot
        return fallback
    if not values or values[0].value <= 0.0:
        return fallback
    top = values[0]
    second = values[1].value if len(values) > 1 else 0.0
    code = _LINGUA_TO_CODE.get(top.language, DEFAULT_LANGUAGE)
    if (
        vi_strong
        and vi_strong >= 0.05 * len(latin)
        and code != "vi"
        and not (code in ("en", "es") and top.value >= 0.9)
    ):
        # "cho em gặp admin": one unmistakable letter beats a shaky Spanish guess,
        # but not a confident English text that quotes "phở".
        return "vi"
    confident = top.value >= MIN_CONFIDENCE and top.value - second >= MIN_LEAD
    if not confident and hint_code is not None:
        return hint_code
    if code == "zh":
        return chinese_variant(sample, hint_code)
    return code
