"""Forgetting customers' texts held in memory when a customer is erased.

The bot keeps a few bounded caches keyed by what customers typed, because short texts come back
again and again: the understanding of texts up to 48 characters (``bot.understand_many``), the
split of a message into requests (``bot.dialog.requests``) and the folded form of short answers
(``bot.dialog.choices``). They are never logged or stored, but a text in them may name the
person ("it's anna@example.com", an address line), so an erasure must empty them too, in every
server process, whichever process erased (the Shopify ``customers/redact`` webhook in one of
them, or ``shopdesk customers erase`` from the command line, another process).

Every erasure writes one ``customer.erased`` audit row in its transaction. :class:`ErasureWatch`
reads the newest such row's id every :data:`WATCH_SECONDS` (an index lookup on
``ix_audit_event_action_created``) and empties the caches when it moved: a customer's texts
leave each process's memory within that time of the erasure's commit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col

from bot import understand_many
from bot.dialog import choices, requests
from inbox.actions.customer_erase import ERASED_ACTION
from inbox.models import AuditEvent

__all__ = ["ERASED_ACTION", "WATCH_SECONDS", "ErasureWatch", "forget_customer_texts"]

log = logging.getLogger(__name__)

#: how often each process looks for a new erasure
WATCH_SECONDS = 15.0


def forget_customer_texts() -> None:
    """Empty every in-memory cache keyed by customers' texts."""
    understand_many.clear_cache()
    requests.clear_cache()
    choices.clear_text_cache()


_NEWEST = sa.select(sa.func.max(col(AuditEvent.id))).where(col(AuditEvent.action) == ERASED_ACTION)


class ErasureWatch:
    """Empties the text caches (:func:`forget_customer_texts`) after every erasure committed by
    any process on the database. ``check()`` looks once; ``run()`` looks every ``interval``."""

    def __init__(self, sessions: async_sessionmaker[Any], *, interval: float = WATCH_SECONDS) -> None:
        self.sessions = sessions
        self.interval = interval
        self._seen: int | None = None

    async def check(self) -> bool:
        """True when the newest erasure is another than at the last look (the caches were
        emptied; at the first look, when any erasure was ever committed: the caches of a process
        that just started are empty anyway)."""
        async with self.sessions() as session:
            connection = await session.connection()
            newest = (await connection.execute(_NEWEST)).scalar()
        if newest == self._seen:
            return False
        self._seen = newest
        forget_customer_texts()
        log.info("a customer was erased: the bot's caches of customers' texts were emptied")
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                # the next look will do; the caches stay bounded meanwhile
                log.warning("erasure watch: the audit log could not be read", exc_info=True)
            await asyncio.sleep(self.interval)
