"""CLI commands for users, NLU tools, terminal chat and Telegram (registered on import)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from shopdesk.cli import CliError, app, nlu_app, open_db, run, telegram_app, users_app
from shopdesk.settings import Settings

__all__: list[str] = []


# --------------------------------------------------------------------------- users


def _read_password(confirm: bool = True) -> str:
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    if len(password) < 10:
        raise CliError("the password must have at least 10 characters", 2)
    return password


@users_app.command("add")
def users_add(
    email: str = typer.Argument(..., help="The agent's email (their login)."),
    admin: bool = typer.Option(False, "--admin", help="May manage agents, canned responses and labels."),
    name: str = typer.Option("", help="Display name shown to colleagues."),
) -> None:
    """Add an agent. The password is read from a prompt, or from stdin when piped; never from argv."""
    try:
        password = _read_password()
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.code) from None

    async def body(settings: Settings) -> None:
        from inbox.auth import AgentExists, create_agent
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                try:
                    await create_agent(session, email, password, name=name, admin=admin)
                except AgentExists as exc:
                    raise CliError(str(exc)) from exc
                except ValueError as exc:
                    raise CliError(str(exc), 2) from exc
                await session.commit()
        finally:
            await engine.dispose()

    run(body)
    typer.echo(f"added {'admin' if admin else 'agent'} {email}")


@users_app.command("list")
def users_list() -> None:
    """List agents."""

    async def body(settings: Settings) -> list[tuple[str, str, bool]]:
        from sqlmodel import select

        from inbox.models import Agent
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                rows = (await session.exec(select(Agent).order_by(Agent.email))).all()
                return [(a.email, a.role.value, a.is_active) for a in rows]
        finally:
            await engine.dispose()

    for email, role, active in run(body):
        typer.echo(f"{email}\t{role}\t{'active' if active else 'inactive'}")


# --------------------------------------------------------------------------- nlu


@nlu_app.command("classify")
def nlu_classify() -> None:
    """Read JSON lines ({"text", "lang"?}) or plain lines on stdin; write one JSON result per line."""
    from bot.nlu.tools import classify_stream

    classify_stream(sys.stdin, sys.stdout)


@nlu_app.command("eval")
def nlu_eval(path: Path = typer.Argument(..., help="CSV with columns text,intent[,lang].")) -> None:
    """Print accuracy, per-intent precision and recall, and the most confused pairs."""
    from bot.nlu.tools import evaluate_csv, format_report

    try:
        report = evaluate_csv(path)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None
    typer.echo(format_report(report))


# --------------------------------------------------------------------------- chat


@app.command("chat")
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


# --------------------------------------------------------------------------- telegram


@telegram_app.command("set-webhook")
def telegram_set_webhook(url: str = typer.Argument(..., help="Public https URL ending in /webhooks/telegram.")) -> None:
    """Point the Telegram bot at our webhook (with the secret token header)."""

    async def body(settings: Settings) -> str:
        from bot.connectors.telegram import set_webhook

        return await set_webhook(settings, url)

    typer.echo(run(body))


@telegram_app.command("status")
def telegram_status() -> None:
    """Show the webhook's state from getWebhookInfo: URL, pending updates, last error."""

    async def body(settings: Settings) -> str:
        from bot.connectors.telegram import webhook_status_text

        return await webhook_status_text(settings)

    typer.echo(run(body))
