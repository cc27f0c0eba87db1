"""``shopdesk db``: the database schema."""

from __future__ import annotations

import typer

from shopbase.formatting import format_number
from shopdesk.cli.common import CliError, error_line, open_db, run, working
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


@app.command("copy")
def db_copy(
    to: str = typer.Option(..., "--to", help="The target database URL, e.g. postgresql+asyncpg://user:pass@host/db (must be empty)."),
) -> None:
    """Copy this shop's whole database (SHOPDESK_DATABASE_URL) into an empty one, e.g. from SQLite
    to PostgreSQL. Stop the server first; copy the data directory's files along."""

    async def body(settings: Settings) -> dict[str, int]:
        from shopdesk.db import create_engine, migrate
        from shopdesk.dbcopy import CopyRefused, copy_database, same_database

        try:
            same = same_database(settings.database_url, to)
        except Exception as exc:
            raise CliError(f"--to is not a database URL: {error_line(exc)}", 2) from exc
        if same:
            raise CliError("--to is the database the shop already uses", 2)
        source = await open_db(settings)
        try:
            target = create_engine(to)
            try:
                with working("migrating the target database…"):
                    await migrate(target)
            except Exception as exc:
                await target.dispose()
                raise CliError(f"cannot open the target database: {error_line(exc)}") from exc
            try:
                with working("copying…"):
                    return await copy_database(source, target)
            except CopyRefused as exc:
                raise CliError(str(exc), 2) from exc
            finally:
                await target.dispose()
        finally:
            await source.dispose()

    copied = run(body)
    for name, n in copied.items():
        if n:
            typer.echo(f"{name:24} {format_number(n, 'en'):>10}")
    typer.echo(f"copied {format_number(sum(copied.values()), 'en')} rows in {len(copied)} tables; "
               "point SHOPDESK_DATABASE_URL at the new database and copy the data directory along")
