"""Batch tools around the NLU: classify a stream of messages, evaluate on a labelled CSV.

The command line is ``shopdesk nlu`` (``shopdesk/cli/nlu.py``)::

    shopdesk nlu classify < messages.jsonl > results.jsonl
    shopdesk nlu eval tests/nlu_heldout/      # a labelled CSV or a folder of them
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple, TextIO

from shopbase.text import storable

from . import analyze, get_classifier
from .evaluate import EvalReport, IntentStats, evaluate_path, format_report
from .intents import IntentClassifier

__all__ = [
    "ClassifyCounts", "EvalReport", "IntentStats", "LineError", "classify_stream", "evaluate_csv", "format_report",
]


_SURROGATES = re.compile("[\ud800-\udfff]")


class LineError(ValueError):
    """One input line that cannot be classified; ``str(exc)`` says why."""


def _parse_line(line: str) -> tuple[str, str | None]:
    """(text, language hint) of one input line: a JSON object with a string ``text`` (and an
    optional string ``lang``), else the line itself as plain text. A JSON object without a
    string ``text`` is a broken record, not a message: :class:`LineError`."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            text = obj.get("text")
            if not isinstance(text, str):
                raise LineError('a JSON line needs a string "text"')
            lang = obj.get("lang")
            if lang is not None and not isinstance(lang, str):
                raise LineError('"lang" must be a string such as "en"')
            line = text
            return _storable(line), lang
    return _storable(line), None


def _storable(text: str) -> str:
    if _SURROGATES.search(text):  # invalid UTF-8 on stdin, or a "\ud800" escape in JSON
        raise LineError("the text is not valid UTF-8 / Unicode")
    return str(storable(text))


class ClassifyCounts(NamedTuple):
    classified: int
    failed: int


def classify_stream(inp: TextIO, out: TextIO, *, classifier: IntentClassifier | None = None) -> ClassifyCounts:
    """Classify every non-blank line of *inp*, writing one JSON line per input to *out*.

    An input line is either a JSON object ``{"text": ..., "lang": optional}`` or plain
    text. Output: ``{"text", "intent", "confidence", "language", "entities": [{"type",
    "value", "start", "end"}]}`` (UTF-8 as is, not ``\\u`` escaped). A line that cannot be
    classified gets ``{"line": N, "error": "..."}`` in its place and the rest go on.
    """
    classified = failed = 0
    for number, raw in enumerate(inp, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        try:
            text, lang = _parse_line(line)
        except LineError as exc:
            out.write(json.dumps({"line": number, "error": str(exc)}) + "\n")
            failed += 1
            continue
        result = analyze(text, lang, classifier=classifier)
        record = {
            "text": result.text,
            "intent": result.intent,
            "confidence": round(result.confidence, 4),
            "language": result.language,
            "entities": [e.to_dict() for e in result.entities],
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        classified += 1
    return ClassifyCounts(classified, failed)


def evaluate_csv(path: str | Path, *, classifier: IntentClassifier | None = None) -> EvalReport:
    """Accuracy of the intent classifier on a labelled CSV (``text,intent[,lang]``) or a folder
    of them; see :func:`bot.nlu.evaluate.evaluate_path`."""
    return evaluate_path(path, classifier=classifier or get_classifier())
