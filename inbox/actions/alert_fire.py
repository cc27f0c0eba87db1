"""Store alert findings, each at most once per (rule, subject, window), and announce the new ones.

The unique key of ``fired_alert`` decides (``INSERT … ON CONFLICT DO NOTHING``, on SQLite and
PostgreSQL alike), so two evaluators racing, or the same evaluation run twice, fire nothing twice.
Each new row collects an ``alert`` event: the Slack feed turns it into a durable outbox notice in
this same transaction, and the agents' pages hear about it after the commit. The caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.events import Event, EventType, collect
from inbox.models import FiredAlert

if TYPE_CHECKING:
    from inbox.alerts.rules import Finding

__all__ = ["alert_fire", "fired_count"]


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(FiredAlert)


async def alert_fire(session: AsyncSession, findings: Sequence[Finding], *, now: datetime) -> list[int]:
    """Insert the findings not fired before; returns the ids of the new ``FiredAlert`` rows."""
    fired: list[int] = []
    for finding in findings:
        stmt = (
            _insert(session)
            .values(rule=finding.rule[:32], subject=finding.subject[:128], window=finding.window[:64],
                    conversation_id=finding.conversation_id, detail=dict(finding.detail), created_at=now)
            .on_conflict_do_nothing(index_elements=["rule", "subject", "window"])
            .returning(col(FiredAlert.id))
        )
        alert_id = (await session.exec(stmt)).scalar()
        if alert_id is None:
            continue
        fired.append(int(alert_id))
        collect(session, Event(EventType.alert.value, finding.conversation_id,
                               {"kind": finding.kind, "rule": finding.rule, "alert_id": int(alert_id),
                                **finding.detail}))
    return fired


async def fired_count(session: AsyncSession) -> int:
    count = sa.select(sa.func.count()).select_from(FiredAlert)
    return int((await session.exec(count)).scalar() or 0)  # type: ignore[call-overload]  # a Core select
