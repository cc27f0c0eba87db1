"""Kept only so that migrations written before :mod:`shopbase.coltypes` existed still import
(``0001_initial`` names ``ordersvc.types.MoneyType``). New code imports shopbase.coltypes."""

from __future__ import annotations

from shopbase.coltypes import MoneyType

__all__ = ["MoneyType"]
