"""Shared pieces of the PDF documents (return labels, invoices): fonts, text, money, dates.

Fonts: DejaVu Sans (Latin, Cyrillic, Vietnamese, Greek …) is registered with reportlab
when the TTF files are found; otherwise the documents fall back to Helvetica, which
renders Latin-1 text only (other characters show as blanks; nothing is transliterated).

Customer-provided strings are untrusted: ``shopbase.text.clean_for_pdf`` removes control and bidi-override
characters and bounds the length, and ``paragraph`` escapes reportlab's mini-markup, so
``<b>`` or ``&amp;`` in a name is printed literally.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph

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
]

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)
@dataclass(frozen=True)
class ShopInfo:
    """The merchant as printed on documents."""

    name: str
    address: Mapping[str, Any] = field(default_factory=dict)
    email: str | None = None
    tax_id: str | None = None


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    unicode: bool  # False when only Helvetica (Latin-1) is available


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


@lru_cache(maxsize=1)
def _register_fonts() -> Fonts:
    regular, bold = _find_font("DejaVuSans.ttf"), _find_font("DejaVuSans-Bold.ttf")
    if regular is None:
        return Fonts("Helvetica", "Helvetica-Bold", unicode=False)
    try:
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
        bold_name = "DejaVuSans"
        if bold is not None:
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
            bold_name = "DejaVuSans-Bold"
    except Exception:  # a damaged font file: documents still render
        return Fonts("Helvetica", "Helvetica-Bold", unicode=False)
    return Fonts("DejaVuSans", bold_name, unicode=True)


def paragraph(value: Any, style: ParagraphStyle, limit: int = 300) -> Paragraph:
    """A Paragraph that shows ``value`` literally (markup characters escaped)."""
    return Paragraph(escape(clean_for_pdf(value, limit)), style)


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
    """A Babel locale for ``locale`` ("vi", "ru_RU", "pt-BR"); English when unknown."""
    if locale:
        try:
            return Locale.parse(str(locale).replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            pass
    return Locale.parse("en")


def money(amount: Decimal, currency: str, locale: Locale) -> str:
    """``format_currency`` that never raises on an odd currency code."""
    try:
        return format_currency(amount, currency, locale=locale)
    except Exception:
        return f"{amount} {clean_for_pdf(currency, 8)}"


def day(value: date | datetime | None, locale: Locale) -> str:
    if value is None:
        return ""
    return format_date(value.date() if isinstance(value, datetime) else value, format="long", locale=locale)
