"""Intent classification: one multilingual scikit-learn model trained on the YAML examples
in ``bot/nlu/data/<language>.yaml`` (how to add examples or an intent: ``docs/nlu.md``).

Model: text is normalised (NFKC, lower case, e-mail addresses/URLs/order and tracking
numbers/digits replaced by placeholder characters so that they do not drive the intent),
then two TF-IDF views are joined: character n-grams (1–4, inside word boundaries, accents
folded so that ``don hang`` and ``đơn hàng`` look alike) and word uni/bigrams (every Han
character counts as a word). A linear SVM scores the 15 :data:`INTENTS`; its scores are
turned into probabilities by sigmoid calibration over 3 cross-validation folds
(``CalibratedClassifierCV``). ``unknown`` is a real class trained on out-of-scope
examples (accounts and passwords, newsletters, product questions, promo codes, jobs, spam,
chit-chat, gibberish …). One model serves all six languages; training is deterministic
(sorted, de-duplicated inputs, fixed seeds).

Besides the written examples the model trains on noisy variants generated from them
(:func:`augment`: keyboard typos, words run together, Spanish and Vietnamese without
accents, Russian in Latin letters), seeded by each example's own text.

Thresholds for the dialog layer (``confidence`` is the probability of the best intent):

* ``confidence >= CONFIDENT``: act on ``intent``.
* ``CLARIFY_BELOW <= confidence < CONFIDENT``: plausible but unsure; ask a clarifying
  question, e.g. offer the first two entries of ``ranking`` as buttons
  (:attr:`IntentPrediction.needs_clarification`).
* ``confidence < CLARIFY_BELOW``: :meth:`IntentClassifier.predict` reports ``unknown``
  (the raw guess is still first in ``ranking``).

Training takes a few seconds and needs scikit-learn, so the fitted model is exported to numpy
arrays (:mod:`bot.nlu.linear`) and cached on disk as a ``.npz`` (see
:meth:`IntentClassifier.load_or_train`); serving it imports no scikit-learn. The cache file
name contains a SHA-256 of the example files, this module's and ``linear.py``'s source and the
scikit-learn version; any change retrains. The file holds arrays only (read without pickle).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")

__all__ = [
    "INTENTS",
    "CONFIDENT",
    "CLARIFY_BELOW",
    "DATA_DIR",
    "MAX_CLASSIFY_CHARS",
    "Example",
    "augment",
    "IntentPrediction",
    "IntentClassifier",
    "default_cache_dir",
    "load_examples",
    "normalize_text",
    "split_examples",
]

log = logging.getLogger(__name__)

INTENTS: tuple[str, ...] = (
    "track_order",
    "start_return",
    "refund_status",
    "return_policy",
    "cancel_order",
    "change_address",
    "shipping_info",
    "human_agent",
    "complaint",
    "payment_issue",
    "invoice",
    "greeting",
    "thanks",
    "goodbye",
    "unknown",
)

#: At or above: act on the intent.
CONFIDENT = 0.5
#: Below: the prediction is reported as ``unknown``. In between: ask to clarify.
CLARIFY_BELOW = 0.25

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Only this many characters of a message are classified.
MAX_CLASSIFY_CHARS = 1000
_CACHE_FORMAT = 2
_RANDOM_STATE = 0


# --- examples --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Example:
    """A labelled training utterance; ``language`` is the data file's stem (``"es"``)."""

    text: str
    intent: str
    language: str


def _example_files(data_dir: Path) -> list[Path]:
    files = sorted(p for p in Path(data_dir).glob("*.yaml") if p.is_file())
    if not files:
        raise ValueError(f"no example files (*.yaml) in {data_dir}")
    return files


def _parse_examples(path: Path, raw: bytes) -> list[Example]:
    import yaml

    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name}: not valid UTF-8 YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: expected a mapping of intent name to examples")
    examples = []
    for intent, body in data.items():
        if intent not in INTENTS:
            raise ValueError(f"{path.name}: unknown intent {intent!r}")
        if isinstance(body, str):
            lines = body.splitlines()
        elif isinstance(body, list) and all(isinstance(x, str) for x in body):
            lines = body
        else:
            raise ValueError(f"{path.name}: examples of {intent!r} must be a text block or a list of strings")
        for line in lines:
            text = line.strip()
            if text:
                examples.append(Example(text, intent, path.stem))
    return examples


def load_examples(data_dir: Path | str | None = None) -> list[Example]:
    """All examples from ``data_dir/*.yaml`` (default :data:`DATA_DIR`), in file order.

    Each file maps intent names to a literal text block with one utterance per line (or
    to a list of strings). Unknown intent names raise ``ValueError``.
    """
    data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
    examples: list[Example] = []
    for path in _example_files(data_dir):
        examples.extend(_parse_examples(path, path.read_bytes()))
    return examples


def split_examples(
    examples: Sequence[Example], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Deterministic split stratified by (intent, language): ``(train, test)``."""
    from sklearn.model_selection import train_test_split

    ordered = sorted(set(examples), key=lambda e: (e.intent, e.language, e.text))
    strata = [f"{e.intent}|{e.language}" for e in ordered]
    train, test = train_test_split(
        ordered, test_size=test_fraction, random_state=seed, stratify=strata
    )
    return list(train), list(test)


# --- augmentation ----------------------------------------------------------------------
#
# Customers mistype, drop accents and spaces, and write Russian in Latin letters. The YAML
# files hold clean, readable sentences; at training time every example also yields a few
# noisy variants, chosen by a random generator seeded with the example itself, so the same
# data always gives the same model.

_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_JCUKEN_ROWS = ("йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю")


def _keyboard_neighbours(rows: Sequence[str]) -> dict[str, str]:
    neighbours: dict[str, str] = {}
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            near = [row[c + d] for d in (-1, 1) if 0 <= c + d < len(row)]
            for other in (r - 1, r + 1):
                if 0 <= other < len(rows):
                    near += [rows[other][k] for k in (c - 1, c) if 0 <= k < len(rows[other])]
            neighbours[ch] = "".join(near)
    return neighbours


_NEIGHBOURS = {**_keyboard_neighbours(_QWERTY_ROWS), **_keyboard_neighbours(_JCUKEN_ROWS)}

# Informal Latin spelling of Russian (what people type without a Cyrillic keyboard).
_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u",
     "f", "h", "ts", "ch", "sh", "sch", "", "y", "", "e", "yu", "ya"],
))
_WORD_RE = re.compile(r"\w+")


def _typo(text: str, rng: random.Random) -> str | None:
    """One realistic slip in one word of four or more letters: a neighbouring key, a
    dropped, doubled or swapped letter."""
    words = [m for m in _WORD_RE.finditer(text) if len(m.group()) >= 4 and m.group().isalpha()]
    if not words:
        return None
    m = rng.choice(words)
    word = m.group()
    i = rng.randrange(1, len(word))
    kind = rng.randrange(4)
    if kind == 0 and _NEIGHBOURS.get(word[i].lower()):
        new = word[:i] + rng.choice(_NEIGHBOURS[word[i].lower()]) + word[i + 1:]
    elif kind == 1:
        new = word[:i] + word[i + 1:]
    elif kind == 2:
        new = word[:i] + word[i] + word[i:]
    else:
        new = word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]
    return text[:m.start()] + new + text[m.end():]


def _join_words(text: str, rng: random.Random) -> str | None:
    """Two neighbouring words typed without the space between them."""
    gaps = [m.start() for m in re.finditer(r"(?<=\w) (?=\w)", text)]
    if len(gaps) < 2:
        return None
    at = rng.choice(gaps)
    return text[:at] + text[at + 1:]


def _transliterate(text: str) -> str:
    return "".join(_TRANSLIT.get(ch, _TRANSLIT.get(ch.lower(), ch)) for ch in text)


def augment(examples: Sequence[Example]) -> list[Example]:
    """Noisy variants of *examples* (not the examples themselves), deterministic:

    * every Latin or Cyrillic example: one keyboard typo, and one with two words run
      together (when it has three words or more);
    * Spanish and Vietnamese: the same sentence without accents or tones;
    * Russian: the sentence in Latin letters (``gde moy zakaz``).

    Chinese examples get none: there are no keyboard slips of that kind in Han text.
    """
    out: list[Example] = []
    for e in examples:
        if e.language.startswith("zh"):
            continue
        digest = hashlib.sha256(f"{e.language}\0{e.intent}\0{e.text}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        text = e.text.lower()
        variants = [_typo(text, rng), _join_words(text, rng)]
        if e.language in ("es", "vi"):
            variants.append(_fold_accents(text))
        if e.language == "ru":
            latin = _transliterate(text)
            variants += [latin, _typo(latin, rng)]
        out.extend(Example(v, e.intent, e.language) for v in variants if v and v != text)
    return out


# --- text normalisation ----------------------------------------------------------------

_PH_EMAIL = "\ue001"
_PH_URL = "\ue002"
_PH_ID = "\ue003"  # order / tracking / phone numbers: 3+ digits in a token
_PH_NUM = "\ue004"  # small numbers: "2 weeks", "size 9"
_EMAIL_RE = re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)+")
_URL_RE = re.compile(r"(?:https?://|www\.)\S+")
# ASCII letter/digit/dash runs with a digit in them: #1001, 113-1234567-1234567, 1z999aa1…
_GLUED_WORD_ID_RE = re.compile(r"(?<![a-z0-9])([a-z]{3,})([0-9]{3,})(?![a-z0-9])")
_ID_RE = re.compile(r"[#№]?[a-z0-9\-]*[0-9][a-z0-9\-]*")
_DIGIT_RE = re.compile(r"[0-9]")


def _id_placeholder(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group())
    return f" {_PH_ID} " if digits >= 3 else f" {_PH_NUM} "


def normalize_text(text: str) -> str:
    """The text the model sees: NFKC, lower case, placeholders for identifiers and digits.

    Only the first :data:`MAX_CLASSIFY_CHARS` characters are kept.
    """
    text = unicodedata.normalize("NFKC", text[:MAX_CLASSIFY_CHARS]).lower()
    # each substitution is skipped when the character its pattern cannot match without is absent
    if "@" in text:
        text = _EMAIL_RE.sub(f" {_PH_EMAIL} ", text)
    if "http" in text or "www." in text:
        text = _URL_RE.sub(f" {_PH_URL} ", text)
    if _DIGIT_RE.search(text) is not None:
        text = _GLUED_WORD_ID_RE.sub(r"\1 \2", text)  # "order1001" -> "order 1001"
        text = _ID_RE.sub(_id_placeholder, text)
    return " ".join(text.split())  # whitespace runs to one space (str.split and re's \s agree)


def _fold_accents(text: str) -> str:
    """Preprocessor of the character view: drop diacritics (``đơn`` → ``don``)."""
    if text.isascii():  # nothing to decompose or drop
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.replace("đ", "d")


_TOKEN_PATTERN = r"(?u)\b\w+\b|[\ue000-\uf8ff]"
_CJK_CHAR_RE = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")


def _split_cjk(text: str) -> str:
    """Preprocessor of the word view: Chinese has no spaces, so every Han character is a
    word (and word bigrams are character bigrams)."""
    return _CJK_CHAR_RE.sub(r" \1 ", text)


#: Cross-validation folds used to calibrate the SVM's scores into probabilities.
_CALIBRATION_FOLDS = 3


def _build_pipeline(calibration_folds: int = _CALIBRATION_FOLDS) -> Any:
    import numpy as np
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.svm import LinearSVC

    features = FeatureUnion(
        [
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(1, 4),
                    preprocessor=_fold_accents,
                    sublinear_tf=True,
                    dtype=np.float32,
                ),
            ),
            (
                "words",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    preprocessor=_split_cjk,
                    token_pattern=_TOKEN_PATTERN,
                    sublinear_tf=True,
                    dtype=np.float32,
                ),
            ),
        ]
    )
    svm = LinearSVC(C=1.0, random_state=_RANDOM_STATE)
    model = CalibratedClassifierCV(svm, cv=calibration_folds, method="sigmoid")
    return Pipeline([("features", features), ("model", model)])


# --- predictions -----------------------------------------------------------------------


@dataclass(frozen=True)
class IntentPrediction:
    """``intent`` with ``confidence`` (probability of the model's best guess, 0..1) and the
    full ``ranking`` of (intent, probability), best first."""

    intent: str
    confidence: float
    ranking: list[tuple[str, float]] = field(default_factory=list)

    @property
    def needs_clarification(self) -> bool:
        """A real intent, but below :data:`CONFIDENT`: confirm before acting."""
        return self.intent != "unknown" and self.confidence < CONFIDENT


_NO_TEXT = IntentPrediction("unknown", 1.0, [("unknown", 1.0)])


def _has_content(normalized: str) -> bool:
    return any(ch.isalpha() or "\ue000" <= ch <= "\uf8ff" for ch in normalized)


# --- cache -----------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$SHOPDESK_CACHE_DIR/nlu``, else ``$XDG_CACHE_HOME/shopdesk/nlu``, else
    ``~/.cache/shopdesk/nlu``."""
    env = os.environ.get("SHOPDESK_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "nlu"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "shopdesk" / "nlu"


def _sklearn_version() -> str:
    """The installed scikit-learn's version, read from its metadata (importing scikit-learn
    costs the server ~75 MB; it is only imported to train)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scikit-learn")
    except PackageNotFoundError:  # pragma: no cover - an unusual install: ask the module
        import sklearn

        return str(sklearn.__version__)


def _fingerprint(files: Iterable[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    digest.update(f"format={_CACHE_FORMAT};sklearn={_sklearn_version()}\0".encode())
    digest.update(Path(__file__).read_bytes())
    digest.update((Path(__file__).parent / "linear.py").read_bytes())
    for name, raw in sorted(files):
        digest.update(b"\0file\0" + name.encode() + b"\0")
        digest.update(raw)
    return digest.hexdigest()


def _cache_path(cache_dir: Path, fingerprint: str) -> Path:
    return cache_dir / f"intents-sklearn{_sklearn_version()}-{fingerprint}.npz"


# --- classifier ------------------------------------------------------------------------

#: The functions the intent model's features refer to by name (stored in the cache file).
_FUNCTIONS: dict[str, Callable[..., Any]] = {"fold_accents": _fold_accents, "split_cjk": _split_cjk}


class IntentClassifier:
    """A fitted intent model. Build it with :meth:`load_or_train` or :meth:`train`.

    Predictions are numpy only (:mod:`bot.nlu.linear`): the calibrated ensemble of linear SVMs
    is evaluated as the arithmetic it is (per fold, the scores through each class's sigmoid,
    normalized, then averaged over the folds), the same as scikit-learn's
    ``CalibratedClassifierCV.predict_proba`` (a test compares them on the held-out sets).
    ``pipeline`` (the fitted scikit-learn pipeline) is only there when the model was trained in
    this process; the server reads the exported arrays from the cache and never imports
    scikit-learn."""

    def __init__(self, features: Any, classes: Sequence[str], folds: int, intercept: Any, a: Any, b: Any,
                 fingerprint: str | None = None, pipeline: Any = None) -> None:
        self._linear = features
        self.classes: tuple[str, ...] = tuple(str(c) for c in classes)
        self._folds = folds
        self._intercept, self._a, self._b = intercept, a, b
        self.fingerprint = fingerprint
        self.pipeline = pipeline
        #: True when this instance was trained in this process, False when read from cache.
        self.trained_now = False

    @classmethod
    def from_pipeline(cls, pipeline: Any, fingerprint: str | None = None) -> IntentClassifier:
        """Export a fitted :func:`_build_pipeline` pipeline; ``ValueError`` if it is not a
        sigmoid-calibrated linear ensemble over the features :mod:`bot.nlu.linear` computes."""
        import numpy as np

        from .linear import LinearText, export_features

        model = pipeline[-1]
        if getattr(model, "method", None) != "sigmoid" or len(model.classes_) < 3:
            raise ValueError("not a multiclass sigmoid-calibrated model")
        weights, intercepts, a, b = [], [], [], []
        for calibrated in model.calibrated_classifiers_:
            estimator = calibrated.estimator
            if list(estimator.classes_) != list(model.classes_) or len(calibrated.calibrators) != len(model.classes_):
                raise ValueError("fold classes differ")
            weights.append(estimator.coef_)
            intercepts.append(estimator.intercept_)
            a.append([c.a_ for c in calibrated.calibrators])
            b.append([c.b_ for c in calibrated.calibrators])
        views = export_features(pipeline[0] if len(pipeline) == 2 else pipeline[:-1], _FUNCTIONS)
        weights_t = np.ascontiguousarray(np.vstack(weights).T, dtype=np.float32)
        features = LinearText(views, weights_t, _FUNCTIONS)
        return cls(features, [str(c) for c in model.classes_], len(weights), np.concatenate(intercepts).astype(float),
                   np.array(a, dtype=float).ravel(), np.array(b, dtype=float).ravel(), fingerprint, pipeline)

    def save(self, path: Path) -> None:
        """Write the exported model to *path* (``.npz``, atomically)."""
        from .linear import save

        save(path, self._linear.views, {"format": _CACHE_FORMAT, "fingerprint": self.fingerprint,
                                        "classes": list(self.classes), "folds": self._folds},
             weights_t=self._linear.weights_t, intercept=self._intercept, a=self._a, b=self._b)

    @classmethod
    def load(cls, path: Path, fingerprint: str | None = None) -> IntentClassifier:
        """Read a model written by :meth:`save`; ``ValueError`` (or an ``OSError``) when the file is
        damaged, stale (another *fingerprint*) or not ours."""
        from .linear import LinearText, load

        views, meta, arrays = load(path)
        if meta.get("format") != _CACHE_FORMAT or (fingerprint is not None and meta.get("fingerprint") != fingerprint):
            raise ValueError("stale or foreign cache payload")
        classes = [str(c) for c in meta["classes"]]
        if set(classes) - set(INTENTS) or len(classes) < 3:
            raise ValueError("cached model has unexpected classes")
        folds = int(meta["folds"])
        width = folds * len(classes)
        weights_t, intercept, a, b = arrays["weights_t"], arrays["intercept"], arrays["a"], arrays["b"]
        if weights_t.ndim != 2 or weights_t.shape[1] != width or any(x.shape != (width,) for x in (intercept, a, b)):
            raise ValueError("cached model has unexpected shapes")
        return cls(LinearText(views, weights_t, _FUNCTIONS), classes, folds, intercept, a, b, meta.get("fingerprint"))

    @classmethod
    def train(cls, examples: Sequence[Example], fingerprint: str | None = None) -> IntentClassifier:
        """Fit on *examples* and their :func:`augment` variants. Deterministic: duplicates are
        dropped and the rest sorted; a variant that collides with a real example of another
        intent is dropped. Needs scikit-learn (imported here only)."""
        labelled: dict[str, str] = {}
        for e in examples:
            labelled.setdefault(normalize_text(e.text), e.intent)
        for e in augment(examples):
            labelled.setdefault(normalize_text(e.text), e.intent)
        pairs = sorted((t, i) for t, i in labelled.items() if t)
        if len({i for _, i in pairs}) < 3:
            raise ValueError("need examples of at least three intents to train")
        smallest = min(Counter(i for _, i in pairs).values())
        if smallest < 2:
            raise ValueError("every intent needs at least two distinct examples")
        from threadpoolctl import threadpool_limits

        started = time.perf_counter()
        pipeline = _build_pipeline(min(_CALIBRATION_FOLDS, smallest))
        # Calibration runs dozens of tiny L-BFGS fits; a multi-threaded BLAS spends more
        # time synchronising threads than computing (training is ~2x faster on one).
        with threadpool_limits(limits=1):
            pipeline.fit([t for t, _ in pairs], [i for _, i in pairs])
        log.info("trained intent model on %d examples in %.1fs", len(pairs), time.perf_counter() - started)
        clf = cls.from_pipeline(pipeline, fingerprint)
        clf.trained_now = True
        return clf

    @classmethod
    def load_or_train(
        cls, cache_dir: Path | str | None = None, data_dir: Path | str | None = None
    ) -> IntentClassifier:
        """The model for the examples in *data_dir* (default :data:`DATA_DIR`), from the
        cache in *cache_dir* (default :func:`default_cache_dir`) when it is there and
        readable, else trained now and written to the cache atomically.

        A corrupt or foreign cache file is ignored (and replaced); an unwritable cache
        directory only costs a warning.
        """
        data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        files = [(p.name, p.read_bytes()) for p in _example_files(data_dir)]
        fingerprint = _fingerprint(files)
        path = _cache_path(cache_dir, fingerprint)

        if path.is_file():
            try:
                return cls.load(path, fingerprint)
            except Exception as exc:  # corrupt, truncated, incompatible: retrain
                log.warning("ignoring unreadable intent model cache %s: %s", path, exc)

        examples: list[Example] = []
        for name, raw in files:
            examples.extend(_parse_examples(data_dir / name, raw))
        clf = cls.train(examples, fingerprint)
        try:
            clf.save(path)
        except OSError as exc:
            log.warning("could not write the intent model cache %s: %s", path, exc)
        return clf

    @classmethod
    def cached(cls, cache_dir: Path | str | None = None, data_dir: Path | str | None = None) -> bool:
        """Whether :meth:`load_or_train` would find a cache file (and not train)."""
        data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        fingerprint = _fingerprint([(p.name, p.read_bytes()) for p in _example_files(data_dir)])
        return _cache_path(cache_dir, fingerprint).is_file()

    def predict_proba(self, normalized: Sequence[str]) -> Any:
        """Class probabilities for already-normalized texts (rows in :attr:`classes` order)."""
        return self._probabilities(list(normalized))

    def _probabilities(self, normalized: list[str], prepared: dict[str, list[str]] | None = None) -> Any:
        import numpy as np

        scores = self._linear.scores(normalized, prepared) + self._intercept
        proba = (1.0 / (1.0 + np.exp(self._a * scores + self._b))).reshape(len(normalized), self._folds, -1)
        denominator = proba.sum(axis=2, keepdims=True)
        if denominator.all():
            proba /= denominator
        else:  # all sigmoids underflowed: scikit-learn's uniform fallback
            proba = np.divide(proba, denominator, out=np.full_like(proba, 1 / proba.shape[2]), where=denominator != 0)
        mean = np.add.reduce(proba, axis=1) / self._folds  # what .mean(axis=1) computes, without its wrapper
        if mean.max() > 1.0:
            mean[(mean > 1.0) & (mean <= 1.0 + 1e-5)] = 1.0
        return mean

    def predict(self, text: str) -> IntentPrediction:
        """Classify one message (only its first :data:`MAX_CLASSIFY_CHARS` characters)."""
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify several messages in one vectorized pass; each result is the same as
        :meth:`predict` of that message alone."""
        return self.predict_normalized([normalize_text(t) if isinstance(t, str) else "" for t in texts])

    def predict_normalized(self, normalized: Sequence[str], words: Sequence[str] | None = None) -> list[IntentPrediction]:
        """:meth:`predict_many` of texts already passed through :func:`normalize_text` (*words*:
        the same through :func:`_split_cjk` too, when the caller has them)."""
        results: list[IntentPrediction | None] = [
            None if _has_content(n) else _NO_TEXT for n in normalized
        ]
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            texts = [normalized[i] for i in todo]
            prepared = {"fold_accents": [_fold_accents(t) for t in texts],
                        "split_cjk": [words[i] for i in todo] if words is not None else [_split_cjk(t) for t in texts]}
            probs = self._probabilities(texts, prepared)
            classes = self.classes
            for i, row in zip(todo, probs.tolist()):
                ranking = sorted(
                    ((c, round(p, 6)) for c, p in zip(classes, row)),
                    key=lambda cp: (-cp[1], cp[0]),
                )
                best, confidence = ranking[0]
                intent = best if confidence >= CLARIFY_BELOW else "unknown"
                results[i] = IntentPrediction(intent, confidence, ranking)
        return [r for r in results if r is not None]


class ProcessWide(Generic[_T]):
    """One lazily built, process-wide model: ``get()`` builds it once (thread-safe), ``set()``
    replaces it (tests, a custom cache directory; ``None`` makes the next ``get()`` build again)."""

    def __init__(self, build: Callable[[], _T]) -> None:
        self._build = build
        self._value: _T | None = None
        self._lock = threading.Lock()

    def get(self) -> _T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    def set(self, value: _T | None) -> None:
        with self._lock:
            self._value = value
