"""What the demo seeder reports: the showcase orders and the summary printed for a newcomer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
