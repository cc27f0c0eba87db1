"""Setting the web chat up: the visitor's identity token, the widget script, the demo storefront
and the static files."""

from __future__ import annotations

import secrets
import time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlmodel import col, select

from inbox.web.rendering import render
from inbox.web.state import STATE, sign
from inbox.web.webchat.translate import VISITOR_RE
from shopbase.formatting import language_from_header

__all__ = ["STATIC_DIR", "check_visitor_token", "htmx_dir", "issue_visitor_token", "shop_page", "widget_js"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def issue_visitor_token(key: bytes, visitor: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    return f"{issued}.{sign(key, f'visitor:v1:{visitor}:{issued}')}"


def check_visitor_token(key: bytes, visitor: Any, token: Any, *, max_age_days: int, now: float | None = None) -> bool:
    if not isinstance(visitor, str) or not isinstance(token, str) or not VISITOR_RE.match(visitor):
        return False
    issued_text, _, signature = token.partition(".")
    if not issued_text.isascii() or not issued_text.isdigit() or len(issued_text) > 12 or not signature:
        return False
    issued = int(issued_text)
    current = time.time() if now is None else now
    if issued > current + 300 or current - issued > max_age_days * 86400:
        return False
    return secrets.compare_digest(signature, sign(key, f"visitor:v1:{visitor}:{issued}"))


async def widget_js(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC_DIR / "widget.js",
        headers={"Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-cache"},
    )


_DEMO_PRODUCTS = [
    ("Trail Runner 2", "Lightweight running shoe with a grippy outsole.", "89.00"),
    ("Merino Crew Socks", "Soft, breathable, three pairs.", "24.00"),
    ("Packable Rain Jacket", "Waterproof shell that folds into its pocket.", "129.00"),
    ("Everyday Backpack", "20 L, padded laptop sleeve, recycled fabric.", "74.00"),
]


async def shop_page(request: web.Request) -> web.Response:
    """GET /shop — a small demo storefront with the chat widget."""
    from ordersvc.models import ProductVariant

    state = request.app[STATE]
    products: list[dict[str, Any]] = []
    async with state.sessions() as db:
        rows = (await db.exec(select(ProductVariant).order_by(col(ProductVariant.id)).limit(60))).all()
    seen: set[str] = set()
    for row in rows:
        if row.product_key in seen:
            continue
        seen.add(row.product_key)
        products.append(
            {
                "title": row.product_title or row.sku,
                "blurb": row.product_type or "",
                "price": row.price,
                "currency": row.currency,
            }
        )
        if len(products) == 6:
            break
    if not products:
        products = [{"title": t, "blurb": b, "price": Decimal(p), "currency": "USD"} for t, b, p in _DEMO_PRODUCTS]
    # prices in the visitor's language (their browser's, else the shop's default)
    locale = language_from_header(request.headers.get("Accept-Language"), state.config.default_language)
    return render(request, "shop/index.html", {"products": products, "shop_name": state.config.shop_name,
                                               "locale": locale})


def htmx_dir() -> Path:
    return Path(str(resources.files("js_lib_htmx"))) / "static" / "htmx"
