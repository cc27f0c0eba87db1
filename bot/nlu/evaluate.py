"""Evaluate the intent classifier on labelled messages: one CSV file or a folder of them.

A labelled file has a header with at least ``text,intent`` and optionally ``lang`` (and any
other columns, such as ``order_ids``, which are ignored here). In a folder, every ``*.csv``
is read; a file without a ``lang`` column takes its language from its name
(``tests/nlu_heldout/zh-Hant.csv`` → ``zh-Hant``).

The report only holds numbers (accuracy per intent and language, a confusion table, the
rate of wrong *actions* on out-of-scope messages), never the messages themselves, so that
an honest held-out set can be measured without anybody reading it.

An *action* is an intent that makes the bot do something with an order
(:data:`ACTION_INTENTS`). An out-of-scope message (gold ``unknown``) that comes out as one
of them is a wrong action; one that comes out as another intent (a greeting, a request for
a person) is merely a wrong answer.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .intents import CONFIDENT, INTENTS, IntentClassifier
from .language import SUPPORTED_LANGUAGES, detect_language

__all__ = [
    "ACTION_INTENTS",
    "EvalReport",
    "IntentStats",
    "LabelledRow",
    "evaluate",
    "evaluate_path",
    "format_report",
    "read_labelled",
]

#: Intents whose prediction makes the bot act on an order.
ACTION_INTENTS: frozenset[str] = frozenset(
    {"track_order", "start_return", "cancel_order", "change_address", "refund_status", "invoice"}
)


@dataclass(frozen=True, slots=True)
class LabelledRow:
    text: str
    intent: str
    lang: str | None


@dataclass(frozen=True)
class IntentStats:
    precision: float
    recall: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    """Numbers only. ``confusions`` are (gold, predicted, count) for wrong predictions, most
    frequent first; ``confusion`` is the whole table ``{gold: {predicted: count}}``.
    ``per_language`` is plain accuracy by language; ``in_scope`` the accuracy on messages
    whose gold intent is not ``unknown``; ``out_of_scope_no_action`` the share of ``unknown``
    messages that did *not* come out as an :data:`ACTION_INTENTS` intent (any confidence at
    or above the clarification floor counts as an action here, the strict reading), and
    ``out_of_scope_confident_action`` the share that would be acted on without asking
    (confidence ≥ ``CONFIDENT``)."""

    total: int
    correct: int
    accuracy: float
    per_intent: dict[str, IntentStats]
    confusions: list[tuple[str, str, int]]
    per_language: dict[str, float] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    in_scope: dict[str, tuple[int, int]] = field(default_factory=dict)
    out_of_scope: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    per_language_intent: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    #: language -> (messages detected as that language, messages), for rows with a language
    language_detection: dict[str, tuple[int, int]] = field(default_factory=dict)

    def worst_intents(self, n: int = 3) -> list[tuple[str, float]]:
        """The *n* intents with the lowest recall (among those in the data)."""
        rows = [(name, s.recall) for name, s in self.per_intent.items() if s.support]
        return sorted(rows, key=lambda r: (r[1], r[0]))[:n]

    def in_scope_accuracy(self, lang: str | None = None) -> float | None:
        """Accuracy on in-scope messages of *lang* (all languages when ``None``)."""
        items = [v for k, v in self.in_scope.items() if lang is None or k == lang]
        total = sum(t for _, t in items)
        return sum(c for c, _ in items) / total if total else None

    def out_of_scope_no_action(self, lang: str | None = None) -> float | None:
        """Share of out-of-scope messages of *lang* that trigger no order action."""
        items = [v for k, v in self.out_of_scope.items() if lang is None or k == lang]
        total = sum(t for _, t, _ in items)
        return 1 - sum(a for a, _, _ in items) / total if total else None

    def out_of_scope_confident_action(self, lang: str | None = None) -> float | None:
        """Share of out-of-scope messages of *lang* acted on without a clarifying question."""
        items = [v for k, v in self.out_of_scope.items() if lang is None or k == lang]
        total = sum(t for _, t, _ in items)
        return sum(c for _, t, c in items) / total if total else None


def _read_csv(path: Path, default_lang: str | None) -> list[LabelledRow]:
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    with fh:
        reader = csv.DictReader(fh)
        try:
            columns = [c.strip() for c in (reader.fieldnames or [])]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a UTF-8 CSV file: {exc}".splitlines()[0]) from exc
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
                lang = (row.get("lang") or "").strip() or default_lang
                rows.append(LabelledRow(text, intent, lang))
        except csv.Error as exc:
            raise ValueError(f"{path}:{reader.line_num}: bad CSV: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8: {exc}".splitlines()[0]) from exc
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def read_labelled(path: str | Path) -> list[LabelledRow]:
    """The rows of a labelled CSV, or of every ``*.csv`` in a folder (sorted by name; the
    file name is the language of rows without a ``lang`` column)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.csv") if p.is_file())
        if not files:
            raise ValueError(f"{path}: no *.csv files in this folder")
        rows: list[LabelledRow] = []
        for file in files:
            rows.extend(_read_csv(file, file.stem))
        return rows
    return _read_csv(path, None)


def evaluate(rows: Sequence[LabelledRow], classifier: IntentClassifier) -> EvalReport:
    """Score *classifier* on *rows* (see :class:`EvalReport`)."""
    if not rows:
        raise ValueError("nothing to evaluate")
    predictions = classifier.predict_many([r.text for r in rows])
    gold = [r.intent for r in rows]
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
    confusions = sorted(((g, p, n) for (g, p), n in pairs.items() if g != p), key=lambda r: (-r[2], r[0], r[1]))
    confusion: dict[str, dict[str, int]] = {}
    for (g, p), n in sorted(pairs.items()):
        confusion.setdefault(g, {})[p] = n

    by_lang: dict[str, list[bool]] = {}
    in_scope: dict[str, list[int]] = {}
    out_scope: dict[str, list[int]] = {}
    cells: dict[tuple[str, str], list[int]] = {}
    for row, pred in zip(rows, predictions):
        lang = row.lang or "?"
        right = pred.intent == row.intent
        if row.lang:
            by_lang.setdefault(row.lang, []).append(right)
        cell = cells.setdefault((lang, row.intent), [0, 0])
        cell[0] += right
        cell[1] += 1
        if row.intent == "unknown":
            counts = out_scope.setdefault(lang, [0, 0, 0])
            acted = pred.intent in ACTION_INTENTS
            counts[0] += acted
            counts[1] += 1
            counts[2] += acted and pred.confidence >= CONFIDENT
        else:
            counts = in_scope.setdefault(lang, [0, 0])
            counts[0] += right
            counts[1] += 1
    detected: dict[str, list[int]] = {}
    for row in rows:
        if row.lang in SUPPORTED_LANGUAGES:
            counts = detected.setdefault(row.lang, [0, 0])
            counts[0] += detect_language(row.text) == row.lang
            counts[1] += 1
    correct = sum(1 for g, p in zip(gold, predicted) if g == p)
    return EvalReport(
        total=len(rows),
        correct=correct,
        accuracy=correct / len(rows),
        per_intent=per_intent,
        confusions=confusions,
        per_language={k: sum(v) / len(v) for k, v in sorted(by_lang.items())},
        confusion=confusion,
        in_scope={k: (v[0], v[1]) for k, v in sorted(in_scope.items())},
        out_of_scope={k: (v[0], v[1], v[2]) for k, v in sorted(out_scope.items())},
        per_language_intent={k: (v[0], v[1]) for k, v in sorted(cells.items())},
        language_detection={k: (v[0], v[1]) for k, v in sorted(detected.items())},
    )


def evaluate_path(path: str | Path, *, classifier: IntentClassifier | None = None) -> EvalReport:
    """:func:`evaluate` on :func:`read_labelled` of *path* (a CSV file or a folder of them).

    Raises ``ValueError`` with a one-line message for a missing file or column, an empty
    file, or an intent name that is not in :data:`~bot.nlu.intents.INTENTS`.
    """
    rows = read_labelled(path)
    if classifier is None:
        from . import get_classifier

        classifier = get_classifier()
    return evaluate(rows, classifier)


_SHORT = {
    "track_order": "track", "start_return": "return", "refund_status": "refund", "return_policy": "policy",
    "cancel_order": "cancel", "change_address": "address", "shipping_info": "ship", "human_agent": "human",
    "complaint": "complnt", "payment_issue": "payment", "invoice": "invoice", "greeting": "hello",
    "thanks": "thanks", "goodbye": "bye", "unknown": "unknown",
}


def format_report(report: EvalReport, max_confusions: int = 10, *, table: bool = True) -> str:
    """A plain-text report of :class:`EvalReport` for a terminal (numbers only)."""
    lines = [f"accuracy {report.accuracy:.3f} ({report.correct}/{report.total})", ""]
    lines.append(f"{'intent':<16}{'precision':>10}{'recall':>8}{'support':>9}")
    for name, s in report.per_intent.items():
        lines.append(f"{name:<16}{s.precision:>10.2f}{s.recall:>8.2f}{s.support:>9}")
    if report.per_language:
        lines += ["", "accuracy by language:"]
        lines += [f"  {lang:<8} {acc:.3f}" for lang, acc in report.per_language.items()]
    langs = sorted(set(report.in_scope) | set(report.out_of_scope))
    if langs and report.out_of_scope:
        lines += ["", f"{'language':<10}{'in-scope acc':>14}{'out-of-scope no action':>24}{'acted w/o asking':>18}"]
        for lang in langs + ([None] if len(langs) > 1 else []):
            acc = report.in_scope_accuracy(lang)
            no_action = report.out_of_scope_no_action(lang)
            confident = report.out_of_scope_confident_action(lang)
            n_in = sum(t for k, (_, t) in report.in_scope.items() if lang is None or k == lang)
            n_out = sum(t for k, (_, t, _) in report.out_of_scope.items() if lang is None or k == lang)
            lines.append(
                f"{lang or 'all':<10}"
                f"{'-' if acc is None else f'{acc:.3f}':>8} ({n_in:>3})"
                f"{'-' if no_action is None else f'{no_action:.3f}':>18} ({n_out:>3})"
                f"{'-' if confident is None else f'{confident:.3f}':>18}"
            )
    if report.language_detection:
        lines += ["", "language detection (no hint):"]
        lines += [f"  {lang:<8} {right / total:.3f} ({right}/{total})"
                  for lang, (right, total) in report.language_detection.items()]
    if table and report.confusion:
        names = [n for n in INTENTS if n in report.confusion or any(n in row for row in report.confusion.values())]
        lines += ["", "confusion (rows: gold, columns: predicted):"]
        lines.append(f"{'':<9}" + "".join(f"{_SHORT[n]:>8}" for n in names))
        for g in names:
            row = report.confusion.get(g, {})
            lines.append(f"{_SHORT[g]:<9}" + "".join(f"{row.get(p, 0) or '.':>8}" for p in names))
    if report.confusions:
        lines += ["", "most confused (gold -> predicted):"]
        lines += [f"  {g} -> {p}: {n}" for g, p, n in report.confusions[:max_confusions]]
    return "\n".join(lines)
