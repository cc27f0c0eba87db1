"""``shopdesk orders``: import and inspect orders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from shopdesk.cli.common import CliError, fail, json_text, open_db, printable, run
from shopdesk.settings import Settings

app = typer.Typer(help="The order store: import and inspect orders.", no_args_is_help=True)


@app.command("import")
def orders_import(
    path: Path = typer.Argument(..., help="Shopify order JSON, or a CSV of marketplace/POS orders."),
    source: str | None = typer.Option(
        None, help="Source channel for JSON orders, and for CSV rows without one (amazon, ebay, pos, …)."
    ),
) -> None:
    """Import orders (upsert: importing the same file twice changes nothing).

    Prints how many orders were created, updated, unchanged and rejected, with each
    rejection's reason. Exit status 1 when any order was rejected (the others are still
    imported) or the file cannot be read at all.
    """

    if source is not None:
        from ordersvc.models import SourceChannel

        choices = [s.value for s in SourceChannel]
        if source.strip().lower() not in choices:
            fail(f"--source {source!r} is not one of {', '.join(choices)}", 2)

    async def body(settings: Settings) -> Any:
        from ordersvc.importer import ImportError_, import_file
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            return await import_file(session_maker(engine), path, default_source=source, progress=True)
        except ImportError_ as exc:
            raise CliError(str(exc)) from exc
        finally:
            await engine.dispose()

    report = run(body)
    typer.echo(printable(report.summary()))
    if report.rejected:
        raise typer.Exit(1)


@app.command("show")
def orders_show(
    name_or_id: str = typer.Argument(..., help="Order name (#1001), external id or marketplace number."),
) -> None:
    """Print one order with its shipments and returns as JSON."""

    async def body(settings: Settings) -> dict[str, Any]:
        from ordersvc.serialize import order_document
        from ordersvc.service import find_order
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                order = await find_order(session, name_or_id)
                if order is None:
                    raise CliError(f"no order {name_or_id!r}")
                return await order_document(session, order)
        finally:
            await engine.dispose()

    typer.echo(json_text(run(body)))
