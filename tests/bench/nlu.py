"""Understanding time per message: the median of each step (language, intent, tone, entities)
and of the whole ``analyze()`` (with its p90 and p99), and per message of ``analyze_many()`` in
batches of :data:`BATCH` (median CPU time), on the labelled messages of ``tests/nlu_heldout.csv`` (six
languages; only timings are reported, nothing of the texts)."""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["time_understanding"]

#: messages per :func:`bot.nlu.analyze_many` call in the batch figure
BATCH = 32


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
    import bot.nlu as nlu

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
        if name == "analyze":
            cuts = statistics.quantiles(times, n=100)
            result["analyze_p90_ms"], result["analyze_p99_ms"] = round(cuts[89] * 1000, 3), round(cuts[98] * 1000, 3)
    if hasattr(nlu, "analyze_many"):  # a worker's micro-batch: one vectorized call for BATCH messages
        # CPU time of this thread: a batch takes milliseconds, long enough for a busy machine to
        # preempt it, which would swell a wall-clock figure
        batch_times = []
        for _ in range(rounds):
            for start in range(0, len(texts), BATCH):
                chunk = texts[start:start + BATCH]
                t0 = time.thread_time()
                nlu.analyze_many(chunk)
                batch_times.append((time.thread_time() - t0) / len(chunk))
        result[f"analyze_many{BATCH}_cpu_ms"] = round(statistics.median(batch_times) * 1000, 3)
    return result
