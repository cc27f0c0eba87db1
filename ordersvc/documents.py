"""Shared pieces of the PDF documents (return labels, invoices): fonts, text, money, dates.

Fonts: DejaVu Sans (Latin, Cyrillic, Vietnamese, Greek …) is registered with reportlab
when the TTF files are found; otherwise the documents fall back to Helvetica, which
renders Latin-1 text only (other characters show as blanks; nothing is transliterated).
WenQuanYi Zen Hei (Debian ``fonts-wqy-zenhei``, a TrueType collection) covers Han, kana,
hangul and CJK punctuation. Text is split into runs: each character is drawn in DejaVu
when DejaVu has a glyph for it, else in WenQuanYi, so Latin stays in DejaVu. reportlab
embeds only the glyphs used (subset), so a Chinese document stays small. Without the CJK
font (a dev machine) one warning is logged and CJK characters stay in DejaVu (boxes).

Texts: the headings and fixed texts of every document live in
``templates/documents/<lang>.yaml`` (one file per language; English fills missing keys).

Customer-provided strings are untrusted: ``shopbase.text.clean_for_pdf`` removes control and bidi-override
characters and bounds the length, and ``paragraph`` escapes reportlab's mini-markup, so
``<b>`` or ``&amp;`` in a name is printed literally.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import yaml
from babel import Locale

if TYPE_CHECKING:  # pragma: no cover
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph

from shopbase.formatting import format_date, format_money, format_number, locale_for
from shopbase.text import clean_for_pdf

__all__ = [
    "ShopInfo",
    "Fonts",
    "fonts",
    "paragraph",
    "address_lines",
    "resolve_locale",
    "money",
    "day",
    "number",
    "runs",
    "markup",
    "text_width",
    "draw_text",
    "fit_text",
    "document_language",
    "document_texts",
]

log = logging.getLogger(__name__)

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)
CJK_FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc"),
)
CJK_FONT_NAME = "WenQuanYiZenHei"


@dataclass(frozen=True)
class ShopInfo:
    """The merchant as printed on documents."""

    name: str
    address: Mapping[str, Any] = field(default_factory=dict)
    email: str | None = None
    tax_id: str | None = None
    #: the IANA time zone the documents' dates are given in (the shop's)
    timezone: str = "UTC"


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    unicode: bool  # False when only Helvetica (Latin-1) is available
    cjk: str | None = None  # the font for characters the main font lacks (Han, kana, hangul …)


def _find_font(filename: str) -> Path | None:
    extra = os.environ.get("SHOPDESK_FONT_DIR")
    for folder in ((Path(extra),) if extra else ()) + FONT_DIRS:
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    return None


_FONT_LOCK = threading.Lock()


def fonts() -> Fonts:
    """Register DejaVu Sans once per process and say which font names to use.

    Documents are rendered in worker threads, so the first registration is locked.
    """
    with _FONT_LOCK:
        return _register_fonts()


def _find_cjk_font() -> Path | None:
    """``SHOPDESK_CJK_FONT`` (a .ttc/.ttf path) wins; else Debian's WenQuanYi Zen Hei."""
    override = os.environ.get("SHOPDESK_CJK_FONT")
    candidates = (Path(override),) if override else CJK_FONT_FILES
    return next((path for path in candidates if path.is_file()), None)


# reportlab (~7 MB resident with Pillow) is imported by the functions that draw, not by this
# module: the bot reads ShopInfo and address_lines on every order reply and never draws a PDF


def _register_cjk() -> str | None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    path = _find_cjk_font()
    if path is None:
        log.warning("no CJK font found (install fonts-wqy-zenhei): Chinese text in PDFs shows as boxes")
        return None
    try:
        if CJK_FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(CJK_FONT_NAME, str(path), subfontIndex=0))
    except Exception as exc:  # a damaged or CFF-only font file: documents still render
        log.warning("CJK font %s could not be loaded (%s): Chinese text in PDFs shows as boxes", path, type(exc).__name__)
        return None
    return CJK_FONT_NAME


@lru_cache(maxsize=1)
def _register_fonts() -> Fonts:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    regular, bold = _find_font("DejaVuSans.ttf"), _find_font("DejaVuSans-Bold.ttf")
    if regular is None:
        return Fonts("Helvetica", "Helvetica-Bold", unicode=False, cjk=_register_cjk())
    try:
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
        bold_name = "DejaVuSans"
        if bold is not None:
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
            bold_name = "DejaVuSans-Bold"
    except Exception:  # a damaged font file: documents still render
        return Fonts("Helvetica", "Helvetica-Bold", unicode=False, cjk=_register_cjk())
    return Fonts("DejaVuSans", bold_name, unicode=True, cjk=_register_cjk())


def _has_glyph(font_name: str, ch: str) -> bool:
    from reportlab.pdfbase import pdfmetrics

    font = pdfmetrics.getFont(font_name)
    face = getattr(font, "face", None)
    char_to_glyph = getattr(face, "charToGlyph", None)
    if char_to_glyph is None:  # a standard Type 1 font (Helvetica): Latin-1 only
        return ord(ch) < 256
    return ord(ch) in char_to_glyph


def runs(text: str, font_name: str) -> list[tuple[str, str]]:
    """``text`` split into (font, chunk) runs: ``font_name`` where it has the glyph, else the CJK font.

    Spaces and characters neither font has stay in the current run, so Latin words
    keep their font and a missing character is drawn (as a box) rather than dropped.
    """
    cjk = fonts().cjk
    if not text:
        return []
    if cjk is None:
        return [(font_name, text)]
    result: list[tuple[str, str]] = []
    current = font_name
    chunk: list[str] = []
    for ch in text:
        if ch.isspace() or _has_glyph(font_name, ch):
            wanted = font_name if not ch.isspace() else current
        elif _has_glyph(cjk, ch):
            wanted = cjk
        else:
            wanted = current
        if wanted != current and chunk:
            result.append((current, "".join(chunk)))
            chunk = []
        current = wanted
        chunk.append(ch)
    if chunk:
        result.append((current, "".join(chunk)))
    return result


def markup(text: str, font_name: str) -> str:
    """Paragraph markup for literal ``text`` (escaped) with CJK runs in the CJK font."""
    return "".join(
        escape(chunk) if name == font_name else f'<font face="{name}">{escape(chunk)}</font>'
        for name, chunk in runs(text, font_name)
    )


def text_width(text: str, font_name: str, size: float) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return sum(stringWidth(chunk, name, size) for name, chunk in runs(text, font_name))


def fit_text(text: str, font_name: str, size: float, width: float) -> str:
    """``text`` cut with an ellipsis so that it fits ``width`` points."""
    if text_width(text, font_name, size) <= width:
        return text
    while text and text_width(text + "…", font_name, size) > width:
        text = text[:-1]
    return text + "…"


def draw_text(canvas: Any, x: float, y: float, text: str, font_name: str, size: float, align: str = "left") -> None:
    """Draw ``text`` on a canvas run by run (``align``: left, right or centre around ``x``)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if align == "right":
        x -= text_width(text, font_name, size)
    elif align == "centre":
        x -= text_width(text, font_name, size) / 2
    for name, chunk in runs(text, font_name):
        canvas.setFont(name, size)
        canvas.drawString(x, y, chunk)
        x += stringWidth(chunk, name, size)
    canvas.setFont(font_name, size)


def paragraph(value: Any, style: ParagraphStyle, limit: int = 300) -> Paragraph:
    """A Paragraph that shows ``value`` literally (markup characters escaped)."""
    from reportlab.platypus import Paragraph

    return Paragraph(markup(clean_for_pdf(value, limit), style.fontName), style)


def _country_name(code: str, locale: Locale | None) -> str:
    try:
        return str((locale or Locale.parse("en")).territories.get(code.upper(), code))
    except Exception:
        return code


def address_lines(address: Mapping[str, Any] | None, locale: Locale | None = None) -> list[str]:
    """An address dict (Shopify's keys) as printable lines, empty parts left out.

    A missing country name is looked up from ``country_code`` in ``locale`` (English).
    """
    if not address:
        return []
    a = {k: clean_for_pdf(v, 120) for k, v in address.items() if isinstance(v, (str, int))}
    name = a.get("name") or " ".join(p for p in (a.get("first_name"), a.get("last_name")) if p)
    city_line = " ".join(p for p in (a.get("zip"), a.get("city")) if p)
    region = a.get("province_code") or a.get("province") or ""
    if region:
        city_line = f"{city_line}, {region}" if city_line else region
    lines = [name, a.get("company", ""), a.get("address1", ""), a.get("address2", ""), city_line]
    code = a.get("country_code", "")
    lines.append(a.get("country") or (_country_name(code, locale) if code else ""))
    return [line for line in lines if line]


def resolve_locale(locale: str | None) -> Locale:
    """A Babel locale for ``locale`` ("vi", "zh-Hans", "ru_RU", "pt-BR"); English when unknown."""
    return locale_for(locale)


def money(amount: Decimal, currency: str, locale: Locale) -> str:
    """The amount as ``locale`` writes it (:func:`shopbase.formatting.format_money`: never raises)."""
    return format_money(amount, clean_for_pdf(currency, 8), locale)


def day(value: date | datetime | None, locale: Locale, tz: str | None = None) -> str:
    """A date in the long form ("December 2, 2026", "2 de diciembre de 2026"), in time zone ``tz``."""
    return format_date(value, locale, tz, format="long")


def number(value: Decimal | int, locale: Locale) -> str:
    """A quantity or other number in ``locale``."""
    return format_number(value, locale)


def document_language(locale: Locale) -> str:
    """The key of the texts file for ``locale``: "zh-Hans"/"zh-Hant" for Chinese, else the language."""
    if locale.language == "zh":
        traditional = locale.script == "Hant" or (locale.script is None and locale.territory in {"TW", "HK", "MO"})
        return "zh-Hant" if traditional else "zh-Hans"
    return locale.language


@lru_cache(maxsize=16)
def _load_texts(language: str) -> dict[str, str]:
    if not language.replace("-", "").isalnum():
        return {}
    path = resources.files("templates").joinpath("documents", f"{language}.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in (data or {}).items()}


def document_texts(locale: Locale) -> dict[str, str]:
    """Headings and fixed texts in the language of ``locale`` (English for missing keys)."""
    return {**_load_texts("en"), **_load_texts(document_language(locale))}
