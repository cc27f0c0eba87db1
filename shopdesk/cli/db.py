"""``shopdesk db``: the database schema."""

from __future__ import annotations

import typer

from shopdesk.cli.common import open_db, run, working
from shopdesk.settings import Settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the database migrations (every other command does this too)."""

    async def body(settings: Settings) -> str | None:
        from shopdesk.db import current_revision, migrate

        engine = await open_db(settings, migrate=False)
        try:
            with working("migrating the database…"):
                await migrate(engine, revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    typer.echo(f"database at revision {run(body)}")


@app.command("current")
def db_current() -> None:
    """Show the database's migration revision."""

    async def body(settings: Settings) -> str | None:
        from shopdesk.db import current_revision

        engine = await open_db(settings, migrate=False)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    typer.echo(run(body) or "(empty database)")
