"""Search text for every language: one folding and tokenising rule for the index and the query.

The index holds :func:`index_text` of each message (a string of tokens separated by single
spaces); a search splits its query with :func:`query_terms`, which applies the same folding,
so whatever is written one way is found the other way. The databases only split that string
at the spaces (SQLite FTS5 ``ascii`` tokenizer, PostgreSQL ``to_tsvector('simple', ...)``); no
database-side folding is involved, so SQLite and PostgreSQL find the same things.

Folding: NFKC (full-width Latin and digits, half-width kana), case folding, diacritics removed
(``đơn hàng`` → ``don hang``, ``canción`` → ``cancion``, ``ё`` → ``е``, ``đ`` → ``d``; the
Russian ``й`` and Japanese voiced kana keep their marks, they are separate letters), and
traditional Chinese converted to simplified with OpenCC (``訂單`` → ``订单``).

Tokens: runs of letters and digits; CJK runs (Han, kana, Hangul) become overlapping bigrams,
as Lucene's CJK analyzer does (``订单在哪里`` → ``订单 单在 在哪 哪里``). In the index the last
character of each CJK run is also kept as a one-character token, so that a query of a single
character (a prefix query) finds it in any position.

Queries: each query word is a :class:`Term` that every match must contain (AND); a term has
one or more :class:`Alternative` (OR). Words match as prefixes (``retur`` finds ``returns``),
and Latin and Cyrillic words also match their Snowball stems and simple plural forms
(``returns`` finds ``return``, ``pedidos`` finds ``pedido``, ``заказы`` finds ``заказ``). A
CJK run is one phrase of its bigrams, in order. Nothing in a query is ever syntax.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "MAX_QUERY_TERMS",
    "MAX_TOKEN_CHARS",
    "Alternative",
    "Term",
    "fold",
    "index_text",
    "query_terms",
    "tokens",
]

#: a longer token is cut (PostgreSQL refuses words over 2047 bytes; nobody searches for them)
MAX_TOKEN_CHARS = 64
#: query terms (words or CJK runs) beyond this are ignored
MAX_QUERY_TERMS = 12
#: bigrams in one query phrase beyond this are ignored (a long Chinese sentence stays cheap)
MAX_PHRASE_TOKENS = 16

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# letters and digits that are not written with a diacritic removable by decomposition
_LETTER_MAP = str.maketrans(
    {"đ": "d", "ð": "d", "ø": "o", "ł": "l", "ħ": "h", "ŧ": "t", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)
# combining marks that are part of a letter and stay: the breve of й, kana voicing marks
_KEEP_MARK_AFTER = {"\u0306": "иИ", "\u3099": None, "\u309a": None}
_CJK_RANGES = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3005-\u3007"  # 々 〆 〇
    "\u3021-\u3029"  # Hangzhou numerals
    "\u3031-\u3035"  # kana repeat marks
    "\u303b-\u303c"
    "\u3040-\u30ff"  # Hiragana, Katakana (with ー)
    "\u3100-\u312f"  # Bopomofo
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31a0-\u31bf"
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\ua960-\ua97f"  # Hangul Jamo extended A
    "\uac00-\ud7ff"  # Hangul syllables, Jamo extended B
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003ffff"  # CJK extensions B and later
)
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
_CJK_SPLIT = re.compile(f"([{_CJK_RANGES}]+)")
_WORD = re.compile(r"[^\W_]+")  # letters and digits (marks are dropped before this)
_LATIN = re.compile("[a-z]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")


@lru_cache(maxsize=1)
def _t2s() -> Any:
    """OpenCC's traditional → simplified converter (dictionaries ship inside the wheel)."""
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=4)
def _stemmer(language: str) -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer(language)


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    if decomposed.isascii():
        return decomposed
    out: list[str] = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            if ch in _KEEP_MARK_AFTER:
                after = _KEEP_MARK_AFTER[ch]
                if after is None or (out and out[-1] in after):
                    out.append(ch)
            continue
        out.append(ch)
    # recompose what stays together: Hangul syllables, й, voiced kana
    return unicodedata.normalize("NFC", "".join(out))


def fold(text: str | None) -> str:
    """``text`` as the index sees it: NFKC, case-folded, without diacritics, simplified Chinese.
    Never raises: lone surrogates (invalid Unicode) become spaces."""
    if not text:
        return ""
    text = _LONE_SURROGATE.sub(" ", str(text))
    text = unicodedata.normalize("NFKC", text).casefold()
    if not text.isascii():
        text = text.translate(_LETTER_MAP)
        if _CJK_CHAR.search(text):
            text = _t2s().convert(text)
        text = _strip_marks(text)
    return text


def _pieces(text: str | None) -> list[tuple[str, bool]]:
    """(piece, is_cjk) for every run of letters and digits in the folded text, in order."""
    out: list[tuple[str, bool]] = []
    for match in _WORD.finditer(fold(text)):
        word = match.group()
        if word.isascii() or not _CJK_CHAR.search(word):
            out.append((word[:MAX_TOKEN_CHARS], False))
            continue
        for i, part in enumerate(_CJK_SPLIT.split(word)):
            if part:
                out.append((part if i % 2 else part[:MAX_TOKEN_CHARS], bool(i % 2)))
    return out


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def tokens(text: str | None) -> list[str]:
    """The index tokens of ``text``, in order."""
    out: list[str] = []
    for piece, cjk in _pieces(text):
        if not cjk:
            out.append(piece)
            continue
        out.extend(_bigrams(piece))
        if len(piece) > 1:
            out.append(piece[-1])  # so that a one-character query finds the run's last character too
    return out


def index_text(text: str | None) -> str:
    """What the search index stores for ``text``: its tokens separated by single spaces."""
    return " ".join(tokens(text))


@dataclass(frozen=True)
class Alternative:
    """Consecutive tokens (a phrase); with ``prefix`` the last one matches as a prefix."""

    tokens: tuple[str, ...]
    prefix: bool


@dataclass(frozen=True)
class Term:
    """Something every match contains: any one of ``alternatives``."""

    alternatives: tuple[Alternative, ...]


def _word_forms(word: str) -> list[str]:
    """``word`` and the shorter forms it is searched by: Snowball stems and the word without a
    plural ending, each long enough to stay specific."""
    forms = [word]
    if len(word) < 4 or word.isdigit():
        return forms
    if _CYRILLIC.search(word):
        candidates = [_stemmer("russian").stemWord(word)]
    elif _LATIN.search(word):
        candidates = [_stemmer("english").stemWord(word), _stemmer("spanish").stemWord(word)]
        if word.endswith("es") and len(word) >= 5:
            candidates.append(word[:-2])
        if word.endswith("s"):
            candidates.append(word[:-1])
    else:
        return forms
    shortest = 3 if len(word) <= 5 else 4
    shorter = {form for form in candidates if form != word and len(form) >= shortest and word.startswith(form[:2])}
    # a form that another one is a prefix of adds nothing (every word is matched as a prefix)
    forms += sorted(f for f in shorter if not any(f != g and f.startswith(g) for g in shorter))
    return forms


def query_terms(query: str | None) -> list[Term]:
    """The terms of a search query (at most :data:`MAX_QUERY_TERMS`); empty when it has no
    letters or digits. Never raises."""
    terms: list[Term] = []
    seen: set[Term] = set()
    for piece, cjk in _pieces(query):
        if cjk:
            grams = tuple(_bigrams(piece)[:MAX_PHRASE_TOKENS])
            # one character: a prefix of the bigrams that start with it (or the run-final token)
            term = Term((Alternative(grams, prefix=len(grams) == 1 and len(grams[0]) == 1),))
        elif len(piece) == 1:
            term = Term((Alternative((piece,), prefix=False),))  # "a*" would match half the index
        else:
            term = Term(tuple(Alternative((form,), prefix=True) for form in _word_forms(piece)))
        if term not in seen:
            seen.add(term)
            terms.append(term)
        if len(terms) >= MAX_QUERY_TERMS:
            break
    return terms
