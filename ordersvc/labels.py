"""The prepaid return label: a 4×6 inch PDF the customer prints and sticks on the parcel.

Page 1 is the label: carrier, FROM (the customer's shipping address), TO (the returns
warehouse), the RMA number and the return tracking number as a Code 128 barcode with
the number printed below it. The following page(s) are the packing slip that goes into
the box: RMA and order number and the returned items with quantity and reason.
Fixed texts come from ``templates/documents/<lang>.yaml`` in the customer's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from io import BytesIO
from typing import Any

from babel import Locale
from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ordersvc.documents import (
    ShopInfo,
    address_lines,
    day,
    document_texts,
    draw_text,
    fit_text,
    fonts,
    markup,
    number,
    paragraph,
    resolve_locale,
    text_width,
)
from ordersvc.models import Order, OrderLine, ReturnAuthorization, ReturnLine
from shopbase.text import clean_for_pdf

__all__ = ["LABEL_SIZE", "ShopInfo", "return_label_barcode", "render_return_label"]

LABEL_SIZE = (4 * inch, 6 * inch)
_MARGIN = 14.0
_CARRIER_NAMES = {"ups": "UPS", "usps": "USPS", "fedex": "FedEx", "dhl": "DHL"}
_MAX_BAR_WIDTH = 1.6  # points per module (~22 mil); narrower when the number is long


def return_label_barcode(tracking_number: str, width: float, bar_height: float = 0.9 * inch) -> Code128:
    """The Code 128 widget for ``tracking_number``, scaled to fit ``width`` points."""
    probe = Code128(tracking_number, barWidth=1, quiet=False, humanReadable=False)
    bar_width = min(_MAX_BAR_WIDTH, width / probe.width)
    return Code128(
        tracking_number, barWidth=bar_width, barHeight=bar_height, quiet=False, humanReadable=False
    )


def _block(
    canvas: Canvas, x: float, y: float, width: float, title: str, lines: Sequence[str], size: float
) -> float:
    """Draw a titled address block from the top ``y`` down; return the y below it."""
    f = fonts()
    draw_text(canvas, x, y - 7, title, f.bold, 7)
    y -= 9
    for line in lines[:7]:
        y -= size + 2
        draw_text(canvas, x, y, fit_text(line, f.regular, size, width), f.regular, size)
    return y - 4


def _draw_label(
    canvas: Canvas,
    rma: ReturnAuthorization,
    order: Order,
    shop: ShopInfo,
    warehouse_address: Mapping[str, Any],
    t: Mapping[str, str],
    loc: Locale,
) -> None:
    f = fonts()
    page_w, page_h = LABEL_SIZE
    inner = page_w - 2 * _MARGIN
    tracking = rma.label_tracking_number or ""
    carrier = _CARRIER_NAMES.get((rma.label_carrier or "").lower(), clean_for_pdf(rma.label_carrier, 16).upper())

    top = page_h - _MARGIN
    draw_text(canvas, _MARGIN, top - 22, carrier, f.bold, 22)
    draw_text(canvas, page_w - _MARGIN, top - 10, t["prepaid_return"], f.bold, 9, align="right")
    shop_name = fit_text(clean_for_pdf(shop.name, 60), f.regular, 8, inner / 2)
    draw_text(canvas, page_w - _MARGIN, top - 21, shop_name, f.regular, 8, align="right")
    y = top - 30
    canvas.setLineWidth(1.5)
    canvas.line(_MARGIN, y, page_w - _MARGIN, y)

    customer = list(address_lines(order.shipping_address, loc))
    y = _block(canvas, _MARGIN, y - 4, inner, t["from"], customer or ["—"], 8)
    destination = [clean_for_pdf(shop.name, 80), *address_lines(warehouse_address, loc)]
    y = _block(canvas, _MARGIN + 12, y - 2, inner - 12, t["to"], destination, 11)

    canvas.setLineWidth(1.5)
    canvas.line(_MARGIN, y, page_w - _MARGIN, y)
    rma_label = fit_text(t["rma"], f.bold, 8, inner / 3)
    draw_text(canvas, _MARGIN, y - 12, rma_label, f.bold, 8)
    rma_x = _MARGIN + max(26.0, text_width(rma_label, f.bold, 8) + 6)
    rma_number = fit_text(clean_for_pdf(rma.rma_number, 32), f.bold, 18, page_w - _MARGIN - rma_x)
    draw_text(canvas, rma_x, y - 16, rma_number, f.bold, 18)
    order_text = t["order"].format(order=clean_for_pdf(order.name, 64))
    draw_text(canvas, _MARGIN, y - 28, fit_text(order_text, f.regular, 8, inner), f.regular, 8)
    y -= 36
    canvas.line(_MARGIN, y, page_w - _MARGIN, y)

    draw_text(canvas, _MARGIN, y - 12, fit_text(t["tracking"].format(carrier=carrier), f.bold, 8, inner), f.bold, 8)
    barcode = return_label_barcode(tracking, inner - 8)
    bar_x = (page_w - barcode.width) / 2
    bar_y = y - 20 - barcode.barHeight
    barcode.drawOn(canvas, bar_x, bar_y)
    canvas.setFont("Courier-Bold", 12)
    canvas.drawCentredString(page_w / 2, bar_y - 14, tracking)

    canvas.setFillColor(colors.black)
    hint_style = ParagraphStyle("label-hint", fontName=f.regular, fontSize=7, leading=8.5)
    hint = Paragraph(markup(t["label_hint"], f.regular), hint_style)  # wraps in long languages
    hint.wrap(inner, 40)
    hint.drawOn(canvas, _MARGIN, _MARGIN - 2)


def _packing_slip(
    rma: ReturnAuthorization,
    order: Order,
    lines: Sequence[tuple[ReturnLine, OrderLine]],
    t: Mapping[str, str],
    loc: Locale,
    tz: str = "UTC",
) -> list[Any]:
    f = fonts()
    title = ParagraphStyle("slip-title", fontName=f.bold, fontSize=13, leading=16)
    text = ParagraphStyle("slip-text", fontName=f.regular, fontSize=8, leading=10)
    head = ParagraphStyle("slip-head", fontName=f.bold, fontSize=8, leading=10)
    story: list[Any] = [
        paragraph(t["slip_title"].format(rma=clean_for_pdf(rma.rma_number, 32)), title),
        paragraph(t["order"].format(order=clean_for_pdf(order.name, 64)), text),
        paragraph(t["requested"].format(date=day(rma.requested_at, loc, tz)), text),
        Spacer(1, 8),
    ]
    rows: list[list[Any]] = [[paragraph(t["item"], head), paragraph(t["qty"], head), paragraph(t["reason"], head)]]
    for rl, ol in lines:
        item = " – ".join(p for p in (clean_for_pdf(ol.title, 120), clean_for_pdf(ol.variant_title, 80)) if p)
        details = [t["sku"].format(sku=clean_for_pdf(ol.sku, 64))] if ol.sku else []
        if rl.exchange_sku:
            details.append(t["exchange_for"].format(sku=clean_for_pdf(rl.exchange_sku, 64)))
        reason = t.get(f"reason_{rl.reason.value}", rl.reason.value.replace("_", " "))
        if rl.reason_note:
            reason = t["reason_note"].format(reason=reason, note=clean_for_pdf(rl.reason_note, 200))
        cell = [paragraph(item, text), *(paragraph(d, text) for d in details)]
        rows.append([cell, paragraph(number(rl.quantity, loc), text), paragraph(reason, text)])
    inner = LABEL_SIZE[0] - 2 * _MARGIN
    table = Table(rows, colWidths=[inner * 0.55, inner * 0.12, inner * 0.33], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.grey),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    story.append(table)
    return story


def render_return_label(
    rma: ReturnAuthorization,
    order: Order,
    lines: Sequence[tuple[ReturnLine, OrderLine]],
    shop: ShopInfo,
    warehouse_address: Mapping[str, Any],
    locale: str | None = None,
) -> bytes:
    """The label and packing slip as PDF bytes; ``ValueError`` if no label was issued.

    ``lines`` pairs each return line with its order line (``returns.load_rma_lines``);
    ``locale`` ("zh-Hans", "ru" …) picks the language of the fixed texts (English default).
    """
    loc = resolve_locale(locale)
    t = document_texts(loc)
    if not rma.label_tracking_number:
        raise ValueError(f"return {rma.rma_number} has no label (status {rma.status})")
    buffer = BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=LABEL_SIZE,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=t["label_title"].format(rma=clean_for_pdf(rma.rma_number, 32)),
        author=clean_for_pdf(shop.name, 80),
    )

    def first_page(canvas: Canvas, _doc: Any) -> None:
        canvas.saveState()
        _draw_label(canvas, rma, order, shop, warehouse_address, t, loc)
        canvas.restoreState()

    story: list[Any] = [Spacer(1, 1), PageBreak(), *_packing_slip(rma, order, lines, t, loc, shop.timezone)]
    doc.build(story, onFirstPage=first_page)
    return buffer.getvalue()
