"""Invoices, return labels and packing slips in the six languages, in every script.

Each document is generated for a customer whose name and address are written in the
language's script; ``pdftotext`` must read back the name, the address and the date (as
Babel writes it in that language), and every character drawn must have a real glyph in
the font it was drawn in (a character drawn in a font that lacks it shows as a box).
The glyph check is run against a PDF rendered without the CJK font too: it must fail.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
import yaml
from babel.dates import format_date
from babel.numbers import format_currency
from pypdf import PdfReader
from reportlab.pdfbase import pdfmetrics

import ordersvc.documents as documents
from ordersvc.documents import ShopInfo, fonts
from ordersvc.invoices import render_invoice
from ordersvc.labels import render_return_label
from ordersvc.models import (
    Customer,
    ItemCondition,
    Order,
    OrderLine,
    ReturnAuthorization,
    ReturnLine,
    ReturnReason,
    RmaStatus,
)
from ordersvc.returns import LabelAccount, issue_tracking_number

LANGUAGES = ["en", "es", "ru", "vi", "zh-Hans", "zh-Hant"]
BABEL = {"en": "en_US", "es": "es_ES", "ru": "ru_RU", "vi": "vi_VN", "zh-Hans": "zh_Hans_CN", "zh-Hant": "zh_Hant_TW"}
PLACED = datetime(2025, 3, 9, 18, 30, tzinfo=UTC)
REQUESTED = datetime(2025, 4, 2, 9, 0, tzinfo=UTC)
CARRIER, TRACKING = issue_tracking_number(4712, LabelAccount())
CURRENCY = {"en": "USD", "es": "EUR", "ru": "RUB", "vi": "VND", "zh-Hans": "CNY", "zh-Hant": "TWD"}
PEOPLE = {
    "en": ("Emily", "Clarke", "221B Baker Street", "London", "GB"),
    "es": ("José", "Muñoz", "Calle de Alcalá 48", "Madrid", "ES"),
    "ru": ("Дмитрий", "Соколов", "ул. Тверская, д. 7", "Москва", "RU"),
    "vi": ("Nguyễn Thị", "Lan", "12 Đường Lê Lợi, Phường Bến Nghé", "Thành phố Hồ Chí Minh", "VN"),
    "zh-Hans": ("王", "芳", "上海市徐汇区漕溪北路88号", "上海市", "CN"),
    "zh-Hant": ("陳", "志明", "台北市信義區松仁路100號", "台北市", "TW"),
}
SHOP = ShopInfo(name="Shopdesk Demo", address={"address1": "1 Warehouse Way", "city": "Reno", "country_code": "US"})
WAREHOUSE = {"address1": "1 Warehouse Way", "city": "Reno", "zip": "89501", "country_code": "US"}
CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}  # .ci/run installs all of them: never skip
needs_poppler = pytest.mark.skipif(
    not IN_CI and not (shutil.which("pdftotext") and shutil.which("pdftoppm")), reason="poppler-utils not installed"
)
needs_fonts = pytest.mark.skipif(
    not IN_CI and not (fonts().unicode and fonts().cjk), reason="fonts-dejavu-core / fonts-wqy-zenhei not installed"
)
pytestmark = [needs_poppler, needs_fonts]


def _name(lang: str) -> str:
    first, last, *_ = PEOPLE[lang]
    return f"{first}{last}" if lang.startswith("zh") else f"{first} {last}"


def _address(lang: str) -> dict[str, str]:
    _, _, street, city, country = PEOPLE[lang]
    return {"name": _name(lang), "address1": street, "city": city, "country_code": country}


def _order(lang: str) -> Order:
    return Order(
        id=7, external_id="7", name="#2001", placed_at=PLACED, currency=CURRENCY[lang], customer_id=3,
        subtotal_price=Decimal("1234.56"), total_shipping=Decimal("0"), total_tax=Decimal("0"),
        total_price=Decimal("1234.56"), shipping_address=_address(lang), billing_address=_address(lang),
    )


def _customer(lang: str) -> Customer:
    first, last, *_ = PEOPLE[lang]
    return Customer(id=3, first_name=first, last_name=last, locale=lang)


def _lines() -> list[OrderLine]:
    return [OrderLine(id=9, order_id=7, sku="TEE-M", title="T-shirt", quantity=1, unit_price=Decimal("1234.56"))]


def _label(lang: str) -> bytes:
    rma = ReturnAuthorization(id=4712, order_id=7, status=RmaStatus.label_issued, rma_number="R2001-1",
                              label_tracking_number=TRACKING, label_carrier=CARRIER, requested_at=REQUESTED)
    pairs = [(ReturnLine(rma_id=4712, order_line_id=9, quantity=1, reason=ReturnReason.too_small,
                         condition=ItemCondition.unopened), _lines()[0])]
    return render_return_label(rma, _order(lang), pairs, SHOP, WAREHOUSE, lang)


def _invoice(lang: str) -> bytes:
    return render_invoice(_order(lang), _customer(lang), _lines(), SHOP, BABEL[lang])


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True, timeout=60)
    return _squash(out.stdout.decode("utf-8"))


def _squash(text: str) -> str:
    """Whitespace (incl. Babel's no-break spaces) dropped: line breaks land anywhere in a PDF."""
    return "".join(text.split())


def _texts(lang: str) -> dict[str, str]:
    root = Path(documents.__file__).resolve().parents[1] / "templates" / "documents"
    return yaml.safe_load((root / f"{lang}.yaml").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------- the glyph check


def drawn_runs(pdf: bytes) -> list[tuple[str, str]]:
    """(registered font, text) for every run of text drawn on any page, as decoded by pypdf."""
    drawn: list[tuple[str, str]] = []

    def visit(text: str, _cm: object, _tm: object, font: dict | None, _size: object) -> None:
        if text and font is not None:
            base = str(font.get("/BaseFont", "")).lstrip("/").split("+", 1)[-1]
            drawn.append((re.sub(r"-\d+$", "", base), text))  # reportlab numbers a font's subsets

    for page in PdfReader(BytesIO(pdf)).pages:
        page.extract_text(visitor_text=visit)
    return drawn


def missing_glyphs(pdf: bytes) -> set[tuple[str, str]]:
    """Characters drawn without a glyph (they render as boxes or blanks).

    reportlab draws a character its font lacks as code 0 (.notdef); a character is also
    missing when the font it was drawn in has no glyph for it. Every TrueType font used
    must be embedded.
    """
    missing = set()
    reader = PdfReader(BytesIO(pdf))
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            if font.get("/Subtype") == "/TrueType" and "/FontFile2" not in font["/FontDescriptor"].get_object():
                missing.add((str(font["/BaseFont"]), "not embedded"))
    for name, text in drawn_runs(pdf):
        glyphs = getattr(getattr(pdfmetrics.getFont(name), "face", None), "charToGlyph", None)
        for ch in text:
            if glyphs is None:  # a standard Type 1 font (Courier for the tracking number): Latin-1
                if ord(ch) > 255:
                    missing.add((name, ch))
            elif ch == "\x00" or (not ch.isspace() and ord(ch) not in glyphs):
                missing.add((name, ch))
    return missing


def _render_png(pdf: bytes, tmp_path: Path, page: int) -> bytes:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "100", "-f", str(page), "-l", str(page), str(path), str(tmp_path / "page")],
                   check=True, capture_output=True, timeout=60)
    png = next(tmp_path.glob("page*.png"))
    return png.read_bytes()


# ----------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("lang", LANGUAGES)
def test_invoice_in_every_language(lang: str, tmp_path: Path) -> None:
    pdf = _invoice(lang)
    text = _pdftotext(pdf, tmp_path)
    t = _texts(lang)
    _, _, street, city, _ = PEOPLE[lang]
    assert _squash(_name(lang)) in text
    assert _squash(street) in text and _squash(city) in text
    assert _squash(format_date(PLACED.date(), format="long", locale=BABEL[lang])) in text
    assert _squash(format_currency(Decimal("1234.56"), CURRENCY[lang], locale=BABEL[lang])) in text
    for key in ("invoice", "bill_to", "ship_to", "item", "qty", "unit", "subtotal", "total"):
        assert _squash(t[key]) in text, (lang, key)
    assert _squash(t["number"].format(number="#2001")) in text
    assert missing_glyphs(pdf) == set()
    assert _render_png(pdf, tmp_path, 1).startswith(b"\x89PNG")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_return_label_and_packing_slip_in_every_language(lang: str, tmp_path: Path) -> None:
    pdf = _label(lang)
    text = _pdftotext(pdf, tmp_path)
    t = _texts(lang)
    _, _, street, city, _ = PEOPLE[lang]
    assert _squash(_name(lang)) in text
    assert _squash(street) in text and _squash(city) in text
    assert _squash(t["requested"].format(date=format_date(REQUESTED.date(), format="long", locale=BABEL[lang]))) in text
    for key in ("prepaid_return", "from", "to", "item", "qty", "reason", "reason_too_small"):
        assert _squash(t[key]) in text, (lang, key)
    assert _squash(t["slip_title"].format(rma="R2001-1")) in text
    assert _squash(t["tracking"].format(carrier="")) in text
    assert missing_glyphs(pdf) == set()
    assert _render_png(pdf, tmp_path, 1).startswith(b"\x89PNG")


def test_latin_text_stays_in_dejavu_and_chinese_goes_to_the_cjk_font() -> None:
    pdf = _invoice("zh-Hans")
    by_font: dict[str, set[str]] = {}
    for name, text in drawn_runs(pdf):
        by_font.setdefault(name, set()).update(text)
    cjk = by_font.pop(fonts().cjk or "", set())
    assert {"王", "芳", "上", "发", "票"} <= cjk
    assert not any(ch.isascii() and ch.isalnum() for ch in cjk), cjk  # digits and Latin stay in DejaVu
    latin = set().union(*by_font.values())
    assert {"T", "s", "h", "1", "#", "¥"} <= latin
    assert not any(CJK.match(ch) for ch in latin)


def test_every_heading_is_translated_into_the_six_languages() -> None:
    english = _texts("en")
    for lang in LANGUAGES:
        texts = _texts(lang)
        assert set(texts) == set(english), (lang, set(english) ^ set(texts))
        for key, value in texts.items():
            placeholders = set(re.findall(r"{(\w+)}", value))
            assert placeholders == set(re.findall(r"{(\w+)}", english[key])), (lang, key)
    assert _texts("zh-Hans")["invoice"] != _texts("zh-Hant")["invoice"]


def test_money_follows_the_document_language(tmp_path: Path) -> None:
    es = _pdftotext(render_invoice(_order("es"), None, _lines(), SHOP, "es_ES"), tmp_path)
    assert "1.234,56€" in es
    vi = _pdftotext(render_invoice(_order("vi"), None, _lines(), SHOP, "vi_VN"), tmp_path)
    assert "1.235₫" in vi and "1.234,56" not in vi  # VND has no decimals


@pytest.fixture
def without_cjk_font(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SHOPDESK_CJK_FONT", "/nonexistent/font.ttc")
    documents._register_fonts.cache_clear()
    yield
    monkeypatch.delenv("SHOPDESK_CJK_FONT")
    documents._register_fonts.cache_clear()


def test_a_missing_cjk_font_is_detected_and_logged_once_but_never_crashes(
    without_cjk_font: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ordersvc.documents"):
        invoice = _invoice("zh-Hans")
        label = _label("zh-Hant")
    warnings = [r for r in caplog.records if "CJK font" in r.getMessage()]
    assert len(warnings) == 1
    assert fonts().cjk is None
    # both checks see the boxes: Han characters drawn in DejaVu, which has no glyph for them
    assert ("DejaVuSans", "\x00") in missing_glyphs(invoice)
    assert ("DejaVuSans-Bold", "\x00") in missing_glyphs(label)
    assert "王芳" not in _pdftotext(invoice, tmp_path)
    assert _render_png(invoice, tmp_path, 1).startswith(b"\x89PNG")


def test_cjk_subset_keeps_files_small() -> None:
    sizes = {lang: len(_invoice(lang)) for lang in LANGUAGES}
    # subset embedding: a Chinese invoice adds only the glyphs it uses (the whole .ttc is ~16 MB)
    assert sizes["zh-Hans"] < sizes["en"] + 60_000, sizes
