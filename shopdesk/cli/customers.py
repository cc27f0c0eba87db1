"""``shopdesk customers``: what the shop holds about a person (export) and erasing it (erase)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from shopdesk.cli.common import CliError, json_text, note, open_db, printable, run
from shopdesk.settings import Settings

app = typer.Typer(help="Customers' personal data: export it (access request) or erase it (right to erasure).",
                  no_args_is_help=True)


async def _export(settings: Settings, email: str) -> dict[str, Any]:
    from inbox.queries.customer_export import customer_export
    from shopbase.refusal import Refused
    from shopdesk.db import session_maker

    engine = await open_db(settings)
    try:
        async with session_maker(engine)() as session:
            try:
                return await customer_export(session, email, files_dir=settings.files_dir)
            except Refused as exc:
                raise CliError(exc.message, 2) from exc
    finally:
        await engine.dispose()


async def _erase(settings: Settings, email: str) -> dict[str, int]:
    from inbox.actions.customer_erase import customer_erase
    from shopbase.refusal import Refused
    from shopdesk.db import session_maker

    engine = await open_db(settings)
    try:
        async with session_maker(engine)() as session:
            try:
                erasure = await customer_erase(session, email, files_dir=settings.files_dir, actor="cli")
            except Refused as exc:
                raise CliError(exc.message, 2) from exc
            await session.commit()  # the files go right after this commit
            return erasure.counts()
    finally:
        await engine.dispose()


@app.command("export")
def customers_export(
    email: str = typer.Argument(..., help="The customer's email address."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the JSON to this file (mode 600)."),
) -> None:
    """Print everything held about the customer as JSON: order store (customers, orders,
    returns, refunds, store credit), profile, notes, contacts, every conversation with its
    messages, ratings, audit entries (ids) and stored files."""
    document = run(lambda settings: _export(settings, email))
    text = json_text(document)
    if output is None:
        typer.echo(text)
        return
    import os

    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    note(f"wrote {printable(str(output))}")


@app.command("erase")
def customers_erase(
    email: str = typer.Argument(..., help="The customer's email address."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Erase every trace of the customer (cannot be undone): personal fields of customers and
    orders, contacts, message texts, outbox payloads, search index entries, profile, notes,
    audit details, and their files. Orders and conversations stay as anonymous rows."""
    if not yes:
        typer.confirm(f"Erase everything about {printable(email.strip())}? This cannot be undone", abort=True)
    counts = run(lambda settings: _erase(settings, email))
    typer.echo(" ".join(f"{key}={value}" for key, value in counts.items()))
