"""Record a platform delivery id (a Slack ``event_id``, a button click) in the caller's
transaction, so a retried or replayed delivery is recognised and does nothing twice."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import WebhookDelivery

__all__ = ["DuplicateDelivery", "delivery_record"]


class DuplicateDelivery(Exception):
    """This delivery was handled already (the caller's transaction has been rolled back)."""


async def delivery_record(session: AsyncSession, *, source: str, key: str, topic: str = "") -> None:
    """Add the delivery row; :class:`DuplicateDelivery` when it exists already.

    Call it first in the transaction: on a duplicate the whole transaction is rolled back.
    """
    session.add(WebhookDelivery(source=source[:32], delivery_id=key[:128], topic=topic[:64]))
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise DuplicateDelivery(key) from None
