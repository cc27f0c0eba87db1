"""Database lookups shared by the API's views."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.api.http import shorten
from ordersvc.models import Order, OrderLine
from ordersvc.service import ReturnBundle, find_order
from shopbase.refusal import Refused


async def order_or_404(session: AsyncSession, request: web.Request) -> Order:
    ref = request.match_info["ref"]
    order = await find_order(session, ref)
    if order is None:
        raise Refused("order_not_found", f"no order '{shorten(ref)}'", status=404)
    return order


async def orders_by_id(session: AsyncSession, ids: set[int]) -> dict[int, Order]:
    if not ids:
        return {}
    rows = (await session.exec(select(Order).where(col(Order.id).in_(ids)))).all()
    return {o.id: o for o in rows if o.id is not None}


async def lines_by_id(session: AsyncSession, bundles: list[ReturnBundle]) -> dict[int, OrderLine]:
    ids = {rl.order_line_id for b in bundles for rl in b.lines}
    if not ids:
        return {}
    rows = (await session.exec(select(OrderLine).where(col(OrderLine.id).in_(ids)))).all()
    return {ln.id: ln for ln in rows if ln.id is not None}
