"""``shopdesk``: the one command line. Every sub-command has ``--help``.

Errors are one line on stderr (``error: …``) and a non-zero exit: 2 for a bad setting or
usage, 1 for anything else, 130 for Ctrl-C. No traceback reaches the user; set
``SHOPDESK_DEBUG=1`` to see one for an unexpected error. Commands are thin: they parse
arguments, open the database and call the same functions the web app uses.

``python -m shopdesk.cli`` is the same as the ``shopdesk`` console script.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from shopdesk.settings import Settings, SettingsError, describe, load_settings

__all__ = ["main", "app", "CliError", "error_line", "printable"]

T = TypeVar("T")

DEBUG_ENV = "SHOPDESK_DEBUG"

app = typer.Typer(
    help="Shopdesk: self-hosted support desk for online shops.\n\n"
    "Settings come from SHOPDESK_* environment variables over shopdesk.toml "
    "(or the file named by SHOPDESK_CONFIG); see 'shopdesk config'.",
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


# --------------------------------------------------------------------------- output and errors

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_C1_AND_DEL = re.compile(r"[\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN``: file contents and customer data
    must not be able to drive the terminal (escape sequences)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _first_line(text: str, limit: int = 300) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def error_line(exc: BaseException) -> str:
    """One line that says what went wrong, for an exception no command turned into a CliError."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if isinstance(exc, (CliError, SettingsError)):
        return _first_line(str(exc))
    if isinstance(exc, CommandError):
        return f"migration failed: {_first_line(str(exc))}"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"database error: {_first_line(str(exc.orig)) or type(exc.orig).__name__}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {_first_line(str(exc)) or type(exc).__name__}"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return f"cannot connect: {_first_line(str(exc)) or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}" + (f": {exc.filename}" if exc.filename else "")
    detail = _first_line(str(exc))
    hint = f" ({DEBUG_ENV}=1 shows the traceback)"
    return f"unexpected {type(exc).__name__}" + (f": {detail}" if detail else "") + hint


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` (one line) on stderr and exit with ``code``."""
    typer.echo(f"error: {printable(_first_line(message) or message)}", err=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """A remark for the human at the terminal (stderr, so stdout stays machine-readable)."""
    typer.echo(message, err=True)


@contextmanager
def working(message: str) -> Iterator[None]:
    """A spinner on stderr while long work runs (only when stderr is a terminal)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield


def settings_or_exit(**overrides: Any) -> Settings:
    """The settings, with the secret key made or read from the data dir; exit 2 on a bad one."""
    try:
        settings = load_settings(**overrides)
        settings.ensure_secret_key()
    except SettingsError as exc:
        fail(str(exc), 2)
    except OSError as exc:
        fail(f"cannot keep the secret key in SHOPDESK_DATA_DIR: {error_line(exc)}", 2)
    return settings


def run(coro_fn: Callable[[Settings], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run an async command body with the settings; any error becomes one line and an exit."""
    settings = settings if settings is not None else settings_or_exit()
    try:
        return asyncio.run(coro_fn(settings))
    except CliError as exc:
        fail(str(exc), exc.code)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        fail(error_line(exc))


async def open_db(settings: Settings, migrate: bool = True) -> Any:
    """An engine for SHOPDESK_DATABASE_URL, migrated to the latest schema unless told not to."""
    from shopdesk.db import create_engine, migrate as do_migrate

    engine = create_engine(settings.database_url)
    try:
        if migrate:
            await do_migrate(engine)
        else:
            async with engine.connect():
                pass
    except Exception as exc:
        await engine.dispose()
        raise CliError(f"cannot open the database: {error_line(exc)}") from exc
    return engine


def _json_text(document: Any) -> str:
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    # json.dumps leaves DEL and C1 controls raw; escaped they are still the same JSON strings
    return _C1_AND_DEL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# --------------------------------------------------------------------------- config / db


@app.command("config")
def config_cmd() -> None:
    """Print the effective settings (secrets masked). A bad setting: one line naming it, exit 2."""
    settings = settings_or_exit()
    rows = describe(settings)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {printable(value)}")


@db_app.command("upgrade")
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


@db_app.command("current")
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


# --------------------------------------------------------------------------- serve / demo


def _serve(settings: Settings, host: str | None, port: int | None, telegram_polling: bool) -> None:
    from shopdesk.app import serve

    async def body(settings: Settings) -> None:
        await serve(settings, host=host, port=port, telegram_polling=telegram_polling)

    try:
        run(body, settings)
    except typer.Exit as exc:
        if exc.exit_code != 130:  # Ctrl-C is how one stops the server
            raise


def _address(host: str | None, port: int | None) -> dict[str, Any]:
    """``--host``/``--port`` as setting overrides, so the printed and linked URLs follow them."""
    return {k: v for k, v in (("host", host), ("port", port)) if v is not None}


@app.command("serve")
def serve_cmd(
    host: str | None = typer.Option(None, help="Address to listen on (default SHOPDESK_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (default SHOPDESK_PORT)."),
    telegram_polling: bool = typer.Option(
        False, "--telegram-polling", help="Fetch Telegram updates by long polling instead of a webhook."
    ),
) -> None:
    """Migrate the database and serve the inbox, widget, webhooks and API (Ctrl-C stops)."""
    _serve(settings_or_exit(**_address(host, port)), host, port, telegram_polling)


@app.command("demo")
def demo_cmd(
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same shop."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve after seeding."),
    host: str | None = typer.Option(None, help="Address to listen on (default SHOPDESK_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (default SHOPDESK_PORT)."),
) -> None:
    """Seed a demo shop (orders, customers, agents) and serve it. Running it again adds nothing."""
    settings = settings_or_exit(**_address(host, port))

    async def body(settings: Settings) -> str:
        from shopdesk.demo import seed_demo

        engine = await open_db(settings)
        try:
            with working("seeding the demo shop…"):
                return await seed_demo(engine, settings, seed=seed)
        finally:
            await engine.dispose()

    typer.echo(run(body, settings))
    if serve:
        _serve(settings, host, port, False)


# --------------------------------------------------------------------------- orders


@orders_app.command("import")
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


@orders_app.command("show")
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

    typer.echo(_json_text(run(body)))


# --------------------------------------------------------------------------- tokens


@tokens_app.command("create")
def tokens_create(name: str = typer.Argument(..., help="What the token is for, e.g. 'erp-sync'.")) -> None:
    """Create an API token; it is printed once (on stdout) and stored only as a hash."""

    async def body(settings: Settings) -> str:
        from ordersvc.api_tokens import create_token
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                try:
                    token = await create_token(session, name)
                except ValueError as exc:
                    raise CliError(str(exc), 2) from exc
                await session.commit()
                return token
        finally:
            await engine.dispose()

    token = run(body)
    typer.echo(token)
    note("Keep it safe: it is shown only now. Send it as 'Authorization: Bearer <token>'.")


@tokens_app.command("list")
def tokens_list() -> None:
    """List API tokens: id, prefix, name, state and last use (never the token)."""

    async def body(settings: Settings) -> list[Any]:
        from ordersvc.api_tokens import list_tokens
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                return await list_tokens(session)
        finally:
            await engine.dispose()

    tokens = run(body)
    if not tokens:
        note("no API tokens yet; create one with 'shopdesk tokens create NAME'")
        return
    for tok in tokens:
        state = "revoked" if tok.revoked_at else "active"
        used = tok.last_used_at.strftime("%Y-%m-%d %H:%M UTC") if tok.last_used_at else "never used"
        typer.echo(printable(f"{tok.id}\t{tok.prefix}…\t{tok.name}\t{state}\t{used}"))


@tokens_app.command("revoke")
def tokens_revoke(token_id: int = typer.Argument(..., help="The token's id from 'shopdesk tokens list'.")) -> None:
    """Revoke an API token by id (revoking twice is fine)."""

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
    typer.echo(f"revoked token {token_id}")


# --------------------------------------------------------------------------- entry point


def _usage_error_line(exc: typer.TyperException) -> str:
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


def main(argv: Sequence[str] | None = None) -> None:
    """The ``shopdesk`` console script: run the command, exit with its status."""
    from shopdesk import cli_extra  # noqa: F401  (registers users/nlu/chat/telegram commands)

    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="shopdesk", standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors: bad option, missing argument …
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help (typer printed it already)
            sys.exit(exc.exit_code)
        typer.echo(f"error: {printable(_usage_error_line(exc))}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug or an error no command expected: still one line
        if os.environ.get(DEBUG_ENV):
            raise
        typer.echo(f"error: {printable(error_line(exc))}", err=True)
        sys.exit(2 if isinstance(exc, SettingsError) else 1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    # ``python -m shopdesk.cli`` runs this file as ``__main__``; cli_extra registers its commands on
    # the importable ``shopdesk.cli`` module, so run that module's main(), not this copy's app.
    from shopdesk.cli import main as _main

    _main()
