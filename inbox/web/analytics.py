"""The analytics page: ``GET /inbox/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD&channel=…`` and the
CSV of any of its tables, ``GET /inbox/analytics/export.csv?table=<key>&…``.

Every signed-in agent may read it (admins and agents alike: it changes nothing and shows no
customer's words). The numbers come from :func:`inbox.analytics.report.build_report` (SQL); this
module only checks the query, formats for the reader (``shopbase.formatting``) and draws the SVG
charts (:mod:`inbox.web.charts`). A bad period or filter answers 400 with the form and a plain
message, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from inbox.analytics.period import FILTERS, ReportQuery, parse_query
from inbox.analytics.report import TABLE_KEYS, Report, build_report, table_csv
from inbox.models import Channel
from inbox.web import charts
from inbox.web.admin import _page
from inbox.web.i18n import LABEL_CONTEXT, N_, translations_for
from inbox.web.rendering import error_response, reader_context
from inbox.web.state import STATE
from shopbase.clock import utcnow
from shopbase.formatting import format_duration, format_month_day, format_number, format_percent
from shopbase.refusal import Refused

__all__ = ["routes"]

_UNKNOWN_TABLE = N_("Unknown table. Choose one of the tables on the analytics page.")


def _query(request: web.Request, *, csv: bool = False) -> ReportQuery:
    params = {str(key)[:60]: str(value)[:60] for key, value in request.query.items() if not (csv and key == "table")}
    return parse_query(params, now=utcnow(), timezone=request.app[STATE].config.shop_timezone, allowed=FILTERS)


def _label(request: web.Request) -> Callable[[Any], str]:
    translations = translations_for(request)

    def label(value: Any) -> str:
        text = str(getattr(value, "value", value) or "").replace("_", " ").capitalize()
        return translations.pgettext(LABEL_CONTEXT, text) if text else text

    return label


def _charts(request: web.Request, report: Report) -> dict[str, charts.Chart]:
    locale = reader_context(request)["locale"]
    gettext = translations_for(request).gettext
    label = _label(request)

    def number(v: float) -> str:
        return format_number(round(v, 1) if v % 1 else int(v), locale)

    def percent(v: float) -> str:
        return format_percent(v, locale)

    def tip_number(day: str, name: str, v: float) -> str:
        return f"{day} · {name}: {number(v)}"

    def tip_percent(day: str, name: str, v: float) -> str:
        return f"{day} · {name}: {percent(v)}"

    t = report.tables
    days_table = t["conversations_by_day"]
    days = [format_month_day(r[0], locale) for r in days_table.rows]
    channel_cols = [(i, c) for i, c in enumerate(days_table.columns) if c.dynamic]
    out: dict[str, charts.Chart] = {
        "conversations_by_day": charts.stacked_bars(
            days, [(label(c.key), [float(r[i]) for r in days_table.rows]) for i, c in channel_cols], number,
            tip_number),
        "conversations_by_intent": charts.hbars(
            [(label(r[0]), float(r[1])) for r in t["conversations_by_intent"].rows if r[1]], number),
        "automation_by_intent": charts.hbars(
            [(label(r[0]), float(r[3])) for r in t["automation_by_intent"].rows if r[3] is not None], percent, top=1.0),
        "automation_by_day": charts.line_chart(
            days, [(gettext("Automation rate"), [r[3] for r in t["automation_by_day"].rows])], percent, tip_percent,
            top=1.0),
        "wismo_late": charts.line_chart(
            days, [(gettext("Where is my order?"), [float(r[1]) for r in t["wismo_late"].rows]),
                   (gettext("Late shipments"), [float(r[2]) for r in t["wismo_late"].rows])], number, tip_number),
        "csat_by_agent": charts.hbars(
            [(str(r[0]) if r[0] != "Bot" else gettext("Bot"), float(r[2])) for r in t["csat_by_agent"].rows
             if r[2] is not None], number, top=5.0),
        "return_reasons": charts.hbars([(label(r[0]), float(r[1])) for r in t["return_reasons"].rows], number),
        "response_times": charts.hbars(
            [(f"{gettext(r[0])} · {gettext('Median')}", float(r[2])) for r in t["response_times"].rows
             if r[2] is not None]
            + [(f"{gettext(r[0])} · {gettext('90th percentile')}", float(r[3])) for r in t["response_times"].rows
               if r[3] is not None],
            lambda v: format_duration(v, locale)),
    }
    return out


def _form(request: web.Request, query: ReportQuery | None) -> dict[str, str]:
    """The filter form's values: the checked query's, else what was typed (escaped in the page)."""
    if query is None:
        return {name: str(request.query.get(name, ""))[:20] for name in FILTERS}
    return {"from": query.period.first.isoformat(), "to": query.period.last.isoformat(),
            "channel": query.channel.value if query.channel else ""}


def _link_query(query: ReportQuery) -> str:
    from urllib.parse import urlencode

    params = {"from": query.period.first.isoformat(), "to": query.period.last.isoformat()}
    if query.channel is not None:
        params["channel"] = query.channel.value
    return urlencode(params)


async def analytics_page(request: web.Request) -> web.Response:
    base: dict[str, Any] = {"section": "analytics", "channels": [c.value for c in Channel], "report": None,
                            "charts": {}, "table_keys": TABLE_KEYS}
    try:
        query = _query(request)
    except Refused as exc:
        message = translations_for(request).gettext(exc.message)
        return await _page(request, "inbox/analytics.html",
                           {**base, "form": _form(request, None), "error": message}, status=400)
    async with request.app[STATE].sessions() as db:
        report = await build_report(db, query, utcnow())
    return await _page(request, "inbox/analytics.html",
                       {**base, "form": _form(request, query), "report": report, "charts": _charts(request, report),
                        "link_query": _link_query(query)})


async def analytics_csv(request: web.Request) -> web.StreamResponse:
    key = request.query.get("table", "")
    if key not in TABLE_KEYS:
        return error_response(request, 400, _UNKNOWN_TABLE)
    try:
        query = _query(request, csv=True)
    except Refused as exc:
        return error_response(request, 400, exc.message)
    async with request.app[STATE].sessions() as db:
        report = await build_report(db, query, utcnow())
    name = f"shopdesk-{key}-{query.period.first.isoformat()}-{query.period.last.isoformat()}.csv"
    return web.Response(text=table_csv(report.tables[key]), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/inbox/analytics", analytics_page, name="analytics"),
        web.get("/inbox/analytics/export.csv", analytics_csv, name="analytics_csv"),
    ]
