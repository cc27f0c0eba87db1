"""Natural-language understanding for the bot: language, intent and entities of a message.

>>> result = analyze("where is my order #1001?", hint_lang="en-US")   # doctest: +SKIP
>>> result.language, result.intent, [e.value for e in result.entities]  # doctest: +SKIP
('en', 'track_order', ['#1001'])

:func:`analyze` never raises on odd text (empty, emoji only, 10,000 characters, template
syntax); only the first :data:`~bot.nlu.intents.MAX_CLASSIFY_CHARS` characters are
classified and the first :data:`~bot.nlu.entities.MAX_SCAN_CHARS` scanned for entities.

The intent model is loaded (or trained and cached, a few seconds) on first use, once per
process; call :func:`get_classifier` at start-up to pay that before the first message,
or :func:`set_classifier` to inject one (tests, a custom cache directory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .entities import ENTITY_TYPES, Entity, extract_entities
from .intents import (
    CLARIFY_BELOW,
    CONFIDENT,
    INTENTS,
    MAX_CLASSIFY_CHARS,
    IntentClassifier,
    IntentPrediction,
    ProcessWide,
    _split_cjk,
    normalize_text,
)
from .language import SUPPORTED_LANGUAGES, detect_language, normalize_language
from .tone import HOSTILE_AT, ToneClassifier, get_tone, set_tone

__all__ = [
    "CLARIFY_BELOW",
    "CONFIDENT",
    "ENTITY_TYPES",
    "INTENTS",
    "SUPPORTED_LANGUAGES",
    "Entity",
    "IntentClassifier",
    "IntentPrediction",
    "NLUResult",
    "analyze",
    "analyze_many",
    "detect_language",
    "extract_entities",
    "get_classifier",
    "get_tone",
    "HOSTILE_AT",
    "ToneClassifier",
    "set_tone",
    "normalize_language",
    "set_classifier",
    "train_out_of_process",
]


@dataclass(frozen=True)
class NLUResult:
    """What the bot understood of one message.

    ``language`` is one of :data:`SUPPORTED_LANGUAGES`; ``intent`` one of :data:`INTENTS`
    with ``confidence`` in 0..1 (see :data:`CONFIDENT` / :data:`CLARIFY_BELOW`);
    ``entities`` are ordered by position; ``ranking`` is every intent with its
    probability, best first.
    """

    text: str
    language: str
    intent: str
    confidence: float
    entities: tuple[Entity, ...]
    ranking: tuple[tuple[str, float], ...]
    #: how hostile the message is, 0..1 (see :mod:`bot.nlu.tone`)
    hostility: float = 0.0

    @property
    def hostile(self) -> bool:
        """Strongly negative (insults, swearing, fury, threats): a person should take over."""
        return self.hostility >= HOSTILE_AT

    @property
    def needs_clarification(self) -> bool:
        """A real intent below :data:`CONFIDENT`: confirm it before acting."""
        return self.intent != "unknown" and self.confidence < CONFIDENT

    def entities_of(self, type_: str) -> list[Entity]:
        return [e for e in self.entities if e.type == type_]


_CLASSIFIER: ProcessWide[IntentClassifier] = ProcessWide(IntentClassifier.load_or_train)


def get_classifier() -> IntentClassifier:
    """The process-wide intent classifier, loaded or trained on first call."""
    return _CLASSIFIER.get()


def set_classifier(classifier: IntentClassifier | None) -> None:
    """Replace the process-wide classifier; ``None`` makes the next use load it again."""
    _CLASSIFIER.set(classifier)


def train_out_of_process(timeout: float = 600.0) -> bool:
    """Train and cache the intent and tone models in a child process when their cache files are
    missing, so that this process (the server) never imports scikit-learn: training needs it,
    serving does not (:mod:`bot.nlu.linear`), and it would stay resident (~75 MB). True when the
    caches are there afterwards; otherwise the next :func:`get_classifier` trains in-process."""
    import subprocess
    import sys

    if IntentClassifier.cached() and ToneClassifier.cached():
        return True
    code = "from bot.nlu import intents, tone; intents.IntentClassifier.load_or_train(); tone.ToneClassifier.load_or_train()"
    try:
        subprocess.run([sys.executable, "-c", code], check=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return IntentClassifier.cached() and ToneClassifier.cached()


def analyze(
    text: str, hint_lang: str | None = None, *, classifier: IntentClassifier | None = None,
    tone: ToneClassifier | None = None,
) -> NLUResult:
    """Language, intent and entities of *text*.

    *hint_lang* is the platform's language tag for the user (Telegram ``language_code``,
    Slack locale); it decides the language of texts too short to tell, and is the
    fallback when detection is unsure. *classifier* overrides the process-wide one.
    """
    return analyze_many([text], [hint_lang], classifier=classifier, tone=tone)[0]


def analyze_many(
    texts: Sequence[str], hint_langs: Sequence[str | None] | None = None, *,
    classifier: IntentClassifier | None = None, tone: ToneClassifier | None = None,
) -> list[NLUResult]:
    """:func:`analyze` of several messages (a worker's micro-batch) with one vectorized model
    pass each for intent and tone; every result equals :func:`analyze` of that message alone.
    *hint_langs*, when given, has one hint per text.

    Each text is normalised once (:func:`~bot.nlu.intents.normalize_text`) and that is shared
    by the intent and tone models."""
    texts = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in texts]
    if hint_langs is None:
        hint_langs = [None] * len(texts)
    elif len(hint_langs) != len(texts):
        raise ValueError("one hint per text")
    cut = [t[:MAX_CLASSIFY_CHARS] for t in texts]
    normalized = [normalize_text(t) for t in cut]
    words = [_split_cjk(n) for n in normalized]
    predictions = (classifier or get_classifier()).predict_normalized(normalized, words)
    # the tone model reads the text with its whitespace collapsed: the same normalised text
    # unless the collapsing changed it (then normalised again)
    calm = [" ".join(t.split()) for t in cut]
    same = [c == t for c, t in zip(calm, cut)]
    tone_normalized = [n if ok else normalize_text(c) for n, ok, c in zip(normalized, same, calm)]
    tone_words = [w if ok else _split_cjk(n) for w, ok, n in zip(words, same, tone_normalized)]
    hostility = (tone or get_tone()).hostility_prepared(calm, tone_normalized, tone_words)
    return [
        NLUResult(
            text=text,
            language=detect_language(text, hint),
            intent=prediction.intent,
            confidence=prediction.confidence,
            entities=tuple(extract_entities(text)),
            ranking=tuple(prediction.ranking),
            hostility=score,
        )
        for text, hint, prediction, score in zip(texts, hint_langs, predictions, hostility)
    ]
