"""Batch tools around the NLU: classify a stream of messages, evaluate on a labelled CSV.

Command line::

    python -m bot.nlu.tools classify < messages.jsonl > results.jsonl
    python -m bot.nlu.tools evaluate tests/nlu_heldout.csv
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TextIO

from shopbase.text import storable

from . import analyze, get_classifier
from .intents import INTENTS, IntentClassifier

__all__ = [
    "ClassifyCounts", "EvalReport", "IntentStats", "LineError", "classify_stream", "evaluate_csv", "format_report",
    "main",
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


@dataclass(frozen=True)
class IntentStats:
    precision: float
    recall: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    """Result of :func:`evaluate_csv`. ``confusions`` are (gold, predicted, count), most
    frequent first; ``per_language`` is accuracy by the optional ``lang`` column."""

    total: int
    correct: int
    accuracy: float
    per_intent: dict[str, IntentStats]
    confusions: list[tuple[str, str, int]]
    per_language: dict[str, float] = field(default_factory=dict)

    def worst_intents(self, n: int = 3) -> list[tuple[str, float]]:
        """The *n* intents with the lowest recall (among those in the data)."""
        rows = [(name, s.recall) for name, s in self.per_intent.items() if s.support]
        return sorted(rows, key=lambda r: (r[1], r[0]))[:n]


def _read_labelled_csv(path: Path) -> list[tuple[str, str, str | None]]:
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    with fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        if "text" not in columns or "intent" not in columns:
            raise ValueError(
                f"{path}: the header must have columns text,intent[,lang]; found {','.join(columns) or 'nothing'}"
            )
        reader.fieldnames = columns
        rows = []
        try:
            for row in reader:
                text, intent = row.get("text"), (row.get("intent") or "").strip()
                if text is None or not intent:
                    raise ValueError(f"{path}:{reader.line_num}: missing text or intent")
                if intent not in INTENTS:
                    raise ValueError(f"{path}:{reader.line_num}: unknown intent {intent!r}")
                lang = (row.get("lang") or "").strip() or None
                rows.append((text, intent, lang))
        except csv.Error as exc:
            raise ValueError(f"{path}:{reader.line_num}: bad CSV: {exc}") from exc
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def evaluate_csv(path: str | Path, *, classifier: IntentClassifier | None = None) -> EvalReport:
    """Accuracy of the intent classifier on a CSV with a header ``text,intent[,lang]``.

    Raises ``ValueError`` with a one-line message for a missing file or column, an empty
    file, or an intent name that is not in :data:`~bot.nlu.intents.INTENTS`.
    """
    rows = _read_labelled_csv(Path(path))
    clf = classifier or get_classifier()
    predictions = clf.predict_many([text for text, _, _ in rows])
    gold = [intent for _, intent, _ in rows]
    predicted = [p.intent for p in predictions]

    pairs = Counter(zip(gold, predicted))
    per_intent = {}
    for name in INTENTS:
        tp = pairs[(name, name)]
        support = sum(1 for g in gold if g == name)
        n_predicted = sum(1 for p in predicted if p == name)
        if support or n_predicted:
            per_intent[name] = IntentStats(
                precision=tp / n_predicted if n_predicted else 0.0,
                recall=tp / support if support else 0.0,
                support=support,
            )
    confusions = sorted(
        ((g, p, n) for (g, p), n in pairs.items() if g != p), key=lambda r: (-r[2], r[0], r[1])
    )
    by_lang: dict[str, list[bool]] = {}
    for (_, intent, lang), p in zip(rows, predicted):
        if lang:
            by_lang.setdefault(lang, []).append(intent == p)
    correct = sum(1 for g, p in zip(gold, predicted) if g == p)
    return EvalReport(
        total=len(rows),
        correct=correct,
        accuracy=correct / len(rows),
        per_intent=per_intent,
        confusions=confusions,
        per_language={k: sum(v) / len(v) for k, v in sorted(by_lang.items())},
    )


def format_report(report: EvalReport, max_confusions: int = 10) -> str:
    """A plain-text table of :class:`EvalReport` for a terminal."""
    lines = [f"accuracy {report.accuracy:.3f} ({report.correct}/{report.total})", ""]
    lines.append(f"{'intent':<16}{'precision':>10}{'recall':>8}{'support':>9}")
    for name, s in report.per_intent.items():
        lines.append(f"{name:<16}{s.precision:>10.2f}{s.recall:>8.2f}{s.support:>9}")
    if report.per_language:
        lines += ["", "accuracy by language:"]
        lines += [f"  {lang:<8} {acc:.3f}" for lang, acc in report.per_language.items()]
    if report.confusions:
        lines += ["", "most confused (gold -> predicted):"]
        lines += [f"  {g} -> {p}: {n}" for g, p, n in report.confusions[:max_confusions]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.tools", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("classify", help="classify stdin lines (JSON or text) to JSON lines on stdout")
    ev = sub.add_parser("evaluate", help="evaluate on a CSV with columns text,intent[,lang]")
    ev.add_argument("csv", type=Path)
    args = parser.parse_args(argv)
    if args.command == "classify":
        if isinstance(sys.stdin, io.TextIOWrapper):
            sys.stdin.reconfigure(errors="surrogateescape")  # a bad line is reported, not fatal
        return 1 if classify_stream(sys.stdin, sys.stdout).failed else 0
    try:
        print(format_report(evaluate_csv(args.csv)))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
