"""CLI commands for users, NLU tools, terminal chat and Telegram (registered on import by ``cli.main``)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import typer

from shopdesk.cli import CliError, app, fail, note, nlu_app, open_db, printable, run, telegram_app, users_app, working
from shopdesk.settings import Settings

__all__: list[str] = []


# --------------------------------------------------------------------------- users


def _read_password() -> str:
    """The password from a hidden, confirmed prompt on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline()
    if not line:
        fail("no password: pipe it on stdin, or run on a terminal to be asked", 2)
    return line.rstrip("\r\n")


@users_app.command("add")
def users_add(
    email: str = typer.Argument(..., help="The agent's email (their login)."),
    admin: bool = typer.Option(False, "--admin", help="May manage agents, canned responses and labels."),
    name: str = typer.Option("", help="Display name shown to colleagues."),
) -> None:
    """Add an agent. The password is read from a prompt, or from stdin when piped; never from argv.

    Example: printf '%s\\n' "$PASSWORD" | shopdesk users add sam@example.com
    """
    from inbox.auth import AgentError, AgentExists, check_email, check_password, create_agent

    password = _read_password()
    try:
        address = check_email(email)
        check_password(password)
    except AgentError as exc:
        fail(str(exc), 2)

    async def body(settings: Settings) -> None:
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                try:
                    await create_agent(session, address, password, name=name, admin=admin)
                except AgentExists as exc:
                    raise CliError(f"{exc}: {address}") from exc
                except AgentError as exc:
                    raise CliError(str(exc), 2) from exc
                await session.commit()
        finally:
            await engine.dispose()

    run(body)
    typer.echo(printable(f"added {'admin' if admin else 'agent'} {address}"))


@users_app.command("list")
def users_list() -> None:
    """List agents: email, role, active or not."""

    async def body(settings: Settings) -> list[tuple[str, str, bool]]:
        from sqlmodel import col, select

        from inbox.models import Agent
        from shopdesk.db import session_maker

        engine = await open_db(settings)
        try:
            async with session_maker(engine)() as session:
                rows = (await session.exec(select(Agent).order_by(col(Agent.email)))).all()
                return [(a.email, a.role.value, a.is_active) for a in rows]
        finally:
            await engine.dispose()

    agents = run(body)
    if not agents:
        note("no agents yet; add one with 'shopdesk users add EMAIL --admin'")
    for email, role, active in agents:
        typer.echo(printable(f"{email}\t{role}\t{'active' if active else 'inactive'}"))


# --------------------------------------------------------------------------- nlu


@nlu_app.command("classify")
def nlu_classify() -> None:
    """Read JSON lines ({"text", "lang"?}) or plain lines on stdin; write one JSON result per line.

    Each output line has text, intent, confidence, language and entities.
    """
    from bot.nlu.tools import classify_stream

    if sys.stdin.isatty():
        note("Type messages, one per line (Ctrl-D to end).")
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="surrogateescape")  # a line that is not UTF-8 is reported, not fatal
    counts = classify_stream(sys.stdin, sys.stdout)
    if counts.failed:
        note(f"{counts.failed} line(s) could not be classified; see their \"error\" records")
        raise typer.Exit(1)


@nlu_app.command("eval")
def nlu_eval(path: Path = typer.Argument(..., help="CSV with columns text,intent[,lang].")) -> None:
    """Print accuracy, per-intent precision and recall, and the most confused pairs."""
    from bot.nlu.tools import evaluate_csv, format_report

    try:
        with working("classifying…"):
            report = evaluate_csv(path)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        fail(str(exc))
    typer.echo(printable(format_report(report)))


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


@telegram_app.command("status")
def telegram_status() -> None:
    """Show the webhook's state from getWebhookInfo: URL, pending updates, last error."""

    async def body(settings: Settings) -> str:
        from bot.connectors.telegram import TelegramSetupError, webhook_status_text

        try:
            return await webhook_status_text(settings)
        except TelegramSetupError as exc:
            raise CliError(str(exc)) from exc

    typer.echo(printable(run(body)))
