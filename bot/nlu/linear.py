"""The fitted text models served with numpy alone (no scikit-learn at serve time).

scikit-learn trains the intent and tone models (:mod:`bot.nlu.intents`, :mod:`bot.nlu.tone`), but
importing it costs the server about 75 MB of resident memory and keeping the fitted pipeline
another ~50 MB (every calibration fold's float64 weights). What a prediction needs is much less:
each TF-IDF view's vocabulary, idf and settings, and the linear weights. :func:`export_features`
reads them off a fitted ``FeatureUnion``; :class:`LinearText` computes ``transform(texts) @ W``
from them with the same arithmetic as the previous in-process fast path (tokens → vocabulary
columns → (sublinear) tf × idf → l2 norm → gathered weight rows), and :func:`save` / :func:`load`
keep everything in one ``.npz`` file (no pickle: ``allow_pickle=False``).

The tokenizers are scikit-learn's ``char_wb`` and ``word`` analyzers written out (whitespace
runs collapsed; words padded with one space for character n-grams; word n-grams joined by a
space); tests compare the served probabilities with the pipeline's on the held-out sets.
Preprocessors and function features are plain functions of ours, stored by name.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TfidfView", "FunctionView", "LinearText", "export_features", "save", "load"]

_WHITE_SPACES = re.compile(r"\s\s+")
#: Distinct words whose character n-gram columns are kept per view (oldest dropped first;
#: about 3 MB at most: ~0.4 KB a word). Longer words are not cached.
WORD_CACHE_SIZE = 8_192
_MAX_CACHED_WORD = 40
_FIRST = np.zeros(1, dtype=np.intp)


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams inside word boundaries, each word padded with a space (``char_wb``)."""
    text = _WHITE_SPACES.sub(" ", text)
    grams: list[str] = []
    append = grams.append
    for w in text.split():
        w = " " + w + " "
        size = len(w)
        for n in range(low, high + 1):
            offset = 0
            append(w[offset:offset + n])
            while offset + n < size:
                offset += 1
                append(w[offset:offset + n])
            if offset == 0:  # a word shorter than n counts once
                break
    return grams


def word_ngrams(tokens: list[str], low: int, high: int) -> list[str]:
    """Word n-grams from *low* to *high*, joined by one space (``word``)."""
    if high == 1:
        return tokens
    grams = list(tokens) if low == 1 else []
    count = len(tokens)
    for n in range(max(low, 2), min(high + 1, count + 1)):
        if n == 2:
            grams += [first + " " + second for first, second in zip(tokens, tokens[1:])]
        else:
            grams += [" ".join(tokens[i:i + n]) for i in range(count - n + 1)]
    return grams


@dataclass
class TfidfView:
    """One fitted TF-IDF vectorizer (l2-normalized, idf on)."""

    analyzer: str  # "char_wb" | "word"
    ngram_range: tuple[int, int]
    preprocessor: str  # a name in the model's function table
    token_pattern: str | None
    sublinear: bool
    vocabulary: dict[str, int]
    idf: Any
    #: preprocessed word -> columns of its known character n-grams (``char_wb`` only)
    _word_columns: dict[str, tuple[int, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def analyze(self, text: str, functions: Mapping[str, Callable[..., Any]]) -> list[str]:
        text = functions[self.preprocessor](text)
        low, high = self.ngram_range
        if self.analyzer == "char_wb":
            return char_wb_ngrams(text, low, high)
        assert self.token_pattern is not None
        return word_ngrams(re.findall(self.token_pattern, text), low, high)

    @property
    def width(self) -> int:
        return len(self.idf)

    def columns(self, text: str) -> list[int]:
        """The vocabulary columns of the known tokens of an already-preprocessed *text*, one per
        occurrence (what :meth:`analyze` gives, minus the unknown tokens). Character n-grams never
        cross a word, so they are looked up once per distinct word and kept in a bounded cache."""
        vocabulary = self.vocabulary
        low, high = self.ngram_range
        if self.analyzer != "char_wb":
            assert self.token_pattern is not None
            grams = word_ngrams(re.findall(self.token_pattern, text), low, high)
            return [c for c in map(vocabulary.get, grams) if c is not None]
        cache = self._word_columns
        found: list[int] = []
        for word in text.split():
            known = cache.get(word)
            if known is None:
                known = tuple([c for c in map(vocabulary.get, char_wb_ngrams(word, low, high)) if c is not None])
                if len(word) <= _MAX_CACHED_WORD:
                    if len(cache) >= WORD_CACHE_SIZE:
                        try:  # the oldest entry (dicts keep insertion order); another thread may race
                            del cache[next(iter(cache))]
                        except (KeyError, RuntimeError, StopIteration):
                            pass
                    cache[word] = known
            found += known
        return found


@dataclass
class FunctionView:
    """Dense features computed by a function of ours (``texts -> (n, width)`` array)."""

    function: str
    width: int


class LinearText:
    """``transform(texts) @ weights_t`` for the stored views, without scikit-learn or a sparse
    matrix. Per view, the known tokens of all the texts become one list of (column, tf-idf)
    pairs, weighted and l2-normalized per text in one numpy pass (float64); then per text the
    weight rows of its columns (all views at once) are gathered from ``weights_t`` and multiplied
    by their values. A text's scores do not depend on the batch it came in."""

    def __init__(self, views: Sequence[TfidfView | FunctionView], weights_t: Any,
                 functions: Mapping[str, Callable[..., Any]]) -> None:
        self.views = list(views)
        self.weights_t = weights_t
        self.functions = functions
        names = [v.preprocessor if isinstance(v, TfidfView) else v.function for v in self.views]
        missing = [n for n in names if n not in functions]
        if missing:
            raise ValueError(f"unknown feature functions {missing}")
        if sum(v.width for v in self.views) != weights_t.shape[0]:
            raise ValueError("weights do not match the features")

    def scores(self, texts: Sequence[str], prepared: Mapping[str, Sequence[str]] | None = None) -> Any:
        """Scores of *texts* (one row each). *prepared* may hold, by preprocessor name, the texts
        already passed through that preprocessor (a caller that computed them for another model)."""
        weights_t = self.weights_t
        out = np.zeros((len(texts), weights_t.shape[1]), dtype=np.float64)
        parts: list[list[tuple[Any, Any]]] = [[] for _ in texts]  # per text: (columns, values) per view
        offset = 0
        for view in self.views:
            if isinstance(view, FunctionView):
                block = np.asarray(self.functions[view.function](list(texts)), dtype=np.float64)
                out += block @ weights_t[offset:offset + view.width]
            else:
                inputs = prepared.get(view.preprocessor) if prepared is not None else None
                if inputs is None:
                    preprocess = self.functions[view.preprocessor]
                    inputs = [preprocess(t) for t in texts]
                _tfidf(view, inputs, offset, parts)
            offset += view.width
        for n, found in enumerate(parts):
            if not found:
                continue
            if len(found) == 1:
                columns, values = found[0]
            else:
                columns = np.concatenate([c for c, _ in found])
                values = np.concatenate([v for _, v in found])
            out[n] += values @ weights_t[columns]
        return out


def _tfidf(view: TfidfView, texts: Sequence[str], offset: int, parts: list[list[tuple[Any, Any]]]) -> None:
    """Append to ``parts[n]`` the weight-row indices (``offset`` + column) and l2-normalized
    (sublinear) tf-idf values of the known tokens of ``texts[n]``."""
    columns: list[int] = []
    counts: list[int] = []
    rows: list[int] = []
    sizes: list[int] = []
    for n, text in enumerate(texts):
        # Counter counts in C; the vocabulary maps distinct tokens to distinct columns
        counted = Counter(view.columns(text))
        if counted:
            columns += counted.keys()
            counts += counted.values()
            rows.append(n)
            sizes.append(len(counted))
    if not rows:
        return
    cols = np.array(columns, dtype=np.intp)
    tf = np.array(counts, dtype=np.float64)
    if view.sublinear:
        tf = np.log(tf) + 1
    values = tf * view.idf[cols]
    cols += offset
    if len(rows) == 1:  # one text (the usual case): the same arithmetic with fewer numpy calls
        norm = np.sqrt(np.add.reduceat(values * values, _FIRST))
        if norm[0] > 0:  # (idf >= 1 makes a zero norm impossible)
            values /= norm
        parts[rows[0]].append((cols, values))
        return
    starts = np.zeros(len(sizes), dtype=np.intp)
    np.cumsum(np.array(sizes[:-1], dtype=np.intp), out=starts[1:])
    norms = np.sqrt(np.add.reduceat(values * values, starts))
    norms[norms == 0] = 1  # (an all-zero row adds nothing)
    values /= np.repeat(norms, sizes)
    for n, start, size in zip(rows, starts.tolist(), sizes):
        parts[n].append((cols[start:start + size], values[start:start + size]))


def export_features(step: Any, functions: Mapping[str, Callable[..., Any]]) -> list[TfidfView | FunctionView]:
    """The views of a fitted ``FeatureUnion`` (or one ``TfidfVectorizer``) of TF-IDF vectorizers
    and ``FunctionTransformer``s whose functions are in *functions*; ``ValueError`` for anything
    this module does not compute the same way."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion
    from sklearn.preprocessing import FunctionTransformer

    by_identity = {id(f): name for name, f in functions.items()}
    parts = [p for _, p in step.transformer_list if p != "drop"] if isinstance(step, FeatureUnion) else [step]
    if isinstance(step, FeatureUnion) and step.transformer_weights is not None:
        raise ValueError("weighted feature unions are not exported")
    views: list[TfidfView | FunctionView] = []
    for part in parts:
        if type(part) is FunctionTransformer:
            name = by_identity.get(id(part.func))
            if name is None or part.kw_args or part.inverse_func is not None:
                raise ValueError(f"function feature {part.func!r} is not exported")
            views.append(FunctionView(name, int(np.asarray(part.func([""])).reshape(1, -1).shape[1])))
            continue
        if (type(part) is not TfidfVectorizer or part.binary or part.norm != "l2" or not part.use_idf
                or part.analyzer not in ("char_wb", "word") or part.tokenizer is not None
                or part.stop_words is not None or id(part.preprocessor) not in by_identity):
            raise ValueError(f"feature step {part!r} is not exported")
        pattern = part.token_pattern if part.analyzer == "word" else None
        if pattern is not None and re.compile(pattern).groups:
            raise ValueError("token patterns with groups are not exported")
        views.append(TfidfView(part.analyzer, tuple(part.ngram_range), by_identity[id(part.preprocessor)], pattern,
                               bool(part.sublinear_tf), dict(part.vocabulary_), np.asarray(part.idf_, dtype=part.dtype)))
    return views


def save(path: Path, views: Sequence[TfidfView | FunctionView], meta: Mapping[str, Any], **arrays: Any) -> None:
    """Write *views*, the JSON-able *meta* and *arrays* to *path* atomically (a ``.npz``)."""
    items: dict[str, Any] = dict(arrays)
    described = []
    for i, view in enumerate(views):
        if isinstance(view, FunctionView):
            described.append({"function": view.function, "width": view.width})
            continue
        tokens = sorted(view.vocabulary, key=view.vocabulary.__getitem__)
        if any("\0" in t for t in tokens) or [view.vocabulary[t] for t in tokens] != list(range(len(tokens))):
            raise ValueError("vocabulary cannot be stored")
        items[f"vocabulary{i}"] = np.frombuffer("\0".join(tokens).encode("utf-8"), dtype=np.uint8)
        items[f"idf{i}"] = view.idf
        described.append({"analyzer": view.analyzer, "ngram_range": list(view.ngram_range),
                          "preprocessor": view.preprocessor, "token_pattern": view.token_pattern,
                          "sublinear": view.sublinear, "size": len(tokens)})
    items["meta"] = np.frombuffer(json.dumps({**meta, "views": described}).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".nlu-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **items)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load(path: Path) -> tuple[list[TfidfView | FunctionView], dict[str, Any], dict[str, Any]]:
    """``(views, meta, arrays)`` as written by :func:`save`; any damage raises."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    views: list[TfidfView | FunctionView] = []
    for i, d in enumerate(meta.pop("views")):
        if "function" in d:
            views.append(FunctionView(d["function"], int(d["width"])))
            continue
        raw = arrays.pop(f"vocabulary{i}").tobytes().decode("utf-8")
        tokens = raw.split("\0") if raw or d["size"] else []
        if len(tokens) != d["size"]:
            raise ValueError("vocabulary size differs")
        idf = arrays.pop(f"idf{i}")
        if len(idf) != len(tokens):
            raise ValueError("idf size differs")
        views.append(TfidfView(d["analyzer"], (int(d["ngram_range"][0]), int(d["ngram_range"][1])),
                               d["preprocessor"], d["token_pattern"], bool(d["sublinear"]),
                               dict(zip(tokens, range(len(tokens)))), idf))
    return views, meta, arrays
