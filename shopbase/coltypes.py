"""Portable column types: exact money, JSON (JSONB on PostgreSQL) and enums stored by value."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

__all__ = ["MoneyType", "JSONType", "to_money", "enum_column"]

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def to_money(value: Any) -> Decimal:
    """Parse a money amount as Shopify sends it ("404.95", 404.95 or 404) into a Decimal.

    Floats go through ``str`` first so that 0.1 stays 0.1; anything that is not a finite
    number raises ``ValueError`` with a readable message.
    """
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, bool):
        raise ValueError(f"not a money amount: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except Exception as exc:  # decimal.InvalidOperation and friends
        raise ValueError(f"not a money amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not a money amount: {value!r}")
    return amount


class MoneyType(sa.types.TypeDecorator[Decimal]):
    """Exact decimal money on both databases.

    PostgreSQL stores ``numeric(18, 4)``. SQLite has no exact decimal type, so the value is
    kept as canonical text (``SUM`` in SQLite still converts it numerically) and always
    comes back as a ``Decimal``, never a float.
    """

    impl = sa.Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.Numeric(18, 4, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = to_money(value)
        if dialect.name == "sqlite":
            return format(amount.quantize(Decimal("0.0001")), "f")
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        amount = Decimal(str(value))
        cents = amount.quantize(Decimal("0.01"))
        return cents if cents == amount else amount.normalize()


def enum_column(enum_cls: type[enum.Enum], length: int = 24) -> Any:
    """A portable column type storing an Enum by its value (``'in_transit'``)."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )
