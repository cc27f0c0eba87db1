"""Returns: the merchant's policy, eligibility per order line, RMAs and their lifecycle.

Policy decisions worth knowing:

* **Window.** ``window_days`` is counted in whole UTC calendar days from delivery: an item
  delivered on 1 May with a 30-day window can be returned until 31 May 23:59:59 UTC and
  not on 1 June. A shipment without a delivery time is *presumed* delivered
  ``presumed_delivery_days`` (default 7) after ``shipped_at`` — unless its tracking shows
  a problem (exception, failed attempt, waiting at a pickup point), in which case it is
  not delivered. Point-of-sale orders without shipments count as delivered when placed.
* **Which shipment.** When ``ShipmentLine`` rows say which shipment carried a line, only
  the delivered units of that line can be returned and its window starts at the latest
  of those deliveries. Without them every shipment of the order must be delivered and
  the window starts at the last delivery.
* **Money.** refund = Σ(unit price × qty − the line discount's share for qty) − restocking
  fee − return shipping fee, rounded to the currency's minor unit. The restocking fee and
  the return shipping fee are waived when any returned item's reason is a shop fault
  (``shop_fault_reasons``: damaged, defective, wrong item, not as described); the shipping
  fee applies to mailed returns only. Store credit = refund × (1 + bonus %). An exchange
  moves no money; price differences between variants are not charged. Taxes and the
  original shipping are not part of the refund.
* **Labels.** Return labels are simulated: the tracking number is a valid UPS ``1Z`` or
  USPS IMpb number built from the shop's account number in the policy and the RMA id, with
  a correct check digit, so carriers' and our own parsers recognise it.
* **Restocking.** When a return is received, items whose condition is in
  ``restock_conditions`` and whose reason is not damaged/defective go back to stock.

Every write function changes rows in the caller's session and never commits. A refusal is a
:class:`shopbase.refusal.Refused` (``code``, ``message``, ``status``): nothing was written. Any
other exception means the caller must roll back. ``check_transition`` returns ``None`` or
raises ``Refused``; ``line_eligibility``/``order_eligibility`` report per line what can be
returned (data, not a refusal), and ``create_rma`` refuses with those reasons.

Modules: ``policy`` (the model and its storage), ``eligibility`` (which lines can be returned),
``rma`` (creating a return), ``labels`` (simulated prepaid labels), ``lifecycle`` (status
transitions and their effects) and ``refunds`` (the customer's refunds and credits). This
package re-exports their public names.
"""

from __future__ import annotations

from ordersvc.returns.eligibility import (
    OVERRIDABLE,
    LineEligibility,
    exchange_options,
    line_eligibility,
    order_eligibility,
)
from ordersvc.returns.labels import issue_tracking_number
from ordersvc.returns.lifecycle import ALLOWED_TRANSITIONS, check_transition, load_rma_lines, transition
from ordersvc.returns.policy import (
    DEFAULT_RETURN_POLICY,
    POLICY_SETTING_KEY,
    LabelAccount,
    MethodOptions,
    ProductTypeRule,
    ResolutionOptions,
    ReturnPolicy,
    load_policy,
    save_policy,
)
from ordersvc.returns.refunds import MoneyMovement, refunds_and_credits
from ordersvc.returns.rma import (
    AmountExplanation,
    NewRma,
    ReturnItem,
    RmaProblem,
    compute_amounts,
    create_rma,
    explain_amounts,
)

__all__ = [
    "POLICY_SETTING_KEY",
    "ProductTypeRule",
    "ResolutionOptions",
    "MethodOptions",
    "LabelAccount",
    "ReturnPolicy",
    "DEFAULT_RETURN_POLICY",
    "load_policy",
    "save_policy",
    "LineEligibility",
    "line_eligibility",
    "order_eligibility",
    "exchange_options",
    "compute_amounts",
    "explain_amounts",
    "AmountExplanation",
    "OVERRIDABLE",
    "ReturnItem",
    "RmaProblem",
    "NewRma",
    "create_rma",
    "ALLOWED_TRANSITIONS",
    "check_transition",
    "transition",
    "load_rma_lines",
    "MoneyMovement",
    "refunds_and_credits",
    "issue_tracking_number",
]
