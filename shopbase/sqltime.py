"""Time arithmetic and percentiles in SQL that give the same numbers on SQLite and PostgreSQL.

* :func:`epoch_seconds` — a timestamp column as seconds since 1970 (``julianday`` on SQLite,
  ``date_part('epoch', …)`` on PostgreSQL);
* :func:`seconds_between` — whole seconds from one timestamp to another (rounded);
* :func:`local_day` — the shop-local calendar day of a timestamp as a day number (days since
  1970-01-01), exact across daylight-saving changes: the caller passes the UTC offsets in force
  over the period (:func:`offset_schedule`), at most a few per year, as a ``CASE``;
* :func:`percentiles` — nearest-rank percentiles (p50, p90 …) of a column from a running
  ``sum(count)`` window over its distinct values (SQLite has no ``percentile_cont``): for n
  values the p-th percentile is the value at rank ``ceil(p·n/100)`` in ascending order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

__all__ = [
    "EPOCH_DAY",
    "epoch_seconds",
    "seconds_between",
    "local_day",
    "floor_days",
    "day_of",
    "offset_schedule",
    "percentiles",
]

EPOCH_DAY = date(1970, 1, 1)


class _EpochSeconds(FunctionElement[float]):
    type = sa.Float()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(_EpochSeconds)
def _epoch_default(element: Any, compiler: Any, **kw: Any) -> str:
    # date_part is double precision; EXTRACT returns numeric since PostgreSQL 14, slower to add up
    return f"date_part('epoch', {compiler.process(list(element.clauses)[0], **kw)})"


@compiles(_EpochSeconds, "sqlite")
def _epoch_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(list(element.clauses)[0], **kw)}) - 2440587.5) * 86400.0)"


class _FloorInt(FunctionElement[int]):
    type = sa.Integer()
    inherit_cache = True
    name = "floor_int"


@compiles(_FloorInt)
def _floor_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(list(element.clauses)[0], **kw)}) AS INTEGER)"


@compiles(_FloorInt, "sqlite")
def _floor_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    # SQLite's CAST truncates toward zero; every value here is a positive number of days
    return f"CAST(({compiler.process(list(element.clauses)[0], **kw)}) AS INTEGER)"


def epoch_seconds(value: Any) -> Any:
    """``value`` (a timestamp column) as (fractional) seconds since 1970-01-01 UTC."""
    return _EpochSeconds(value)


def seconds_between(start: Any, end: Any) -> Any:
    """Whole seconds from ``start`` to ``end`` (rounded; NULL when either is NULL)."""
    return sa.cast(sa.func.round(epoch_seconds(end) - epoch_seconds(start)), sa.Integer)


def offset_schedule(tz: tzinfo, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """The UTC offsets (seconds) of ``tz`` over [since, until): ``[(from_utc, offset), …]``, the
    first from ``since``. Found day by day, then to the minute by bisection."""
    def offset(at: datetime) -> int:
        found = at.astimezone(tz).utcoffset()
        return int(found.total_seconds()) if found is not None else 0

    since, until = since.astimezone(UTC), until.astimezone(UTC)
    schedule = [(since, offset(since))]
    current = since
    while current < until:
        step = min(current + timedelta(days=1), until)
        if offset(step) != schedule[-1][1]:
            low, high = current, step  # offset(low) is the old one, offset(high) the new one
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == schedule[-1][1] else (low, middle)
            schedule.append((high.replace(second=0, microsecond=0), offset(step)))
        current = step
    return schedule


def floor_days(seconds: Any) -> Any:
    """Whole days in a (positive) number of seconds since 1970: the UTC day number."""
    return _FloorInt(seconds / 86400.0)


def local_day(value: Any, schedule: Sequence[tuple[datetime, int]]) -> Any:
    """The local calendar day of ``value`` as days since 1970-01-01 (see :func:`day_of`), with
    the offsets of :func:`offset_schedule`."""
    if len(schedule) == 1:
        shift: Any = sa.literal(schedule[0][1])
    else:
        shift = sa.case(*[(value >= start, sa.literal(off)) for start, off in reversed(schedule[1:])],
                        else_=sa.literal(schedule[0][1]))
    return floor_days(epoch_seconds(value) + shift)


def day_of(number: int) -> date:
    """The date of a :func:`local_day` number."""
    return EPOCH_DAY + timedelta(days=int(number))


def percentiles(values: Any, value: str, ranks: Sequence[int], group: Sequence[str] = ()) -> Any:
    """``SELECT <group…>, count, mean, p<rank>…`` over the rows of the subquery ``values`` whose
    column ``value`` (an integer) is not NULL: nearest-rank percentiles (the value at rank
    ceil(rank·n/100)) and the average, per ``group`` columns (none: one row).

    Rows are first counted per distinct value (GROUP BY), then a running ``sum(count)`` window
    over those few rows gives each value's cumulative rank: the p-th percentile is the smallest
    value whose cumulative count ``cum`` satisfies ``cum·100 ≥ n·p`` (integer arithmetic, exact).
    Grouping first keeps the window small; SQLite's window over every row was the slow part."""
    column = values.c[value]
    keys = [values.c[name] for name in group]
    counted = (sa.select(*keys, column.label("v"), sa.func.count().label("c"))
               .where(column.is_not(None)).group_by(*keys, column).subquery())
    inner_keys = [counted.c[name] for name in group]
    ranked = (
        sa.select(*inner_keys, counted.c.v, counted.c.c,
                  sa.func.sum(counted.c.c).over(partition_by=inner_keys or None, order_by=counted.c.v).label("cum"),
                  sa.func.sum(counted.c.c).over(partition_by=inner_keys or None).label("n"))
        .subquery()
    )
    outer_keys = [ranked.c[name] for name in group]
    picks = [sa.func.min(sa.case((ranked.c.cum * 100 >= ranked.c.n * rank, ranked.c.v))).label(f"p{rank}")
             for rank in ranks]
    total = sa.func.sum(ranked.c.c)
    mean = sa.cast(sa.func.sum(ranked.c.v * ranked.c.c), sa.Float) / sa.func.nullif(total, 0)
    stmt = sa.select(*outer_keys, sa.func.coalesce(total, 0).label("count"), mean.label("mean"), *picks)
    if outer_keys:
        stmt = stmt.group_by(*outer_keys).order_by(*outer_keys)
    return stmt
