"""Tone: how hostile a customer's message is (insults, swearing, fury, threats, "scam!").

A strongly negative message goes to a person whatever it asks for; a calm message about a
bad thing ("the mug arrived broken") does not. This is a second, binary model next to the
intent model, trained the same way from our own examples:

* ``data/tone/<lang>.yaml`` — ``hostile:`` and ``calm:`` utterances in every language;
* every intent example except ``complaint`` counts as calm as well, so the ordinary
  requests of all 15 intents teach the model what is *not* hostile.

Features are words and word pairs (Chinese per character) plus angry emoji; the model is a
logistic regression whose probability is the hostility score. Training is deterministic
(a few seconds) and cached like the intent model, exported to numpy arrays (``.npz``, served
without scikit-learn), keyed by the data, this file and the scikit-learn version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .intents import (
    _TOKEN_PATTERN,
    DATA_DIR,
    MAX_CLASSIFY_CHARS,
    ProcessWide,
    _example_files,
    _fingerprint,
    _parse_examples,
    _sklearn_version,
    _split_cjk,
    default_cache_dir,
    normalize_text,
)

__all__ = ["TONE_DIR", "HOSTILE_AT", "ToneClassifier", "get_tone", "set_tone", "load_tone_examples"]

log = logging.getLogger(__name__)

TONE_DIR = DATA_DIR / "tone"
#: hostility score from which a message counts as strongly negative (handed to a person)
HOSTILE_AT = 0.5
_LABELS = ("hostile", "calm")
_CACHE_FORMAT = 2


def _parse_tone(path: Path, raw: bytes) -> list[tuple[str, str]]:
    import yaml

    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name}: not valid UTF-8 YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict) or set(data) - set(_LABELS):
        raise ValueError(f"{path.name}: expected a mapping with the keys 'hostile' and 'calm'")
    pairs: list[tuple[str, str]] = []
    for label, body in data.items():
        if not isinstance(body, str):
            raise ValueError(f"{path.name}: the {label!r} examples must be a text block")
        pairs.extend((line.strip(), label) for line in body.splitlines() if line.strip())
    return pairs


def _files(data_dir: Path, tone_dir: Path) -> list[tuple[str, bytes]]:
    tone_files = sorted(p for p in tone_dir.glob("*.yaml") if p.is_file())
    if not tone_files:
        raise ValueError(f"no tone example files (*.yaml) in {tone_dir}")
    return [("tone/" + p.name, p.read_bytes()) for p in tone_files] + [
        (p.name, p.read_bytes()) for p in _example_files(data_dir)
    ]


def load_tone_examples(data_dir: Path | None = None, tone_dir: Path | None = None) -> list[tuple[str, str]]:
    """(text, "hostile" | "calm") pairs: the tone files, plus every non-complaint intent example as calm."""
    data_dir = data_dir or DATA_DIR
    tone_dir = tone_dir or (data_dir / "tone")
    return _examples(data_dir, _files(data_dir, tone_dir))


def _examples(data_dir: Path, files: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, raw in files:
        if name.startswith("tone/"):
            pairs.extend(_parse_tone(Path(name), raw))
        else:
            pairs.extend((e.text, "calm") for e in _parse_examples(data_dir / name, raw) if e.intent != "complaint")
    return pairs


_ANGRY_EMOJI = frozenset("🤬😡😠👿💢🖕💩🤮")


def _words_view(text: str) -> str:
    """What the word features see: the intent model's normalized text, Chinese per character."""
    return _split_cjk(normalize_text(text))


def _fury(texts: Sequence[str]) -> Any:
    """How the message is written rather than what it says: angry emoji. ("!!!" and capitals
    are left out on purpose: delighted customers and typed-in names use them just as much.)"""
    import numpy as np

    return np.asarray([min(_angry_count(text), 3) / 3 for text in texts], dtype=np.float32).reshape(len(texts), 1)


def _angry_count(text: str) -> int:
    """How many angry emoji *text* holds (each one code point)."""
    if text.isascii():
        return 0
    return sum(text.count(emoji) for emoji in _ANGRY_EMOJI)


def _build_pipeline() -> Any:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    # Words (Chinese per character, word pairs too), not character n-grams: those made unusual
    # but harmless text (a street address, a product name) look hostile. Plus angry emoji.
    features = FeatureUnion([
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), preprocessor=_words_view,
                                  token_pattern=_TOKEN_PATTERN, sublinear_tf=True, dtype=np.float32)),
        ("fury", FunctionTransformer(_fury, validate=False)),
    ])
    # No class weighting: hostility is the rarer case, and a message with nothing telling in
    # it (a plain "where is my order?") must score low, not sit at an even 0.5. Fitted to
    # convergence (tight tol) so the scores do not depend on where the solver stopped.
    model = LogisticRegression(C=100.0, max_iter=10_000, tol=1e-6)
    return Pipeline([("features", features), ("model", model)])


_FUNCTIONS = {"words_view": _words_view, "fury": _fury}


class ToneClassifier:
    """A fitted tone model: :meth:`hostility` of a text, 0..1. The logistic regression is
    evaluated with numpy (:mod:`bot.nlu.linear`); ``pipeline`` is the scikit-learn pipeline
    only when it was trained in this process (a test compares both)."""

    def __init__(self, features: Any, intercept: float, hostile_column: int, fingerprint: str | None = None,
                 pipeline: Any = None) -> None:
        self._linear = features
        self._intercept = float(intercept)
        self._hostile_column = hostile_column
        self.fingerprint = fingerprint
        self.pipeline = pipeline

    @classmethod
    def from_pipeline(cls, pipeline: Any, fingerprint: str | None = None) -> ToneClassifier:
        import numpy as np

        from .linear import LinearText, export_features

        model = pipeline[-1]
        if type(model).__name__ != "LogisticRegression" or model.coef_.shape[0] != 1:
            raise ValueError("not a binary logistic regression")
        views = export_features(pipeline[0], _FUNCTIONS)
        coef_t = np.ascontiguousarray(model.coef_.T, dtype=np.float64)
        return cls(LinearText(views, coef_t, _FUNCTIONS), float(model.intercept_[0]),
                   list(model.classes_).index("hostile"), fingerprint, pipeline)

    def save(self, path: Path) -> None:
        import numpy as np

        from .linear import save

        save(path, self._linear.views, {"format": _CACHE_FORMAT, "fingerprint": self.fingerprint,
                                        "hostile_column": self._hostile_column},
             coef_t=self._linear.weights_t, intercept=np.array([self._intercept]))

    @classmethod
    def load(cls, path: Path, fingerprint: str | None = None) -> ToneClassifier:
        from .linear import LinearText, load

        views, meta, arrays = load(path)
        if meta.get("format") != _CACHE_FORMAT or (fingerprint is not None and meta.get("fingerprint") != fingerprint):
            raise ValueError("stale or foreign cache payload")
        coef_t, intercept = arrays["coef_t"], arrays["intercept"]
        if coef_t.ndim != 2 or coef_t.shape[1] != 1 or intercept.shape != (1,) or meta["hostile_column"] not in (0, 1):
            raise ValueError("cached model has unexpected shapes")
        return cls(LinearText(views, coef_t, _FUNCTIONS), float(intercept[0]), int(meta["hostile_column"]),
                   meta.get("fingerprint"))

    @classmethod
    def train(cls, pairs: Sequence[tuple[str, str]], fingerprint: str | None = None) -> ToneClassifier:
        """Fit on (text, label) pairs; deterministic (duplicates dropped, the rest sorted; a
        text labelled both ways counts as hostile). Needs scikit-learn (imported here only)."""
        labels: dict[str, str] = {}
        for text, label in pairs:
            key = " ".join(text.split())
            if normalize_text(key) and labels.get(key) != "hostile":
                labels[key] = label
        if set(labels.values()) != set(_LABELS):
            raise ValueError("the tone model needs both hostile and calm examples")
        texts = sorted(labels)
        started = time.perf_counter()
        pipeline = _build_pipeline()
        pipeline.fit(texts, [labels[t] for t in texts])
        log.info("trained tone model on %d examples in %.1fs", len(texts), time.perf_counter() - started)
        return cls.from_pipeline(pipeline, fingerprint)

    @staticmethod
    def _cache(cache_dir: Path | str | None, data_dir: Path | str | None) -> tuple[Path, str, Path, list[tuple[str, bytes]]]:
        data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        files = _files(data_dir, data_dir / "tone")
        fingerprint = _fingerprint([("tone.py", Path(__file__).read_bytes()), *files])
        return cache_dir / f"tone-sklearn{_sklearn_version()}-{fingerprint}.npz", fingerprint, data_dir, files

    @classmethod
    def cached(cls, cache_dir: Path | str | None = None, data_dir: Path | str | None = None) -> bool:
        """Whether :meth:`load_or_train` would find a cache file (and not train)."""
        return cls._cache(cache_dir, data_dir)[0].is_file()

    @classmethod
    def load_or_train(cls, cache_dir: Path | str | None = None, data_dir: Path | str | None = None) -> ToneClassifier:
        path, fingerprint, data_dir, files = cls._cache(cache_dir, data_dir)
        if path.is_file():
            try:
                return cls.load(path, fingerprint)
            except Exception as exc:  # corrupt, truncated, incompatible: retrain
                log.warning("ignoring unreadable tone model cache %s: %s", path, exc)
        clf = cls.train(_examples(data_dir, files), fingerprint)
        try:
            clf.save(path)
        except OSError as exc:
            log.warning("could not write the tone model cache %s: %s", path, exc)
        return clf

    def hostility_many(self, texts: Sequence[str]) -> list[float]:
        """:meth:`hostility` of several texts in one vectorized pass (each the same as alone)."""
        texts = [" ".join(t[:MAX_CLASSIFY_CHARS].split()) if isinstance(t, str) else "" for t in texts]
        return self.hostility_prepared(texts, [normalize_text(t) for t in texts])

    def hostility_prepared(self, texts: Sequence[str], normalized: Sequence[str],
                           words: Sequence[str] | None = None) -> list[float]:
        """:meth:`hostility_many` of texts already cut to :data:`MAX_CLASSIFY_CHARS` with their
        whitespace collapsed (``" ".join(t.split())``), with their :func:`normalize_text` (and, when
        the caller has them, that through ``_split_cjk``: *words*)."""
        scored = [bool(n) and (any(ch.isalnum() for ch in t) or _angry_count(t) > 0)
                  for t, n in zip(texts, normalized)]
        todo = [i for i, ok in enumerate(scored) if ok]
        scores = [0.0] * len(texts)
        if todo:
            views = [words[i] for i in todo] if words is not None else [_split_cjk(normalized[i]) for i in todo]
            probabilities = self._hostile_probability([texts[i] for i in todo], {"words_view": views})
            for i, score in zip(todo, probabilities.tolist()):
                scores[i] = round(score, 6)
        return scores

    def _hostile_probability(self, texts: list[str], prepared: dict[str, list[str]] | None = None) -> Any:
        """P(hostile) per text: the logistic regression on the exported features."""
        import numpy as np

        logit = self._linear.scores(texts, prepared)[:, 0] + self._intercept
        p_second = 1.0 / (1.0 + np.exp(-logit))  # binary LR: the probability of classes_[1]
        return p_second if self._hostile_column == 1 else 1.0 - p_second

    def hostility(self, text: str) -> float:
        """0 (calm) .. 1 (hostile); :data:`HOSTILE_AT` and above is strongly negative."""
        return self.hostility_many([text])[0]


_TONE: ProcessWide[ToneClassifier] = ProcessWide(ToneClassifier.load_or_train)


def get_tone() -> ToneClassifier:
    """The process-wide tone model, loaded or trained on first call."""
    return _TONE.get()


def set_tone(tone: ToneClassifier | None) -> None:
    """Replace the process-wide tone model; ``None`` makes the next use load it again."""
    _TONE.set(tone)
