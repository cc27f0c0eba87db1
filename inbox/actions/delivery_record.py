"""Record a platform delivery id (a Slack ``event_id``, a button click) in the caller's
transaction, so a retried or replayed delivery is recognised and does nothing twice."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from shopbase.dedupe import DuplicateDelivery, claim_delivery

__all__ = ["DuplicateDelivery", "delivery_record"]


async def delivery_record(session: AsyncSession, *, source: str, key: str, topic: str = "") -> None:
    """Claim the delivery id; :class:`DuplicateDelivery` (after rolling back) when it was seen.

    Call it first in the transaction: on a duplicate the whole transaction is rolled back.
    """
    try:
        await claim_delivery(session, source, key, topic)
    except DuplicateDelivery:
        await session.rollback()
        raise
