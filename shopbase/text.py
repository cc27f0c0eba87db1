"""Untrusted text made safe to store, show and print: one function per purpose.

* :func:`clean_line`: one line (names, usernames, labels, reasons, address fields, search
  text): line breaks and tabs become spaces, other control and invisible format characters
  (bidi overrides) are dropped, whitespace is collapsed.
* :func:`clean_text`: customer, agent and bot text that keeps its lines: line endings become
  ``\\n``, NUL and other control characters are dropped (PostgreSQL refuses NUL outright),
  surrounding whitespace is stripped.
* :func:`clean_for_pdf`: one line a PDF font can draw, ellipsized to a limit.
* :func:`storable`: every string inside a JSON payload made storable, nothing else touched.

Nothing here raises on odd input (refusing a message is the caller's decision). Lone
surrogates (valid JSON escapes that no encoder accepts) become U+FFFD, except in PDFs where
they are dropped. Zero-width joiner and non-joiner are kept: some scripts need them.

Postal codes have two forms: :func:`postal_code_for_storage` (what is kept on an order) and
:func:`postal_code_match_key` (what identity verification compares).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = [
    "clean_line",
    "clean_text",
    "clean_for_pdf",
    "storable",
    "postal_code_for_storage",
    "postal_code_match_key",
]

_JOINERS = frozenset("\u200c\u200d")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# characters that separate words or lines: they become one space in a line
_BREAKS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
_UNPRINTABLE = frozenset({"Cs", "Co", "Cn"})
#: the control characters (Unicode category Cc, fixed by the standard: U+0000–U+001F and
#: U+007F–U+009F) except tab and newline: what :func:`clean_text` drops, in one regex pass
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _line(value: Any, *, drop_unprintable: bool) -> str:
    text = "" if value is None else str(value)
    if not text:
        return ""
    if not drop_unprintable:
        text = _LONE_SURROGATE.sub("\ufffd", text)
    text = unicodedata.normalize("NFC", text)
    kept: list[str] = []
    for ch in text:
        if ch in _BREAKS:
            kept.append(" ")
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf") and ch not in _JOINERS:
            continue
        if drop_unprintable and category in _UNPRINTABLE:
            continue
        kept.append(ch)
    return " ".join("".join(kept).split())


def clean_line(value: Any, max_len: int | None = None) -> str:
    """One display line; never raises; ``""`` for None. Cut to ``max_len`` characters."""
    line = _line(value, drop_unprintable=False)
    return line if max_len is None else line[:max_len]


def clean_text(value: Any, max_len: int | None = None) -> str:
    """Multi-line text to store or send: ``\\n`` line ends, no NUL/control characters except
    tab and newline, lone surrogates as U+FFFD, NFC, stripped, cut to ``max_len``."""
    text = "" if value is None else str(value)
    if not text:
        return ""
    text = _LONE_SURROGATE.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = unicodedata.normalize("NFC", text)
    text = _CONTROLS.sub("", text).strip()
    return text if max_len is None else text[:max_len].rstrip()


def clean_for_pdf(value: Any, limit: int = 300) -> str:
    """One line a PDF can show literally: like :func:`clean_line`, but characters no font
    draws (surrogates, private use, unassigned) are dropped and a longer text ends in "…"."""
    line = _line(value, drop_unprintable=True)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def storable(value: Any) -> Any:
    """``value`` (a JSON document) with every string made storable: NUL dropped, lone
    surrogates as U+FFFD. Keys included; numbers, booleans and None unchanged."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def postal_code_for_storage(value: str | None) -> str | None:
    """The postal code kept on an order: upper case, no whitespace, at most 16 characters;
    None when there is none."""
    if not value:
        return None
    code = "".join(str(value).split()).upper()[:16]
    return code or None


_POSTAL_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")


def postal_code_match_key(value: str | None) -> str:
    """What verification compares: NFKC, upper case, without spaces or dashes, so
    ``"k1a 0b1"`` and ``"K1A-0B1"`` both give ``"K1A0B1"``."""
    text = unicodedata.normalize("NFKC", value or "").upper()
    return _POSTAL_SEPARATORS.sub("", text)
