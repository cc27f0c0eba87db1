"""Understanding time per message: the median of each step (language, intent, tone, entities)
and of the whole ``analyze()``, on the labelled messages of ``tests/nlu_heldout.csv`` (six
languages; only timings are reported, nothing of the texts)."""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["time_understanding"]


def _steps() -> dict[str, Callable[[str], Any]]:
    import bot.nlu as nlu

    steps: dict[str, Callable[[str], Any]] = {}
    if hasattr(nlu, "detect_language"):
        steps["language"] = nlu.detect_language
    if hasattr(nlu, "get_classifier"):
        steps["intent"] = nlu.get_classifier().predict
    if hasattr(nlu, "get_tone"):
        steps["tone"] = nlu.get_tone().hostility
    if hasattr(nlu, "extract_entities"):
        steps["entities"] = nlu.extract_entities
    steps["analyze"] = nlu.analyze
    return steps


def time_understanding(rounds: int = 3) -> dict[str, Any]:
    """Median milliseconds per message of each step (each text timed ``rounds`` times)."""
    with (Path(__file__).resolve().parent.parent / "nlu_heldout.csv").open(encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    started = time.perf_counter()
    steps = _steps()  # loads (or trains) the models
    result: dict[str, Any] = {"messages": len(texts), "models_loaded_s": round(time.perf_counter() - started, 2)}
    for name, step in steps.items():
        for text in texts[:20]:
            step(text)  # warm up (lazy detectors, caches)
        times = []
        for _ in range(rounds):
            for text in texts:
                t0 = time.perf_counter()
                step(text)
                times.append(time.perf_counter() - t0)
        result[f"{name}_ms"] = round(statistics.median(times) * 1000, 3)
    return result
