"""``shopdesk chat``: talk to the bot as a customer in the terminal."""

from __future__ import annotations

import typer

from shopdesk.cli.common import open_db, run
from shopdesk.settings import Settings


def chat_cmd(
    email: str | None = typer.Option(None, help="Talk as the customer with this email (already verified)."),
    lang: str | None = typer.Option(None, help="Language hint, e.g. es or zh-TW."),
) -> None:
    """Talk to the bot as a customer in the terminal (Ctrl-D to leave)."""

    async def body(settings: Settings) -> None:
        from bot.terminal import run_terminal_chat

        engine = await open_db(settings)
        try:
            await run_terminal_chat(engine, settings, email=email, lang=lang)
        finally:
            await engine.dispose()

    run(body)
