"""A deterministic demo shop: customers, catalogue, stock, 300+ orders with shipments and returns.

``seed_demo_orders(sessionmaker, seed=7)`` fills an empty database so that every situation
the bot and the inbox handle can be tried at once: parcels in transit, delivered, late,
stalled, in exception, waiting at a pickup point; unfulfilled orders that can still be
cancelled; multi-shipment and partially fulfilled orders; final-sale items; returns in
every status; refunds and store credit; Amazon, eBay and point-of-sale orders.

Determinism. Content comes from ``random.Random`` seeded per entity with ``seed`` (the
same seed gives the same customers, items, carriers, tracking numbers and events).
Every time is placed relative to an *anchor*: ``now`` (default: the current time) rounded
down to midnight UTC. So relative facts ("shipped 3 days ago", "delivered 40 days ago,
outside the return window") stay true whatever day you seed, while the absolute
timestamps move with the day; two runs on the same day (or with the same ``now``) give
identical documents. Every event lies before the anchor; only ETAs lie after it.

Idempotency. Rows are keyed by natural ids that do not depend on the seed (customer and
order external ids, SKUs, warehouse codes), and only missing ones are inserted, so running
the seeder again adds nothing. The showcase orders #1001–#1026 have fixed situations; the
first eight also have fixed customers, so the README can name them (``DemoSummary``).

Everything is written in one transaction with bulk inserts (a few flushes in total).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from pydantic_core import PydanticUndefined
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    ItemCondition,
    Order,
    OrderLine,
    ProductVariant,
    Refund,
    Resolution,
    ReturnAuthorization,
    ReturnLine,
    ReturnMethod,
    ReturnReason,
    RmaStatus,
    Shipment,
    ShipmentLine,
    SourceChannel,
    StoreCredit,
    TrackingEvent,
    Warehouse,
)
from ordersvc.tracking import Carrier, ShipmentStatus, tracking_url
from ordersvc.tracking.checksums import (
    dhl_mod7_check_digit,
    fedex12_check_digit,
    gs1_mod10_check_digit,
    s10_check_digit,
    ups_check_digit,
)

__all__ = [
    "DemoExample",
    "DemoSummary",
    "DEMO_LOCALES",
    "SHOWCASE",
    "demo_anchor",
    "seed_demo_orders",
]

#: Shopify-style locale codes of the demo customers
DEMO_LOCALES = ("en", "es", "ru", "vi", "zh-CN", "zh-TW")

_D = Decimal
_CENT = Decimal("0.01")
_H = timedelta(hours=1)

# statuses by value, whatever the enum calls its members
_PENDING = ShipmentStatus("pending")
_INFO = ShipmentStatus("info_received")
_TRANSIT = ShipmentStatus("in_transit")
_OFD = ShipmentStatus("out_for_delivery")
_FAILED = ShipmentStatus("failed_attempt")
_PICKUP = ShipmentStatus("available_for_pickup")
_DELIVERED = ShipmentStatus("delivered")
_EXCEPTION = ShipmentStatus("exception")
_EXPIRED = ShipmentStatus("expired")
_STALLED = "stalled"  # in transit, no scan for 5+ days (a planning state, stored as in_transit)

_ONLINE_ORDERS = 280
_AMAZON_ORDERS = 15
_EBAY_ORDERS = 12
_POS_ORDERS = 15
_RANDOM_CUSTOMERS = 120


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


class _Row(dict[str, Any]):
    """A row to insert: a dict with attribute access, much cheaper to build than model instances."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


_DEFAULTS: dict[type[SQLModel], dict[str, Any]] = {}


def _new(model: type[SQLModel], **values: Any) -> _Row:
    """A row of ``model``'s table: its field defaults overlaid with ``values``."""
    defaults = _DEFAULTS.get(model)
    if defaults is None:
        defaults = {}
        for name, info in model.model_fields.items():
            if info.default_factory is not None:
                defaults[name] = None  # every demo timestamp is given explicitly
            elif info.default is not PydanticUndefined:
                defaults[name] = info.default
        _DEFAULTS[model] = defaults
    row = _Row(defaults)
    for key in ("tags",):
        if key in row and row[key] is None:
            row[key] = []
    row.update(values)
    return row


def demo_anchor(now: datetime | None = None) -> datetime:
    """``now`` rounded down to midnight UTC: the point every demo time is relative to."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class DemoExample:
    """One order to try, with what verifies its owner."""

    scenario: str
    description: str
    order_name: str
    email: str
    postal_code: str


@dataclass(frozen=True)
class DemoSummary:
    seed: int
    anchor: datetime
    #: rows inserted by this run, per table (all zero on a re-run)
    added: dict[str, int]
    orders: int
    customers: int
    examples: tuple[DemoExample, ...]

    def example(self, scenario: str) -> DemoExample | None:
        return next((e for e in self.examples if e.scenario == scenario), None)

    def text(self) -> str:
        """A few lines for the terminal: what was seeded and what to try."""
        added = sum(self.added.values())
        head = (
            f"Demo shop (seed {self.seed}): {self.orders} orders from {self.customers} customers"
            + (f"; {added} rows added." if added else "; already seeded, nothing added.")
        )
        lines = [head, "Try these orders (verify with the email or the postal code):"]
        width = max((len(e.order_name) for e in self.examples), default=5)
        for e in self.examples:
            lines.append(f"  {e.order_name:<{width}}  {e.description:<44} {e.email} / {e.postal_code}")
        return "\n".join(lines)


#: The showcase orders and what they show; the ``summary`` ones are listed by DemoSummary.
SHOWCASE: tuple[tuple[str, str, str, bool], ...] = (
    ("#1001", "in_transit", "in transit with UPS, arriving soon", True),
    ("#1002", "delivered_returnable", "delivered 6 days ago, returnable", True),
    ("#1003", "late", "stalled: no carrier scan for a week", True),
    ("#1004", "exception", "delivery exception (incorrect address)", True),
    ("#1005", "unfulfilled", "not shipped yet, can be cancelled", True),
    ("#1006", "multi_shipment", "two parcels: one delivered, one on the way", True),
    ("#1007", "final_sale", "gift card and underwear: final sale", True),
    ("#1008", "outside_window", "delivered 52 days ago, return window closed", True),
    ("#1009", "out_for_delivery", "out for delivery", False),
    ("#1010", "failed_attempt", "delivery attempt failed", False),
    ("#1011", "available_for_pickup", "waiting at a pickup point", False),
    ("#1012", "info_received", "label created, not picked up yet", False),
    ("#1013", "expired", "tracking expired", False),
    ("#1014", "pending", "fulfilled today, no tracking yet", False),
    ("#1015", "cancelled", "cancelled before shipping", False),
    ("#1016", "refunded", "returned and fully refunded", False),
    ("#1017", "rma_requested", "return requested", False),
    ("#1018", "rma_approved", "return approved (drop-off)", False),
    ("#1019", "rma_label_issued", "return label issued", False),
    ("#1020", "rma_in_transit", "return parcel on its way back", False),
    ("#1021", "rma_received", "return received at the warehouse", False),
    ("#1022", "rma_exchanged", "exchanged for another size", False),
    ("#1023", "rma_credited", "returned for store credit", False),
    ("#1024", "rma_rejected", "return rejected (worn item)", False),
    ("#1025", "rma_cancelled", "return cancelled by the customer", False),
    ("#1026", "partial", "partly shipped, one item backordered", False),
)

# --------------------------------------------------------------------------- catalogue

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


_PRODUCTS: tuple[_Product, ...] = (
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
    for p in _PRODUCTS:
        for colour in p.colours:
            for size in p.sizes:
                parts = [p.code]
                if colour:
                    parts.append(_COLOUR_CODES[colour])
                if size:
                    parts.append(size.zfill(2) if size.isdigit() and p.code != "GC" else size)
                price = _D(size) if p.code == "GC" and size else _D(p.price)
                variants.append(_Variant(p, "-".join(parts), colour, size, price.quantize(_CENT)))
    return variants


_VARIANTS = _catalogue()
_BY_SKU = {v.sku: v for v in _VARIANTS}

# --------------------------------------------------------------------------- people and places


@dataclass(frozen=True)
class _City:
    city: str  # as written in the address
    city_en: str  # as carriers print it
    province: str
    province_code: str
    country: str
    country_code: str
    zip_pattern: str  # '#' = digit, '@' = letter, other characters literal


_US_CITIES = (
    _City("Austin", "Austin", "Texas", "TX", "United States", "US", "787##"),
    _City("Seattle", "Seattle", "Washington", "WA", "United States", "US", "981##"),
    _City("Brooklyn", "Brooklyn", "New York", "NY", "United States", "US", "112##"),
    _City("Chicago", "Chicago", "Illinois", "IL", "United States", "US", "606##"),
    _City("San Francisco", "San Francisco", "California", "CA", "United States", "US", "941##"),
    _City("Denver", "Denver", "Colorado", "CO", "United States", "US", "802##"),
    _City("Portland", "Portland", "Oregon", "OR", "United States", "US", "972##"),
    _City("Miami", "Miami", "Florida", "FL", "United States", "US", "331##"),
    _City("Boston", "Boston", "Massachusetts", "MA", "United States", "US", "021##"),
    _City("Houston", "Houston", "Texas", "TX", "United States", "US", "770##"),
    _City("Westminster", "Westminster", "California", "CA", "United States", "US", "92683"),
    _City("San Jose", "San Jose", "California", "CA", "United States", "US", "951##"),
    _City("Flushing", "Flushing", "New York", "NY", "United States", "US", "113##"),
    _City("Monterey Park", "Monterey Park", "California", "CA", "United States", "US", "91754"),
)
_CA_CITIES = (
    _City("Toronto", "Toronto", "Ontario", "ON", "Canada", "CA", "M5V #@#"),
    _City("Vancouver", "Vancouver", "British Columbia", "BC", "Canada", "CA", "V6B #@#"),
)
_ES_CITIES = (
    _City("Madrid", "Madrid", "Madrid", "M", "Spain", "ES", "280##"),
    _City("Barcelona", "Barcelona", "Barcelona", "B", "Spain", "ES", "080##"),
)
_MX_CITIES = (_City("Ciudad de México", "Mexico City", "Ciudad de México", "CMX", "Mexico", "MX", "06###"),)
_VN_CITIES = (
    _City("Thành phố Hồ Chí Minh", "Ho Chi Minh City", "Hồ Chí Minh", "SG", "Vietnam", "VN", "700000"),
    _City("Hà Nội", "Hanoi", "Hà Nội", "HN", "Vietnam", "VN", "100000"),
)
_CN_CITIES = (
    _City("上海市", "Shanghai", "上海市", "SH", "China", "CN", "200###"),
    _City("北京市", "Beijing", "北京市", "BJ", "China", "CN", "100###"),
)
_TW_CITIES = (
    _City("臺北市", "Taipei", "臺北市", "TPE", "Taiwan", "TW", "106"),
    _City("臺中市", "Taichung", "臺中市", "TXG", "Taiwan", "TW", "407"),
)

_STREETS = {
    "US": ("Maple Ave", "Oak Street", "Cedar Lane", "Pine Street", "Elm Street", "Lakeview Dr", "Sunset Blvd",
           "Hillcrest Rd", "Park Avenue", "River Road"),
    "CA": ("King Street West", "Queen Street", "Granville Street", "Spadina Avenue"),
    "ES": ("Calle Mayor", "Calle de Alcalá", "Carrer de Mallorca", "Gran Vía"),
    "MX": ("Avenida Reforma", "Calle Durango", "Avenida Álvaro Obregón"),
    "VN": ("Đường Lê Lợi", "Đường Nguyễn Huệ", "Phố Hàng Bài", "Đường Điện Biên Phủ"),
    "CN": ("南京西路", "淮海中路", "建国门外大街", "长安街"),
    "TW": ("忠孝東路", "仁愛路", "中山北路", "台灣大道"),
}

# (local first name, local last name, email handle)
_NAMES_EN = (
    ("Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Sophia", "Lucas", "Mia", "Ethan", "Harper", "Mason",
     "Grace", "Owen", "Chloe", "Jack", "Ella", "Henry", "Zoe", "Leo"),
    ("Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark", "Walker", "Young", "Hall",
     "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Carter"),
)
_NAMES_ES = (
    ("Ana", "Lucía", "Sofía", "Mateo", "Santiago", "Valentina", "Diego", "Camila", "Javier", "Isabel", "Carmen",
     "Pablo", "Elena", "Andrés", "Alejandro", "Marta"),
    ("García", "Martínez", "López", "Hernández", "González", "Rodríguez", "Pérez", "Sánchez", "Ramírez",
     "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Morales", "Jiménez"),
)
_RU_MALE = (("Дмитрий", "dmitry"), ("Алексей", "alexey"), ("Сергей", "sergey"), ("Иван", "ivan"),
            ("Михаил", "mikhail"), ("Андрей", "andrey"))
_RU_FEMALE = (("Анна", "anna"), ("Мария", "maria"), ("Екатерина", "ekaterina"), ("Ольга", "olga"),
              ("Наталья", "natalia"), ("Татьяна", "tatiana"))
_RU_SURNAMES = (("Иванов", "Иванова", "ivanov"), ("Смирнов", "Смирнова", "smirnov"),
                ("Кузнецов", "Кузнецова", "kuznetsov"), ("Попов", "Попова", "popov"),
                ("Соколов", "Соколова", "sokolov"), ("Лебедев", "Лебедева", "lebedev"),
                ("Новиков", "Новикова", "novikov"), ("Морозов", "Морозова", "morozov"),
                ("Волков", "Волкова", "volkov"), ("Павлов", "Павлова", "pavlov"))
_VI_FAMILY = (("Nguyễn", "nguyen"), ("Trần", "tran"), ("Lê", "le"), ("Phạm", "pham"), ("Hoàng", "hoang"),
              ("Huỳnh", "huynh"), ("Phan", "phan"), ("Vũ", "vu"), ("Võ", "vo"), ("Đặng", "dang"))
_VI_GIVEN = (("Thị Lan", "lan"), ("Văn Minh", "minh"), ("Thu Hà", "ha"), ("Quốc Bảo", "bao"),
             ("Ngọc Anh", "anh"), ("Đức Huy", "huy"), ("Thanh Tâm", "tam"), ("Minh Châu", "chau"),
             ("Hoàng Long", "long"), ("Mai Phương", "phuong"))
_ZH_CN_FAMILY = (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
                 ("赵", "zhao"), ("黄", "huang"), ("周", "zhou"), ("吴", "wu"))
_ZH_CN_GIVEN = (("芳", "fang"), ("伟", "wei"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("磊", "lei"),
                ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("晓明", "xiaoming"), ("丽华", "lihua"))
_ZH_TW_FAMILY = (("陳", "chen"), ("林", "lin"), ("黃", "huang"), ("張", "chang"), ("李", "lee"), ("王", "wang"),
                 ("吳", "wu"), ("劉", "liu"), ("蔡", "tsai"), ("楊", "yang"))
_ZH_TW_GIVEN = (("怡君", "yichun"), ("志明", "chihming"), ("淑芬", "shufen"), ("家豪", "chiahao"),
                ("雅婷", "yating"), ("俊傑", "chunchieh"), ("美玲", "meiling"), ("冠宇", "kuanyu"))

_DOMAINS = ("example.com", "example.org", "example.net")
# the locale of random customer i is _LOCALE_CYCLE[i % 10]: every locale is always present
_LOCALE_CYCLE = ("en", "en", "es", "en", "ru", "vi", "en", "zh-CN", "es", "zh-TW")
_HOMES: dict[str, tuple[tuple[tuple[_City, ...], int], ...]] = {
    "en": ((_US_CITIES, 9), (_CA_CITIES, 1)),
    "es": ((_US_CITIES, 6), (_ES_CITIES, 3), (_MX_CITIES, 1)),
    "ru": ((_US_CITIES, 7), (_CA_CITIES, 3)),
    "vi": ((_US_CITIES, 7), (_VN_CITIES, 3)),
    "zh-CN": ((_US_CITIES, 5), (_CN_CITIES, 5)),
    "zh-TW": ((_US_CITIES, 4), (_TW_CITIES, 6)),
}


def _fill_pattern(rng: random.Random, pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(str(rng.randint(0, 9)))
        elif ch == "@":
            out.append(rng.choice("ABCEGHJKLMNPRSTVWXYZ"))
        else:
            out.append(ch)
    return "".join(out)


@dataclass
class _Person:
    key: str  # customer external id
    first: str
    last: str
    email: str
    locale: str
    phone: str | None
    city: _City
    address1: str
    zip: str
    since: datetime | None = None

    def address(self) -> dict[str, Any]:
        return {
            "first_name": self.first,
            "last_name": self.last,
            "name": f"{self.first} {self.last}",
            "address1": self.address1,
            "address2": None,
            "city": self.city.city,
            "province": self.city.province,
            "province_code": self.city.province_code,
            "zip": self.zip,
            "country": self.city.country,
            "country_code": self.city.country_code,
            "phone": self.phone,
        }


def _street_address(rng: random.Random, country: str) -> str:
    street = rng.choice(_STREETS[country])
    number = rng.randint(2, 980)
    if country in {"US", "CA"}:
        return f"{number} {street}"
    if country in {"CN", "TW"}:
        return f"{street}{number}号" if country == "CN" else f"{street}{number}號"
    return f"{street} {number}" if country in {"ES", "MX"} else f"{number} {street}"


def _random_name(rng: random.Random, locale: str) -> tuple[str, str, str]:
    """``(first name, last name, email handle)`` in the locale's script."""
    if locale == "en":
        first, last = rng.choice(_NAMES_EN[0]), rng.choice(_NAMES_EN[1])
        return first, last, f"{first}.{last}".lower()
    if locale == "es":
        first, last = rng.choice(_NAMES_ES[0]), rng.choice(_NAMES_ES[1])
        handle = f"{first}.{last}".lower()
        for a, b in (("á", "a"), ("é", "e"), ("í", "i"), ("ó", "o"), ("ú", "u"), ("ñ", "n")):
            handle = handle.replace(a, b)
        return first, last, handle
    if locale == "ru":
        surname_m, surname_f, s_latin = rng.choice(_RU_SURNAMES)
        if rng.random() < 0.5:
            (first, f_latin), last = rng.choice(_RU_MALE), surname_m
        else:
            (first, f_latin), last = rng.choice(_RU_FEMALE), surname_f
            s_latin += "a"
        return first, last, f"{f_latin}.{s_latin}"
    if locale == "vi":
        (family, fam_latin), (given, given_latin) = rng.choice(_VI_FAMILY), rng.choice(_VI_GIVEN)
        return given, family, f"{given_latin}.{fam_latin}"
    family_list, given_list = (_ZH_CN_FAMILY, _ZH_CN_GIVEN) if locale == "zh-CN" else (_ZH_TW_FAMILY, _ZH_TW_GIVEN)
    (family, fam_latin), (given, given_latin) = rng.choice(family_list), rng.choice(given_list)
    return given, family, f"{given_latin}.{fam_latin}"


def _phone(rng: random.Random, country: str) -> str | None:
    if country in {"US", "CA"}:
        # 555-0100 … 555-0199 are reserved for fiction
        return f"+1{rng.choice(('202', '415', '512', '617', '312', '416'))}55501{rng.randint(0, 99):02d}"
    return None


# fixed customers of the showcase orders: (key, first, last, email, locale, city, zip, address1, phone)
_PERSONAS: tuple[tuple[str, str, str, str, str, _City, str, str, str | None], ...] = (
    ("demo-customer-ana", "Ana", "García", "ana@example.com", "es", _US_CITIES[0], "78704",
     "1208 South Congress Ave", "+15125550143"),
    ("demo-customer-liam", "Liam", "Carter", "liam.carter@example.org", "en", _US_CITIES[1], "98103",
     "3410 Fremont Ave N", "+12065550118"),
    ("demo-customer-dmitry", "Дмитрий", "Соколов", "dmitry.sokolov@example.com", "ru", _US_CITIES[2], "11215",
     "412 7th Avenue", "+17185550162"),
    ("demo-customer-lan", "Thị Lan", "Nguyễn", "lan.nguyen@example.net", "vi", _US_CITIES[10], "92683",
     "9200 Bolsa Ave", "+17145550127"),
    ("demo-customer-fang", "芳", "王", "fang.wang@example.com", "zh-CN", _CN_CITIES[0], "200040",
     "南京西路1266号", None),
    ("demo-customer-yichun", "怡君", "陳", "yichun.chen@example.org", "zh-TW", _TW_CITIES[0], "106",
     "忠孝東路四段181號", None),
    ("demo-customer-olivia", "Olivia", "Brown", "olivia.brown@example.com", "en", _CA_CITIES[0], "M5V 2T6",
     "301 King Street West", "+14165550155"),
    ("demo-customer-mateo", "Mateo", "Rodríguez", "mateo.rodriguez@example.org", "es", _ES_CITIES[0], "28013",
     "Calle Mayor 12", None),
)


def _people(seed: int) -> list[_Person]:
    people = [
        _Person(key, first, last, email, locale, phone, city, address1, zip_)
        for key, first, last, email, locale, city, zip_, address1, phone in _PERSONAS
    ]
    taken = {p.email for p in people}
    for i in range(_RANDOM_CUSTOMERS):
        rng = random.Random(f"{seed}:customer:{i}")
        locale = _LOCALE_CYCLE[i % len(_LOCALE_CYCLE)]
        homes = _HOMES[locale]
        cities = rng.choices([h for h, _ in homes], weights=[w for _, w in homes])[0]
        city = rng.choice(cities)
        first, last, handle = _random_name(rng, locale)
        domain = rng.choice(_DOMAINS)
        email = f"{handle}@{domain}"
        n = 2
        while email in taken:
            email = f"{handle}{n}@{domain}"
            n += 1
        taken.add(email)
        people.append(
            _Person(
                key=f"demo-customer-{i + 1:03d}",
                first=first,
                last=last,
                email=email,
                locale=locale,
                phone=_phone(rng, city.country_code),
                city=city,
                address1=_street_address(rng, city.country_code),
                zip=_fill_pattern(rng, city.zip_pattern),
            )
        )
    return people


# --------------------------------------------------------------------------- carriers


@dataclass(frozen=True)
class _Voice:
    """How one carrier words its scans."""

    name: str  # stored in Shipment.carrier
    label: str
    pickup: str
    depart_origin: str
    arrive_hub: str
    depart_hub: str
    arrive_local: str
    out_for_delivery: str
    delivered: tuple[str, ...]
    failed: str
    pickup_ready: str
    exception: tuple[str, ...]
    hubs: tuple[str, ...]


_UPS = _Voice(
    "UPS",
    "Label created: shipping information sent to UPS",
    "Pickup Scan",
    "Departed from Facility",
    "Arrived at Facility",
    "Departed from Facility",
    "Processing at UPS Facility",
    "Out For Delivery Today",
    ("Delivered", "DELIVERED, Front Door", "Delivered to front desk"),
    "The receiver was not available for delivery. We'll make a second attempt the next business day.",
    "Delivered to UPS Access Point. Ready for pickup",
    ("The address is incorrect. This may delay delivery.", "Damaged package reported. Delivery delayed"),
    ("Louisville, KY, US", "Hodgkins, IL, US", "Ontario, CA, US"),
)
_USPS = _Voice(
    "USPS",
    "Shipping Label Created, USPS Awaiting Item",
    "Accepted at USPS Origin Facility",
    "Departed USPS Regional Facility",
    "Arrived at USPS Regional Facility",
    "In Transit to Next Facility",
    "Arrived at Post Office",
    "Out for Delivery",
    ("Delivered, In/At Mailbox", "Delivered, Front Door/Porch"),
    "Notice Left (No Authorized Recipient Available)",
    "Available for Pickup",
    ("Delivery Exception, Incorrect Address",),
    ("Kearny, NJ, US", "Chicago, IL, US", "Denver, CO, US"),
)
_FEDEX = _Voice(
    "FedEx",
    "Shipment information sent to FedEx",
    "Picked up",
    "Left FedEx origin facility",
    "Arrived at FedEx hub",
    "Departed FedEx hub",
    "At local FedEx facility",
    "Out for delivery",
    ("Delivered",),
    "Delivery exception: Customer not available or business closed",
    "Ready for pickup at FedEx Office",
    ("Delivery exception: Incorrect address", "Delay: Weather delay"),
    ("Memphis, TN, US", "Indianapolis, IN, US"),
)
_DHL = _Voice(
    "DHL Express",
    "Shipment information received",
    "Shipment picked up",
    "Departed from origin DHL facility",
    "Arrived at Sort Facility",
    "Shipment has departed from a DHL facility",
    "Arrived at destination DHL facility",
    "With delivery courier",
    ("Delivered - signed for by receiver",),
    "Delivery attempted - recipient not home",
    "Awaiting collection by recipient as requested",
    ("Clearance delay - Importer/Consignee contact information required",),
    ("Cincinnati, OH, US", "Leipzig, DE", "Hong Kong, HK"),
)
_CARRIER_OF = {"UPS": Carrier.UPS, "USPS": Carrier.USPS, "FedEx": Carrier.FEDEX, "DHL Express": Carrier.DHL}

_ALNUM = "0123456789ABCDEFGHJKLMNPRSTUVWXY"


def _ups_number(rng: random.Random) -> str:
    payload = "".join(rng.choice(_ALNUM) for _ in range(6)) + rng.choice(("03", "02", "01")) + (
        f"{rng.randint(1, 9_999_999):07d}"
    )
    return f"1Z{payload}{ups_check_digit(payload)}"


def _usps_number(rng: random.Random) -> str:
    payload = "9400" + "1" + "".join(str(rng.randint(0, 9)) for _ in range(16))
    return payload + str(gs1_mod10_check_digit(payload))


def _fedex_number(rng: random.Random) -> str:
    payload = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(10))
    return payload + str(fedex12_check_digit(payload))


def _dhl_number(rng: random.Random) -> str:
    payload = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(8))
    return payload + str(dhl_mod7_check_digit(payload))


def _s10_number(rng: random.Random) -> str:
    serial = "".join(str(rng.randint(0, 9)) for _ in range(8))
    return f"{rng.choice(('LZ', 'CP'))}{serial}{s10_check_digit(serial)}US"


def _tracking(rng: random.Random, voice: _Voice, *, s10: bool = False) -> tuple[str, str]:
    """``(number, url)``: a number with a correct check digit and its public tracking page."""
    if s10:
        number = _s10_number(rng)
        return number, tracking_url(Carrier.S10, number)
    number = {
        "UPS": _ups_number,
        "USPS": _usps_number,
        "FedEx": _fedex_number,
        "DHL Express": _dhl_number,
    }[voice.name](rng)
    return number, tracking_url(_CARRIER_OF[voice.name], number)


@dataclass(frozen=True)
class _Route:
    origin: str
    destination: str
    international: bool


@dataclass
class _Story:
    status: ShipmentStatus
    events: list[_Row]
    shipped_at: datetime
    last_event_at: datetime | None
    delivered_at: datetime | None
    eta: datetime | None


def _story(
    rng: random.Random, voice: _Voice, route: _Route, t0: datetime, end: datetime, plan: str, anchor: datetime
) -> _Story:
    """The scans of one parcel handed over at ``t0`` whose last news is at ``end`` (< anchor).

    ``plan`` is a ShipmentStatus value or ``"stalled"`` (in transit, silent since ``end``).
    """
    hub = rng.choice(voice.hubs)
    jitter = lambda: timedelta(minutes=rng.randint(0, 50))  # noqa: E731
    steps: list[tuple[float, ShipmentStatus, str, str]] = [
        (0.0, _INFO, voice.label, route.origin),
        (rng.uniform(3, 6), _TRANSIT, voice.pickup, route.origin),
        (rng.uniform(8, 11), _TRANSIT, voice.depart_origin, route.origin),
        (rng.uniform(18, 22), _TRANSIT, voice.arrive_hub, hub),
        (rng.uniform(24, 28), _TRANSIT, voice.depart_hub, hub),
    ]
    if route.international:
        steps += [
            (rng.uniform(50, 56), _TRANSIT, "Customs clearance in progress", route.destination),
            (rng.uniform(60, 66), _TRANSIT, "Clearance processing complete", route.destination),
            (rng.uniform(70, 76), _TRANSIT, voice.arrive_local, route.destination),
        ]
    else:
        steps.append((rng.uniform(40, 46), _TRANSIT, voice.arrive_local, route.destination))
    transit_days = 8 if route.international else 4

    def event(at: datetime, status: ShipmentStatus, message: str, location: str) -> _Row:
        return _new(TrackingEvent, shipment_id=0, occurred_at=at, status=status, message=message, location=location)

    def prefix(upto: int, until: datetime) -> list[_Row]:
        """Steps 0..upto, squeezed if needed so the last lies at least an hour before ``until``."""
        room = (until - t0 - _H).total_seconds() / 3600
        scale = min(1.0, room / steps[upto][0]) if steps[upto][0] > 0 else 1.0
        scale = max(scale, 0.01)
        return [
            event(
                t0 + timedelta(hours=off * scale, seconds=i) + (jitter() if i else timedelta(0)) * scale,
                st, msg, loc,
            )
            for i, (off, st, msg, loc) in enumerate(steps[: upto + 1])
        ]

    last = len(steps) - 1
    events: list[_Row]
    status: ShipmentStatus
    delivered_at = None
    if plan == _PENDING.value:
        return _Story(_PENDING, [], t0, None, None, None)
    if plan == _INFO.value:
        events, status = [event(t0, _INFO, voice.label, route.origin)], _INFO
    elif plan in {_TRANSIT.value, _STALLED, _EXPIRED.value}:
        span = (end - t0).total_seconds() / 3600
        upto = max([i for i, s in enumerate(steps) if s[0] <= span] + [1])
        if plan == _EXPIRED.value:
            upto = min(upto, 4)
        events = prefix(upto, end + _H)
        status = _EXPIRED if plan == _EXPIRED.value else _TRANSIT
    elif plan == _OFD.value:
        events = prefix(last, end) + [event(end, _OFD, voice.out_for_delivery, route.destination)]
        status = _OFD
    elif plan == _DELIVERED.value:
        ofd_at = end - timedelta(hours=rng.uniform(2, 6))
        events = prefix(last, ofd_at) + [
            event(ofd_at, _OFD, voice.out_for_delivery, route.destination),
            event(end, _DELIVERED, rng.choice(voice.delivered), route.destination),
        ]
        status, delivered_at = _DELIVERED, end
    elif plan == _FAILED.value:
        ofd_at = end - timedelta(hours=rng.uniform(3, 6))
        events = prefix(last, ofd_at) + [
            event(ofd_at, _OFD, voice.out_for_delivery, route.destination),
            event(end, _FAILED, voice.failed, route.destination),
        ]
        status = _FAILED
    elif plan == _PICKUP.value:
        events = prefix(last, end) + [event(end, _PICKUP, voice.pickup_ready, route.destination)]
        status = _PICKUP
    elif plan == _EXCEPTION.value:
        upto = rng.randint(3, last)
        events = prefix(upto, end) + [event(end, _EXCEPTION, rng.choice(voice.exception), steps[upto][3])]
        status = _EXCEPTION
    else:  # pragma: no cover - programming error
        raise ValueError(plan)
    last_event_at = max(e.occurred_at for e in events)
    eta = t0 + timedelta(days=transit_days)
    eta = eta.replace(hour=20, minute=0, second=0, microsecond=0)
    if plan in {_INFO.value, _TRANSIT.value, _OFD.value, _PICKUP.value} and eta <= anchor:
        eta = anchor + timedelta(days=1, hours=20)
    return _Story(status, events, t0, last_event_at, delivered_at, eta)


# --------------------------------------------------------------------------- orders


@dataclass
class _PShipment:
    row: _Row
    items: list[tuple[int, int]]  # (line index, quantity)
    events: list[_Row]


@dataclass
class _PReturn:
    row: _Row
    lines: list[tuple[int, _Row]]  # (line index, row without ids)
    refund: _Row | None = None
    credit: _Row | None = None


@dataclass
class _POrder:
    row: _Row
    customer_key: str | None
    lines: list[_Row]
    shipments: list[_PShipment] = field(default_factory=list)
    returns: list[_PReturn] = field(default_factory=list)
    refunds: list[_Row] = field(default_factory=list)


_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_SHOPIFY_ORDER_ID_BASE = 820_982_911_946_150_000  # ids beyond 2^53, like Shopify's
_SHOPIFY_LINE_ID_BASE = 466_157_049_000_000_000
_SHOPIFY_FULFILLMENT_ID_BASE = 255_858_046_000_000_000


class _Planner:
    """Builds every demo row in memory, deterministically, before anything touches the database."""

    def __init__(self, seed: int, anchor: datetime) -> None:
        self.seed = seed
        self.anchor = anchor
        self.people = _people(seed)
        self.by_key = {p.key: p for p in self.people}
        self.orders: list[_POrder] = []

    # ---- helpers

    def rng(self, *parts: object) -> random.Random:
        return random.Random(":".join([str(self.seed), *map(str, parts)]))

    def ago(self, days: float, hours: float = 0.0) -> datetime:
        return self.anchor - timedelta(days=days, hours=hours)

    @staticmethod
    def voice_for(rng: random.Random, person: _Person | None) -> tuple[_Voice, bool]:
        """A carrier for a parcel to ``person``: (voice, use an S10 number)."""
        country = person.city.country_code if person else "US"
        if country == "US":
            return rng.choices((_UPS, _USPS, _FEDEX), weights=(5, 4, 3))[0], False
        if country in {"CA", "MX"}:
            return (_UPS, False) if rng.random() < 0.6 else (_USPS, True)
        return (_DHL, False) if rng.random() < 0.8 else (_USPS, True)

    @staticmethod
    def route_for(person: _Person | None) -> _Route:
        if person is None:
            return _Route("Newark, NJ, US", "Newark, NJ, US", False)
        c = person.city
        west = c.country_code in {"CN", "TW", "VN"} or c.province_code in {"CA", "WA", "OR", "CO"}
        origin = "Reno, NV, US" if west else "Newark, NJ, US"
        if c.country_code == "US":
            dest = f"{c.city_en}, {c.province_code}, US"
        else:
            dest = f"{c.city_en}, {c.country_code}"
        return _Route(origin, dest, c.country_code not in {"US"})

    def new_order(
        self,
        *,
        name: str,
        external_id: str,
        source: SourceChannel,
        person: _Person | None,
        placed_at: datetime,
        items: Sequence[tuple[str, int]],
        rng: random.Random,
        discount: bool = False,
        email: str | None = None,
    ) -> _POrder:
        lines: list[_Row] = []
        number = int("".join(ch for ch in external_id if ch.isdigit())[-12:] or 0)
        for k, (sku, qty) in enumerate(items):
            v = _BY_SKU[sku]
            gross = v.price * qty
            disc = _money(gross * _D("0.10")) if discount and not v.product.final_sale else _D("0.00")
            lines.append(
                _new(OrderLine, 
                    order_id=0,
                    external_id=str(_SHOPIFY_LINE_ID_BASE + number * 10 + k),
                    sku=sku,
                    title=v.product.title,
                    variant_title=v.variant_title,
                    quantity=qty,
                    unit_price=v.price,
                    total_discount=disc,
                    product_type=v.product.product_type,
                    returnable=not v.product.final_sale,
                    final_sale=v.product.final_sale,
                    fulfilled_quantity=0,
                )
            )
        subtotal = sum((ln.unit_price * ln.quantity for ln in lines), _D("0"))
        discounts = sum((ln.total_discount for ln in lines), _D("0"))
        country = person.city.country_code if person else "US"
        if source == SourceChannel.pos:
            shipping = _D("0.00")
        elif country == "US":
            shipping = _D("0.00") if subtotal - discounts >= 75 else _D("5.95")
        elif country in {"CA", "MX"}:
            shipping = _D("14.95")
        else:
            shipping = _D("24.95")
        tax = _money((subtotal - discounts) * _D("0.0825")) if country == "US" else _D("0.00")
        address = person.address() if person and source != SourceChannel.pos else None
        postal = "".join(person.zip.split()).upper() if address and person else None
        row = _new(Order, 
            source=source,
            external_id=external_id,
            name=name,
            email=email if email is not None else (person.email if person else None),
            phone=person.phone if person else None,
            currency="USD",
            subtotal_price=_money(subtotal),
            total_tax=tax,
            total_shipping=shipping,
            total_discounts=_money(discounts),
            total_price=_money(subtotal - discounts + shipping + tax),
            financial_status=FinancialStatus.paid,
            fulfillment_status=FulfillmentStatus.unfulfilled,
            placed_at=placed_at,
            shipping_address=address,
            billing_address=address,
            shipping_postal_code=postal,
            tags=["welcome10"] if discount else [],
            note=rng.choice((None, None, None, None, "Please leave the parcel with the concierge.",
                             "Gift: please no prices on the packing slip.")) if address else None,
            stock_reserved=False,
            created_at=placed_at,
            updated_at=placed_at,
        )
        order = _POrder(row=row, customer_key=person.key if person else None, lines=lines)
        self.orders.append(order)
        if person is not None and (person.since is None or placed_at < person.since):
            person.since = placed_at
        return order

    def ship(
        self,
        order: _POrder,
        rng: random.Random,
        plan: str,
        t0: datetime,
        end: datetime,
        items: Sequence[tuple[int, int]] | None = None,
        voice: _Voice | None = None,
        s10: bool | None = None,
    ) -> _PShipment:
        person = self.by_key.get(order.customer_key or "")
        if voice is None:
            voice, chosen_s10 = self.voice_for(rng, person)
            s10 = chosen_s10 if s10 is None else s10
        s10 = bool(s10)
        story = _story(rng, voice, self.route_for(person), t0, end, plan, self.anchor)
        number, url = _tracking(rng, voice, s10=s10)
        k = len(order.shipments)
        items = list(items) if items is not None else [(i, ln.quantity) for i, ln in enumerate(order.lines)]
        numeric = int(order.row.external_id[-9:]) if order.row.external_id[-9:].isdigit() else len(self.orders)
        row = _new(Shipment, 
            order_id=0,
            external_id=str(_SHOPIFY_FULFILLMENT_ID_BASE + numeric * 10 + k),
            name=f"{order.row.name}.{k + 1}",
            carrier=voice.name,
            tracking_number=number if plan != _PENDING.value else None,
            tracking_url=url if plan != _PENDING.value else None,
            status=story.status,
            eta=story.eta,
            shipped_at=story.shipped_at,
            delivered_at=story.delivered_at,
            last_event_at=story.last_event_at,
            created_at=story.shipped_at,
            updated_at=story.last_event_at or story.shipped_at,
        )
        shipment = _PShipment(row=row, items=items, events=story.events)
        order.shipments.append(shipment)
        for index, qty in items:
            order.lines[index].fulfilled_quantity += qty
        self._refresh_fulfillment(order)
        self.touch(order, row.updated_at)
        return shipment

    @staticmethod
    def _refresh_fulfillment(order: _POrder) -> None:
        shipped = sum(ln.fulfilled_quantity for ln in order.lines)
        wanted = sum(ln.quantity for ln in order.lines)
        if shipped == 0:
            order.row.fulfillment_status = FulfillmentStatus.unfulfilled
        elif shipped < wanted:
            order.row.fulfillment_status = FulfillmentStatus.partial
        else:
            order.row.fulfillment_status = FulfillmentStatus.fulfilled

    @staticmethod
    def touch(order: _POrder, when: datetime | None) -> None:
        if when is not None and when > order.row.updated_at:
            order.row.updated_at = when

    def cancel(self, order: _POrder, rng: random.Random, when: datetime, *, refund: bool) -> None:
        o = order.row
        o.cancelled_at = when
        o.closed_at = when
        o.cancel_reason = rng.choice(("customer", "customer", "inventory", "fraud"))
        if refund:
            o.financial_status = FinancialStatus.refunded
            order.refunds.append(
                _new(Refund, 
                    order_id=0,
                    external_id=f"demo-cancel-{o.external_id}",
                    amount=o.total_price,
                    currency=o.currency,
                    note="order cancelled",
                    processed_at=when,
                    created_at=when,
                )
            )
        else:
            o.financial_status = FinancialStatus.voided
        self.touch(order, when)

    def add_return(
        self,
        order: _POrder,
        rng: random.Random,
        target: RmaStatus,
        requested_at: datetime,
        *,
        line_indexes: Sequence[int] | None = None,
        resolution: Resolution | None = None,
        method: ReturnMethod = ReturnMethod.mail,
        reason: ReturnReason | None = None,
        condition: ItemCondition | None = None,
    ) -> _PReturn | None:
        candidates = [i for i, ln in enumerate(order.lines) if ln.returnable and ln.fulfilled_quantity > 0]
        chosen = list(line_indexes) if line_indexes is not None else candidates[:1]
        if not chosen:
            return None
        if resolution is None:
            resolution = {
                RmaStatus.exchanged: Resolution.exchange,
                RmaStatus.credited: Resolution.store_credit,
                RmaStatus.refunded: Resolution.refund,
            }.get(target) or rng.choices(
                (Resolution.refund, Resolution.store_credit, Resolution.exchange), weights=(6, 2, 2)
            )[0]
        lines: list[tuple[int, _Row]] = []
        value = _D("0")
        for index in chosen:
            ln = order.lines[index]
            v = _BY_SKU[ln.sku or ""]
            why = reason or rng.choice(
                (ReturnReason.too_small, ReturnReason.too_large, ReturnReason.changed_mind, ReturnReason.defective)
                if v.product.sizes != (None,)
                else (ReturnReason.changed_mind, ReturnReason.damaged, ReturnReason.not_as_described)
            )
            exchange_sku = None
            if resolution == Resolution.exchange:
                siblings = [
                    o.sku for o in _VARIANTS if o.product is v.product and o.colour == v.colour and o.sku != v.sku
                ] or [o.sku for o in _VARIANTS if o.product is v.product and o.sku != v.sku]
                exchange_sku = rng.choice(siblings) if siblings else None
                if exchange_sku is None:
                    resolution = Resolution.refund
            lines.append(
                (
                    index,
                    _new(ReturnLine, 
                        rma_id=0,
                        order_line_id=0,
                        quantity=ln.fulfilled_quantity,
                        reason=why,
                        reason_note={
                            ReturnReason.too_small: "Runs small, I need one size up.",
                            ReturnReason.too_large: "Too big.",
                            ReturnReason.defective: "The stitching came apart after one wash.",
                            ReturnReason.damaged: "Arrived with a torn seam.",
                        }.get(why),
                        condition=condition or rng.choice((ItemCondition.unopened, ItemCondition.like_new)),
                        exchange_sku=exchange_sku,
                    ),
                )
            )
            value += ln.unit_price * ln.fulfilled_quantity - ln.total_discount * ln.fulfilled_quantity / ln.quantity
        value = _money(value)
        refund_amount = value if resolution == Resolution.refund else _D("0.00")
        credit_amount = _money(value * _D("1.10")) if resolution == Resolution.store_credit else _D("0.00")

        # the lifecycle, truncated before the anchor
        chain: list[tuple[RmaStatus, datetime]] = [(RmaStatus.requested, requested_at)]
        t = requested_at + timedelta(minutes=rng.randint(1, 20))
        chain.append((RmaStatus.approved, t))
        if method == ReturnMethod.mail:
            chain.append((RmaStatus.label_issued, t))
            t += timedelta(days=rng.uniform(0.5, 3))
            chain.append((RmaStatus.in_transit, t))
        else:
            t += timedelta(days=rng.uniform(1, 4))
        if target == RmaStatus.cancelled:
            chain = [c for c in chain if c[0] in {RmaStatus.requested, RmaStatus.approved, RmaStatus.label_issued}]
            chain.append((RmaStatus.cancelled, chain[-1][1] + timedelta(days=rng.uniform(0.5, 2))))
        else:
            t += timedelta(days=rng.uniform(2, 4))
            chain.append((RmaStatus.received, t))
            t += timedelta(hours=rng.uniform(4, 30))
            if target in {RmaStatus.refunded, RmaStatus.exchanged, RmaStatus.credited, RmaStatus.rejected}:
                chain.append((target, t))
        cut = [c for c in chain if c[1] < self.anchor]
        upto = next((i for i, c in enumerate(cut) if c[0] == target), len(cut) - 1)
        reached = cut[: upto + 1]
        rma_number = f"R{''.join(ch for ch in order.row.name if ch.isdigit())}-{len(order.returns) + 1}"
        row = _new(ReturnAuthorization, 
            rma_number=rma_number,
            order_id=0,
            customer_id=None,
            status=reached[-1][0],
            resolution=resolution,
            method=method,
            currency=order.row.currency,
            refund_amount=refund_amount,
            credit_amount=credit_amount,
            created_by=rng.choice(("bot", "bot", "bot", "agent")),
            requested_at=requested_at,
            created_at=requested_at,
            updated_at=reached[-1][1],
        )
        for status, when in reached[1:]:
            setattr(row, f"{status.value}_at", when)
        if row.label_issued_at is not None:
            serial = f"{rng.randint(0, 9_999_999):07d}"
            body = f"R7T4K990{serial}"
            row.label_carrier = Carrier.UPS.value
            row.label_tracking_number = f"1Z{body}{ups_check_digit(body)}"
        if row.status == RmaStatus.rejected:
            row.note = "Item shows signs of wear; not accepted under the return policy."
        ret = _PReturn(row=row, lines=lines)
        if row.status == RmaStatus.refunded and refund_amount > 0:
            ret.refund = _new(Refund, 
                order_id=0,
                external_id=f"shopdesk:rma:{rma_number}",
                amount=refund_amount,
                currency=order.row.currency,
                note=f"return {rma_number}",
                processed_at=row.refunded_at or row.updated_at,
                created_at=row.refunded_at or row.updated_at,
            )
            order.row.financial_status = FinancialStatus.partially_refunded
        if row.status == RmaStatus.credited:
            code = "".join(rng.choice(_CODE_ALPHABET) for _ in range(12))
            ret.credit = _new(StoreCredit, 
                code=f"SC-{code[:4]}-{code[4:8]}-{code[8:]}",
                amount=credit_amount,
                currency=order.row.currency,
                created_at=row.credited_at or row.updated_at,
            )
        order.returns.append(ret)
        self.touch(order, row.updated_at)
        return ret

    # ---- items

    def random_items(self, rng: random.Random, count: int | None = None) -> list[tuple[str, int]]:
        count = count or rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
        products = rng.sample(list(_PRODUCTS), k=count, counts=[p.weight for p in _PRODUCTS]) if count else []
        items: list[tuple[str, int]] = []
        seen: set[str] = set()
        for p in products:
            sku = rng.choice([v.sku for v in _VARIANTS if v.product is p])
            if sku in seen:
                continue
            seen.add(sku)
            items.append((sku, 2 if rng.random() < 0.1 and p.code != "GC" else 1))
        return items

    # ---- the showcase

    def showcase(self) -> None:
        a = self.anchor
        ext = lambda n: str(_SHOPIFY_ORDER_ID_BASE + n)  # noqa: E731
        pool = [p for p in self.people if p.key[-1].isdigit()]  # not the fixed personas
        us_pool = [p for p in pool if p.city.country_code == "US"]
        abroad_pool = [p for p in pool if p.city.country_code != "US"]

        def order(n: int, person: _Person, days: float, items: list[tuple[str, int]], hours: float = 0) -> _POrder:
            rng = self.rng("showcase", n)
            return self.new_order(
                name=f"#{n}", external_id=ext(n), source=SourceChannel.online_store, person=person,
                placed_at=self.ago(days, hours), items=items, rng=rng,
            )

        P = self.by_key
        # 1001 in transit with UPS
        o = order(1001, P["demo-customer-ana"], 2, [("TR2-BLK-09", 1), ("TEE-OLV-M", 1)], hours=-10)
        self.ship(o, self.rng("ship", 1001), _TRANSIT.value, a - timedelta(hours=30), a - timedelta(hours=5),
                  voice=_UPS, s10=False)
        # 1002 delivered 6 days ago, returnable
        o = order(1002, P["demo-customer-liam"], 10, [("PRJ-NVY-L", 1)], hours=-9)
        self.ship(o, self.rng("ship", 1002), _DELIVERED.value, self.ago(9, -13), self.ago(6, -14.5), voice=_FEDEX)
        # 1003 stalled: in transit, silent for 7 days, ETA passed
        o = order(1003, P["demo-customer-dmitry"], 11, [("WOS-CHR-M", 1), ("MBN-RST", 1)], hours=-11)
        self.ship(o, self.rng("ship", 1003), _STALLED, self.ago(9, -15), self.ago(7, -9), voice=_USPS, s10=False)
        # 1004 delivery exception: the incorrect address the summary promises, not a random one
        o = order(1004, P["demo-customer-lan"], 5, [("CLS-WHT-07", 1)], hours=-16)
        self.ship(o, self.rng("ship", 1004), _EXCEPTION.value, self.ago(4, -12), self.ago(1, -10),
                  voice=replace(_FEDEX, exception=_FEDEX.exception[:1]))
        # 1005 unfulfilled, cancellable
        o = order(1005, P["demo-customer-fang"], 0, [("TEE-WHT-M", 2), ("GTM-HGR-M", 1)], hours=9)
        # 1006 two shipments: one delivered, one in transit
        o = order(1006, P["demo-customer-yichun"], 9, [("TR2-SLT-08", 1), ("BLT-BRN-32", 1), ("TOT-NAT", 1)],
                  hours=-8)
        self.ship(o, self.rng("ship", 1006, 1), _DELIVERED.value, self.ago(8, -10), self.ago(3, -11),
                  items=[(0, 1)], voice=_DHL, s10=False)
        self.ship(o, self.rng("ship", 1006, 2), _TRANSIT.value, self.ago(3, -15), a - timedelta(hours=7),
                  items=[(1, 1), (2, 1)], voice=_DHL, s10=False)
        # 1007 final sale only
        o = order(1007, P["demo-customer-olivia"], 8, [("GC-50", 1), ("BXB-BLK-M", 1)], hours=-10)
        self.ship(o, self.rng("ship", 1007), _DELIVERED.value, self.ago(7, -12), self.ago(4, -13), voice=_UPS,
                  s10=False)
        # 1008 delivered long ago: outside the 30-day window
        o = order(1008, P["demo-customer-mateo"], 60, [("PRJ-YEL-M", 1)], hours=-12)
        self.ship(o, self.rng("ship", 1008), _DELIVERED.value, self.ago(58, -10), self.ago(52, -12), voice=_DHL,
                  s10=False)
        o.row.closed_at = self.ago(52, -12)

        def us(n: int) -> _Person:
            return random.Random(f"{self.seed}:showcase-customer:{n}").choice(us_pool)

        def abroad(n: int) -> _Person:
            return random.Random(f"{self.seed}:showcase-customer:{n}").choice(abroad_pool)

        def rand_items(n: int, count: int = 1) -> list[tuple[str, int]]:
            rng = self.rng("showcase-items", n)
            items = self.random_items(rng, count)
            # keep the showcase returnable where it matters
            return [(s, q) for s, q in items if not _BY_SKU[s].product.final_sale] or [("TEE-BLK-L", 1)]

        o = order(1009, us(9), 3, rand_items(1009), hours=-10)
        self.ship(o, self.rng("ship", 1009), _OFD.value, self.ago(2, -12), a - timedelta(hours=14), voice=_USPS,
                  s10=False)
        o = order(1010, us(10), 5, rand_items(1010), hours=-9)
        self.ship(o, self.rng("ship", 1010), _FAILED.value, self.ago(4, -12), self.ago(1, -14), voice=_UPS,
                  s10=False)
        o = order(1011, us(11), 5, rand_items(1011), hours=-10)
        self.ship(o, self.rng("ship", 1011), _PICKUP.value, self.ago(4, -11), self.ago(1, -11), voice=_USPS,
                  s10=False)
        o = order(1012, us(12), 1, rand_items(1012), hours=-9)
        self.ship(o, self.rng("ship", 1012), _INFO.value, a - timedelta(hours=8), a - timedelta(hours=8),
                  voice=_FEDEX)
        o = order(1013, abroad(13), 70, rand_items(1013), hours=-10)
        self.ship(o, self.rng("ship", 1013), _EXPIRED.value, self.ago(68, -12), self.ago(66, -8), voice=_USPS,
                  s10=True)
        o = order(1014, us(14), 1, rand_items(1014), hours=-12)
        self.ship(o, self.rng("ship", 1014), _PENDING.value, a - timedelta(hours=4), a - timedelta(hours=4),
                  voice=_UPS, s10=False)
        o = order(1015, us(15), 4, rand_items(1015), hours=-10)
        self.cancel(o, self.rng("cancel", 1015), self.ago(3, -9), refund=False)
        o.row.cancel_reason = "customer"

        # 1016 returned and fully refunded (the return covers the items; a goodwill refund the rest)
        o = order(1016, us(16), 30, rand_items(1016, 2), hours=-10)
        self.ship(o, self.rng("ship", 1016), _DELIVERED.value, self.ago(29, -10), self.ago(26, -12))
        ret = self.add_return(o, self.rng("rma", 1016), RmaStatus.refunded, self.ago(24, -10),
                              line_indexes=list(range(len(o.lines))), resolution=Resolution.refund,
                              reason=ReturnReason.defective, condition=ItemCondition.like_new)
        assert ret is not None and ret.refund is not None
        rest = o.row.total_price - ret.refund.amount
        if rest > 0:
            o.refunds.append(
                _new(Refund, order_id=0, external_id=f"demo-goodwill-{o.row.external_id}", amount=rest,
                       currency=o.row.currency, note="shipping and tax refunded (goodwill)",
                       processed_at=ret.refund.processed_at, created_at=ret.refund.processed_at)
            )
        o.row.financial_status = FinancialStatus.refunded
        o.row.closed_at = ret.refund.processed_at

        rma_cases: tuple[tuple[int, RmaStatus, float, float, ReturnMethod], ...] = (
            # (order, target, delivered days ago, requested days ago, method)
            (1017, RmaStatus.requested, 4, 1, ReturnMethod.mail),
            (1018, RmaStatus.approved, 6, 2, ReturnMethod.dropoff),
            (1019, RmaStatus.label_issued, 8, 1.5, ReturnMethod.mail),
            (1020, RmaStatus.in_transit, 12, 4, ReturnMethod.mail),
            (1021, RmaStatus.received, 16, 9, ReturnMethod.mail),
            (1022, RmaStatus.exchanged, 25, 18, ReturnMethod.mail),
            (1023, RmaStatus.credited, 22, 15, ReturnMethod.mail),
            (1024, RmaStatus.rejected, 21, 14, ReturnMethod.mail),
            (1025, RmaStatus.cancelled, 14, 8, ReturnMethod.mail),
        )
        for n, target, delivered_ago, requested_ago, method in rma_cases:
            items = [("TR2-BLK-10", 1)] if target == RmaStatus.exchanged else rand_items(n)
            o = order(n, us(n), delivered_ago + 4, items, hours=-10)
            self.ship(o, self.rng("ship", n), _DELIVERED.value, self.ago(delivered_ago + 3, -11),
                      self.ago(delivered_ago, -13))
            rng = self.rng("rma", n)
            if target == RmaStatus.rejected:
                self.add_return(o, rng, target, self.ago(requested_ago, -10), reason=ReturnReason.changed_mind,
                                condition=ItemCondition.used, resolution=Resolution.refund, method=method)
            elif target == RmaStatus.exchanged:
                self.add_return(o, rng, target, self.ago(requested_ago, -10), reason=ReturnReason.too_small,
                                resolution=Resolution.exchange, method=method)
            else:
                self.add_return(o, rng, target, self.ago(requested_ago, -10), method=method,
                                resolution=Resolution.store_credit if target == RmaStatus.credited else None)
        # 1026 partly shipped, one item backordered
        o = order(1026, us(26), 3, [("PRJ-YEL-L", 1), ("MBN-OAT", 1)], hours=-9)
        self.ship(o, self.rng("ship", 1026), _TRANSIT.value, self.ago(2, -12), a - timedelta(hours=6),
                  items=[(1, 1)], voice=_UPS, s10=False)
        o.row.expected_ship_at = a + timedelta(days=6, hours=17)

    # ---- everyone else

    def plan_shipping(self, order: _POrder, rng: random.Random) -> None:
        """Ship (or not) an order according to its age, with realistic odds."""
        placed = order.row.placed_at
        age_days = (self.anchor - placed).total_seconds() / 86400
        if rng.random() < 0.04 and age_days < 60:
            when = min(placed + timedelta(hours=rng.uniform(1, 30)), self.anchor - timedelta(minutes=30))
            self.cancel(order, rng, when, refund=rng.random() < 0.5)
            return
        if age_days < 1.5 and rng.random() < 0.7:
            if rng.random() < 0.2:
                order.row.financial_status = FinancialStatus.authorized
            return  # not shipped yet
        t0 = placed + timedelta(hours=rng.uniform(6, min(50, max(7, age_days * 24 - 3))))
        t0 = min(t0, self.anchor - timedelta(hours=2))
        since = (self.anchor - t0).total_seconds() / 86400
        if since < 1:
            plan = rng.choices((_PENDING.value, _INFO.value, _TRANSIT.value), weights=(1, 4, 5))[0]
        elif since < 4:
            plan = rng.choices(
                (_TRANSIT.value, _OFD.value, _DELIVERED.value, _FAILED.value, _PICKUP.value, _EXCEPTION.value),
                weights=(55, 6, 30, 3, 3, 3),
            )[0]
        elif since < 10:
            plan = rng.choices(
                (_DELIVERED.value, _STALLED, _EXCEPTION.value, _PICKUP.value, _FAILED.value),
                weights=(80, 7, 5, 4, 4),
            )[0]
        else:
            plan = rng.choices(
                (_DELIVERED.value, _EXPIRED.value, _EXCEPTION.value, _STALLED),
                weights=(94, 2 if since > 35 else 0, 2, 2),
            )[0]
        delivery_days = rng.uniform(2.2, 4.5)
        if plan == _DELIVERED.value:
            end = min(t0 + timedelta(days=delivery_days), self.anchor - timedelta(hours=rng.uniform(1, 8)))
            if end - t0 < timedelta(hours=20):
                plan, end = _TRANSIT.value, self.anchor - timedelta(hours=rng.uniform(1, 8))
        elif plan in {_TRANSIT.value, _OFD.value}:
            end = max(self.anchor - timedelta(hours=rng.uniform(1, 10)), t0 + _H)
        elif plan in {_INFO.value, _PENDING.value}:
            end = t0
        elif plan == _STALLED:
            end = max(t0 + timedelta(hours=rng.uniform(6, 30)), t0)
            end = min(end, self.anchor - timedelta(days=5, hours=rng.uniform(3, 48)))
            if end <= t0:
                plan, end = _DELIVERED.value, min(t0 + timedelta(days=3), self.anchor - _H)
        elif plan == _EXPIRED.value:
            end = t0 + timedelta(days=rng.uniform(1, 2))
        else:  # failed attempt, pickup, exception: news within the last days
            end = min(t0 + timedelta(days=delivery_days), self.anchor - timedelta(hours=rng.uniform(1, 20)))
            end = max(end, t0 + timedelta(hours=12))
            end = min(end, self.anchor - timedelta(minutes=30))

        multi = len(order.lines) >= 2 and rng.random() < 0.15
        backorder = len(order.lines) >= 2 and not multi and rng.random() < 0.05 and since < 20
        if multi:
            split = rng.randint(1, len(order.lines) - 1)
            first = [(i, ln.quantity) for i, ln in enumerate(order.lines[:split])]
            second = [(i + split, ln.quantity) for i, ln in enumerate(order.lines[split:])]
            self.ship(order, rng, plan, t0, end, items=first)
            t1 = min(t0 + timedelta(days=rng.uniform(0.5, 2)), self.anchor - timedelta(hours=3))
            if plan == _DELIVERED.value and self.anchor - t1 > timedelta(days=4):
                end2 = min(t1 + timedelta(days=3), self.anchor - _H)
                self.ship(order, rng, _DELIVERED.value, t1, end2, items=second)
            elif plan in {_DELIVERED.value, _TRANSIT.value, _OFD.value, _INFO.value, _PENDING.value}:
                self.ship(order, rng, _TRANSIT.value, t1, max(t1 + _H, self.anchor - timedelta(hours=4)),
                          items=second)
            else:  # both parcels left together and share their fate
                self.ship(order, rng, plan, t0, end, items=second)
        elif backorder:
            items = [(i, ln.quantity) for i, ln in enumerate(order.lines[:-1])]
            self.ship(order, rng, plan, t0, end, items=items)
        else:
            self.ship(order, rng, plan, t0, end)

        # returns on some delivered orders, inside the window
        delivered = [s.row.delivered_at for s in order.shipments if s.row.delivered_at is not None]
        if delivered and len(delivered) == len(order.shipments) and rng.random() < 0.13:
            last = max(delivered)
            dsd = (self.anchor - last).total_seconds() / 86400
            if 1 < dsd:
                requested = last + timedelta(days=rng.uniform(0.5, min(dsd - 0.2, 25)))
                since_req = (self.anchor - requested).total_seconds() / 86400
                if since_req < 3:
                    target = rng.choice((RmaStatus.requested, RmaStatus.label_issued))
                elif since_req < 9:
                    target = rng.choice((RmaStatus.label_issued, RmaStatus.in_transit, RmaStatus.received))
                else:
                    target = rng.choices(
                        (RmaStatus.refunded, RmaStatus.credited, RmaStatus.exchanged, RmaStatus.rejected,
                         RmaStatus.cancelled),
                        weights=(50, 20, 15, 8, 7),
                    )[0]
                self.add_return(
                    order, rng, target, requested,
                    condition=ItemCondition.used if target == RmaStatus.rejected else None,
                    reason=ReturnReason.changed_mind if target == RmaStatus.rejected else None,
                )
        if delivered and not order.returns and (self.anchor - max(delivered)) > timedelta(days=35):
            order.row.closed_at = max(delivered) + timedelta(days=30)

    def everyone_else(self) -> None:
        regular = [p for p in self.people if p.key[-1].isdigit()]
        # online orders: placed times first, then numbered in time order
        first_random = 1001 + len(SHOWCASE)
        plans: list[tuple[datetime, int]] = []
        for i in range(_ONLINE_ORDERS - len(SHOWCASE)):
            rng = self.rng("online", i)
            plans.append((self.ago(rng.triangular(1, 120, 4)), i))
        plans.sort()
        for rank, (placed_at, i) in enumerate(plans):
            rng = self.rng("online", i, "content")
            # the first few customers get the most orders; everybody orders at least once
            person = regular[rank % len(regular)] if rank < len(regular) else rng.choice(regular)
            n = first_random + rank
            order = self.new_order(
                name=f"#{n}", external_id=str(_SHOPIFY_ORDER_ID_BASE + n), source=SourceChannel.online_store,
                person=person, placed_at=min(placed_at, self.anchor - timedelta(minutes=20)),
                items=self.random_items(rng), rng=rng, discount=rng.random() < 0.15,
            )
            if rng.random() < 0.08:
                order.row.tags = [*order.row.tags, "vip"]
            self.plan_shipping(order, rng)

        for i in range(_AMAZON_ORDERS):
            ids = random.Random(f"amazon:{i}")
            number = f"{ids.choice(('111', '112', '113', '114'))}-{ids.randint(0, 9_999_999):07d}-{ids.randint(0, 9_999_999):07d}"
            rng = self.rng("amazon", i)
            person = rng.choice([p for p in regular if p.city.country_code == "US"])
            handle = "".join(rng.choice("abcdefghjkmnpqrstvwxyz0123456789") for _ in range(14))
            order = self.new_order(
                name=number, external_id=number, source=SourceChannel.amazon, person=person,
                placed_at=self.ago(rng.triangular(1, 60, 3)), items=self.random_items(rng, 1),
                rng=rng, email=f"{handle}@marketplace.example.com",
            )
            order.row.tags = ["amazon"]
            order.customer_key = None
            self.plan_shipping(order, rng)

        for i in range(_EBAY_ORDERS):
            ids = random.Random(f"ebay:{i}")
            number = f"{ids.randint(10, 29)}-{ids.randint(0, 99_999):05d}-{ids.randint(0, 99_999):05d}"
            rng = self.rng("ebay", i)
            person = rng.choice([p for p in regular if p.city.country_code in {"US", "CA"}])
            order = self.new_order(
                name=number, external_id=number, source=SourceChannel.ebay, person=person,
                placed_at=self.ago(rng.triangular(1, 60, 3)), items=self.random_items(rng, 1),
                rng=rng, email=f"{person.email.split('@')[0]}@members.example.org",
            )
            order.row.tags = ["ebay"]
            order.customer_key = None
            self.plan_shipping(order, rng)

        for i in range(_POS_ORDERS):
            rng = self.rng("pos", i)
            person = rng.choice(regular) if rng.random() < 0.6 else None
            # opening hours of a day in the past
            placed = self.ago(int(rng.triangular(1, 90, 10)), -rng.uniform(14, 23))
            order = self.new_order(
                name=f"POS-{1001 + i}", external_id=str(830_000_000_000_000_000 + i), source=SourceChannel.pos,
                person=person, placed_at=placed, items=self.random_items(rng), rng=rng,
            )
            order.row.tags = ["pos", "newark-store"]
            order.row.closed_at = placed
            for ln in order.lines:
                ln.fulfilled_quantity = ln.quantity
            order.row.fulfillment_status = FulfillmentStatus.fulfilled

    def finish(self) -> None:
        for order in self.orders:
            o = order.row
            o.stock_reserved = o.cancelled_at is None and o.fulfillment_status in {
                FulfillmentStatus.unfulfilled,
                FulfillmentStatus.partial,
            }

    def build(self) -> None:
        self.showcase()
        self.everyone_else()
        self.finish()

    # ---- stock

    def inventory(self) -> list[tuple[str, str, int, int, int]]:
        """``(warehouse code, sku, on_hand, reserved, safety_stock)`` for every SKU in both warehouses."""
        reserved: dict[str, int] = defaultdict(int)
        for order in self.orders:
            if order.row.stock_reserved:
                for ln in order.lines:
                    if ln.sku and ln.quantity > ln.fulfilled_quantity:
                        reserved[ln.sku] += ln.quantity - ln.fulfilled_quantity
            for ret in order.returns:
                if ret.row.status in {RmaStatus.requested, RmaStatus.approved, RmaStatus.label_issued,
                                      RmaStatus.in_transit, RmaStatus.received}:
                    for _, rl in ret.lines:
                        if rl.exchange_sku:
                            reserved[rl.exchange_sku] += rl.quantity
        rng = self.rng("inventory")
        skus = [v.sku for v in _VARIANTS]
        low = set(rng.sample([s for s in skus if not s.startswith("GC-")], 9))
        out_of_stock = set(sorted(low)[:2])
        rows: list[tuple[str, str, int, int, int]] = []
        for sku in skus:
            gift = sku.startswith("GC-")
            safety = 20 if gift else rng.choice((2, 3, 5, 8))
            held = reserved.get(sku, 0)
            if gift:
                on_hand = 500 + held
            elif sku in out_of_stock:
                on_hand = held
            elif sku in low:
                on_hand = held + rng.randint(0, safety)
            else:
                on_hand = held + safety + rng.randint(4, 60)
            rows.append(("east", sku, on_hand, held, safety))
            west_on_hand = 0 if gift else rng.choice((0, 1, 2, 6, 12, 18, 25, 40))
            rows.append(("west", sku, west_on_hand, 0, 0 if gift else 2))
        return rows


_WAREHOUSES = (
    ("east", "East Coast DC (Newark, NJ)", {"address1": "100 Port Street", "city": "Newark",
                                            "province_code": "NJ", "zip": "07114", "country_code": "US"}, True),
    ("west", "West Coast DC (Reno, NV)", {"address1": "2250 Larkin Circle", "city": "Sparks",
                                          "province_code": "NV", "zip": "89431", "country_code": "US"}, False),
)


# --------------------------------------------------------------------------- writing


async def _existing(session: AsyncSession, column: Any, values: Sequence[Any]) -> set[Any]:
    found: set[Any] = set()
    values = list(values)
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        found.update((await session.exec(select(column).where(column.in_(chunk)))).all())
    return found


async def _insert(
    conn: AsyncConnection, model: type[SQLModel], rows: Sequence[_Row], key: tuple[str, ...] = ()
) -> None:
    """Bulk-insert ``rows`` in pages; with a ``key`` (columns unique within ``rows``), write the new
    ids back into the rows (RETURNING is batched on both databases, its order is not relied upon)."""
    if not rows:
        return
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    names = [c.name for c in table.columns if not (c.name == "id" and c.primary_key)]
    params = [{name: row[name] for name in names} for row in rows]
    if not key:
        await conn.execute(sa.insert(table), params)
        return
    stmt = sa.insert(table).returning(table.c.id, *(table.c[k] for k in key))
    ids = {tuple(r[1:]): r[0] for r in (await conn.execute(stmt, params)).all()}
    for row in rows:
        row["id"] = ids[tuple(row[k] for k in key)]


async def seed_demo_orders(
    sessionmaker: async_sessionmaker[AsyncSession], *, seed: int = 7, now: datetime | None = None
) -> DemoSummary:
    """Seed the demo shop (see the module docstring) and say what to try."""
    anchor = demo_anchor(now)
    planner = _Planner(seed, anchor)
    planner.build()
    stock = planner.inventory()
    added: dict[str, int] = defaultdict(int)

    async with sessionmaker() as session:
        conn = await session.connection()
        # warehouses and catalogue
        have_wh = await _existing(session, col(Warehouse.code), [w[0] for w in _WAREHOUSES])
        new_wh = [
            _new(Warehouse, code=c, name=n, address=dict(addr), is_default=d)
            for c, n, addr, d in _WAREHOUSES
            if c not in have_wh
        ]
        have_sku = await _existing(session, col(ProductVariant.sku), [v.sku for v in _VARIANTS])
        new_variants = [
            _new(
                ProductVariant, sku=v.sku, product_key=v.product.key, product_title=v.product.title,
                variant_title=v.variant_title, product_type=v.product.product_type, price=v.price, currency="USD",
                final_sale=v.product.final_sale,
            )
            for v in _VARIANTS
            if v.sku not in have_sku
        ]
        # customers: those with an order
        used = {o.customer_key for o in planner.orders if o.customer_key}
        people = [p for p in planner.people if p.key in used]
        have_cust = await _existing(session, col(Customer.external_id), [p.key for p in people])
        new_customers = []
        for p in people:
            if p.key in have_cust:
                continue
            since = (p.since or anchor) - timedelta(days=3, hours=2)
            new_customers.append(
                _new(Customer, external_id=p.key, email=p.email, phone=p.phone, first_name=p.first,
                     last_name=p.last, locale=p.locale, created_at=since, updated_at=since)
            )
        await _insert(conn, Warehouse, new_wh)
        await _insert(conn, ProductVariant, new_variants)
        await _insert(conn, Customer, new_customers)
        added["warehouses"] += len(new_wh)
        added["product_variants"] += len(new_variants)
        added["customers"] += len(new_customers)

        keys = [p.key for p in people]
        customer_ids: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            customer_ids.update(
                (await session.exec(select(Customer.external_id, Customer.id).where(
                    col(Customer.external_id).in_(keys[start : start + 500])))).all()  # type: ignore[arg-type]
            )
        warehouse_ids: dict[str, int] = dict(
            (await session.exec(select(Warehouse.code, Warehouse.id).where(  # type: ignore[arg-type]
                col(Warehouse.code).in_([w[0] for w in _WAREHOUSES])))).all()
        )

        # orders not there yet, by (source, external id)
        have_orders = {
            (SourceChannel(src), ext)
            for src, ext in (await session.exec(select(Order.source, Order.external_id).where(
                col(Order.external_id).in_([o.row.external_id for o in planner.orders])))).all()
        }
        fresh = [o for o in planner.orders if (SourceChannel(o.row.source), o.row.external_id) not in have_orders]
        for o in fresh:
            o.row.customer_id = customer_ids.get(o.customer_key) if o.customer_key else None
        await _insert(conn, Order, [o.row for o in fresh], key=("external_id",))

        for o in fresh:
            for ln in o.lines:
                ln.order_id = o.row.id
            for s in o.shipments:
                s.row.order_id = o.row.id
            for r in o.returns:
                r.row.order_id = o.row.id
                r.row.customer_id = o.row.customer_id
        await _insert(conn, OrderLine, [ln for o in fresh for ln in o.lines], key=("order_id", "external_id"))
        await _insert(conn, Shipment, [s.row for o in fresh for s in o.shipments], key=("order_id", "external_id"))
        await _insert(conn, ReturnAuthorization, [r.row for o in fresh for r in o.returns], key=("rma_number",))

        ship_lines: list[_Row] = []
        events: list[_Row] = []
        return_lines: list[_Row] = []
        refunds: list[_Row] = []
        credits: list[_Row] = []
        for o in fresh:
            for s in o.shipments:
                for index, qty in s.items:
                    ship_lines.append(
                        _new(ShipmentLine, shipment_id=s.row.id, order_line_id=o.lines[index].id, quantity=qty)
                    )
                for ev in s.events:
                    ev.shipment_id = s.row.id
                    events.append(ev)
            for r in o.returns:
                for index, rl in r.lines:
                    rl.rma_id = r.row.id
                    rl.order_line_id = o.lines[index].id
                    return_lines.append(rl)
                if r.refund is not None:
                    r.refund.order_id = o.row.id
                    r.refund.rma_id = r.row.id
                    refunds.append(r.refund)
                if r.credit is not None:
                    r.credit.rma_id = r.row.id
                    r.credit.customer_id = o.row.customer_id
                    credits.append(r.credit)
            for rf in o.refunds:
                rf.order_id = o.row.id
                refunds.append(rf)
        await _insert(conn, ShipmentLine, ship_lines)
        await _insert(conn, TrackingEvent, events)
        await _insert(conn, ReturnLine, return_lines)
        await _insert(conn, Refund, refunds)
        await _insert(conn, StoreCredit, credits)

        # stock
        have_levels = set(
            (await session.exec(select(InventoryLevel.warehouse_id, InventoryLevel.sku).where(
                col(InventoryLevel.sku).in_([v.sku for v in _VARIANTS])))).all()
        )
        stamp = anchor - timedelta(hours=1)
        levels = [
            _new(InventoryLevel, warehouse_id=warehouse_ids[code], sku=sku, on_hand=on_hand, reserved=reserved,
                 safety_stock=safety, updated_at=stamp)
            for code, sku, on_hand, reserved, safety in stock
            if (warehouse_ids[code], sku) not in have_levels
        ]
        await _insert(conn, InventoryLevel, levels)
        await session.commit()

        for table, count in (
            ("orders", len(fresh)),
            ("order_lines", sum(len(o.lines) for o in fresh)),
            ("shipments", sum(len(o.shipments) for o in fresh)),
            ("shipment_lines", len(ship_lines)),
            ("tracking_events", len(events)),
            ("return_lines", len(return_lines)),
            ("returns", sum(len(o.returns) for o in fresh)),
            ("refunds", len(refunds)),
            ("store_credits", len(credits)),
            ("inventory_levels", len(levels)),
        ):
            added[table] += count
        total_orders = (await session.exec(select(sa.func.count()).select_from(Order))).one()
        total_customers = (await session.exec(select(sa.func.count()).select_from(Customer))).one()
        examples = await _examples(session)

    return DemoSummary(
        seed=seed,
        anchor=anchor,
        added=dict(sorted(added.items())),
        orders=int(total_orders),
        customers=int(total_customers),
        examples=examples,
    )


async def _examples(session: AsyncSession) -> tuple[DemoExample, ...]:
    """The showcase orders to list, read back from the database (so a re-run reports the truth)."""
    names = [name for name, _s, _d, listed in SHOWCASE if listed]
    rows = (
        await session.exec(
            select(Order).where(Order.source == SourceChannel.online_store, col(Order.name).in_(names))
        )
    ).all()
    by_name = {o.name: o for o in rows}
    out = []
    for name, scenario, description, listed in SHOWCASE:
        order = by_name.get(name)
        if not listed or order is None or not order.email:
            continue
        address = order.shipping_address or {}
        postal = str(address.get("zip") or order.shipping_postal_code or "")
        out.append(DemoExample(scenario, description, name, order.email, postal))
    return tuple(out)
