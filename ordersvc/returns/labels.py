"""Simulated prepaid return labels: tracking numbers with a correct check digit."""

from __future__ import annotations

from datetime import datetime

from ordersvc.models import ReturnAuthorization, RmaStatus
from ordersvc.returns.policy import LabelAccount, ReturnPolicy
from ordersvc.tracking import Carrier
from ordersvc.tracking.checksums import gs1_mod10_check_digit, ups_check_digit


def issue_tracking_number(rma_id: int, account: LabelAccount) -> tuple[str, str]:
    """``(carrier, tracking_number)`` of a simulated prepaid label for RMA ``rma_id``.

    UPS: ``1Z`` + shipper number + service ``90`` + 7-digit package id + check digit.
    USPS: IMpb ``94`` + service ``055`` + 9-digit mailer id + 7-digit serial + check.
    """
    serial = f"{rma_id % 10_000_000:07d}"
    if account.carrier == "usps":
        payload = f"94055{account.usps_mailer_id}{serial}"
        return Carrier.USPS.value, f"{payload}{gs1_mod10_check_digit(payload)}"
    body = f"{account.ups_shipper_number}90{serial}"
    return Carrier.UPS.value, f"1Z{body}{ups_check_digit(body)}"


def apply_label(rma: ReturnAuthorization, policy: ReturnPolicy, now: datetime) -> None:
    if not rma.label_tracking_number:
        assert rma.id is not None
        rma.label_carrier, rma.label_tracking_number = issue_tracking_number(rma.id, policy.label)
    rma.status = RmaStatus.label_issued
    rma.label_issued_at = now
