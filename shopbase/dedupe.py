"""Platform-delivery dedupe: one row per delivery id a platform sends (a Shopify webhook id,
a Slack event id), written in the same transaction as the delivery's effect, so a retried
delivery is recognised and acknowledged without doing anything twice."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shopbase.clock import utcnow

__all__ = ["WebhookDelivery", "DuplicateDelivery", "claim_delivery"]


class WebhookDelivery(SQLModel, table=True):
    """One row per platform delivery id, so a retried webhook is recognised and acknowledged."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (sa.UniqueConstraint("source", "delivery_id", name="uq_webhook_delivery"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    delivery_id: str = Field(max_length=128)
    topic: str = Field(default="", max_length=64)
    received_at: datetime = Field(default_factory=utcnow)


class DuplicateDelivery(Exception):
    """This delivery id was claimed before: the delivery was handled already."""


async def claim_delivery(session: AsyncSession, source: str, delivery_id: str, topic: str = "") -> None:
    """Add the delivery's row to the caller's transaction and flush it.

    Raises :class:`DuplicateDelivery` when the id was seen before; the caller's transaction
    is then spoiled and must be rolled back (leaving an ``async with session.begin()`` block
    with the exception does that). ``delivery_id`` and ``topic`` are cut to the column sizes.
    """
    session.add(WebhookDelivery(source=source[:32], delivery_id=delivery_id[:128], topic=topic[:64]))
    try:
        await session.flush()
    except IntegrityError:
        raise DuplicateDelivery(f"{source} delivery {delivery_id[:128]!r} was handled already") from None
