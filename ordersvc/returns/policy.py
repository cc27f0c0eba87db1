"""The merchant's return policy: the ``ReturnPolicy`` model and its storage in ``ShopSetting('returns')``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import ItemCondition, Resolution, ReturnMethod, ReturnReason, ShopSetting
from ordersvc.settings_read import stored_setting
from shopbase.clock import utcnow
from shopbase.refusal import Refused

POLICY_SETTING_KEY = "returns"

_ANY_CONDITION = list(ItemCondition)
_AS_NEW = [ItemCondition.unopened, ItemCondition.like_new]
_SHOP_FAULT = [
    ReturnReason.damaged,
    ReturnReason.defective,
    ReturnReason.wrong_item,
    ReturnReason.not_as_described,
]


class ProductTypeRule(BaseModel):
    """Overrides for one product type (matched case-insensitively)."""

    model_config = ConfigDict(extra="forbid")

    window_days: int | None = Field(default=None, ge=0, le=3650)
    returnable: bool = True


class ResolutionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refund: bool = True
    store_credit: bool = True
    store_credit_bonus_percent: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    exchange: bool = True


class MethodOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mail: bool = True
    dropoff: bool = False
    dropoff_locations: str = Field(default="", max_length=2000)
    in_store: bool = False
    in_store_locations: str = Field(default="", max_length=2000)


class LabelAccount(BaseModel):
    """The shop's carrier account used for prepaid return labels."""

    model_config = ConfigDict(extra="forbid")

    carrier: Literal["ups", "usps"] = "ups"
    ups_shipper_number: str = Field(default="R7T4K9", pattern=r"^[0-9A-Z]{6}$")
    usps_mailer_id: str = Field(default="912345678", pattern=r"^9[0-9]{8}$")


class ReturnPolicy(BaseModel):
    """The merchant's return rules, stored as JSON in ``ShopSetting('returns')``."""

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(default=30, ge=0, le=3650)
    presumed_delivery_days: int = Field(default=7, ge=0, le=365)
    product_types: dict[str, ProductTypeRule] = Field(default_factory=dict)
    final_sale_excluded: bool = True
    # reasons missing from the mapping accept any condition
    allowed_conditions: dict[ReturnReason, list[ItemCondition]] = Field(
        default_factory=lambda: {
            ReturnReason.changed_mind: list(_AS_NEW),
            ReturnReason.too_small: list(_AS_NEW),
            ReturnReason.too_large: list(_AS_NEW),
            ReturnReason.other: list(_AS_NEW),
            ReturnReason.damaged: list(_ANY_CONDITION),
            ReturnReason.defective: list(_ANY_CONDITION),
            ReturnReason.wrong_item: list(_ANY_CONDITION),
            ReturnReason.not_as_described: list(_ANY_CONDITION),
        }
    )
    resolutions: ResolutionOptions = Field(default_factory=ResolutionOptions)
    methods: MethodOptions = Field(default_factory=MethodOptions)
    approval: Literal["automatic", "manual"] = "automatic"
    restocking_fee_percent: Decimal = Field(default=Decimal("0"), ge=0, le=100)
    return_shipping_fee: Decimal = Field(default=Decimal("0"), ge=0)
    shop_fault_reasons: list[ReturnReason] = Field(default_factory=lambda: list(_SHOP_FAULT))
    restock_conditions: list[ItemCondition] = Field(default_factory=lambda: list(_AS_NEW))
    label: LabelAccount = Field(default_factory=LabelAccount)

    @field_validator("product_types")
    @classmethod
    def _normalise_types(cls, value: dict[str, ProductTypeRule]) -> dict[str, ProductTypeRule]:
        return {key.strip().casefold(): rule for key, rule in value.items() if key.strip()}

    def rule_for(self, product_type: str | None) -> ProductTypeRule | None:
        if not product_type:
            return None
        return self.product_types.get(product_type.strip().casefold())

    def window_for(self, product_type: str | None) -> int:
        rule = self.rule_for(product_type)
        if rule is not None and rule.window_days is not None:
            return rule.window_days
        return self.window_days

    def accepts_condition(self, reason: ReturnReason, condition: ItemCondition) -> bool:
        allowed = self.allowed_conditions.get(reason)
        return allowed is None or condition in allowed

    def allows_resolution(self, resolution: Resolution) -> bool:
        return bool(getattr(self.resolutions, resolution.value))

    def allows_method(self, method: ReturnMethod) -> bool:
        return bool(getattr(self.methods, method.value))


DEFAULT_RETURN_POLICY = ReturnPolicy()


async def load_policy(session: AsyncSession) -> ReturnPolicy:
    """The stored policy, or ``DEFAULT_RETURN_POLICY`` when none was saved.

    A stored value that no longer validates raises ``ValueError``: silently falling back
    to the defaults could be more generous than the merchant's rules.
    """
    return policy_from_stored(await stored_setting(session, POLICY_SETTING_KEY))


def policy_from_stored(value: Any) -> ReturnPolicy:
    """The policy of a stored value (``stored_setting``), as :func:`load_policy` gives it."""
    if not value:
        return DEFAULT_RETURN_POLICY.model_copy(deep=True)
    try:
        return ReturnPolicy.model_validate(value)
    except ValidationError as exc:
        raise ValueError(f"the stored return policy is invalid: {exc}") from exc


async def save_policy(session: AsyncSession, policy: ReturnPolicy) -> None:
    """Store ``policy`` (validated again) under ``ShopSetting('returns')``.

    A policy that no longer validates (changed after it was built) is refused
    (``invalid_policy``, 422, ``fields`` by setting) and nothing is stored.
    """
    try:
        value = ReturnPolicy.model_validate(policy.model_dump()).model_dump(mode="json")
    except ValidationError as exc:
        fields = {".".join(str(p) for p in err["loc"]) or "policy": err["msg"] for err in exc.errors()[:10]}
        message = "; ".join(f"{where}: {problem}" for where, problem in fields.items())
        raise Refused("invalid_policy", message, status=422, fields=fields) from None
    row = await session.get(ShopSetting, POLICY_SETTING_KEY)
    if row is None:
        row = ShopSetting(key=POLICY_SETTING_KEY, value=value)
    else:
        row.value = value
        row.updated_at = utcnow()
    session.add(row)
    await session.flush()
