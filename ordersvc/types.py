"""Column types used by the order store (they live in :mod:`shopbase.coltypes`)."""

from __future__ import annotations

from shopbase.coltypes import JSONType, MoneyType, to_money

__all__ = ["MoneyType", "JSONType", "to_money"]
