"""What every command shares: one-line errors, output helpers, settings and the database."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import typer

from shopdesk.settings import Settings, SettingsError, load_settings

T = TypeVar("T")

DEBUG_ENV = "SHOPDESK_DEBUG"


class CliError(Exception):
    """A one-line error for the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_C1_AND_DEL = re.compile(r"[\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN``: file contents and customer data
    must not be able to drive the terminal (escape sequences)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def first_line(text: str, limit: int = 300) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def error_line(exc: BaseException) -> str:
    """One line that says what went wrong, for an exception no command turned into a CliError."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if isinstance(exc, (CliError, SettingsError)):
        return first_line(str(exc))
    if isinstance(exc, CommandError):
        return f"migration failed: {first_line(str(exc))}"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"database error: {first_line(str(exc.orig)) or type(exc.orig).__name__}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {first_line(str(exc)) or type(exc).__name__}"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return f"cannot connect: {first_line(str(exc)) or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}" + (f": {exc.filename}" if exc.filename else "")
    detail = first_line(str(exc))
    hint = f" ({DEBUG_ENV}=1 shows the traceback)"
    return f"unexpected {type(exc).__name__}" + (f": {detail}" if detail else "") + hint


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` (one line) on stderr and exit with ``code``."""
    typer.echo(f"error: {printable(first_line(message) or message)}", err=True)
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


def run(coro_fn: Callable[[Settings], Coroutine[Any, Any, T]], settings: Settings | None = None) -> T:
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
    from shopdesk.db import create_engine
    from shopdesk.db import migrate as do_migrate

    engine = create_engine(settings.database_url, **settings.engine_options())
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


def json_text(document: Any) -> str:
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    # json.dumps leaves DEL and C1 controls raw; escaped they are still the same JSON strings
    return _C1_AND_DEL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
