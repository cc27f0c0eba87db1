"""``shopdesk updates``: which proactive messages customers get (delivery updates per kind,
and the satisfaction survey)."""

from __future__ import annotations

import typer

from shopbase.refusal import Refused
from shopdesk.cli.common import CliError, fail, open_db, run
from shopdesk.settings import Settings

app = typer.Typer(help="Proactive customer messages: delivery updates per kind and the CSAT survey.",
                  no_args_is_help=True)

_STATES = {"on": True, "off": False}


async def _apply(settings: Settings, kind: str | None, enabled: bool | None) -> dict[str, bool]:
    from inbox.actions.customer_updates_save import customer_updates_save
    from inbox.proactive import update_settings
    from shopdesk.db import session_maker

    engine = await open_db(settings)
    try:
        async with session_maker(engine)() as session:
            if kind is None or enabled is None:
                return await update_settings(session)
            try:
                current = await customer_updates_save(session, {kind: enabled}, actor="cli")
            except Refused as exc:
                raise CliError(exc.message, 2) from exc
            await session.commit()
            return current
    finally:
        await engine.dispose()


def _print(current: dict[str, bool]) -> None:
    for kind, enabled in current.items():
        typer.echo(f"{kind}\t{'on' if enabled else 'off'}")


@app.command("show")
def updates_show() -> None:
    """List every kind (out_for_delivery, delivered, failed_attempt, exception, late, csat, paid_broadcast) and whether it is on."""
    _print(run(lambda settings: _apply(settings, None, None)))


@app.command("set")
def updates_set(
    kind: str = typer.Argument(..., help="out_for_delivery, delivered, failed_attempt, exception, late, csat or paid_broadcast."),
    state: str = typer.Argument(..., help="on or off."),
) -> None:
    """Switch one kind of proactive message on or off."""
    if state.lower() not in _STATES:
        fail(f"state must be 'on' or 'off', not {state!r}", 2)
    _print(run(lambda settings: _apply(settings, kind, _STATES[state.lower()])))
