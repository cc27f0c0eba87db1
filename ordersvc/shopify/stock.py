"""Shopify stock webhooks: ``inventory_levels/update``, ``inventory_items/update``, ``products/update``.

Shopify counts stock per *inventory item* (one per variant) and *location*; we count it per
SKU and warehouse (``InventoryLevel``). The item → SKU map is :class:`~ordersvc.models.InventoryItem`,
filled by ``inventory_items/update`` and by the variants of ``products/update`` (which also keep
the catalogue's titles and prices current). A location is the warehouse whose ``code`` is the
location id or ``shopify-<location id>``; a location seen for the first time gets such a warehouse.

Shopify's ``available`` already excludes units committed to open orders, which our
``reserved`` counts too, so a level update sets ``on_hand = available + reserved``: our
``available`` (``on_hand - reserved``) then equals Shopify's.

Rules, as for orders: payloads are validated at the edge (a payload we cannot use is refused
with 422 and writes nothing); an update whose ``updated_at`` is not newer than the one applied
last changes nothing (older updates never roll back); a level update for an inventory item we
do not know (or that has no SKU, or is not tracked) is acknowledged and changes nothing.
The functions flush but never commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import InventoryItem, InventoryLevel, ProductVariant, Warehouse
from ordersvc.shopify.payloads import (
    Key64,
    Money,
    ShopifyId,
    Text120,
    Text255,
    UtcDatetime,
    _In,
    _none_is_empty,
    validate_payload,
)
from shopbase.clock import utcnow

__all__ = ["StockResult", "apply_inventory_item", "apply_inventory_level", "apply_product"]

MAX_STOCK = 1_000_000_000


class InventoryLevelIn(_In):
    inventory_item_id: ShopifyId
    location_id: ShopifyId
    available: Annotated[int, Field(ge=-MAX_STOCK, le=MAX_STOCK)] | None = None
    updated_at: UtcDatetime | None = None


class InventoryItemIn(_In):
    id: ShopifyId
    sku: Key64 = None
    tracked: bool = True
    updated_at: UtcDatetime | None = None


class VariantIn(_In):
    id: ShopifyId
    sku: Key64 = None
    title: Text255 = None
    price: Money | None = None
    inventory_item_id: ShopifyId | None = None


class ProductIn(_In):
    id: ShopifyId
    title: Text255 = None
    product_type: Text120 = None
    updated_at: UtcDatetime | None = None
    variants: Annotated[list[VariantIn], BeforeValidator(_none_is_empty)] = []


@dataclass
class StockResult:
    """What a stock webhook changed: ``skus`` whose levels moved, ``detail`` for the log (ids and counts)."""

    detail: str
    skus: list[str] = field(default_factory=list)


def _newer(incoming: datetime | None, stored: datetime | None) -> bool:
    """Apply only what proves it is newer than what was applied last."""
    if stored is None:
        return True
    return incoming is not None and incoming > stored


async def _item(session: AsyncSession, external_id: str) -> InventoryItem | None:
    return (await session.exec(select(InventoryItem).where(InventoryItem.external_id == external_id))).first()


async def _remember_item(session: AsyncSession, external_id: str, sku: str | None, tracked: bool | None,
                         updated_at: datetime | None) -> bool:
    item = await _item(session, external_id)
    if item is None:
        item = InventoryItem(external_id=external_id)
    elif not _newer(updated_at, item.source_updated_at):
        return False
    if sku is not None:
        item.sku = sku
    if tracked is not None:
        item.tracked = tracked
    item.source_updated_at = updated_at or item.source_updated_at
    item.updated_at = utcnow()
    session.add(item)
    await session.flush()
    return True


async def apply_inventory_item(session: AsyncSession, payload: dict[str, Any]) -> StockResult:
    """``inventory_items/update``: the item's SKU and whether Shopify tracks it."""
    data = validate_payload(InventoryItemIn, payload, "inventory item")
    changed = await _remember_item(session, data.id, data.sku, data.tracked, data.updated_at)
    return StockResult(f"inventory_item={data.id} {'updated' if changed else 'unchanged'}")


async def apply_product(session: AsyncSession, payload: dict[str, Any]) -> StockResult:
    """``products/update``: each variant's inventory item → SKU, and the catalogue's titles and price."""
    data = validate_payload(ProductIn, payload, "product")
    mapped = 0
    for variant in data.variants:
        if variant.sku is None:
            continue
        if variant.inventory_item_id is not None:
            item = await _item(session, variant.inventory_item_id)
            if item is None or item.sku is None or _newer(data.updated_at, item.source_updated_at):
                mapped += await _remember_item(session, variant.inventory_item_id, variant.sku, None, data.updated_at)
        row = (await session.exec(select(ProductVariant).where(ProductVariant.sku == variant.sku))).first()
        if row is None:
            row = ProductVariant(sku=variant.sku, product_key=f"shopify-{data.id}")
        row.product_title = data.title or row.product_title
        row.variant_title = variant.title if variant.title not in (None, "Default Title") else row.variant_title
        row.product_type = data.product_type or row.product_type
        if variant.price is not None:
            row.price = Decimal(variant.price)
        session.add(row)
    await session.flush()
    return StockResult(f"product={data.id} variants={len(data.variants)} items_mapped={mapped}")


async def _warehouse(session: AsyncSession, location_id: str) -> Warehouse:
    code = f"shopify-{location_id}"
    found = (await session.exec(select(Warehouse).where(Warehouse.code.in_([location_id, code])))).first()  # type: ignore[attr-defined]
    if found is None:
        found = Warehouse(code=code, name=f"Shopify location {location_id}")
        session.add(found)
        await session.flush()
    return found


async def apply_inventory_level(session: AsyncSession, payload: dict[str, Any]) -> StockResult:
    """``inventory_levels/update``: Shopify's ``available`` at one location, for the item's SKU."""
    data = validate_payload(InventoryLevelIn, payload, "inventory level")
    item = await _item(session, data.inventory_item_id)
    if item is None or item.sku is None:
        return StockResult(f"inventory_item={data.inventory_item_id} unknown: nothing changed")
    if not item.tracked or data.available is None:
        return StockResult(f"inventory_item={data.inventory_item_id} not tracked: nothing changed")
    warehouse = await _warehouse(session, data.location_id)
    level = (
        await session.exec(
            select(InventoryLevel)
            .where(InventoryLevel.warehouse_id == warehouse.id, InventoryLevel.sku == item.sku)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if level is None:
        assert warehouse.id is not None
        level = InventoryLevel(warehouse_id=warehouse.id, sku=item.sku)
    elif not _newer(data.updated_at, level.source_updated_at):
        return StockResult(f"inventory_item={data.inventory_item_id} location={data.location_id} stale: unchanged")
    level.on_hand = max(data.available + level.reserved, 0)
    level.source_updated_at = data.updated_at
    level.updated_at = utcnow()
    session.add(level)
    await session.flush()
    return StockResult(f"inventory_item={data.inventory_item_id} location={data.location_id} updated", [item.sku])
