"""Several requests in one message: "where is my order 1001 and can I return it?".

The message is cut at sentence ends and at the conjunctions that join two requests (per
language, in ``bot/dialog/data/<lang>.yaml`` under ``joins``), and each part is classified on
its own. Parts that name a real request (not a greeting, not "unknown") become the requests,
in the order written, each once. One request (or none) means the message is left as it is.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache

from bot.dialog.choices import DATA_DIR, fold
from bot.nlu import get_classifier
from bot.nlu.intents import CLARIFY_BELOW, CONFIDENT, IntentClassifier
from inbox.replies import SUPPORTED_LANGUAGES

__all__ = ["Request", "clear_cache", "split_requests", "MAX_PARTS"]

MAX_PARTS = 4
_MAX_CHARS = 400
_MIN_PART_CHARS = 4
_SOCIAL = frozenset({"unknown", "greeting", "thanks", "goodbye"})
#: a part that hands over to a person must say so clearly ("the shirt" is not a complaint)
_HANDOFF = frozenset({"complaint", "human_agent", "payment_issue"})
_MIN_UNSURE_WORDS = 3
#: split_requests' answers kept, by text (a turn asks up to twice; customers repeat themselves),
#: least recently used dropped first; emptied when the process-wide classifier is replaced
SPLIT_CACHE_SIZE = 1024
_split_lock = threading.Lock()
_split_kept: OrderedDict[str, tuple[Request, ...]] = OrderedDict()
_split_model: list[object] = [None]


@dataclass(frozen=True)
class Request:
    text: str
    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...]


@cache
def _joins() -> re.Pattern[str]:
    import yaml

    words: set[str] = set()
    for lang in SUPPORTED_LANGUAGES:
        path = DATA_DIR / f"{lang}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
        words.update(str(w) for w in (data or {}).get("joins") or [])
    latin = sorted((w for w in words if not any("\u3400" <= ch <= "\u9fff" for ch in w)), key=len, reverse=True)
    cjk = sorted((w for w in words if any("\u3400" <= ch <= "\u9fff" for ch in w)), key=len, reverse=True)
    parts = [r"(?<=[?!？！。;；])", r"[.](?=\s)"]
    if latin:
        parts.append(r"[,，]?\s+(?:" + "|".join(re.escape(w) for w in latin) + r")\s+")
    if cjk:
        parts.append(r"[,，]?(?:" + "|".join(re.escape(w) for w in cjk) + r")")
    return re.compile("|".join(parts), re.IGNORECASE)


def _parts(text: str) -> list[str]:
    pieces = [p.strip(" ,，.。") for p in _joins().split(text)]
    return [p for p in pieces if len(fold(p)) >= _MIN_PART_CHARS][: MAX_PARTS + 1]


def _sentence(part: str) -> bool:
    folded = fold(part)
    cjk = sum(1 for ch in folded if "\u3400" <= ch <= "\u9fff")
    return cjk >= 4 or len(folded.split()) >= _MIN_UNSURE_WORDS


def clear_cache() -> None:
    """Forget every kept split (``bot.forget``: a customer was erased)."""
    with _split_lock:
        _split_kept.clear()


def split_requests(text: str, lang: str | None = None) -> list[Request]:
    """The requests in ``text``, in order; fewer than two means "one message, one request".
    (*lang* does not change the answer: the joins of every language are tried.)"""
    if not text or len(text) > _MAX_CHARS:
        return []
    classifier = get_classifier()
    with _split_lock:
        if _split_model[0] is not classifier:
            _split_kept.clear()
            _split_model[0] = classifier
        kept = _split_kept.get(text)
        if kept is not None:
            _split_kept.move_to_end(text)
            return list(kept)
    found = _split(text, classifier)
    with _split_lock:
        if _split_model[0] is classifier:
            _split_kept[text] = tuple(found)
            while len(_split_kept) > SPLIT_CACHE_SIZE:
                _split_kept.popitem(last=False)
    return found


def _split(text: str, classifier: IntentClassifier) -> list[Request]:
    parts = _parts(text)
    if len(parts) < 2 or len(parts) > MAX_PARTS:
        return []
    found: list[Request] = []
    # every part classified in one vectorized pass (each as ``predict`` of that part alone)
    for part, prediction in zip(parts, classifier.predict_many(parts), strict=True):
        if prediction.intent in _SOCIAL or prediction.confidence < CLARIFY_BELOW:
            continue
        if prediction.confidence < CONFIDENT and (prediction.intent in _HANDOFF or not _sentence(part)):
            continue  # "… and the shirt": part of one request, not a second one
        if any(r.intent == prediction.intent for r in found):
            continue
        ranking = tuple((str(i), float(c)) for i, c in prediction.ranking[:5])
        found.append(Request(part, prediction.intent, float(prediction.confidence), ranking))
    return found if len(found) >= 2 else []
