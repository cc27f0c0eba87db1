"""Understanding a micro-batch of messages in one vectorized call.

:func:`analyze_many` takes the batch as ``(text, hint_lang)`` pairs, as ``Pipeline.process_many``
reads them, and gives for each exactly what :func:`bot.nlu.analyze` gives for it
(tests/test_understand_many.py and tests/test_nlu_batch.py hold them equal): it is
:func:`bot.nlu.analyze_many`, where each text is normalised once and the intent and tone models
score the whole batch with one matrix product per view.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot import nlu
from bot.nlu import NLUResult

__all__ = ["analyze_many"]


def analyze_many(items: Sequence[tuple[str, str | None]]) -> list[NLUResult]:
    """``[analyze(text, hint_lang=hint) for text, hint in items]``, the models run once for all."""
    if not items:
        return []
    return nlu.analyze_many([text for text, _ in items], [hint for _, hint in items])
