"""``shopdesk config``: the effective settings."""

from __future__ import annotations

import typer

from shopdesk.cli.common import printable, settings_or_exit
from shopdesk.settings import describe


def config_cmd() -> None:
    """Print the effective settings (secrets masked). A bad setting: one line naming it, exit 2."""
    settings = settings_or_exit()
    rows = describe(settings)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {printable(value)}")
