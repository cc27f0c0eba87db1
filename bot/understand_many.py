"""Understanding a micro-batch of messages in one vectorized call.

:func:`analyze_many` gives, for each ``(text, hint_lang)``, exactly what
:func:`bot.nlu.analyze` gives for it (tests/test_understand_many.py holds them equal), but the
intent and tone models score the whole batch at once (``predict_many``, ``hostility_many``):
one matrix product for the batch instead of one per message. Language and entities are per
text, as in ``analyze``. ``Pipeline.process_many`` calls it once per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.nlu import (
    MAX_CLASSIFY_CHARS,
    NLUResult,
    detect_language,
    extract_entities,
    get_classifier,
    get_tone,
)

__all__ = ["analyze_many"]


def analyze_many(items: Sequence[tuple[str, str | None]]) -> list[NLUResult]:
    """``[analyze(text, hint_lang=hint) for text, hint in items]``, the models run once for all."""
    texts = [text if isinstance(text, str) else ("" if text is None else str(text)) for text, _ in items]
    if not texts:
        return []
    clipped = [text[:MAX_CLASSIFY_CHARS] for text in texts]
    predictions = get_classifier().predict_many(clipped)
    hostility = get_tone().hostility_many(clipped)
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
        for text, (_, hint), prediction, score in zip(texts, items, predictions, hostility, strict=True)
    ]
