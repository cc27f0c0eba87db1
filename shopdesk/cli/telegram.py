"""``shopdesk telegram``: connect the Telegram bot."""

from __future__ import annotations

import typer

from shopdesk.cli.common import CliError, printable, run
from shopdesk.settings import Settings

app = typer.Typer(help="Connect the Telegram bot.", no_args_is_help=True)


@app.command("set-webhook")
def telegram_set_webhook(url: str = typer.Argument(..., help="Public https URL ending in /webhooks/telegram.")) -> None:
    """Point the Telegram bot at our webhook (with the secret token header).

    Needs SHOPDESK_TELEGRAM_TOKEN and SHOPDESK_TELEGRAM_WEBHOOK_SECRET.
    """

    async def body(settings: Settings) -> str:
        from bot.connectors.telegram import TelegramSetupError, set_webhook

        try:
            return await set_webhook(settings, url)
        except TelegramSetupError as exc:
            raise CliError(str(exc)) from exc

    typer.echo(run(body))


@app.command("status")
def telegram_status() -> None:
    """Show the webhook's state from getWebhookInfo: URL, pending updates, last error."""

    async def body(settings: Settings) -> str:
        from bot.connectors.telegram import TelegramSetupError, webhook_status_text

        try:
            return await webhook_status_text(settings)
        except TelegramSetupError as exc:
            raise CliError(str(exc)) from exc

    typer.echo(printable(run(body)))
