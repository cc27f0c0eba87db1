"""Return labels and invoices: real PDFs whose text (and barcode) can be read back."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from babel.dates import format_date
from babel.numbers import format_currency
from pypdf import PdfReader

from ordersvc.documents import ShopInfo, fonts
from ordersvc.invoices import render_invoice
from ordersvc.labels import LABEL_SIZE, render_return_label, return_label_barcode
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
from ordersvc.tracking import find_tracking_numbers
from shopbase.text import clean_for_pdf

PLACED = datetime(2025, 3, 9, 18, 30, tzinfo=UTC)
CARRIER, TRACKING = issue_tracking_number(4711, LabelAccount())
SHOP = ShopInfo(
    name="Cửa hàng & <Demo>",
    address={"address1": "1 Warehouse Way", "city": "Reno", "zip": "89501", "province_code": "NV", "country_code": "US"},
    email="shop@example.com",
)
WAREHOUSE = {"address1": "1 Warehouse Way", "address2": "Returns dock 3", "city": "Reno", "zip": "89501", "country_code": "US"}
UNICODE = fonts().unicode  # DejaVu found: Cyrillic and Vietnamese render


def _order(**fields) -> Order:
    fields.setdefault(
        "shipping_address",
        {"name": "Lan <b>Nguyễn</b> & Co", "address1": "12 Elm St", "city": "Springfield", "zip": "62704",
         "country_code": "US"},
    )
    return Order(id=1, external_id="1", name="#1001", placed_at=PLACED, **fields)


def _lines() -> list[OrderLine]:
    return [
        OrderLine(id=1, order_id=1, sku="TEE-M", title="Tee <b>bold</b> & co", variant_title="M / Đỏ", quantity=2,
                  unit_price=Decimal("19.99"), total_discount=Decimal("4.00")),
        OrderLine(id=2, order_id=1, sku="CAP", title="Кепка", quantity=1, unit_price=Decimal("12.50")),
    ]


def _rma(**fields) -> ReturnAuthorization:
    fields.setdefault("label_tracking_number", TRACKING)
    fields.setdefault("label_carrier", CARRIER)
    fields.setdefault("rma_number", "R1001-1")
    return ReturnAuthorization(id=4711, order_id=1, status=RmaStatus.label_issued, **fields)


def _return_pairs() -> list[tuple[ReturnLine, OrderLine]]:
    lines = _lines()
    return [
        (ReturnLine(rma_id=4711, order_line_id=1, quantity=2, reason=ReturnReason.too_small,
                    condition=ItemCondition.unopened, reason_note="runs <small> & tight"), lines[0]),
        (ReturnLine(rma_id=4711, order_line_id=2, quantity=1, reason=ReturnReason.changed_mind,
                    exchange_sku="CAP-RED"), lines[1]),
    ]


def _text(page) -> str:
    return " ".join(page.extract_text().replace("\xa0", " ").replace("\u202f", " ").split())


def _label_pdf() -> bytes:
    return render_return_label(_rma(), _order(), _return_pairs(), SHOP, WAREHOUSE)


def test_return_label_is_a_4x6_pdf_with_rma_and_tracking_number() -> None:
    pdf = _label_pdf()
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(BytesIO(pdf))
    assert len(reader.pages) == 2
    label, slip = (_text(p) for p in reader.pages)
    assert [float(v) for v in reader.pages[0].mediabox] == [0, 0, *LABEL_SIZE]
    assert "UPS" in label and "FROM" in label and "SHIP TO" in label
    assert "R1001-1" in label
    assert TRACKING in label
    assert [m.number for m in find_tracking_numbers(label)] == [TRACKING]
    assert "Lan <b>Nguyễn</b> & Co" in label if UNICODE else "Lan <b>" in label
    assert "Returns dock 3" in label and "United States" in label
    # the packing slip lists the returned items, customer text literally
    assert "R1001-1" in slip and "#1001" in slip
    assert "Tee <b>bold</b> & co" in slip
    assert "runs <small> & tight" in slip
    assert "CAP-RED" in slip


def test_barcode_widget_encodes_the_tracking_number() -> None:
    barcode = return_label_barcode(TRACKING, LABEL_SIZE[0] - 36)
    assert barcode.value == TRACKING
    assert barcode.width <= LABEL_SIZE[0] - 36 + 1e-6
    assert not barcode.humanReadable  # the label prints the number itself, checked above


def test_label_draws_the_barcode_of_its_tracking_number(monkeypatch: pytest.MonkeyPatch) -> None:
    import ordersvc.labels as labels

    built: list[str] = []

    def spy(number: str, width: float, *args, **kwargs):
        widget = return_label_barcode(number, width, *args, **kwargs)
        built.append(widget.value)
        return widget

    monkeypatch.setattr(labels, "return_label_barcode", spy)
    _label_pdf()
    assert built == [TRACKING]


def test_barcode_scans_back_to_the_tracking_number(tmp_path: Path) -> None:
    if not (shutil.which("pdftoppm") and shutil.which("zbarimg")):
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI must scan the label barcode: .ci/run installs poppler-utils and zbar-tools")
        pytest.skip("needs pdftoppm (poppler-utils) and zbarimg (zbar-tools) to scan the rendered barcode")
    (tmp_path / "label.pdf").write_bytes(_label_pdf())
    subprocess.run(
        ["pdftoppm", "-r", "300", "-f", "1", "-l", "1", "-png", str(tmp_path / "label.pdf"), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    [png] = sorted(tmp_path.glob("page*.png"))
    scanned = subprocess.run(
        ["zbarimg", "--raw", "-q", "-Scode128.enable", str(png)],
        capture_output=True, text=True, timeout=60,
    )
    assert scanned.stdout.split() == [TRACKING]


def test_label_needs_an_issued_label() -> None:
    with pytest.raises(ValueError, match="no label"):
        render_return_label(_rma(label_tracking_number=None), _order(), [], SHOP, WAREHOUSE)


def test_label_survives_hostile_and_empty_text() -> None:
    nasty = {"name": "\u202eevil\x00 " + "x" * 5000, "address1": "<para><font size=99>", "city": None}
    pdf = render_return_label(_rma(rma_number="R9-1"), _order(shipping_address=nasty), [], ShopInfo(""), {})
    text = _text(PdfReader(BytesIO(pdf)).pages[0])
    assert "<para><font size=99>" in text
    assert "\u202e" not in text and "\x00" not in text


@pytest.mark.parametrize("locale", ["en_US", "ru", "vi", "de-DE"])
def test_invoice_formats_money_and_dates_for_the_locale(locale: str) -> None:
    order = _order(
        currency="EUR",
        subtotal_price=Decimal("52.48"),
        total_discounts=Decimal("4.00"),
        total_shipping=Decimal("4.90"),
        total_tax=Decimal("10.11"),
        total_price=Decimal("63.49"),
        billing_address={"name": "Иван Петров", "address1": "ул. Ленина 1", "city": "Москва", "zip": "101000",
                         "country_code": "RU"},
    )
    customer = Customer(id=1, first_name="Ivan", last_name="Petrov")
    pdf = render_invoice(order, customer, _lines(), SHOP, locale)
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(BytesIO(pdf))
    assert [round(float(v)) for v in reader.pages[0].mediabox] == [0, 0, 595, 842]  # A4
    text = _text(reader.pages[0])
    babel_locale = locale.replace("-", "_")

    def money(amount: str) -> str:
        return " ".join(format_currency(Decimal(amount), "EUR", locale=babel_locale).replace("\xa0", " ").replace("\u202f", " ").split())

    for amount in ("63.49", "35.98", "19.99", "4.90", "10.11", "12.50"):
        assert money(amount) in text, (money(amount), text)
    date_text = " ".join(format_date(PLACED.date(), format="long", locale=babel_locale).split())
    assert date_text in text
    assert "#1001" in text
    assert "Tee <b>bold</b> & co" in text
    assert "Cửa hàng & <Demo>" in text if UNICODE else "<Demo>" in text
    if UNICODE:
        assert "Иван Петров" in text and "Кепка" in text


def test_invoice_headings_follow_the_locale_and_fall_back_to_english() -> None:
    de = _text(PdfReader(BytesIO(render_invoice(_order(), None, _lines(), SHOP, "de"))).pages[0])
    assert "Rechnungsnummer: #1001" in de
    if UNICODE:
        ru = _text(PdfReader(BytesIO(render_invoice(_order(), None, _lines(), SHOP, "ru"))).pages[0])
        assert "Номер счёта: #1001" in ru
    unknown = _text(PdfReader(BytesIO(render_invoice(_order(), None, _lines(), SHOP, "xx-??"))).pages[0])
    assert "Invoice number: #1001" in unknown


def test_invoice_with_many_lines_spans_pages() -> None:
    lines = [OrderLine(id=i, order_id=1, sku=f"SKU-{i}", title=f"Item {i}", quantity=1, unit_price=Decimal("1"))
             for i in range(1, 121)]
    reader = PdfReader(BytesIO(render_invoice(_order(), None, lines, SHOP, "en")))
    assert len(reader.pages) >= 3
    assert "Item 120" in _text(reader.pages[-1])


def test_clean_text_drops_controls_and_bounds_length() -> None:
    assert clean_for_pdf("a\u200db") == "a\u200db"  # ZWJ shapes some scripts; kept
    assert clean_for_pdf("a\x00b\u202ec\nd") == "abc d"
    assert clean_for_pdf("x" * 500, 10) == "x" * 9 + "…"
    assert clean_for_pdf(None) == ""
