"""The root ``shopdesk`` command: its command groups, and ``main``, the console script."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from shopdesk.cli import (
    analytics,
    chat,
    config,
    customers,
    db,
    demo,
    nlu,
    orders,
    report,
    serve,
    telegram,
    tokens,
    updates,
    users,
)
from shopdesk.cli.common import DEBUG_ENV, error_line, printable
from shopdesk.settings import SettingsError

app = typer.Typer(
    help="Shopdesk: self-hosted support desk for online shops.\n\n"
    "Settings come from SHOPDESK_* environment variables over shopdesk.toml "
    "(or the file named by SHOPDESK_CONFIG); see 'shopdesk config'.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(orders.app, name="orders")
app.add_typer(tokens.app, name="tokens")
app.add_typer(users.app, name="users")
app.add_typer(nlu.app, name="nlu")
app.add_typer(telegram.app, name="telegram")
app.add_typer(updates.app, name="updates")
app.add_typer(analytics.app, name="analytics")
app.add_typer(customers.app, name="customers")
app.command("config")(config.config_cmd)
app.command("serve")(serve.serve_cmd)
app.command("demo")(demo.demo_cmd)
app.command("chat")(chat.chat_cmd)
app.command("report")(report.report_cmd)


def _usage_error_line(exc: typer.TyperException) -> str:
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


def main(argv: Sequence[str] | None = None) -> None:
    """The ``shopdesk`` console script: run the command, exit with its status."""
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
