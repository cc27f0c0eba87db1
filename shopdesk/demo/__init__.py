"""``shopdesk demo``: a deterministic demo shop: customers, catalogue, stock, 300+ orders with shipments and returns.

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

Modules: ``rows`` (constants and row dicts), ``catalog``, ``customers``, ``carriers``
(tracking numbers and scan histories), ``planner`` (orders, shipments, returns in memory),
``scenarios`` (what the shop contains), ``seed`` (writing it) and ``desk`` (agents, canned
responses, labels and ``seed_demo``, the entry point of ``shopdesk demo``).
"""

from __future__ import annotations

from shopdesk.demo.desk import DEMO_ADMIN, DEMO_AGENT, seed_demo
from shopdesk.demo.rows import DEMO_LOCALES, demo_anchor
from shopdesk.demo.seed import seed_demo_orders
from shopdesk.demo.summary import SHOWCASE, DemoExample, DemoSummary

__all__ = [
    "seed_demo",
    "DEMO_ADMIN",
    "DEMO_AGENT",
    "DemoExample",
    "DemoSummary",
    "DEMO_LOCALES",
    "SHOWCASE",
    "demo_anchor",
    "seed_demo_orders",
]
