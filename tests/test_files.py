"""Signed PDF links: tokens (HMAC over kind, id and expiry) and the two file routes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from io import BytesIO
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from ordersvc_builders import make_customer, make_order, make_shipment, make_warehouse
from pypdf import PdfReader

from bot.files import check_file_token, file_token, setup, signed_file_url
from ordersvc.models import ReturnReason
from ordersvc.returns import ReturnPolicy, create_rma

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
PUBLIC = "https://help.example.com/"


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


# --------------------------------------------------------------------------- tokens


def test_signed_url_shape_and_roundtrip() -> None:
    url = signed_file_url(PUBLIC, KEY, "labels", "R1001-1", ttl_days=30)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "help.example.com", "/files/labels/R1001-1.pdf")
    token = _token(url)
    expires = int(token.split(".")[0])
    assert 29 * 86400 < expires - time.time() <= 30 * 86400
    assert check_file_token(KEY, "labels", "R1001-1", token)


@pytest.mark.parametrize(
    "kind, ident, key",
    [
        ("invoices", "R1001-1", KEY),  # another kind
        ("labels", "R1001-2", KEY),  # another return
        ("labels", "R1001-1", OTHER_KEY),  # another server
    ],
)
def test_token_is_bound_to_kind_ident_and_key(kind: str, ident: str, key: bytes) -> None:
    token = file_token(KEY, "labels", "R1001-1", int(time.time()) + 3600)
    assert not check_file_token(key, kind, ident, token)


def test_tampered_expired_and_malformed_tokens_fail() -> None:
    now = time.time()
    token = file_token(KEY, "invoices", "7", int(now) + 60)
    expiry, signature = token.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert check_file_token(KEY, "invoices", "7", token, now=now)
    assert not check_file_token(KEY, "invoices", "7", f"{expiry}.{flipped}", now=now)
    assert not check_file_token(KEY, "invoices", "7", f"{int(expiry) + 86400}.{signature}", now=now)  # extended
    assert not check_file_token(KEY, "invoices", "7", token, now=now + 61)  # expired
    for bad in (None, "", "abc", ".", "1.", f"{expiry}.", "x" * 500, f"{expiry}.{signature}=", f"-1.{signature}"):
        assert not check_file_token(KEY, "invoices", "7", bad, now=now)
    assert not check_file_token(b"", "invoices", "7", token, now=now)


def test_signing_refuses_a_missing_key_or_unknown_kind() -> None:
    with pytest.raises(ValueError):
        signed_file_url(PUBLIC, b"", "labels", "R1")
    with pytest.raises(ValueError):
        signed_file_url(PUBLIC, KEY, "secrets", "R1")


# --------------------------------------------------------------------------- routes


async def _returned_order(sessions, *, approval: str = "automatic"):  # type: ignore[no-untyped-def]
    async with sessions() as session:
        await make_warehouse(session, address={"address1": "1 Dock Road", "city": "Reno", "zip": "89501", "country_code": "US"})
        customer = await make_customer(session, email="lan@example.com")
        order, lines = await make_order(
            session,
            [{"sku": "TEE-M", "title": "Linen tee", "quantity": 2, "unit_price": "25.00"}],
            name="#1001",
            customer=customer,
        )
        await make_shipment(session, order, lines=[(lines[0], 2)], delivered_at=days_ago(3), shipped_at=days_ago(6))
        result = await create_rma(
            session,
            order,
            [{"order_line_id": lines[0].id, "quantity": 1, "reason": ReturnReason.too_small, "condition": "unopened"}],
            "refund",
            "mail",
            policy=ReturnPolicy(approval=approval),
        )
        assert result.rma.id is not None
        await session.commit()
        return order, result.rma


@pytest.fixture
async def files_client(aiohttp_client, sessions):  # type: ignore[no-untyped-def]
    app = web.Application()
    setup(app, sessions, KEY, "Demo Shop")
    return await aiohttp_client(app)


async def test_label_pdf_is_served_to_a_valid_link_only(files_client, sessions) -> None:  # type: ignore[no-untyped-def]
    _order, rma = await _returned_order(sessions)
    assert rma.label_tracking_number
    url = signed_file_url(PUBLIC, KEY, "labels", rma.rma_number)
    response = await files_client.get(path_of(url))
    assert response.status == 200
    assert response.content_type == "application/pdf"
    assert response.headers["Content-Disposition"] == f'inline; filename="return-label-{rma.rma_number}.pdf"'
    assert response.headers["Cache-Control"] == "private, no-store"
    body = await response.read()
    assert body.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(body)).pages)
    assert rma.label_tracking_number in text and rma.rma_number in text

    not_found = []
    token = _token(url)
    for path in (
        f"/files/labels/{rma.rma_number}.pdf",  # no token
        f"/files/labels/{rma.rma_number}.pdf?t={token[:-2]}xx",  # tampered
        f"/files/labels/R9999-1.pdf?t={token}",  # token of another return
        path_of(signed_file_url(PUBLIC, OTHER_KEY, "labels", rma.rma_number)),  # another key
        path_of(signed_file_url(PUBLIC, KEY, "labels", "R9999-1")),  # valid link, no such return
    ):
        r = await files_client.get(path)
        not_found.append((r.status, await r.json()))
    assert not_found == [(404, {"error": "not found"})] * 5


async def test_expired_label_link_is_not_found(files_client, sessions) -> None:  # type: ignore[no-untyped-def]
    _order, rma = await _returned_order(sessions)
    url = signed_file_url(PUBLIC, KEY, "labels", rma.rma_number, now=time.time() - timedelta(days=31).total_seconds())
    assert (await files_client.get(path_of(url))).status == 404


async def test_no_label_before_approval(files_client, sessions) -> None:  # type: ignore[no-untyped-def]
    _order, rma = await _returned_order(sessions, approval="manual")
    assert rma.label_tracking_number is None
    response = await files_client.get(path_of(signed_file_url(PUBLIC, KEY, "labels", rma.rma_number)))
    assert response.status == 404


async def test_invoice_pdf(files_client, sessions) -> None:  # type: ignore[no-untyped-def]
    order, _rma = await _returned_order(sessions)
    url = signed_file_url(PUBLIC, KEY, "invoices", str(order.id), lang="es")
    assert "lang=es" in url
    response = await files_client.get(path_of(url))
    assert response.status == 200
    assert response.content_type == "application/pdf"
    assert response.headers["Content-Disposition"] == 'inline; filename="invoice-_1001.pdf"'
    assert response.headers["Cache-Control"] == "private, no-store"
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(await response.read())).pages)
    assert "#1001" in text and "Linen tee" in text and "Factura" in text

    other = await files_client.get(f"/files/invoices/{order.id + 1}.pdf?t={_token(url)}")
    assert other.status == 404
    for path in (f"/files/invoices/abc.pdf?t={_token(url)}", path_of(signed_file_url(PUBLIC, KEY, "invoices", "999999"))):
        assert (await files_client.get(path)).status == 404
