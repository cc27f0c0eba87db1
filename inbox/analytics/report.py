"""One report for the page, the CSV downloads and ``shopdesk report``: every KPI of the period
and of the period before, as named tables (machine values; the page formats them for the reader
with ``shopbase.formatting``, the CSV keeps them raw: ISO dates, seconds, rates from 0 to 1)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.analytics import metrics
from inbox.analytics.period import Period, ReportQuery
from ordersvc import shipping_insight
from ordersvc.insight import product_returns
from ordersvc.service import shipping_policy

__all__ = ["Column", "Table", "Report", "build_report", "table_csv", "report_json", "TABLE_KEYS"]


def N_(message: str) -> str:  # marks a msgid for extraction; translated where shown
    return message


@dataclass(frozen=True)
class Column:
    key: str
    title: str  # an English msgid
    #: text | msgid (our own English words, translated) | label (a stored value, |humanize) | agent
    #: (a name, or "Bot") | date | int | rate | seconds | number
    kind: str = "int"
    dynamic: bool = False  # the title is a stored value (a channel) or a digit, not a msgid


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class Report:
    query: ReportQuery
    previous: Period
    generated_at: datetime
    kpis: Table
    tables: dict[str, Table]


TABLE_KEYS = ("kpis", "conversations_by_day", "conversations_by_intent", "automation_by_intent",
              "automation_by_day", "response_times", "csat_by_agent", "csat_by_intent", "wismo_late",
              "return_reasons", "return_rates")


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _delta(now: float | int | None, before: float | int | None) -> float | int | None:
    return None if now is None or before is None else now - before


async def build_report(session: AsyncSession, query: ReportQuery, now: datetime) -> Report:
    period, previous = query.period, query.period.previous()
    days = period.day_list()
    # --- conversations
    cube, cube_before = await metrics.conversation_cubes(session, query)
    by_day = cube.by_day_channel()
    channels = sorted({c for _, c, _ in by_day})
    per_day: dict[Any, dict[str, int]] = {d: {} for d in days}
    for d, c, n in by_day:
        per_day.setdefault(d, {})[c] = n
    conv_day = Table("conversations_by_day", N_("Conversations per day by channel"),
                     [Column("day", N_("Day"), "date"), *[Column(c, c, "int", dynamic=True) for c in channels],
                      Column("total", N_("Total"))],
                     [[d, *[per_day[d].get(c, 0) for c in channels], sum(per_day[d].values())] for d in days])
    intents_now, intents_before = cube.by_intent(), cube_before.by_intent()
    conv_intent = Table("conversations_by_intent", N_("Conversations by intent"),
                        [Column("intent", N_("Intent"), "label"), Column("conversations", N_("Conversations")),
                         Column("previous", N_("Previous period")), Column("change", N_("Change"))],
                        [[i, intents_now.get(i, 0), intents_before.get(i, 0),
                          intents_now.get(i, 0) - intents_before.get(i, 0)]
                         for i in sorted(set(intents_now) | set(intents_before),
                                         key=lambda k: (-intents_now.get(k, 0), k))])
    # --- automation
    auto_now = cube.automation_by_intent()
    auto_before = {r.intent: r for r in cube_before.automation_by_intent()}
    auto_intent = Table("automation_by_intent", N_("Bot automation rate by intent"),
                        [Column("intent", N_("Intent"), "label"), Column("conversations", N_("Conversations")),
                         Column("automated", N_("Resolved by the bot alone")), Column("rate", N_("Automation rate"), "rate"),
                         Column("previous_rate", N_("Previous period"), "rate"), Column("change", N_("Change"), "rate")])
    for r in auto_now:
        before = auto_before.get(r.intent)
        before_rate = before.rate if before else None
        auto_intent.rows.append([r.intent, r.conversations, r.automated, r.rate, before_rate, _delta(r.rate, before_rate)])
    daily = {d: (n, a) for d, n, a in cube.automation_by_day()}
    auto_day = Table("automation_by_day", N_("Bot automation rate per day"),
                     [Column("day", N_("Day"), "date"), Column("conversations", N_("Conversations")),
                      Column("automated", N_("Resolved by the bot alone")), Column("rate", N_("Automation rate"), "rate")],
                     [[d, daily.get(d, (0, 0))[0], daily.get(d, (0, 0))[1], _rate(daily.get(d, (0, 0))[1], daily.get(d, (0, 0))[0])]
                      for d in days])
    # --- response times
    times = Table("response_times", N_("Response times"),
                  [Column("measure", N_("Measure"), "msgid"), Column("count", N_("Conversations")),
                   Column("p50", N_("Median"), "seconds"), Column("p90", N_("90th percentile"), "seconds"),
                   Column("mean", N_("Average"), "seconds"), Column("previous_p50", N_("Previous median"), "seconds"),
                   Column("previous_p90", N_("Previous 90th percentile"), "seconds")])
    found = await metrics.response_durations(session, query)
    durations = {}
    for name, measure in ((N_("First response"), "first_response"), (N_("Resolution"), "resolution")):
        cur, before_d = found[(measure, "current")], found[(measure, "previous")]
        durations[name] = (cur, before_d)
        times.rows.append([name, cur.count, cur.p50, cur.p90, cur.mean, before_d.p50, before_d.p90])
    # --- CSAT
    csat_cols = [Column("ratings", N_("Ratings")), Column("mean", N_("Average rating"), "number"),
                 Column("satisfied", N_("Satisfied (4–5)"), "rate"),
                 *[Column(f"r{k}", str(k), dynamic=True) for k in range(1, 6)]]
    csat_agent = Table("csat_by_agent", N_("Satisfaction by agent"), [Column("agent", N_("Agent"), "agent"), *csat_cols])
    for row_c in await metrics.csat_by_agent(session, query, period):
        csat_agent.rows.append([row_c.name or ("Bot" if row_c.key == "bot" else f"#{row_c.key}"), row_c.count, row_c.mean, row_c.satisfied, *row_c.counts])
    csat_intent = Table("csat_by_intent", N_("Satisfaction by intent"), [Column("intent", N_("Intent"), "label"), *csat_cols])
    csat_now_by_intent = await metrics.csat_by_intent(session, query, period)
    for row_c in csat_now_by_intent:
        csat_intent.rows.append([row_c.key, row_c.count, row_c.mean, row_c.satisfied, *row_c.counts])
    # --- WISMO against late shipments
    wismo = cube.intent_by_day(metrics.WISMO_INTENT)
    late = await shipping_insight.late_shipments_by_day(session, period.since, period.until, now,
                                                        metrics.schedule_of(period))
    from shopbase.sqltime import day_of
    late_by_date = {day_of(k): v for k, v in late.items()}
    wismo_late = Table("wismo_late", N_("“Where is my order?” conversations and late shipments"),
                       [Column("day", N_("Day"), "date"), Column("wismo", N_("Where is my order?")),
                        Column("late", N_("Late shipments"))],
                       [[d, wismo.get(d, 0), late_by_date.get(d, 0)] for d in days])
    # --- returns
    reasons = Table("return_reasons", N_("Top return reasons"),
                    [Column("reason", N_("Reason"), "label"), Column("units", N_("Units returned")),
                     Column("returns", N_("Return lines"))],
                    [[r, u, n] for r, u, n in await shipping_insight.reason_totals(session, period.since, period.until)])
    rates = Table("return_rates", N_("Return rate by product"),
                  [Column("product", N_("Product"), "text"), Column("sku", N_("Product key"), "text"),
                   Column("sold", N_("Units sold")), Column("returned", N_("Units returned")),
                   Column("rate", N_("Return rate"), "rate"), Column("top_reason", N_("Top reason"), "label")],
                  [[p.title, p.product_key, p.sold, p.returned, None if p.rate is None else float(p.rate),
                    p.reasons[0][0] if p.reasons else None]
                   for p in (await product_returns(session, period.since, period.until))[:20]])
    # --- orders and the headline numbers
    policy = await shipping_policy(session)
    proc = await shipping_insight.processing(session, period.since, period.until, now, policy)
    proc_before = await shipping_insight.processing(session, previous.since, previous.until, now, policy)
    total_now, total_before = sum(intents_now.values()), sum(intents_before.values())
    automated_now = sum(r.automated for r in auto_now)
    automated_before = sum(r.automated for r in auto_before.values())
    first_now, first_before = durations["First response"]
    csat_all = csat_now_by_intent
    csat_prev = await metrics.csat_by_intent(session, query, previous)

    def csat_mean(rows: list[metrics.CsatRow]) -> float | None:
        count = sum(r.count for r in rows)
        return sum(k * sum(r.counts[k - 1] for r in rows) for k in range(1, 6)) / count if count else None

    kpis = Table("kpis", N_("Key numbers"),
                 [Column("kpi", N_("Measure"), "msgid"), Column("value", N_("This period"), "number"),
                  Column("previous", N_("Previous period"), "number"), Column("change", N_("Change"), "number"),
                  Column("unit", N_("Unit"), "text")])
    for name, unit, cur_v, before_v in (
        (N_("Conversations"), "count", total_now, total_before),
        (N_("Bot automation rate"), "rate", _rate(automated_now, total_now), _rate(automated_before, total_before)),
        (N_("Median first response"), "seconds", first_now.p50, first_before.p50),
        (N_("Average rating"), "rating", csat_mean(csat_all), csat_mean(csat_prev)),
        (N_("Median order processing time"), "seconds", proc.p50_seconds, proc_before.p50_seconds),
        (N_("On-time shipping rate"), "rate", proc.on_time_rate, proc_before.on_time_rate),
        (N_("Orders shipped"), "count", proc.shipped, proc_before.shipped),
    ):
        kpis.rows.append([name, cur_v, before_v, _delta(cur_v, before_v), unit])
    tables = {t.key: t for t in (kpis, conv_day, conv_intent, auto_intent, auto_day, times, csat_agent, csat_intent,
                                 wismo_late, reasons, rates)}
    return Report(query=query, previous=previous, generated_at=now, kpis=kpis, tables=tables)


def _raw(value: Any) -> Any:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float):
        return repr(round(value, 6))
    return value


def table_csv(table: Table) -> str:
    """The table as CSV: a header of column keys, then raw values. Cells that a spreadsheet would
    run as a formula (=, +, -, @ first) get a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in table.columns])
    for row in table.rows:
        cells = []
        for value in row:
            cell = _raw(value)
            if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _numeric(cell):
                cell = "'" + cell
            cells.append(cell)
        writer.writerow(cells)
    return out.getvalue()


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def report_json(report: Report) -> dict[str, Any]:
    period = report.query.period
    return {
        "from": period.first.isoformat(), "to": period.last.isoformat(),
        "previous_from": report.previous.first.isoformat(), "previous_to": report.previous.last.isoformat(),
        "channel": report.query.channel.value if report.query.channel else None,
        "timezone": str(period.tz), "generated_at": report.generated_at.isoformat(),
        "tables": {key: {"title": t.title, "columns": [c.key for c in t.columns],
                         "rows": [[_raw(v) if hasattr(v, "isoformat") else v for v in row] for row in t.rows]}
                   for key, t in report.tables.items()},
    }
