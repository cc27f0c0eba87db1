"""Import orders from a file: Shopify order JSON, or a CSV of marketplace and POS orders.

Every order is written in its own transaction: a bad order is rejected with a one-line
reason and the others still land; nothing of the bad one is written. Importing the same
file twice reports every order as ``unchanged`` and adds no rows. Files that cannot be
read at all (missing, not UTF-8, not JSON/CSV, an unknown shape) raise :class:`ImportError_`.

JSON
----
``{"orders": [...]}`` (a Shopify export / REST list), ``{"order": {...}}`` (REST get),
a bare order object (a webhook body) or a list of orders. Orders are upserted with
:func:`ordersvc.shopify.upsert_shopify_order` into the ``online_store`` channel, or into
``default_source`` when given.

CSV (marketplace / POS)
-----------------------
UTF-8 (a BOM is fine), comma-separated, a header row, **one row per order line**. Header
names are case-insensitive. Rows with the same (``source``, ``order_number``) form one order,
upserted by that pair (``order_number`` becomes the order's ``external_id`` and ``name``).
Columns:

=====================  ===========================================================
``source``             amazon, ebay, pos, online_store or other (may be blank or
                       missing when ``--source``/``default_source`` is given)
``order_number``       required: ``113-1234567-1234567``, ``12-12345-12345``, ``POS-0042``
``placed_at``          required, ISO 8601; a date alone is midnight UTC, no offset = UTC
``email``              optional; lower-cased; the customer is found or created by it
``phone``              optional
``customer_name``      optional, "First Last" (stored on the customer, needs ``email``)
``currency``           three letters, default USD
``sku``                the line's SKU (``sku`` or ``title`` is required per row)
``title``              product title
``variant``            variant title
``quantity``           required, whole number ≥ 1
``unit_price``         required, decimal ≥ 0 (``12.50``)
``product_type``       optional
``final_sale``         true/false (also yes/no, 1/0; blank = false)
``ship_name``          shipping address: name
``ship_address1``      … street
``ship_city``          … city
``ship_province``      … province / state
``ship_zip``           … postal code
``ship_country``       … country (two letters are also stored as the country code)
``carrier``            shipping carrier; guessed from the tracking number when blank
``tracking_number``    rows with the same number form one shipment of those lines
``shipped_at``         ISO 8601
``shipment_status``    pending, info_received, in_transit, out_for_delivery, failed_attempt,
                       available_for_pickup, delivered, exception, expired, a Shopify
                       shipment status or carrier text such as "Delivered"
``financial_status``   pending, authorized, partially_paid, paid (default), partially_refunded,
                       refunded, voided
``fulfillment_status`` unfulfilled, partial, fulfilled, restocked; blank = derived from the
                       shipments
=====================  ===========================================================

Order-level columns may be repeated on every row of the order or given once; two different
non-blank values are an error. Lines are keyed by SKU (else title + variant): two rows of one
order with the same key and price are one line whose quantity is the sum (e.g. the same item
in two parcels). Order totals are the sum of ``quantity × unit_price``. Rows with
``shipped_at`` or ``carrier`` but no ``tracking_number`` form one untracked shipment. Unknown
columns are ignored. Any row error rejects the whole order with the row number (the header
is row 1) and the reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import FinancialStatus, FulfillmentStatus, SourceChannel
from ordersvc.shopify import (
    OrderIn,
    Outcome,
    UpsertResult,
    load_json,
    parse_order,
    upsert_order,
)
from ordersvc.tracking import ShipmentStatus, status_from_carrier_text, status_from_shopify
from shopbase.coltypes import to_money
from shopbase.refusal import Refused

__all__ = ["ImportError_", "ImportReport", "import_file", "CSV_COLUMNS", "PROGRESS_THRESHOLD"]

log = logging.getLogger(__name__)

PROGRESS_THRESHOLD = 50
CSV_COLUMNS = (
    "source", "order_number", "placed_at", "email", "phone", "customer_name", "currency",
    "sku", "title", "variant", "quantity", "unit_price", "product_type", "final_sale",
    "ship_name", "ship_address1", "ship_city", "ship_province", "ship_zip", "ship_country",
    "carrier", "tracking_number", "shipped_at", "shipment_status", "financial_status",
    "fulfillment_status",
)  # fmt: skip
_REQUIRED_COLUMNS = ("order_number", "placed_at", "quantity", "unit_price")
_ORDER_COLUMNS = (
    "placed_at", "email", "phone", "customer_name", "currency", "ship_name", "ship_address1",
    "ship_city", "ship_province", "ship_zip", "ship_country", "financial_status", "fulfillment_status",
)  # fmt: skip
_SHIPMENT_COLUMNS = ("carrier", "shipped_at", "shipment_status")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0", ""})
_UNTRACKED = "untracked"


class ImportError_(Exception):  # noqa: N801 (the name the CLI imports)
    """The file cannot be imported at all; ``str(exc)`` is one line."""


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.rejected)

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def summary(self) -> str:
        lines = [
            f"{self.total} order(s): {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.rejected)} rejected"
        ]
        for ref, reason in self.rejected:
            lines.append(f"  rejected {ref}: {reason}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Job:
    """One order to write: ``ref`` names it in the report; ``build`` validates it."""

    ref: str
    source: SourceChannel
    build: Callable[[], OrderIn]


class _RowError(Exception):
    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"row {row}: {message}")


# --------------------------------------------------------------------------- entry point


async def import_file(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: Path,
    *,
    default_source: str | None = None,
    progress: bool = False,
) -> ImportReport:
    """Import every order of ``path`` (JSON or CSV, see the module docstring)."""
    source = _check_source(default_source) if default_source else None
    text = _read_text(Path(path))
    if _looks_like_json(Path(path), text):
        jobs = _json_jobs(text, source or SourceChannel.online_store)
    else:
        jobs = _csv_jobs(text, source)
    report = ImportReport()
    with _progress_bar(len(jobs) if progress and len(jobs) > PROGRESS_THRESHOLD else 0) as advance:
        for job in jobs:
            await _run(sessionmaker, job, report)
            advance()
    return report


async def _run(sessionmaker: async_sessionmaker[AsyncSession], job: _Job, report: ImportReport) -> None:
    try:
        data = job.build()
        async with sessionmaker() as session, session.begin():
            result: UpsertResult = await upsert_order(session, data, source=job.source)
    except (Refused, _RowError) as exc:
        report.rejected.append((job.ref, str(exc)))
        return
    except SQLAlchemyError as exc:
        first_line = (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0][:200]
        report.rejected.append((job.ref, f"database refused the order: {first_line}"))
        return
    except Exception as exc:  # a bug must not abort the other orders; it shows up as a reason
        log.warning("import of %s failed: %s", job.ref, type(exc).__name__)
        report.rejected.append((job.ref, f"unexpected error: {type(exc).__name__}"))
        return
    report.count(result.status)


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[], None]]:
    if total <= 0:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("importing orders"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=total)
        yield lambda: bar.advance(task)


def _check_source(value: str) -> SourceChannel:
    try:
        return SourceChannel(value.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in SourceChannel)
        raise ImportError_(f"unknown source {value!r}: expected one of {choices}") from None


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ImportError_(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise ImportError_(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportError_(f"{path} is not UTF-8 text") from None
    if not text.strip():
        raise ImportError_(f"{path} is empty")
    return text


def _looks_like_json(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return True
    if suffix == ".csv":
        return False
    return text.lstrip()[:1] in ("{", "[")


# --------------------------------------------------------------------------- JSON


def _json_jobs(text: str, source: SourceChannel) -> list[_Job]:
    try:
        document = load_json(text)
    except json.JSONDecodeError as exc:
        raise ImportError_(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError):
        raise ImportError_("not valid JSON") from None
    orders = _orders_of(document)
    jobs = []
    for index, item in enumerate(orders, start=1):
        jobs.append(_Job(_json_ref(item, index), source, _json_builder(item)))
    return jobs


def _orders_of(document: Any) -> list[Any]:
    expected = 'expected {"orders": [...]}, {"order": {...}}, an order object or a list of orders'
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if "orders" in document:
            if not isinstance(document["orders"], list):
                raise ImportError_(f'"orders" is not a list; {expected}')
            return document["orders"]
        if "order" in document:
            if not isinstance(document["order"], dict):
                raise ImportError_(f'"order" is not an object; {expected}')
            return [document["order"]]
        if any(key in document for key in ("id", "line_items", "name", "order_number")):
            return [document]
    raise ImportError_(f"not a known shape: {expected}")


def _json_ref(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in ("name", "id"):
            value = item.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()[:64]
    return f"order {index}"


def _json_builder(item: Any) -> Callable[[], OrderIn]:
    return lambda: parse_order(item)


# --------------------------------------------------------------------------- CSV


@dataclass
class _CsvOrder:
    source_text: str
    number: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def _csv_jobs(text: str, default_source: SourceChannel | None) -> list[_Job]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_row = next(reader)
    except (StopIteration, csv.Error):
        raise ImportError_("not a CSV file with a header row") from None
    header = [name.strip().lower().replace(" ", "_") for name in header_row]
    missing = [name for name in _REQUIRED_COLUMNS if name not in header]
    if "sku" not in header and "title" not in header:
        missing.append("sku or title")
    if "source" not in header and default_source is None:
        missing.append("source (or pass a default source)")
    if missing:
        raise ImportError_(f"not an orders CSV: missing column(s) {', '.join(missing)} (see docs/orders-csv.md)")

    groups: dict[tuple[str, str], _CsvOrder] = {}
    jobs: list[_Job] = []
    row_number = 1
    try:
        for values in reader:
            row_number += 1
            if not any(v.strip() for v in values):
                continue
            row = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(header) if name}
            source_text = row.get("source", "").lower() or (default_source.value if default_source else "")
            number = row.get("order_number", "")
            if not number:
                jobs.append(_Job(f"row {row_number}", SourceChannel.other, _fail(row_number, "order_number is empty")))
                continue
            key = (source_text, number)
            if key not in groups:
                groups[key] = _CsvOrder(source_text, number)
            groups[key].rows.append((row_number, row))
    except csv.Error as exc:
        raise ImportError_(f"not a readable CSV file: row {row_number}: {exc}") from None

    for group in groups.values():
        ref = f"{group.source_text or '?'} {group.number}"
        try:
            source = SourceChannel(group.source_text)
        except ValueError:
            first_row = group.rows[0][0]
            choices = ", ".join(s.value for s in SourceChannel)
            message = f"source {group.source_text!r} is not one of {choices}"
            jobs.append(_Job(ref, SourceChannel.other, _fail(first_row, message)))
            continue
        jobs.append(_Job(ref, source, _csv_builder(group)))
    return jobs


def _fail(row: int, message: str) -> Callable[[], OrderIn]:
    def build() -> OrderIn:
        raise _RowError(row, message)

    return build


def _csv_builder(group: _CsvOrder) -> Callable[[], OrderIn]:
    return lambda: _build_csv_order(group)


def _parse_time(value: str, column: str, row: int, *, required: bool = False) -> datetime | None:
    if not value:
        if required:
            raise _RowError(row, f"{column} is empty")
        return None
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _RowError(row, f"{column} is not an ISO 8601 date/time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_status(value: str, row: int) -> ShipmentStatus | None:
    if not value:
        return None
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return ShipmentStatus(key)
    except ValueError:
        pass
    mapped = status_from_shopify(key)
    if mapped is not ShipmentStatus.PENDING:
        return mapped
    guessed = status_from_carrier_text(value)
    if guessed is None:
        raise _RowError(row, f"shipment_status {value[:40]!r} is not a known status")
    return guessed


def _parse_enum(
    enum_cls: type[FinancialStatus] | type[FulfillmentStatus], order: dict[str, str], column: str, row: int
) -> Any:
    value = order.get(column, "")
    if not value:
        return None
    try:
        return enum_cls(value.strip().lower())
    except ValueError:
        choices = ", ".join(e.value for e in enum_cls)
        raise _RowError(row, f"{column} {value[:40]!r} is not one of {choices}") from None


def _check_length(value: str, column: str, limit: int, row: int) -> str:
    if len(value) > limit:
        raise _RowError(row, f"{column} is longer than {limit} characters")
    return value


def _line_key(sku: str, title: str, variant: str) -> str:
    if sku:
        return sku
    return "t-" + hashlib.sha256(f"{title}\x1f{variant}".encode()).hexdigest()[:32]


def _build_csv_order(group: _CsvOrder) -> OrderIn:
    """Rows of one order → a validated ``OrderIn`` (Shopify shape, marketplace ids)."""
    first_row = group.rows[0][0]
    _check_length(group.number, "order_number", 64, first_row)
    order: dict[str, str] = {}
    order_row: dict[str, int] = {}
    lines: dict[str, dict[str, Any]] = {}
    shipments: dict[str, dict[str, Any]] = {}
    for row_number, row in group.rows:
        for column in _ORDER_COLUMNS:
            value = row.get(column, "")
            if not value:
                continue
            if column in order and order[column] != value:
                raise _RowError(row_number, f"{column} differs from row {order_row[column]} of the same order")
            order.setdefault(column, value)
            order_row.setdefault(column, row_number)

        sku = _check_length(row.get("sku", ""), "sku", 64, row_number)
        title = row.get("title", "")
        variant = row.get("variant", "")
        if not sku and not title:
            raise _RowError(row_number, "sku and title are both empty")
        quantity_text = row.get("quantity", "")
        try:
            quantity = int(quantity_text)
        except ValueError:
            raise _RowError(row_number, f"quantity {quantity_text[:20]!r} is not a whole number") from None
        if not 1 <= quantity <= 1_000_000:
            raise _RowError(row_number, "quantity must be between 1 and 1000000")
        price_text = row.get("unit_price", "")
        if not price_text:
            raise _RowError(row_number, "unit_price is empty")
        try:
            price = to_money(price_text)
        except ValueError:
            raise _RowError(row_number, f"unit_price {price_text[:20]!r} is not a decimal amount") from None
        if price < 0:
            raise _RowError(row_number, "unit_price is negative")
        final_text = row.get("final_sale", "").lower()
        if final_text not in _TRUE | _FALSE:
            raise _RowError(row_number, f"final_sale {final_text[:20]!r} is not true or false")

        key = _line_key(sku, title, variant)
        line = lines.get(key)
        if line is None:
            lines[key] = {
                "id": key,
                "sku": sku or None,
                "title": title or sku,
                "variant_title": variant or None,
                "quantity": quantity,
                "price": price,
                "product_type": row.get("product_type") or None,
                "final_sale": final_text in _TRUE,
            }
        elif line["price"] != price:
            raise _RowError(row_number, f"line {sku or title!r} appears again with a different unit_price")
        else:
            line["quantity"] += quantity

        number = _check_length(row.get("tracking_number", ""), "tracking_number", 64, row_number)
        shipped_fields = {column: row.get(column, "") for column in _SHIPMENT_COLUMNS}
        if not number and not shipped_fields["shipped_at"] and not shipped_fields["carrier"]:
            continue
        shipment_key = number or _UNTRACKED
        shipment = shipments.get(shipment_key)
        if shipment is None:
            shipment = shipments[shipment_key] = {"number": number, "row": row_number, "lines": {}, **shipped_fields}
        else:
            for column, value in shipped_fields.items():
                if value and shipment[column] and shipment[column] != value:
                    raise _RowError(row_number, f"{column} differs from row {shipment['row']} for the same shipment")
                shipment[column] = shipment[column] or value
        shipment["lines"][key] = shipment["lines"].get(key, 0) + quantity

    placed_at = _parse_time(order.get("placed_at", ""), "placed_at", first_row, required=True)
    email = order.get("email", "").lower() or None
    if email is not None:
        _check_length(email, "email", 320, order_row["email"])
    phone = order.get("phone") or None
    if phone is not None:
        _check_length(phone, "phone", 32, order_row["phone"])
    currency = order.get("currency", "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise _RowError(order_row.get("currency", first_row), "currency must be a three-letter code")
    financial = _parse_enum(FinancialStatus, order, "financial_status", order_row.get("financial_status", 0))
    fulfillment = _parse_enum(FulfillmentStatus, order, "fulfillment_status", order_row.get("fulfillment_status", 0))

    fulfillments: list[dict[str, Any]] = []
    for shipment_key, shipment in shipments.items():
        row = shipment["row"]
        fulfillments.append(
            {
                "id": shipment_key,
                "name": f"{group.number}-{len(fulfillments) + 1}",
                "status": "success",
                "tracking_company": shipment["carrier"] or None,
                "tracking_number": shipment["number"] or None,
                "created_at": _parse_time(shipment["shipped_at"], "shipped_at", row),
                "shipment_status": _parse_status(shipment["shipment_status"], row) or ShipmentStatus.PENDING,
                "line_items": [{"id": key, "quantity": qty} for key, qty in shipment["lines"].items()],
            }
        )
    if fulfillment is None:
        shipped = {key: 0 for key in lines}
        for shipment in shipments.values():
            for key, qty in shipment["lines"].items():
                shipped[key] += qty
        if all(shipped[key] >= line["quantity"] for key, line in lines.items()):
            fulfillment = FulfillmentStatus.fulfilled
        elif any(shipped.values()):
            fulfillment = FulfillmentStatus.partial
        else:
            fulfillment = FulfillmentStatus.unfulfilled

    total = sum((line["price"] * line["quantity"] for line in lines.values()), Decimal("0"))
    first, _, last = order.get("customer_name", "").partition(" ")
    country = order.get("ship_country", "")
    address = {
        "name": order.get("ship_name"),
        "address1": order.get("ship_address1"),
        "city": order.get("ship_city"),
        "province": order.get("ship_province"),
        "zip": order.get("ship_zip"),
        "country": country or None,
        "country_code": country.upper() if len(country) == 2 and country.isalpha() else None,
    }
    payload = {
        "id": group.number,
        "name": group.number,
        "email": email,
        "phone": phone,
        "currency": currency,
        "created_at": placed_at,
        "subtotal_price": total,
        "total_price": total,
        "financial_status": (financial or FinancialStatus.paid).value,
        "fulfillment_status": fulfillment.value,
        "shipping_address": address if any(address.values()) else None,
        "customer": {"email": email, "phone": phone, "first_name": first or None, "last_name": last or None}
        if email
        else None,
        "line_items": list(lines.values()),
        "fulfillments": fulfillments,
    }
    try:
        return parse_order(payload, free_ids=True)
    except Refused as exc:
        raise _RowError(first_row, exc.message) from None
