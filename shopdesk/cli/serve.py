"""``shopdesk serve``: the web app with the inbox, widget, webhooks and API."""

from __future__ import annotations

from typing import Any

import typer

from shopdesk.cli.common import CliError, run, settings_or_exit
from shopdesk.settings import Settings


def serve_app(settings: Settings, host: str | None, port: int | None, telegram_polling: bool) -> None:
    from shopdesk.app import SecondServer, serve

    async def body(settings: Settings) -> None:
        try:
            await serve(settings, host=host, port=port, telegram_polling=telegram_polling)
        except SecondServer as exc:
            raise CliError(str(exc), 3) from None

    try:
        run(body, settings)
    except typer.Exit as exc:
        if exc.exit_code != 130:  # Ctrl-C is how one stops the server
            raise


def address_overrides(host: str | None, port: int | None) -> dict[str, Any]:
    """``--host``/``--port`` as setting overrides, so the printed and linked URLs follow them."""
    return {k: v for k, v in (("host", host), ("port", port)) if v is not None}


def serve_cmd(
    host: str | None = typer.Option(None, help="Address to listen on (default SHOPDESK_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (default SHOPDESK_PORT)."),
    telegram_polling: bool = typer.Option(
        False, "--telegram-polling", help="Fetch Telegram updates by long polling instead of a webhook."
    ),
) -> None:
    """Migrate the database and serve the inbox, widget, webhooks and API (Ctrl-C stops)."""
    serve_app(settings_or_exit(**address_overrides(host, port)), host, port, telegram_polling)
