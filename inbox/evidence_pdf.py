"""The dispute evidence bundle as an A4 PDF, in the shop's language, CJK-safe.

It prints what :mod:`inbox.queries.evidence` read: the order, payment and fulfillment facts,
every shipment with its tracking events and proof of delivery, the return authorizations and
the conversation transcript with timestamps. It shares fonts, CJK runs, escaping and Babel
formatting with the invoices and labels (``ordersvc.documents``); headings come from
``templates/documents/<lang>.yaml`` (``evidence_*`` keys).

The file is bounded whatever the conversation: at most :data:`MAX_MESSAGES` messages (the
first and the last ones, with "N more messages omitted, see the JSON file" between them), each
cut at :data:`MAX_MESSAGE_CHARS` (about 2 s of rendering at the caps, one render at a time), and at most :data:`MAX_EVENTS` tracking events per shipment.
The JSON file of the bundle has everything.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from io import BytesIO
from typing import Any

from babel import Locale
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, SimpleDocTemplate, Spacer, Table, TableStyle

from inbox.queries.evidence import Evidence, TranscriptLine, proof_of_delivery
from ordersvc.documents import (
    address_lines,
    document_texts,
    draw_text,
    fonts,
    money,
    number,
    paragraph,
    resolve_locale,
)
from ordersvc.service import OrderBundle
from shopbase.formatting import format_datetime
from shopbase.text import clean_for_pdf

__all__ = ["render_evidence_pdf", "MAX_MESSAGES", "MAX_MESSAGE_CHARS", "MAX_EVENTS"]

MAX_MESSAGES = 300
MAX_MESSAGE_CHARS = 1000
MAX_EVENTS = 60
#: rendering is CPU work in a worker thread (~2 s at the caps): one at a time per process, so a burst
#: of downloads queues in the thread pool instead of taking every core
_RENDERING = threading.BoundedSemaphore(1)


def _code(value: Any) -> str:
    """An enum value as words ("in_transit" -> "in transit")."""
    return str(getattr(value, "value", value) or "").replace("_", " ")


def _status_label(value: Any, language: str | None) -> str:
    """A stored status (payment, fulfillment, shipment, tracking, return, resolution, channel) as the
    label the inbox shows for it (``|humanize``: :mod:`inbox.web.labels`, gettext context "label"),
    in ``language`` when the agents' catalogs have it, else in English ("in_transit" -> "In
    transit" / "В пути"). An unlisted value stays humanized."""
    from inbox.web.i18n import LABEL_CONTEXT, translations, ui_language

    text = _code(value).capitalize()
    return translations(ui_language(language)).pgettext(LABEL_CONTEXT, text) if text else text


def _bounded(messages: Sequence[TranscriptLine]) -> tuple[list[TranscriptLine], int, list[TranscriptLine]]:
    """The first and last messages to print, and how many are left out between them."""
    if len(messages) <= MAX_MESSAGES:
        return list(messages), 0, []
    head = MAX_MESSAGES * 3 // 4  # the start of a dispute matters most; the end shows how it ended
    tail = MAX_MESSAGES - head
    return list(messages[:head]), len(messages) - MAX_MESSAGES, list(messages[-tail:])


def render_evidence_pdf(evidence: Evidence, *, shop_name: str, language: str | None, timezone: str,
                        contact_details: bool = True) -> bytes:
    """The PDF bytes (call it in a worker thread: ``asyncio.to_thread``); ``contact_details=False``
    leaves out the customer's email (the copy posted to Slack)."""
    with _RENDERING:
        return _render(evidence, shop_name=shop_name, language=language, timezone=timezone,
                       contact_details=contact_details)


def _render(evidence: Evidence, *, shop_name: str, language: str | None, timezone: str,
            contact_details: bool) -> bytes:
    loc: Locale = resolve_locale(language)
    h = document_texts(loc)
    f = fonts()
    width = A4[0] - 36 * mm - 12  # the frame's own padding (6 pt each side)

    body = ParagraphStyle("ev-body", fontName=f.regular, fontSize=9, leading=12)
    small = ParagraphStyle("ev-small", parent=body, fontSize=8, leading=10)
    muted = ParagraphStyle("ev-muted", parent=small, textColor=colors.grey)
    bold = ParagraphStyle("ev-bold", parent=body, fontName=f.bold)
    h1 = ParagraphStyle("ev-h1", fontName=f.bold, fontSize=16, leading=20, spaceAfter=4)
    h2 = ParagraphStyle("ev-h2", fontName=f.bold, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4)
    h3 = ParagraphStyle("ev-h3", fontName=f.bold, fontSize=10, leading=13, spaceBefore=6, spaceAfter=2)

    def when(value: datetime | None) -> str:
        return format_datetime(value, loc, timezone) if value is not None else "—"

    def grid(rows: list[list[Any]], widths: Sequence[float], header: bool = True) -> Table:
        table = Table(rows, colWidths=[width * w for w in widths], repeatRows=1 if header else 0)
        style = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, -1), 0),
                 ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey)]
        if header:
            style.append(("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black))
        table.setStyle(TableStyle(style))
        return table

    c = evidence.conversation
    story: list[Any] = []
    title = h["evidence_title"]
    if evidence.order_id is not None and evidence.orders:
        title = f"{title} · {h['evidence_for_order'].format(order=clean_for_pdf(evidence.orders[0].order.name, 64))}"
    story.append(paragraph(title, h1, 200))
    story.append(paragraph(h["evidence_generated"].format(date=when(evidence.generated_at),
                                                          shop=clean_for_pdf(shop_name, 80)), muted, 300))
    story.append(paragraph(h["evidence_conversation"].format(id=c.id, channel=_status_label(c.channel, language),
                                                             date=when(c.created_at)), muted, 300))
    contact_name = clean_for_pdf(evidence.contact.display_name or evidence.contact.username or "—", 120)
    story.append(paragraph(h["evidence_contact"].format(name=contact_name), muted, 300))

    if not evidence.orders:
        story.append(paragraph(h["evidence_no_orders"], body))
    for bundle in evidence.orders:
        story.extend(_order_section(bundle, h, loc, when, grid, body, small, muted, bold, h2, h3, contact_details,
                                    language))
    if evidence.orders_omitted:
        story.append(paragraph(h["evidence_omitted_orders"].format(count=number(evidence.orders_omitted, loc)), bold))

    # the transcript
    story.append(paragraph(h["evidence_transcript"], h2))
    story.append(paragraph(h["evidence_messages_count"].format(count=number(len(evidence.messages), loc)), muted))
    head, omitted, tail = _bounded(evidence.messages)
    authors = {"customer": h["evidence_author_customer"], "bot": h["evidence_author_bot"],
               "agent": h["evidence_author_agent"], "system": h["evidence_author_system"]}

    def message_rows(messages: list[TranscriptLine]) -> list[list[Any]]:
        rows = []
        for m in messages:
            who = authors.get(m.author, _code(m.author))
            if m.agent:
                who = f"{who} ({clean_for_pdf(m.agent, 60)})"
            cell: list[Any] = [paragraph(m.text or "—", small, MAX_MESSAGE_CHARS)]
            if m.attachments:
                cell.append(paragraph(h["evidence_attachments"].format(names=", ".join(m.attachments[:10])), muted))
            if m.delivery and m.delivery != "sent":
                cell.append(paragraph(h["evidence_delivery"].format(status=_status_label(m.delivery, language)), muted))
            rows.append([paragraph(when(m.at), small), paragraph(who, small, 100), cell])
        return rows

    columns = [paragraph(h["evidence_col_time"], bold), paragraph(h["evidence_col_from"], bold),
               paragraph(h["evidence_col_message"], bold)]
    widths = (0.2, 0.17, 0.63)
    if head:
        story.append(grid([columns, *message_rows(head)], widths))
    if omitted:
        story.append(Spacer(1, 3 * mm))
        story.append(paragraph(h["evidence_omitted_messages"].format(count=number(omitted, loc)), bold))
        story.append(Spacer(1, 3 * mm))
    if tail:
        story.append(grid([columns, *message_rows(tail)], widths))

    buffer = BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=clean_for_pdf(title, 120), author=clean_for_pdf(shop_name, 80))

    def footer(canvas: Canvas, document: Any) -> None:
        canvas.saveState()
        canvas.setFillColor(colors.grey)
        draw_text(canvas, A4[0] - 18 * mm, 9 * mm, h["evidence_page"].format(page=document.page), f.regular, 8,
                  align="right")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _order_section(b: OrderBundle, h: dict[str, str], loc: Locale, when: Any, grid: Any,
                   body: ParagraphStyle, small: ParagraphStyle, muted: ParagraphStyle, bold: ParagraphStyle,
                   h2: ParagraphStyle, h3: ParagraphStyle, contact_details: bool,
                   language: str | None) -> list[Any]:
    o = b.order
    cur = o.currency
    out: list[Any] = [paragraph(h["evidence_order"].format(order=clean_for_pdf(o.name, 64)), h2)]
    facts = [h["evidence_placed"].format(date=when(o.placed_at))]
    if b.customer is not None:
        customer = clean_for_pdf(b.customer.display_name, 120)
        email = clean_for_pdf(b.customer.email or o.email or "", 120) if contact_details else ""
        facts.append(h["evidence_customer"].format(name=customer + (f" <{email}>" if email else "")))
    if o.cancelled_at is not None:
        facts.append(h["evidence_cancelled"].format(date=when(o.cancelled_at)))
    out.extend(paragraph(line, body) for line in facts)
    ship_to = address_lines(o.shipping_address, loc)
    if ship_to:
        out.append(paragraph(h["ship_to"] + ": " + ", ".join(ship_to), body, 400))

    rows: list[list[Any]] = [[paragraph(h["item"], bold), paragraph(h["qty"], bold), paragraph(h["amount"], bold)]]
    for ln in b.lines:
        label = ln.title or "—"
        if ln.sku:
            label = f"{label} · {h['sku'].format(sku=clean_for_pdf(ln.sku, 64))}"
        rows.append([paragraph(label, small, 255), paragraph(number(ln.quantity, loc), small),
                     paragraph(money(ln.unit_price * ln.quantity - ln.total_discount, cur, loc), small)])
    out.append(grid(rows, (0.62, 0.1, 0.28)))

    # payment
    out.append(paragraph(h["evidence_payment"], h3))
    out.append(paragraph(h["evidence_payment_status"].format(status=_status_label(o.financial_status, language)), body))
    out.append(paragraph(f"{h['total']}: {money(o.total_price, cur, loc)} ({h['subtotal']} "
                         f"{money(o.subtotal_price, cur, loc)}, {h['shipping']} {money(o.total_shipping, cur, loc)}, "
                         f"{h['tax']} {money(o.total_tax, cur, loc)})", body, 400))
    for refund in b.refunds:
        out.append(paragraph(h["evidence_refund"].format(amount=money(refund.amount, refund.currency, loc),
                                                         date=when(refund.processed_at)), body))
    for credit in b.store_credits:
        out.append(paragraph(h["evidence_store_credit"].format(amount=money(credit.amount, credit.currency, loc),
                                                               code=clean_for_pdf(credit.code, 32)), body))

    # fulfillment
    out.append(paragraph(h["evidence_fulfillment"], h3))
    out.append(paragraph(h["evidence_fulfillment_status"].format(status=_status_label(o.fulfillment_status, language)), body))
    if not b.shipments:
        out.append(paragraph(h["evidence_no_shipments"], body))
    for sb in b.shipments:
        s = sb.shipment
        tracking = " ".join(x for x in (clean_for_pdf(s.carrier or "", 64), clean_for_pdf(s.tracking_number or "", 64)) if x)
        block: list[Any] = [paragraph(h["evidence_shipment"].format(name=clean_for_pdf(s.name or s.external_id, 64),
                                                                    tracking=tracking or "—"), bold)]
        block.append(paragraph(h["evidence_shipment_status"].format(status=_status_label(s.status, language), shipped=when(s.shipped_at)),
                               body))
        if s.tracking_url:
            block.append(paragraph(s.tracking_url, muted, 300))
        if sb.lines:
            block.append(paragraph(", ".join(f"{number(sl.quantity, loc)} × {clean_for_pdf(sl.line.title, 80)}"
                                             for sl in sb.lines), small, 600))
        pod = proof_of_delivery(sb)
        if pod is not None:
            scan = next((e for e in sorted(sb.events, key=lambda e: e.occurred_at)
                         if _code(e.status) == "delivered"), None)
            details = ", ".join(x for x in (clean_for_pdf(scan.location or "", 120) if scan else "",
                                            clean_for_pdf(scan.message, 200) if scan else "") if x)
            block.append(paragraph(h["evidence_pod"].format(date=when(s.delivered_at or (scan.occurred_at if scan else None)),
                                                            details=details or "—"), bold, 400))
        else:
            block.append(paragraph(h["evidence_no_pod"], body))
        out.append(KeepTogether(block))
        events = sorted(sb.events, key=lambda e: (e.occurred_at, e.id or 0))
        if events:
            shown = events[-MAX_EVENTS:]
            rows = [[paragraph(h["evidence_col_time"], bold), paragraph(h["evidence_col_status"], bold),
                     paragraph(h["evidence_col_location"], bold), paragraph(h["evidence_col_details"], bold)]]
            rows += [[paragraph(when(e.occurred_at), small), paragraph(_status_label(e.status, language), small),
                      paragraph(e.location or "", small, 120), paragraph(e.message or "", small, 300)] for e in shown]
            if len(events) > len(shown):
                out.append(paragraph(h["evidence_omitted_events"].format(count=number(len(events) - len(shown), loc)),
                                     muted))
            out.append(grid(rows, (0.22, 0.16, 0.22, 0.4)))

    # returns
    out.append(paragraph(h["evidence_returns"], h3))
    if not b.returns:
        out.append(paragraph(h["evidence_no_returns"], body))
    for rb in b.returns:
        r = rb.rma
        out.append(paragraph(h["evidence_return"].format(rma=clean_for_pdf(r.rma_number, 32), status=_status_label(r.status, language),
                                                         resolution=_status_label(r.resolution, language), date=when(r.requested_at)),
                             body, 400))
        for rl in rb.lines:
            line = b.line(rl.order_line_id)
            reason = h.get(f"reason_{_code(rl.reason).replace(' ', '_')}", _code(rl.reason))
            title = clean_for_pdf(line.title if line else "", 80)
            out.append(paragraph(f"{number(rl.quantity, loc)} × {title}: {reason}"
                                 + (f" ({clean_for_pdf(rl.reason_note, 200)})" if rl.reason_note else ""), small, 400))
    out.append(Spacer(1, 2 * mm))
    return out
