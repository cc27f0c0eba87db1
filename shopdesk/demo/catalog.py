"""The demo shop's catalogue (products, variants, SKUs) and warehouses."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shopdesk.demo.rows import CENT, D

_COLOUR_CODES = {
    "Black": "BLK", "Slate": "SLT", "White": "WHT", "Navy": "NVY", "Olive": "OLV",
    "Heather Grey": "HGR", "Yellow": "YEL", "Charcoal": "CHR", "Rust": "RST", "Oat": "OAT",
    "Brown": "BRN", "Natural": "NAT",
}


@dataclass(frozen=True)
class _Product:
    key: str
    code: str
    title: str
    product_type: str
    price: str
    colours: tuple[str | None, ...]
    sizes: tuple[str | None, ...]
    final_sale: bool = False
    weight: int = 10


PRODUCTS: tuple[_Product, ...] = (
    _Product("trail-runner-2", "TR2", "Trail Runner 2", "Shoes", "89.00", ("Black", "Slate"),
             ("7", "8", "9", "10", "11", "12"), weight=14),
    _Product("canvas-low-sneaker", "CLS", "Canvas Low Sneaker", "Shoes", "59.00", ("White", "Navy"),
             ("6", "7", "8", "9", "10", "11"), weight=12),
    _Product("organic-cotton-tee", "TEE", "Organic Cotton Tee", "T-Shirts", "24.00", ("White", "Black", "Olive"),
             ("S", "M", "L", "XL"), weight=18),
    _Product("graphic-tee-mountains", "GTM", "Graphic Tee \u201cMountains\u201d", "T-Shirts", "29.00",
             ("Heather Grey",), ("S", "M", "L", "XL"), weight=8),
    _Product("packable-rain-jacket", "PRJ", "Packable Rain Jacket", "Jackets", "119.00", ("Yellow", "Navy"),
             ("S", "M", "L", "XL"), weight=9),
    _Product("wool-overshirt", "WOS", "Wool Overshirt", "Jackets", "139.00", ("Charcoal",),
             ("S", "M", "L", "XL"), weight=6),
    _Product("merino-beanie", "MBN", "Merino Beanie", "Accessories", "32.00", ("Rust", "Black", "Oat"), (None,),
             weight=8),
    _Product("leather-belt", "BLT", "Leather Belt", "Accessories", "45.00", ("Brown",),
             ("30", "32", "34", "36", "38"), weight=5),
    _Product("canvas-tote", "TOT", "Canvas Tote", "Accessories", "28.00", ("Natural",), (None,), weight=5),
    _Product("gift-card", "GC", "Gift Card", "Gift Cards", "0", (None,), ("25", "50", "100"),
             final_sale=True, weight=4),
    _Product("boxer-briefs-3-pack", "BXB", "Boxer Briefs 3-Pack", "Underwear", "36.00", ("Black",),
             ("S", "M", "L", "XL"), final_sale=True, weight=6),
)


@dataclass(frozen=True)
class _Variant:
    product: _Product
    sku: str
    colour: str | None
    size: str | None
    price: Decimal

    @property
    def variant_title(self) -> str | None:
        if self.product.code == "GC":
            return f"${self.size}"
        parts = [p for p in (self.colour, self.size) if p]
        return " / ".join(parts) or None


def _catalogue() -> list[_Variant]:
    variants: list[_Variant] = []
    for p in PRODUCTS:
        for colour in p.colours:
            for size in p.sizes:
                parts = [p.code]
                if colour:
                    parts.append(_COLOUR_CODES[colour])
                if size:
                    parts.append(size.zfill(2) if size.isdigit() and p.code != "GC" else size)
                price = D(size) if p.code == "GC" and size else D(p.price)
                variants.append(_Variant(p, "-".join(parts), colour, size, price.quantize(CENT)))
    return variants


VARIANTS = _catalogue()
BY_SKU = {v.sku: v for v in VARIANTS}


WAREHOUSES = (
    ("east", "East Coast DC (Newark, NJ)", {"address1": "100 Port Street", "city": "Newark",
                                            "province_code": "NJ", "zip": "07114", "country_code": "US"}, True),
    ("west", "West Coast DC (Reno, NV)", {"address1": "2250 Larkin Circle", "city": "Sparks",
                                          "province_code": "NV", "zip": "89431", "country_code": "US"}, False),
)
