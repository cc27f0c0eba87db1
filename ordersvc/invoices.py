"""The customer's invoice for an order as an A4 PDF.

The invoice number is the order name. Dates and money are formatted for the customer's
locale with Babel; the headings come from ``templates/documents/<lang>.yaml`` (the six
languages of the bot, plus German and French), English otherwise. Every customer- or
merchant-provided string is drawn as literal text, CJK runs in the CJK font.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from io import BytesIO
from typing import Any

from babel import Locale
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import SimpleDocTemplate, Spacer, Table, TableStyle

from ordersvc.documents import (
    ShopInfo,
    address_lines,
    day,
    document_texts,
    draw_text,
    fonts,
    money,
    number,
    paragraph,
    resolve_locale,
)
from ordersvc.models import Customer, Order, OrderLine
from shopbase.text import clean_for_pdf

__all__ = ["ShopInfo", "render_invoice"]

def _headings(locale: Locale) -> dict[str, str]:
    return document_texts(locale)


def render_invoice(
    order: Order,
    customer: Customer | None,
    lines: Sequence[OrderLine],
    shop: ShopInfo,
    locale: str | None = None,
    *,
    issued_at: datetime | None = None,
) -> bytes:
    """The invoice as PDF bytes. ``locale`` defaults to the customer's, then English."""
    loc = resolve_locale(locale or (customer.locale if customer else None))
    h = _headings(loc)
    f = fonts()
    cur = order.currency

    def fmt(amount: Decimal) -> str:
        return money(amount, cur, loc)

    body = ParagraphStyle("inv-body", fontName=f.regular, fontSize=9, leading=12)
    small = ParagraphStyle("inv-small", parent=body, fontSize=8, leading=10, textColor=colors.grey)
    bold = ParagraphStyle("inv-bold", parent=body, fontName=f.bold)
    right = ParagraphStyle("inv-right", parent=body, alignment=TA_RIGHT)
    right_bold = ParagraphStyle("inv-right-bold", parent=right, fontName=f.bold)
    shop_style = ParagraphStyle("inv-shop", fontName=f.bold, fontSize=18, leading=22)
    title_style = ParagraphStyle("inv-title", fontName=f.bold, fontSize=16, leading=20, alignment=TA_RIGHT)

    shop_cell: list[Any] = [paragraph(shop.name, shop_style, 120)]
    shop_cell += [paragraph(line, body) for line in address_lines(shop.address, loc)]
    if shop.email:
        shop_cell.append(paragraph(shop.email, body))
    if shop.tax_id:
        shop_cell.append(paragraph(shop.tax_id, body))
    meta_cell: list[Any] = [
        paragraph(h["invoice"], title_style),
        paragraph(h["number"].format(number=clean_for_pdf(order.name, 64)), right),
        paragraph(h["date"].format(date=day(issued_at or order.placed_at, loc, shop.timezone)), right),
        paragraph(h["order_date"].format(date=day(order.placed_at, loc, shop.timezone)), right),
    ]
    width = A4[0] - 40 * mm
    header = Table([[shop_cell, meta_cell]], colWidths=[width * 0.55, width * 0.45])
    header.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))

    billing = address_lines(order.billing_address, loc)
    if not billing and customer is not None:
        billing = [customer.display_name]
    shipping = address_lines(order.shipping_address, loc)
    addresses = Table(
        [
            [paragraph(h["bill_to"], bold), paragraph(h["ship_to"], bold)],
            [[paragraph(x, body) for x in billing] or "", [paragraph(x, body) for x in shipping] or ""],
        ],
        colWidths=[width / 2, width / 2],
    )
    addresses.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))

    rows: list[list[Any]] = [
        [
            paragraph(h["item"], bold),
            paragraph(h["qty"], right_bold),
            paragraph(h["unit"], right_bold),
            paragraph(h["discount"], right_bold),
            paragraph(h["amount"], right_bold),
        ]
    ]
    for line in lines:
        item: list[Any] = [paragraph(line.title or "—", body, 255)]
        details = " · ".join(
            p
            for p in (
                clean_for_pdf(line.variant_title, 120),
                h["sku"].format(sku=clean_for_pdf(line.sku, 64)) if line.sku else "",
            )
            if p
        )
        if details:
            item.append(paragraph(details, small))
        amount = line.unit_price * line.quantity - line.total_discount
        rows.append(
            [
                item,
                paragraph(number(line.quantity, loc), right),
                paragraph(fmt(line.unit_price), right),
                paragraph(fmt(-line.total_discount) if line.total_discount else "", right),
                paragraph(fmt(amount), right),
            ]
        )
    items = Table(
        rows,
        colWidths=[width * 0.44, width * 0.08, width * 0.16, width * 0.14, width * 0.18],
        repeatRows=1,
    )
    items.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
            ]
        )
    )

    total_rows: list[list[Any]] = [[paragraph(h["subtotal"], right), paragraph(fmt(order.subtotal_price), right)]]
    if order.total_discounts:
        total_rows.append([paragraph(h["discounts"], right), paragraph(fmt(-order.total_discounts), right)])
    total_rows.append([paragraph(h["shipping"], right), paragraph(fmt(order.total_shipping), right)])
    total_rows.append([paragraph(h["tax"], right), paragraph(fmt(order.total_tax), right)])
    total_rows.append([paragraph(h["total"], right_bold), paragraph(fmt(order.total_price), right_bold)])
    totals = Table(total_rows, colWidths=[width * 0.78, width * 0.22])
    totals.setStyle(
        TableStyle([("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black), ("RIGHTPADDING", (0, 0), (-1, -1), 6)])
    )

    buffer = BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"{h['invoice']} {clean_for_pdf(order.name, 64)}",
        author=clean_for_pdf(shop.name, 80),
    )

    def footer(canvas: Canvas, document: Any) -> None:
        canvas.saveState()
        canvas.setFillColor(colors.grey)
        footer_text = h["page"].format(order=clean_for_pdf(order.name, 64), page=document.page)
        draw_text(canvas, A4[0] - 20 * mm, 10 * mm, footer_text, f.regular, 8, align="right")
        canvas.restoreState()

    story = [header, Spacer(1, 10 * mm), addresses, Spacer(1, 8 * mm), items, Spacer(1, 4 * mm), totals]
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
