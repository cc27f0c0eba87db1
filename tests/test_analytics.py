"""Analytics (issue 15 items 1, 2): every KPI against the hand-made dataset of
``tests/analytics_data.py``, on SQLite and PostgreSQL; the period checks; CSV; local days
across a daylight-saving change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from analytics_data import FIRST, LAST, NOW, seed

from inbox.analytics import metrics
from inbox.analytics.period import parse_query
from inbox.analytics.report import build_report, report_json, table_csv
from inbox.models import Channel, Contact, Conversation
from ordersvc import shipping_insight
from shopbase.refusal import Refused
from shopbase.sqltime import offset_schedule


def query(**params: str) -> Any:
    return parse_query({"from": FIRST, "to": LAST, **params}, now=NOW, timezone="UTC")


@pytest.fixture
async def data(sessions: Any) -> dict[str, int]:
    async with sessions() as session:
        ids = await seed(session)
        await session.commit()
    return ids


async def test_conversation_counts_by_day_channel_and_intent(sessions: Any, data: Any) -> None:
    q = query()
    async with sessions() as s:
        assert await metrics.conversations_by_day(s, q) == [
            (date(2026, 11, 1), "telegram", 1), (date(2026, 11, 1), "webchat", 1),
            (date(2026, 11, 2), "webchat", 1),
            (date(2026, 11, 3), "telegram", 1), (date(2026, 11, 3), "webchat", 1),
            (date(2026, 11, 5), "webchat", 1),
        ]
        assert await metrics.conversations_by_intent(s, q, q.period) == {"track_order": 3, "start_return": 2,
                                                                          "unknown": 1}
        assert await metrics.conversations_by_intent(s, q, q.period.previous()) == {"track_order": 2}
        telegram = query(channel="telegram")
        assert await metrics.conversations_by_intent(s, telegram, telegram.period) == {"track_order": 1, "unknown": 1}


async def test_automation_rate_per_intent_and_day(sessions: Any, data: Any) -> None:
    q = query()
    async with sessions() as s:
        rows = {r.intent: (r.conversations, r.automated) for r in await metrics.automation_by_intent(s, q, q.period)}
        assert rows == {"track_order": (3, 1), "start_return": (2, 1), "unknown": (1, 0)}
        before = await metrics.automation_by_intent(s, q, q.period.previous())
        assert [(r.intent, r.conversations, r.automated, r.rate) for r in before] == [("track_order", 2, 1, 0.5)]
        assert await metrics.automation_by_day(s, q) == [
            (date(2026, 11, 1), 2, 1), (date(2026, 11, 2), 1, 0), (date(2026, 11, 3), 2, 0), (date(2026, 11, 5), 1, 1)]


async def test_response_time_percentiles(sessions: Any, data: Any) -> None:
    q = query()
    async with sessions() as s:
        first = await metrics.first_response(s, q, q.period)
        assert (first.count, first.p50, first.p90, first.mean) == (2, 120, 300, 210.0)
        resolved = await metrics.resolution(s, q, q.period)  # 300, 600, 1200, 3600, 7200
        assert (resolved.count, resolved.p50, resolved.p90, resolved.mean) == (5, 1200, 7200, 2580.0)
        before = await metrics.first_response(s, q, q.period.previous())
        assert (before.count, before.p50, before.p90) == (1, 600, 600)
        telegram = query(channel="telegram")
        only = await metrics.resolution(s, telegram, telegram.period)
        assert (only.count, only.p50, only.p90) == (1, 3600, 3600)
        empty = query(channel="slack")
        none = await metrics.first_response(s, empty, empty.period)
        assert (none.count, none.p50, none.p90, none.mean) == (0, None, None, None)


async def test_csat_per_agent_and_intent(sessions: Any, data: Any) -> None:
    q = query()
    async with sessions() as s:
        agents = [(r.name or r.key, r.counts, r.mean, r.satisfied) for r in await metrics.csat_by_agent(s, q, q.period)]
        assert agents == [("Alice", (0, 0, 1, 1, 0), 3.5, 0.5), ("Bảo", (0, 1, 0, 0, 0), 2.0, 0.0),
                          ("bot", (0, 0, 0, 0, 1), 5.0, 1.0)]
        intents = [(r.key, r.counts, r.satisfied) for r in await metrics.csat_by_intent(s, q, q.period)]
        assert intents == [("track_order", (0, 1, 0, 1, 1), 2 / 3), ("start_return", (0, 0, 1, 0, 0), 0.0)]
        by_intent = {r.key: r.mean for r in await metrics.csat_by_intent(s, q, q.period)}
        assert by_intent["track_order"] == pytest.approx(11 / 3)


async def test_wismo_and_late_shipments(sessions: Any, data: Any) -> None:
    q = query()
    async with sessions() as s:
        assert await metrics.wismo_by_day(s, q) == {date(2026, 11, 1): 2, date(2026, 11, 3): 1}
        late = await shipping_insight.late_shipments_by_day(s, q.period.since, q.period.until, NOW,
                                                            metrics.schedule_of(q.period))
        assert late == {(date(2026, 11, 1) - date(1970, 1, 1)).days: 1, (date(2026, 11, 3) - date(1970, 1, 1)).days: 1}


async def test_processing_time_on_time_rate_and_return_reasons(sessions: Any, data: Any) -> None:
    q = query()
    async with sessions() as s:
        proc = await shipping_insight.processing(s, q.period.since, q.period.until, NOW)
        assert (proc.shipped, proc.p50_seconds, proc.p90_seconds, proc.mean_seconds) == (3, 172800, 342000, 200400.0)
        assert (proc.due, proc.on_time, proc.on_time_rate) == (4, 2, 0.5)
        calendar = await shipping_insight.processing(s, q.period.since, q.period.until, NOW,
                                                     {"handling_days": 1, "business_days_only": False})
        # o1 by Tue 10:00 (shipped Tue 10:00: on time), o2 by Sat (shipped Tue: late), o3 late, o4 late
        assert (calendar.due, calendar.on_time) == (4, 1)
        assert await shipping_insight.reason_totals(s, q.period.since, q.period.until) == [
            ("too_small", 2, 1), ("damaged", 1, 1)]


async def test_the_whole_report_and_its_csv(sessions: Any, data: Any) -> None:
    async with sessions() as s:
        report = await build_report(s, query(), NOW)
    kpis = {row[0]: row[1:4] for row in report.kpis.rows}
    assert kpis["Conversations"] == [6, 2, 4]
    assert kpis["Bot automation rate"][:2] == [pytest.approx(2 / 6), 0.5]
    assert kpis["Median first response"] == [120, 600, -480]
    assert kpis["Average rating"] == [3.5, 1.0, 2.5]
    assert kpis["On-time shipping rate"][0] == 0.5
    assert kpis["Orders shipped"] == [3, 0, 3]
    rates = report.tables["return_rates"].rows
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in rates] == [("MUG", 1, 1, 1.0, "damaged"),
                                                              ("TEE-M", 5, 2, 0.4, "too_small")]
    days = report.tables["conversations_by_day"]
    assert [c.key for c in days.columns] == ["day", "telegram", "webchat", "total"]
    assert len(days.rows) == 10 and days.rows[0] == [date(2026, 11, 1), 1, 1, 2] and days.rows[3][-1] == 0
    text = table_csv(days)
    assert text.splitlines()[:2] == ["day,telegram,webchat,total", "2026-11-01,1,1,2"]
    wismo = table_csv(report.tables["wismo_late"]).splitlines()
    assert wismo[1] == "2026-11-01,2,1" and wismo[3] == "2026-11-03,1,1"
    document = report_json(report)
    assert document["previous_from"] == "2026-10-22" and document["tables"]["kpis"]["rows"][0][1] == 6


def test_csv_cells_never_run_as_formulas() -> None:
    from inbox.analytics.report import Column, Table

    table = Table("t", "T", [Column("name", "Name", "text"), Column("n", "N")], [["=HYPERLINK(1)", -3], ["@x", 2]])
    lines = table_csv(table).splitlines()
    assert lines[1] == "'=HYPERLINK(1),-3" and lines[2] == "'@x,2"


@pytest.mark.parametrize(("params", "code"), [
    ({"from": "2026-11-10", "to": "2026-11-01"}, "range_reversed"),
    ({"from": "2026-11-01", "to": "2026-11-21"}, "range_future"),
    ({"from": "2026-12-01"}, "range_future"),
    ({"from": "2016-11-01", "to": "2026-11-01"}, "range_too_long"),
    ({"from": "2026-13-01", "to": "2026-11-01"}, "bad_date"),
    ({"from": "yesterday"}, "bad_date"),
    ({"to": "2026-11-01T00:00"}, "bad_date"),
    ({"channel": "fax"}, "unknown_channel"),
    ({"status": "open"}, "unknown_filter"),
    ({"from": "1999-12-31", "to": "2000-01-01"}, "range_too_old"),
])
def test_bad_periods_and_filters_are_refused(params: dict[str, str], code: str) -> None:
    with pytest.raises(Refused) as caught:
        parse_query(params, now=NOW, timezone="UTC")
    assert caught.value.code == code and caught.value.status == 400


def test_defaults_and_the_previous_period() -> None:
    q = parse_query({}, now=NOW, timezone="UTC")
    assert (q.period.first, q.period.last, q.channel) == (date(2026, 10, 22), date(2026, 11, 20), None)
    before = parse_query({"from": "2026-11-01", "to": "2026-11-10", "channel": "all"}, now=NOW, timezone="UTC")
    assert (before.period.previous().first, before.period.previous().last) == (date(2026, 10, 22), date(2026, 10, 31))
    year = parse_query({"from": "2025-11-20", "to": "2026-11-20"}, now=NOW, timezone="UTC")
    assert year.period.days == 366
    with pytest.raises(Refused):
        parse_query({"from": "2025-11-19", "to": "2026-11-20"}, now=NOW, timezone="UTC")


def test_offset_schedule_finds_the_daylight_saving_change() -> None:
    tz = ZoneInfo("America/New_York")
    since, until = datetime(2026, 10, 30, 4, tzinfo=UTC), datetime(2026, 11, 5, 5, tzinfo=UTC)
    assert offset_schedule(tz, since, until) == [(since, -4 * 3600), (datetime(2026, 11, 1, 6, tzinfo=UTC), -5 * 3600)]


async def test_local_days_across_a_daylight_saving_change(sessions: Any) -> None:
    # New York leaves summer time on 2026-11-01 at 06:00 UTC
    times = [datetime(2026, 11, 1, 3, 30, tzinfo=UTC),  # 23:30 Oct 31 EDT: before the period
             datetime(2026, 11, 1, 4, 30, tzinfo=UTC),  # 00:30 Nov 1 EDT
             datetime(2026, 11, 2, 4, 30, tzinfo=UTC),  # 23:30 Nov 1 EST
             datetime(2026, 11, 2, 5, 30, tzinfo=UTC)]  # 00:30 Nov 2 EST
    async with sessions() as s:
        for n, opened in enumerate(times):
            contact = Contact(channel=Channel.webchat, external_id=f"dst-{n}")
            s.add(contact)
            await s.flush()
            s.add(Conversation(contact_id=contact.id, channel=Channel.webchat, created_at=opened))
        await s.commit()
        q = parse_query({"from": "2026-11-01", "to": "2026-11-02"}, now=NOW, timezone="America/New_York")
        assert await metrics.conversations_by_day(s, q) == [(date(2026, 11, 1), "webchat", 2),
                                                            (date(2026, 11, 2), "webchat", 1)]


def test_the_bench_pages_ask_for_valid_periods() -> None:
    from urllib.parse import parse_qsl, urlsplit

    from tests.bench.pages import analytics_pages

    for url in analytics_pages(NOW.date()):
        query = parse_query(dict(parse_qsl(urlsplit(url).query)), now=NOW, timezone="UTC")
        assert query.period.last == NOW.date() and query.period.days in (7, 30, 90, 180, 365)
