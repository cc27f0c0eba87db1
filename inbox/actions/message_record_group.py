"""Group commit for :func:`inbox.actions.message_record.message_record` (the server turns it on
for SQLite: :func:`record_in_groups`).

Customer messages that arrive together (widget frames, webhook requests on the same loop turn)
are recorded in ONE transaction: each is written exactly as ``message_record`` writes it alone,
one after the other in arrival order, then one commit stores them all, and only then does any of
their callers return (a webhook still answers after its message is committed, so a crash loses
nothing that was acknowledged). On SQLite every transaction is a write of the WAL and goes
through the one connection anyway; one commit for a group saves a commit and a transaction's
set-up per message.

When anything in a group fails (a repeated delivery or a lost race refused by a unique index, a
busy database, a bug), nothing of the group is kept and each message is recorded on its own,
with ``message_record``'s retries and duplicate handling, so every caller gets what it would have
got without the group.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.message_record import GROUPS, InboundBatch, RecordResult, _Inbound, _record, record_alone
from shopbase import stagetrace
from shopbase.clock import utcnow

__all__ = ["RecordGroup", "record_in_groups"]

log = logging.getLogger(__name__)


@dataclass
class _Waiting:
    clean: _Inbound
    reopen_days: int
    now: datetime | None
    done: asyncio.Future[RecordResult]


class RecordGroup:
    """Records the messages handed in on one loop turn (at most ``limit``) in one transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, limit: int = 64) -> None:
        self.sessions = sessions
        self.limit = max(1, limit)
        self._waiting: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, clean: _Inbound, *, reopen_days: int, now: datetime | None) -> RecordResult:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[RecordResult] = loop.create_future()
        self._waiting.append(_Waiting(clean, reopen_days, now, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(), name="inbound-record-group")
        # no shield (it cost a loop turn per message): a caller that goes away cancels only its own
        # future; the flusher task commits the group all the same and skips futures already done
        return await done

    async def _flush(self) -> None:
        try:
            await self._flush_all()
        except BaseException:
            waiting, self._waiting = self._waiting, []
            for w in waiting:  # stopped (the server shuts down): nothing of theirs was committed
                if not w.done.done():
                    w.done.set_exception(RuntimeError("the server stopped before the message was recorded"))
            raise

    async def _flush_all(self) -> None:
        # no extra loop turn first: this task was created by the first caller, so every caller that
        # ran on that loop turn (frames and webhooks read together) has handed its message in
        while self._waiting:
            group: list[_Waiting] = []
            results: list[RecordResult] | None = None
            error: Exception | None = None
            try:
                async with self.sessions() as session:
                    # the connection first, then the group: SQLite's one connection is often busy
                    # (a worker's batch, a flush of "sent" marks), and the messages that arrive while
                    # this waits for it join this group instead of forming the next ones
                    await session.connection()
                    group, self._waiting = self._waiting[:self.limit], self._waiting[self.limit:]
                    if len(group) > 1:
                        results = await self._together(session, group)
            except Exception as exc:
                error = exc
            if not group:  # no connection: each message goes alone (its retries, its clear error)
                group, self._waiting = self._waiting[:self.limit], self._waiting[self.limit:]
            if len(group) == 1:
                await self._alone(group[0])
                continue
            if results is None:
                log.info("recording a group of %d messages failed (%s); recording them one at a time",
                         len(group), type(error).__name__)
                await asyncio.gather(*(self._alone(w) for w in group))
                continue
            if stagetrace.ENABLED:
                stagetrace.mark_many("committed", (r.message_id for r in results))
            for waiting, result in zip(group, results, strict=True):
                if not waiting.done.done():
                    waiting.done.set_result(result)

    async def _together(self, session: AsyncSession, group: list[_Waiting]) -> list[RecordResult]:
        """The common-case messages (``InboundBatch``) are written together; any other one is
        written as alone, after those that came before it. Commits ``session``."""
        results: list[RecordResult | None] = []
        batch = InboundBatch()
        await batch.read_ahead(session, [w.clean for w in group])  # one read for the group
        for w in group:
            now = w.now or utcnow()
            if await batch.take(session, w.clean, now):
                results.append(None)
                continue
            await batch.write(session)
            batch.forget()  # the general path may open or reopen a conversation: read again
            results.append(await _record(session, w.clean, reopen_days=w.reopen_days, now=now,
                                         duplicates_first=False))
        await batch.write(session)
        await session.commit()
        return [r if r is not None else batch.results[id(w.clean)] for w, r in zip(group, results, strict=True)]

    async def _alone(self, w: _Waiting) -> None:
        try:
            result = await record_alone(self.sessions, w.clean, reopen_days=w.reopen_days, now=w.now)
        except BaseException as exc:
            if not w.done.done():
                w.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("recording cancelled"))
            if not isinstance(exc, Exception):
                raise
        else:
            if not w.done.done():
                w.done.set_result(result)


def record_in_groups(sessions: async_sessionmaker[AsyncSession], *, limit: int = 64) -> RecordGroup:
    """Turn on group commit for ``message_record(sessions, ...)``."""
    group = RecordGroup(sessions, limit=limit)
    GROUPS[sessions] = group
    return group

