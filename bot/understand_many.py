"""Understanding a micro-batch of messages in one vectorized call.

:func:`analyze_many` takes the batch as ``(text, hint_lang)`` pairs, as ``Pipeline.process_many``
reads them, and gives for each exactly what :func:`bot.nlu.analyze` gives for it
(tests/test_understand_many.py and tests/test_nlu_batch.py hold them equal): it is
:func:`bot.nlu.analyze_many`, where each text is normalised once and the intent and tone models
score the whole batch with one matrix product per view.

Short texts come back again and again ("hi", "yes", "thanks", "2", a menu's answer), so the
results of texts of at most :data:`CACHED_CHARS` characters are kept, keyed by the text and its
hint (the only inputs of :func:`bot.nlu.analyze` besides the models), at most
:data:`CACHE_SIZE` of them, least recently used dropped first. :class:`~bot.nlu.NLUResult` is
frozen, so a kept result can be handed out again; the cache is emptied whenever the process-wide
intent or tone model is another object (``set_classifier``/``set_tone``, a reload).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from bot import nlu
from bot.nlu import NLUResult

__all__ = ["CACHED_CHARS", "CACHE_SIZE", "analyze_many", "clear_cache"]

#: texts up to this many characters have their results kept
CACHED_CHARS = 48
#: at most this many kept results (about 1.8 KB each, mostly the 15-intent ranking: ~3.7 MB when full)
CACHE_SIZE = 2048

_lock = threading.Lock()
_kept: OrderedDict[tuple[str, str | None], NLUResult] = OrderedDict()
_models: tuple[object, object] | None = None


def _same(kept: tuple[object, object] | None, models: tuple[object, object]) -> bool:
    return kept is not None and kept[0] is models[0] and kept[1] is models[1]


def clear_cache() -> None:
    """Forget every kept result."""
    with _lock:
        _kept.clear()


def analyze_many(items: Sequence[tuple[str, str | None]]) -> list[NLUResult]:
    """``[analyze(text, hint_lang=hint) for text, hint in items]``, the models run once for all
    the texts not already kept."""
    global _models
    if not items:
        return []
    models = (nlu.get_classifier(), nlu.get_tone())
    results: list[NLUResult | None] = [None] * len(items)
    missing: list[int] = []
    with _lock:
        if not _same(_models, models):
            _kept.clear()
            _models = models
        for i, item in enumerate(items):
            kept = _kept.get(item) if isinstance(item[0], str) and len(item[0]) <= CACHED_CHARS else None
            if kept is None:
                missing.append(i)
            else:
                _kept.move_to_end(item)
                results[i] = kept
    if missing:
        fresh = nlu.analyze_many([items[i][0] for i in missing], [items[i][1] for i in missing],
                                 classifier=models[0], tone=models[1])
        with _lock:
            keep = _same(_models, models)  # not replaced meanwhile
            for i, result in zip(missing, fresh, strict=True):
                results[i] = result
                item = items[i]
                if keep and isinstance(item[0], str) and len(item[0]) <= CACHED_CHARS:
                    _kept[item] = result
                    _kept.move_to_end(item)
            while len(_kept) > CACHE_SIZE:
                _kept.popitem(last=False)
    return [r for r in results if r is not None]
