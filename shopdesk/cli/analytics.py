"""``shopdesk analytics``: the analytics rollup (``conversation_daily`` / ``response_daily``).

``shopdesk analytics rebuild [--timezone ZONE]`` recounts it from the conversations in the shop's
zone (``SHOPDESK_SHOP_TIMEZONE``, or ``--timezone``); the server does the same at start when the
zone changed. ``shopdesk analytics check`` compares it with a fresh count and exits 1 on any
difference (there should never be one: triggers keep it in every writing transaction).
"""

from __future__ import annotations

import typer

from shopbase.refusal import Refused
from shopdesk.cli.common import CliError, open_db, run
from shopdesk.settings import Settings

app = typer.Typer(help="The analytics rollup: rebuild it for the shop's time zone, or check it.", no_args_is_help=True)


async def _rebuild(settings: Settings, timezone: str | None) -> tuple[str, int]:
    from inbox.actions.analytics_rebuild import analytics_rebuild
    from shopdesk.db import session_maker

    zone = timezone or settings.shop_timezone
    engine = await open_db(settings)
    try:
        async with session_maker(engine)() as session:
            try:
                rows = await analytics_rebuild(session, zone, actor="cli")
            except Refused as exc:
                raise CliError(exc.message, 2) from exc
            await session.commit()
            return zone, rows
    finally:
        await engine.dispose()


async def _check(settings: Settings) -> tuple[str | None, str, int, int]:
    from inbox.analytics.rollup import fresh_counts, fresh_responses, rollup_counts, rollup_responses, rollup_zone
    from shopdesk.db import session_maker

    engine = await open_db(settings)
    try:
        async with session_maker(engine)() as session:
            zone = await rollup_zone(session)
            counts, fresh = await rollup_counts(session), await fresh_counts(session)
            times, fresh_times = await rollup_responses(session), await fresh_responses(session)
    finally:
        await engine.dispose()
    wrong = sum(1 for k in set(counts) | set(fresh) if counts.get(k) != fresh.get(k))
    wrong_times = sum(1 for k in set(times) | set(fresh_times) if times.get(k) != fresh_times.get(k))
    return zone, settings.shop_timezone, wrong, wrong_times


@app.command("rebuild")
def analytics_rebuild_cmd(
    timezone: str | None = typer.Option(None, "--timezone", help="IANA zone (default: SHOPDESK_SHOP_TIMEZONE)."),
) -> None:
    """Recount the rollup from the conversations, in the shop's time zone."""
    zone, rows = run(lambda settings: _rebuild(settings, timezone))
    typer.echo(f"analytics rollup rebuilt in {zone}: {rows} day × channel × intent rows")


@app.command("check")
def analytics_check_cmd() -> None:
    """Compare the rollup with a fresh count from the conversations (exit 1 on a difference)."""
    zone, settings_zone, wrong, wrong_times = run(_check)
    typer.echo(f"counting days in: {zone or '(no rollup)'} (shop: {settings_zone})")
    typer.echo(f"conversation counts differing: {wrong}; response-time counts differing: {wrong_times}")
    if wrong or wrong_times or zone != settings_zone:
        raise typer.Exit(1)
