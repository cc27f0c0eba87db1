"""``shopdesk report``: the analytics page's KPIs for scripts and cron.

``shopdesk report --from 2026-11-01 --to 2026-11-30 [--channel telegram] [--json | --csv [--table KEY]]``

Plain text by default (the key numbers and each table, formatted in the shop's default language
and time zone); ``--json`` every table with raw values; ``--csv`` one table (``--table``, default
``kpis``) as the page's CSV download gives it. The period is checked like the page's: reversed,
in the future, longer than 366 days or an unknown channel is one ``error:`` line and exit 2.
"""

from __future__ import annotations

from typing import Any

import typer

from shopdesk.cli.common import CliError, fail, json_text, open_db, printable, run
from shopdesk.settings import Settings

_TABLE_HELP = "With --csv (or for the text): which table. One of: kpis, conversations_by_day, " \
              "conversations_by_intent, automation_by_intent, automation_by_day, response_times, csat_by_agent, " \
              "csat_by_intent, wismo_late, return_reasons, return_rates."


async def _report(settings: Settings, params: dict[str, str]) -> Any:
    from inbox.analytics.period import parse_query
    from inbox.analytics.report import build_report
    from shopbase.clock import utcnow
    from shopbase.refusal import Refused
    from shopdesk.db import session_maker

    now = utcnow()
    try:
        query = parse_query(params, now=now, timezone=settings.shop_timezone)
    except Refused as exc:
        raise CliError(exc.message, 2) from exc
    engine = await open_db(settings)
    try:
        async with session_maker(engine)() as session:
            return await build_report(session, query, now)
    finally:
        await engine.dispose()


def _text(report: Any, language: str, keys: list[str]) -> str:
    from shopbase.formatting import format_date, format_duration, format_number, format_percent

    def value(v: Any, kind: str) -> str:
        if v is None:
            return "—"
        if kind in ("date",):
            return format_date(v, language)
        if kind == "rate":
            return format_percent(v, language)
        if kind == "seconds":
            return format_duration(v, language)
        if kind in ("int", "number"):
            return format_number(round(v, 3) if isinstance(v, float) else v, language)
        return printable(str(v))

    period = report.query.period
    lines = [f"{format_date(period.first, language)} – {format_date(period.last, language)} "
             f"(previous: {format_date(report.previous.first, language)} – {format_date(report.previous.last, language)})"
             + (f", channel {report.query.channel.value}" if report.query.channel else "")]
    for key in keys:
        table = report.tables[key]
        lines += ["", table.title]
        if key == "kpis":
            for name, now, before, change, unit in table.rows:
                kind = {"rate": "rate", "seconds": "seconds"}.get(unit, "number")
                lines.append(f"  {name}: {value(now, kind)} (previous {value(before, kind)}, change "
                             f"{value(change, kind)})")
            continue
        lines.append("  " + "\t".join(c.title for c in table.columns))
        for row in table.rows:
            lines.append("  " + "\t".join(value(v, c.kind) for v, c in zip(row, table.columns)))
    return "\n".join(lines)


def report_cmd(
    date_from: str = typer.Option("", "--from", help="First day (YYYY-MM-DD, shop time zone); default: 29 days before --to."),
    date_to: str = typer.Option("", "--to", help="Last day, included (YYYY-MM-DD); default: today."),
    channel: str = typer.Option("", "--channel", help="Only conversations on this channel: webchat, telegram, slack, terminal."),
    as_json: bool = typer.Option(False, "--json", help="Every table as JSON (raw values)."),
    as_csv: bool = typer.Option(False, "--csv", help="One table (--table) as CSV."),
    table: str = typer.Option("", "--table", help=_TABLE_HELP),
) -> None:
    """Print the analytics KPIs of a period and the period before (conversations, bot automation,
    response times, satisfaction, WISMO and late shipments, returns, order processing)."""
    from inbox.analytics.report import TABLE_KEYS, report_json, table_csv

    if as_json and as_csv:
        fail("choose one of --json and --csv", 2)
    if table and table not in TABLE_KEYS:
        fail(f"unknown table {table!r}; one of: {', '.join(TABLE_KEYS)}", 2)
    params = {k: v for k, v in (("from", date_from), ("to", date_to), ("channel", channel)) if v}
    settings_holder: list[Settings] = []

    async def body(settings: Settings) -> Any:
        settings_holder.append(settings)
        return await _report(settings, params)

    report = run(body)
    if as_json:
        typer.echo(json_text(report_json(report)))
    elif as_csv:
        typer.echo(table_csv(report.tables[table or "kpis"]), nl=False)
    else:
        keys = [table] if table else list(TABLE_KEYS)
        typer.echo(_text(report, settings_holder[0].default_language, keys))
