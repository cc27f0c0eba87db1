"""``shopdesk``: the one command line. Every sub-command has ``--help``.

Errors are one line on stderr and a non-zero exit: 2 for a bad setting or usage, 1 for
anything else. Commands are thin: they parse arguments, open the database and call the
same functions the web app uses.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from shopdesk.settings import Settings, SettingsError, describe, load_settings

__all__ = ["main", "app", "CliError"]

T = TypeVar("T")

app = typer.Typer(
    help="Shopdesk: self-hosted support desk for online shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
orders_app = typer.Typer(help="The order store: import and inspect orders.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for /api/v1.", no_args_is_help=True)
users_app = typer.Typer(help="Agents and admins of the web inbox.", no_args_is_help=True)
nlu_app = typer.Typer(help="Try and evaluate the bot's language understanding.", no_args_is_help=True)
telegram_app = typer.Typer(help="Connect the Telegram bot.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orders_app, name="orders")
app.add_typer(tokens_app, name="tokens")
app.add_typer(users_app, name="users")
app.add_typer(nlu_app, name="nlu")
app.add_typer(telegram_app, name="telegram")


class CliError(Exception):
    """A one-line error for the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
        settings.ensure_secret_key()
        return settings
    except SettingsError as exc:
        fail(str(exc), 2)
        raise  # unreachable


def run(coro_fn: Callable[[Settings], Awaitable[T]]) -> T:
    """Run an async command body with the settings; turn CliError into one line and an exit."""
    settings = settings_or_exit()
    try:
        return asyncio.run(coro_fn(settings))
    except CliError as exc:
        fail(str(exc), exc.code)
        raise
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def open_db(settings: Settings, migrate: bool = True) -> Any:
    from shopdesk.db import create_engine, migrate as do_migrate

    engine = create_engine(settings.database_url)
    try:
        if migrate:
            await do_migrate(engine)
    except Exception as exc:
        await engine.dispose()
        raise CliError(f"cannot open the database: {str(exc).splitlines()[0]}") from exc
    return engine


# --------------------------------------------------------------------------- config / db


@app.command("config")
def config_cmd() -> None:
    """Print the effective settings (secrets masked)."""
    settings = settings_or_exit()
    width = max(len(name) for name, _ in describe(settings))
    for name, value in describe(settings):
        typer.echo(f"{name:<{width}}  {value}")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the database migrations."""

    async def body(settings: Settings) -> None:
        from shopdesk.db import current_revision, migrate

        engine = await open_db(settings, migrate=False)
        try:
            await migrate(engine, revision)
            typer.echo(f"database at revision {await current_revision(engine)}")
        finally:
            await engine.dispose()

    run(body)


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision."""

    async def body(settings: Settings) -> None:
        from shopdesk.db import current_revision

        engine = await open_db(settings, migrate=False)
        try:
            typer.echo(await current_revision(engine) or "(empty database)")
        finally:
            await engine.dispose()

    run(body)


# --------------------------------------------------------------------------- serve / demo


def _serve(settings: Settings, host: str | None, port: int | None, telegram_polling: bool) -> None:
    from shopdesk.app import serve

    try:
        asyncio.run(serve(settings, host=host, port=port, telegram_polling=telegram_polling))
    except CliError as exc:
        fail(str(exc), exc.code)
    except OSError as exc:
        fail(f"cannot serve: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass


@app.command("serve")
def serve_cmd(
    host: str | None = typer.Option(None, help="Address to listen on (default SHOPDESK_HOST)."),
    port: int | None = typer.Option(None, help="Port (default SHOPDESK_PORT)."),
    telegram_polling: bool = typer.Option(False, "--telegram-polling", help="Fetch Telegram updates by long polling instead of a webhook."),
) -> None:
    """Migrate the database and serve the inbox, widget, webhooks and API."""
    _serve(settings_or_exit(), host, port, telegram_polling)


@app.command("demo")
def demo_cmd(
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same shop."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve after seeding."),
    host: str | None = typer.Option(None),
    port: int | None = typer.Option(None),
) -> None:
    """Seed a demo shop (orders, customers, agents) and serve it."""
    settings = settings_or_exit()

    async def body(settings: Settings) -> str:
        from shopdesk.demo import seed_demo

        engine = await open_db(settings)
        try:
            return await seed_demo(engine, settings, seed=seed)
        finally:
            await engine.dispose()

    summary = run(body)
    typer.echo(summary)
    if serve:
        _serve(settings, host, port, False)


# --------------------------------------------------------------------------- orders


@orders_app.command("import")
def orders_import(
    path: Path = typer.Argument(..., help="Shopify order JSON, or a CSV of marketplace/POS orders."),
    source: str | None = typer.Option(None, help="Default source channel for CSV rows without one."),
) -> None:
    """Import orders (upsert: importing the same file twice changes nothing)."""

    async def body(settings: Settings) -> int:
        from ordersvc.importer import ImportError_, import_file
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            try:
                report = await import_file(session_maker(engine), path, default_source=source, progress=True)
            except ImportError_ as exc:
                raise CliError(str(exc)) from exc
        finally:
            await engine.dispose()
        typer.echo(report.summary())
        return 1 if report.rejected and not (report.created or report.updated or report.unchanged) else 0

    code = run(body)
    raise typer.Exit(code)


@orders_app.command("show")
def orders_show(name_or_id: str = typer.Argument(..., help="Order name (#1001), external id or marketplace number.")) -> None:
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

    typer.echo(json.dumps(run(body), indent=2, ensure_ascii=False, default=str))


# --------------------------------------------------------------------------- tokens


@tokens_app.command("create")
def tokens_create(name: str = typer.Argument(..., help="What the token is for, e.g. 'erp-sync'.")) -> None:
    """Create an API token; it is printed once and stored only as a hash."""

    async def body(settings: Settings) -> str:
        from ordersvc.api_tokens import create_token
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                token = await create_token(session, name)
                await session.commit()
                return token
        finally:
            await engine.dispose()

    token = run(body)
    typer.echo(token)
    typer.echo("Keep it safe: it is shown only now. Send it as 'Authorization: Bearer <token>'.", err=True)


@tokens_app.command("list")
def tokens_list() -> None:
    """List API tokens (names and prefixes only)."""

    async def body(settings: Settings) -> list[Any]:
        from ordersvc.api_tokens import list_tokens
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                return await list_tokens(session)
        finally:
            await engine.dispose()

    for tok in run(body):
        state = "revoked" if tok.revoked_at else "active"
        typer.echo(f"{tok.id}\t{tok.prefix}…\t{tok.name}\t{state}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: int = typer.Argument(...)) -> None:
    """Revoke an API token by id."""

    async def body(settings: Settings) -> None:
        from ordersvc.api_tokens import revoke_token
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                if not await revoke_token(session, token_id):
                    raise CliError(f"no token with id {token_id}")
                await session.commit()
        finally:
            await engine.dispose()

    run(body)
    typer.echo("revoked")


def main() -> None:
    from shopdesk import cli_extra  # noqa: F401  (registers users/nlu/chat/telegram commands)

    try:
        app()
    except SettingsError as exc:  # pragma: no cover - settings_or_exit handles the usual path
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
