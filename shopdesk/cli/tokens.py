"""``shopdesk tokens``: API tokens for /api/v1."""

from __future__ import annotations

from typing import Any

import typer

from shopdesk.cli.common import CliError, note, open_db, printable, run
from shopdesk.settings import Settings

app = typer.Typer(help="API tokens for /api/v1.", no_args_is_help=True)


@app.command("create")
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


@app.command("list")
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
        used = tok.last_used_at.isoformat(sep=" ", timespec="minutes") if tok.last_used_at else "never used"
        typer.echo(printable(f"{tok.id}\t{tok.prefix}…\t{tok.name}\t{state}\t{used}"))


@app.command("revoke")
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
