# ruff: noqa: F811  (the hook fixture imported from test_shopify_webhooks is used as a parameter)
"""Shopify stock webhooks (``inventory_items/update``, ``products/update``, ``inventory_levels/update``)
against the real endpoint on SQLite and PostgreSQL: HMAC, dedupe by webhook id, stale updates."""

from __future__ import annotations

import logging
from decimal import Decimal

from ordersvc_builders import make_level, make_warehouse
from sqlmodel import select
from test_shopify_webhooks import Hook, hook  # noqa: F401  (the fixture)

from ordersvc.models import InventoryItem, InventoryLevel, ProductVariant, Warehouse

ITEM = 808950810
LOCATION = 655441491


def level(available: int, updated_at: str, item: int = ITEM, location: int = LOCATION) -> dict:
    return {"inventory_item_id": item, "location_id": location, "available": available, "updated_at": updated_at,
            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}"}


async def levels(hook: Hook) -> list[InventoryLevel]:
    async with hook.sessions() as s:
        return list((await s.exec(select(InventoryLevel).order_by(InventoryLevel.id))).all())


async def test_product_maps_items_then_levels_set_stock_per_location(hook: Hook) -> None:
    async with hook.sessions() as s:
        main = await make_warehouse(s, str(LOCATION))  # a warehouse named after the Shopify location
        await make_level(s, main, "TEE-M", on_hand=10, reserved=2, safety_stock=3)
        await s.commit()
    product = {"id": 632910392, "title": "Linen tee", "product_type": "Shirts", "updated_at": "2026-11-01T10:00:00-05:00",
               "variants": [{"id": 1, "sku": "TEE-M", "title": "M", "price": "25.00", "inventory_item_id": ITEM},
                            {"id": 2, "sku": "TEE-L", "title": "L", "price": "25.00", "inventory_item_id": ITEM + 1}]}
    assert await hook.post("products/update", product) == (200, {"status": "ok"})
    async with hook.sessions() as s:
        items = {i.external_id: i.sku for i in (await s.exec(select(InventoryItem))).all()}
        variant = (await s.exec(select(ProductVariant).where(ProductVariant.sku == "TEE-L"))).one()
    assert items == {str(ITEM): "TEE-M", str(ITEM + 1): "TEE-L"}
    assert (variant.product_title, variant.variant_title, variant.price) == ("Linen tee", "L", Decimal("25"))

    # Shopify's available (4) excludes committed units, which our reserved (2) counts: on hand 6
    assert await hook.post("inventory_levels/update", level(4, "2026-11-02T10:00:00Z")) == (200, {"status": "ok"})
    row = (await levels(hook))[0]
    assert (row.sku, row.on_hand, row.reserved, row.available, row.is_low) == ("TEE-M", 6, 2, 4, False)
    # a new location gets its own warehouse, the SKU its own level there
    assert (await hook.post("inventory_levels/update", level(1, "2026-11-02T10:00:00Z", item=ITEM + 1,
                                                             location=99)))[0] == 200
    async with hook.sessions() as s:
        wh = (await s.exec(select(Warehouse).where(Warehouse.code == "shopify-99"))).one()
    assert [(lv.sku, lv.warehouse_id, lv.on_hand) for lv in await levels(hook)][1] == ("TEE-L", wh.id, 1)


async def test_older_and_duplicate_level_updates_change_nothing(hook: Hook) -> None:
    async with hook.sessions() as s:
        await make_warehouse(s, f"shopify-{LOCATION}")
        await s.commit()
    assert (await hook.post("inventory_items/update", {"id": ITEM, "sku": "MUG", "tracked": True,
                                                        "updated_at": "2026-11-01T00:00:00Z"}))[0] == 200
    assert (await hook.post("inventory_levels/update", level(7, "2026-11-02T12:00:00Z"), webhook_id="L1"))[0] == 200
    # a retry of the same delivery: nothing twice
    assert await hook.post("inventory_levels/update", level(7, "2026-11-02T12:00:00Z"), webhook_id="L1") == \
        (200, {"status": "duplicate"})
    # an older update arriving late never rolls back, nor does one without a timestamp
    assert (await hook.post("inventory_levels/update", level(50, "2026-11-02T11:59:59Z")))[0] == 200
    assert (await hook.post("inventory_levels/update", {"inventory_item_id": ITEM, "location_id": LOCATION,
                                                         "available": 60}))[0] == 200
    assert [lv.on_hand for lv in await levels(hook)] == [7]
    assert (await hook.post("inventory_levels/update", level(2, "2026-11-02T13:00:00Z")))[0] == 200
    assert [lv.on_hand for lv in await levels(hook)] == [2]
    # an older item update does not change the SKU back
    assert (await hook.post("inventory_items/update", {"id": ITEM, "sku": "OLD", "updated_at": "2026-10-01T00:00:00Z"}))[0] == 200
    async with hook.sessions() as s:
        assert (await s.exec(select(InventoryItem.sku))).one() == "MUG"


async def test_unknown_and_untracked_items_and_bad_payloads(hook: Hook, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ordersvc.webhooks")
    assert await hook.post("inventory_levels/update", level(3, "2026-11-02T10:00:00Z", item=1234)) == \
        (200, {"status": "ok"})
    assert await levels(hook) == []
    assert sum("inventory_item=1234 unknown" in r.getMessage() for r in caplog.records) == 1
    assert (await hook.post("inventory_items/update", {"id": 55, "sku": "GIFT", "tracked": False}))[0] == 200
    assert (await hook.post("inventory_levels/update", level(3, "2026-11-02T10:00:00Z", item=55)))[0] == 200
    assert await levels(hook) == []
    status, body = await hook.post("inventory_levels/update", {"inventory_item_id": 1.5, "location_id": 1, "available": 1})
    assert status == 422 and "inventory_item_id" in body["error"]
    status, body = await hook.post("inventory_levels/update", level(10**12, "2026-11-02T10:00:00Z"))
    assert status == 422 and "available" in body["error"]
    status, body = await hook.post("products/update", {"id": 9, "variants": [{"id": 1, "sku": "x" * 65}]})
    assert status == 422
    # a bad signature is refused before anything is parsed
    status, _ = await hook.post("inventory_levels/update", level(3, "2026-11-02T10:00:00Z"), signature="bad")
    assert status == 401
    async with hook.sessions() as s:
        assert (await s.exec(select(ProductVariant))).all() == []
