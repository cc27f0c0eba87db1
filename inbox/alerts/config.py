"""The alert rules a merchant can switch and tune: names, defaults, parameter checks.

Every rule is on by default with the parameters below; ``AlertRule`` rows (written only by the
``alert_rules_save`` action, from the admin page) override them. A stored value that no longer
passes its check falls back to the default (logged once per load), so a bad row never stops the
other rules.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import AlertRule
from inbox.web.i18n import N_

__all__ = ["RULES", "RULE_TITLES", "AlertConfig", "RuleConfig", "check_params", "load_config"]

log = logging.getLogger(__name__)


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EscalationParams(_Params):
    pass


class SlaParams(_Params):
    """The targets live in the SLA policy (``inbox.sla``, /inbox/admin/sla)."""


class ShipmentParams(_Params):
    #: only shipments that shipped (or were created) within this many days are watched
    lookback_days: int = Field(30, ge=1, le=365)


class ReturnSpikeParams(_Params):
    #: ≥ reason_count units returned for the same reason within reason_days …
    reason_count: int = Field(3, ge=1, le=100_000)
    reason_days: int = Field(7, ge=1, le=90)
    #: … or a 30-day return rate ≥ rate_factor × the product's own 90-day rate (with ≥ min_returns in 30 days)
    rate_factor: Decimal = Field(Decimal("2"), ge=Decimal("1"), le=Decimal("100"), decimal_places=2)
    min_returns: int = Field(3, ge=1, le=100_000)


class LowStockParams(_Params):
    pass


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class DigestParams(_Params):
    #: the shop's local time of day ("HH:MM", 24-hour) after which the day's digest goes out
    at: str = "09:00"

    @field_validator("at")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        value = value.strip()
        if not _HHMM.match(value):
            raise ValueError("must be a time such as 09:00")
        return value

    @property
    def time(self) -> time:
        hour, minute = self.at.split(":")
        return time(int(hour), int(minute))


RULES: dict[str, type[_Params]] = {
    "escalation": EscalationParams,
    "sla_breach": SlaParams,
    "shipment": ShipmentParams,
    "return_spike": ReturnSpikeParams,
    "low_stock": LowStockParams,
    "daily_digest": DigestParams,
}

#: English msgids of the agents' catalogs (the admin page translates them)
RULE_TITLES: dict[str, str] = {
    "escalation": N_("Escalation created"),
    "sla_breach": N_("SLA breached (first or next response overdue)"),
    "shipment": N_("Shipment late or in exception"),
    "return_spike": N_("Return-reason spike for a product"),
    "low_stock": N_("Low stock (per SKU and location)"),
    "daily_digest": N_("Daily digest"),
}


@dataclass(frozen=True)
class RuleConfig:
    enabled: bool
    params: Any


@dataclass(frozen=True)
class AlertConfig:
    rules: dict[str, RuleConfig]

    @classmethod
    def defaults(cls) -> AlertConfig:
        return cls({name: RuleConfig(True, model()) for name, model in RULES.items()})

    def on(self, rule: str) -> bool:
        return self.rules[rule].enabled

    def params(self, rule: str) -> Any:
        return self.rules[rule].params


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def check_params(rule: str, raw: dict[str, Any]) -> _Params:
    """The rule's parameters from ``raw`` (form strings or stored JSON); ``ValueError`` names the field."""
    model = RULES.get(rule)
    if model is None:
        raise ValueError(f"unknown rule {rule!r}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(_first_error(exc)) from None


async def load_config(session: AsyncSession) -> AlertConfig:
    config = dict(AlertConfig.defaults().rules)
    for row in (await session.exec(select(AlertRule))).all():
        if row.rule not in RULES:
            continue
        try:
            params = check_params(row.rule, dict(row.params or {}))
        except ValueError as exc:
            log.warning("alert rule %s: stored parameters are invalid (%s); using the defaults", row.rule, exc)
            params = RULES[row.rule]()
        config[row.rule] = RuleConfig(bool(row.enabled), params)
    return AlertConfig(config)
