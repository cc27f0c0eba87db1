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

__all__ = ["TfidfView", "FunctionView", "LinearText", "TokenIndex", "export_features", "save", "load"]

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


class TokenIndex:
    """A served vocabulary of character n-grams: token → column by a 64-bit key of the token,
    kept as a sorted ``int64`` array beside the columns (12 bytes a token) instead of a ``dict`` of
    strings (~110 bytes a token: the string, its int, the table entry): the intent model's 60,000
    character n-grams took ~7 MB as a dict. Looked up once per distinct new word (the columns of a
    word are cached, :meth:`TfidfView.columns`), all the new words of a text in one numpy pass.

    The key is ``hash(token)`` mixed with its length: CPython hashes a string's raw buffer, so
    ``"ak"`` (one byte a character) and ``"歡"`` (two) have one ``hash()``; with the length they
    differ. Keys are this process's own (``str`` hashing is salted per process), built at load
    time; two tokens of the vocabulary with one key make :meth:`build` return a plain dict
    instead. An unknown token whose 64-bit key equals a known one's (~1e-14 per lookup) would
    count as that token."""

    __slots__ = ("keys", "columns")

    def __init__(self, keys: Any, columns: Any) -> None:
        self.keys = keys
        self.columns = columns

    @classmethod
    def build(cls, tokens: Sequence[str]) -> TokenIndex | dict[str, int]:
        """The index of *tokens* (column = position), or a dict when two keys collide."""
        keys = _keys(tokens)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        if len(keys) > 1 and bool((keys[1:] == keys[:-1]).any()):
            return dict(zip(tokens, range(len(tokens))))
        return cls(keys, order.astype(np.int32))

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, tokens: Sequence[str]) -> list[int]:
        """The column of each of *tokens*, -1 for an unknown one."""
        if not tokens or not len(self.keys):
            return [-1] * len(tokens)
        wanted = _keys(tokens)
        at = np.searchsorted(self.keys, wanted)
        at[at == len(self.keys)] = 0
        found: list[int] = np.where(self.keys[at] == wanted, self.columns[at], -1).tolist()
        return found


_LENGTH_MIX = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15 as int64: spreads the lengths


def _keys(tokens: Sequence[str]) -> Any:
    """``hash(token) + len(token) * _LENGTH_MIX`` (wrapping int64) of each token."""
    count = len(tokens)
    keys = np.fromiter(map(hash, tokens), dtype=np.int64, count=count)
    keys += np.fromiter(map(len, tokens), dtype=np.int64, count=count) * _LENGTH_MIX
    return keys


@dataclass
class TfidfView:
    """One fitted TF-IDF vectorizer (l2-normalized, idf on). ``vocabulary`` is a dict, except a
    served (:func:`load`) character n-gram view's, a :class:`TokenIndex`."""

    analyzer: str  # "char_wb" | "word"
    ngram_range: tuple[int, int]
    preprocessor: str  # a name in the model's function table
    token_pattern: str | None
    sublinear: bool
    vocabulary: dict[str, int] | TokenIndex
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
            assert self.token_pattern is not None and isinstance(vocabulary, dict)
            grams = word_ngrams(re.findall(self.token_pattern, text), low, high)
            return [c for c in map(vocabulary.get, grams) if c is not None]
        cache = self._word_columns
        words = text.split()
        new = [w for w in dict.fromkeys(words) if w not in cache]
        looked = self._look_up(new) if new else {}
        found: list[int] = []
        for word in words:
            known = looked.get(word)
            if known is None:
                known = cache.get(word)
                if known is None:  # dropped from the cache meanwhile (another thread's words)
                    known = self._look_up([word])[word]
            found += known
        return found

    def _look_up(self, words: list[str]) -> dict[str, tuple[int, ...]]:
        """The columns of the known character n-grams of each of *words*, put in the cache."""
        low, high = self.ngram_range
        vocabulary = self.vocabulary
        grams = [char_wb_ngrams(word, low, high) for word in words]
        looked: dict[str, tuple[int, ...]] = {}
        if isinstance(vocabulary, TokenIndex):
            columns = vocabulary.find([g for word_grams in grams for g in word_grams])
            start = 0
            for word, word_grams in zip(words, grams):
                end = start + len(word_grams)
                looked[word] = tuple([c for c in columns[start:end] if c >= 0])
                start = end
        else:
            for word, word_grams in zip(words, grams):
                looked[word] = tuple([c for c in map(vocabulary.get, word_grams) if c is not None])
        cache = self._word_columns
        for word, known in looked.items():
            if len(word) <= _MAX_CACHED_WORD:
                if len(cache) >= WORD_CACHE_SIZE:
                    try:  # the oldest entry (dicts keep insertion order); another thread may race
                        del cache[next(iter(cache))]
                    except (KeyError, RuntimeError, StopIteration):
                        pass
                cache[word] = known
        return looked


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
        if not isinstance(view.vocabulary, dict):
            raise ValueError("a served vocabulary (TokenIndex) cannot be stored")
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
    """``(views, meta, arrays)`` as written by :func:`save`; any damage raises. The vocabularies
    of character n-grams come back as :class:`TokenIndex` es."""
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
                               TokenIndex.build(tokens) if d["analyzer"] == "char_wb"
                               else dict(zip(tokens, range(len(tokens)))), idf))
    return views, meta, arrays
