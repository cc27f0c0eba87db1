"""Signed links to the PDFs the bot hands out: prepaid return labels and invoices.

A link is ``{public_url}/files/{kind}/{ident}.pdf?t={expiry}.{signature}`` where the
signature is an HMAC-SHA256, keyed with the server's secret key, over the kind, the
identifier and the expiry (unix seconds). Whoever holds the link may open the file until
it expires (the bot sends it only to a verified customer); nobody can forge a link for
another order or return. The token is checked in constant time before the database is
touched, and a bad, expired or tampered token answers exactly like a missing file: 404.

Routes (registered by :func:`setup`):

* ``GET /files/labels/{rma_number}.pdf?t=…[&lang=…]`` – the return label and packing slip
  (in ``lang``, else the customer's language);
* ``GET /files/invoices/{order_id}.pdf?t=…[&lang=…]`` – the order's invoice.

Responses are ``application/pdf``, ``Content-Disposition: inline``, ``Cache-Control:
private, no-store`` (the files hold addresses and must not sit in shared caches).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.replies import SUPPORTED_LANGUAGES, babel_locale
from ordersvc.documents import ShopInfo
from ordersvc.models import (
    Customer,
    Order,
    ReturnAuthorization,
    RmaStatus,
    Warehouse,
)
from ordersvc.returns import load_rma_lines
from ordersvc.service import get_setting, order_lines

__all__ = [
    "FILE_KINDS",
    "DEFAULT_TTL_DAYS",
    "SHOP_SETTING_KEY",
    "FilesConfig",
    "FILES_CONFIG",
    "file_token",
    "check_file_token",
    "signed_file_url",
    "setup",
]

log = logging.getLogger("shopdesk.files")

FILE_KINDS = ("labels", "invoices")
DEFAULT_TTL_DAYS = 30
#: optional ``ShopSetting`` with the merchant's printed details: ``{"address": {...}, "email": "...", "tax_id": "..."}``
SHOP_SETTING_KEY = "shop"

_MAX_IDENT = 64
_MAX_TOKEN = 128
_TOKEN_RE = re.compile(r"^([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")
_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _signature(secret_key: bytes, kind: str, ident: str, expires: int) -> str:
    message = "\x00".join(("shopdesk-file-v1", kind, ident, str(expires))).encode("utf-8")
    digest = hmac.new(secret_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _check_key(secret_key: bytes) -> None:
    if not isinstance(secret_key, bytes) or len(secret_key) < 16:
        raise ValueError("file links need the server's secret key (at least 16 bytes)")


def file_token(secret_key: bytes, kind: str, ident: str, expires: int) -> str:
    """The ``t`` parameter for ``kind``/``ident`` valid until ``expires`` (unix seconds)."""
    _check_key(secret_key)
    if kind not in FILE_KINDS:
        raise ValueError(f"unknown file kind {kind!r}")
    return f"{int(expires)}.{_signature(secret_key, kind, ident, int(expires))}"


def check_file_token(secret_key: bytes, kind: str, ident: str, token: str | None, *, now: float | None = None) -> bool:
    """True when ``token`` was made by :func:`file_token` for exactly this file and has not expired."""
    if not secret_key or not token or len(token) > _MAX_TOKEN or kind not in FILE_KINDS:
        return False
    found = _TOKEN_RE.match(token)
    if found is None:
        return False
    expires = int(found.group(1))
    expected = _signature(secret_key, kind, ident, expires)
    valid = hmac.compare_digest(found.group(2).encode("ascii"), expected.encode("ascii"))
    return valid and expires >= (time.time() if now is None else now)


def signed_file_url(
    public_url: str,
    secret_key: bytes,
    kind: str,
    ident: str,
    ttl_days: int = DEFAULT_TTL_DAYS,
    *,
    lang: str | None = None,
    now: float | None = None,
) -> str:
    """A link to the file that works for ``ttl_days`` days (``lang`` picks the invoice's language)."""
    expires = int((time.time() if now is None else now) + max(1, ttl_days) * 86400)
    query = {"t": file_token(secret_key, kind, str(ident), expires)}
    if lang in SUPPORTED_LANGUAGES:
        query["lang"] = str(lang)
    return f"{public_url.rstrip('/')}/files/{kind}/{quote(str(ident), safe='')}.pdf?{urlencode(query)}"


# --------------------------------------------------------------------------- the web side


@dataclass(frozen=True)
class FilesConfig:
    sessions: async_sessionmaker[Any]
    secret_key: bytes
    shop_name: str
    timezone: str = "UTC"


FILES_CONFIG = web.AppKey("shopdesk_files", FilesConfig)


def _not_found() -> web.Response:
    return web.json_response({"error": "not found"}, status=404, headers=_HEADERS)


def _pdf(body: bytes, filename: str) -> web.Response:
    headers = dict(_HEADERS)
    headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return web.Response(body=body, content_type="application/pdf", headers=headers)


def _safe_filename(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", value)[:64] or "file"


async def _shop_info(session: AsyncSession, shop_name: str, timezone: str = "UTC") -> tuple[ShopInfo, dict[str, Any]]:
    """The merchant as printed, and the returns address (default warehouse, else the shop's)."""
    details = await get_setting(session, SHOP_SETTING_KEY, {})
    warehouse = (
        await session.exec(select(Warehouse).order_by(col(Warehouse.is_default).desc(), col(Warehouse.id)).limit(1))
    ).first()
    shop_address = details.get("address") if isinstance(details.get("address"), Mapping) else None
    returns_address = dict(warehouse.address or {}) if warehouse is not None and warehouse.address else dict(shop_address or {})
    shop = ShopInfo(
        name=shop_name,
        address=dict(shop_address or returns_address),
        email=details.get("email") if isinstance(details.get("email"), str) else None,
        tax_id=details.get("tax_id") if isinstance(details.get("tax_id"), str) else None,
        timezone=timezone,
    )
    return shop, returns_address


async def label_pdf(request: web.Request) -> web.Response:
    config = request.app[FILES_CONFIG]
    rma_number = request.match_info["rma_number"]
    if len(rma_number) > _MAX_IDENT or not check_file_token(config.secret_key, "labels", rma_number, request.query.get("t")):
        return _not_found()
    async with config.sessions() as session:
        rma = (await session.exec(select(ReturnAuthorization).where(ReturnAuthorization.rma_number == rma_number))).first()
        if rma is None or not rma.label_tracking_number or rma.status in {RmaStatus.rejected, RmaStatus.cancelled}:
            return _not_found()
        order = await session.get(Order, rma.order_id)
        if order is None:
            return _not_found()
        lines = await load_rma_lines(session, rma)
        shop, returns_address = await _shop_info(session, config.shop_name, config.timezone)
        customer = await session.get(Customer, order.customer_id) if order.customer_id is not None else None
    lang = request.query.get("lang")
    locale = babel_locale(lang) if lang in SUPPORTED_LANGUAGES else (customer.locale if customer else None)
    body = await asyncio.to_thread(_render_return_label, rma, order, lines, shop, returns_address, locale)
    return _pdf(body, f"return-label-{_safe_filename(rma.rma_number)}.pdf")


# the PDF modules import reportlab (~7 MB resident): loaded by the first PDF, in its worker thread,
# not at start (the bot never draws one)
def _render_return_label(*args: Any) -> bytes:
    from ordersvc.labels import render_return_label

    return render_return_label(*args)


def _render_invoice(*args: Any) -> bytes:
    from ordersvc.invoices import render_invoice

    return render_invoice(*args)


async def invoice_pdf(request: web.Request) -> web.Response:
    config = request.app[FILES_CONFIG]
    ident = request.match_info["order_id"]
    if not ident.isdigit() or len(ident) > 18 or not check_file_token(config.secret_key, "invoices", ident, request.query.get("t")):
        return _not_found()
    lang = request.query.get("lang")
    async with config.sessions() as session:
        order = await session.get(Order, int(ident))
        if order is None:
            return _not_found()
        customer = await session.get(Customer, order.customer_id) if order.customer_id is not None else None
        lines = await order_lines(session, order.id)
        shop, _ = await _shop_info(session, config.shop_name, config.timezone)
    locale = babel_locale(lang) if lang in SUPPORTED_LANGUAGES else None
    body = await asyncio.to_thread(_render_invoice, order, customer, lines, shop, locale)
    return _pdf(body, f"invoice-{_safe_filename(order.name)}.pdf")


def setup(app: web.Application, sessions: async_sessionmaker[Any], secret_key: bytes, shop_name: str,
          timezone: str = "UTC") -> None:
    """Register the signed file routes on ``app``; documents give dates in the shop's ``timezone``."""
    _check_key(secret_key)
    app[FILES_CONFIG] = FilesConfig(sessions, secret_key, shop_name, timezone)
    app.router.add_get("/files/labels/{rma_number}.pdf", label_pdf)
    app.router.add_get("/files/invoices/{order_id}.pdf", invoice_pdf)
