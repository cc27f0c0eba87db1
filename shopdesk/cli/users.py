"""``shopdesk users``: agents and admins of the web inbox."""

from __future__ import annotations

import sys

import typer

from shopdesk.cli.common import CliError, fail, note, open_db, printable, run
from shopdesk.settings import Settings

app = typer.Typer(help="Agents and admins of the web inbox.", no_args_is_help=True)


def _read_password() -> str:
    """The password from a hidden, confirmed prompt on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline()
    if not line:
        fail("no password: pipe it on stdin, or run on a terminal to be asked", 2)
    return line.rstrip("\r\n")


@app.command("add")
def users_add(
    email: str = typer.Argument(..., help="The agent's email (their login)."),
    admin: bool = typer.Option(False, "--admin", help="May manage agents, canned responses and labels."),
    name: str = typer.Option("", help="Display name shown to colleagues."),
) -> None:
    """Add an agent. The password is read from a prompt, or from stdin when piped; never from argv.

    Example: printf '%s\\n' "$PASSWORD" | shopdesk users add sam@example.com
    """
    from inbox.actions.agent_create import agent_create
    from inbox.auth import AgentError, AgentExists, check_email, check_password

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
                    await agent_create(session, address, password, name=name, admin=admin)
                except AgentExists as exc:
                    raise CliError(f"{exc}: {address}") from exc
                except AgentError as exc:
                    raise CliError(str(exc), 2) from exc
                await session.commit()
        finally:
            await engine.dispose()

    run(body)
    typer.echo(printable(f"added {'admin' if admin else 'agent'} {address}"))


@app.command("list")
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
