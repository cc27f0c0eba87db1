"""``shopdesk demo``: seed the demo shop and serve it."""

from __future__ import annotations

import typer

from shopdesk.cli.common import open_db, run, settings_or_exit, working
from shopdesk.cli.serve import address_overrides, serve_app
from shopdesk.settings import Settings


def demo_cmd(
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same shop."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve after seeding."),
    host: str | None = typer.Option(None, help="Address to listen on (default SHOPDESK_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (default SHOPDESK_PORT)."),
) -> None:
    """Seed a demo shop (orders, customers, agents) and serve it. Running it again adds nothing."""
    settings = settings_or_exit(**address_overrides(host, port))

    async def body(settings: Settings) -> str:
        from shopdesk.demo import seed_demo

        engine = await open_db(settings)
        try:
            with working("seeding the demo shop…"):
                return await seed_demo(engine, settings, seed=seed)
        finally:
            await engine.dispose()

    typer.echo(run(body, settings))
    if serve:
        serve_app(settings, host, port, False)
