"""``python -m tests.bench.telegram_webhook [--updates 3000] [--in-flight 1] [--py-spy PATH]``: the server
CPU one Telegram webhook costs (the real ``shopdesk.app.build_app`` on SQLite: middlewares, secret
check, body, JSON, translation, ``message_record``'s commit, the 200), measured as the server
loop thread's CPU time while a client in the main thread posts updates of 300 known customers
over kept-alive connections. The bot is kept from starting (its language models are never
loaded), so no turn or reply is counted: this is the inbound half of ``tests.bench.per_message``
without its batching noise. ``--in-flight 1`` (the default) records every update alone (no record
groups), the most repeatable figure; more in flight measures group commits. ``--py-spy`` samples
the server thread during the measured updates (raw stacks). A before/after figure for the webhook
on a loaded machine. Loopback only, bounded in count. Prints one line."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

CUSTOMERS = 300
SECRET = "bench-webhook-secret"


class _Server:
    """``build_app`` served on its own loop in a thread (its bot never starts)."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="webhook-server", daemon=True)
        self.native_id = 0

    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        from shopdesk.app import build_app

        app = build_app(self.settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> None:
        self.thread.start()
        if not self._ready.wait(120):
            raise SystemExit("the server did not start within 120 s")

    def cpu(self) -> float:
        """The server thread's CPU seconds (read on its own loop, between two callbacks)."""
        return asyncio.run_coroutine_threadsafe(_thread_time(), self.loop).result(10)

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


async def _thread_time() -> float:
    return time.thread_time()


async def main(updates: int, in_flight: int, spy: str | None) -> None:
    import shopdesk.app
    from shopdesk.settings import load_settings
    from tests.bench.databases import Databases
    from tests.fakes.telegram import DEFAULT_TOKEN, make_message_update

    hold = threading.Event()
    shopdesk.app._load_models = lambda: hold.wait()  # type: ignore[attr-defined]  # the bot never starts
    work = Path(tempfile.mkdtemp(prefix="shopdesk-webhook-"))
    url = await Databases(work).url("sqlite", "webhook")
    settings: Any = load_settings(
        database_url=url, data_dir=work / "data", secret_key="bench-secret-key-0123456789abcdef0123456789",
        telegram_token=DEFAULT_TOKEN, telegram_webhook_secret=SECRET,
        telegram_api_url="http://127.0.0.1:9/bot",  # never reached: nothing is answered
    )
    server = _Server(settings)
    server.start()
    target = f"http://127.0.0.1:{server.port}/webhooks/telegram"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    ids = itertools.count(1)
    texts = ("where is my order", "hi, I want to return my shoes", "thanks!", "can I change the address?")
    chats = itertools.cycle(range(10_000_000, 10_000_000 + CUSTOMERS))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(1, in_flight)))
    refused: list[int] = []

    async def poster(count: int) -> None:
        for _ in range(count):
            n = next(ids)
            body = make_message_update(n, next(chats), texts[n % len(texts)])
            async with session.post(target, json=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    refused.append(resp.status)

    async def run(total: int) -> None:
        per = max(1, total // in_flight)
        await asyncio.gather(*(poster(per) for _ in range(in_flight)))

    sampler: subprocess.Popen[bytes] | None = None
    try:
        await run(CUSTOMERS * 2)  # every customer known with an open conversation; caches and pools warm
        if spy:
            sampler = subprocess.Popen([spy, "record", "-p", str(os.getpid()), "-r", "500", "-f", "raw",
                                        "-o", str(work / "webhook.raw"), "--threads", "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1.0)
        cpu, wall = server.cpu(), time.perf_counter()
        await run(updates)
        cpu, wall = server.cpu() - cpu, time.perf_counter() - wall
        done = max(1, updates // in_flight) * in_flight
        print(f"telegram webhook: updates={done} in_flight={in_flight} server_cpu_us_per_update={1e6 * cpu / done:.0f}"
              f" wall={wall:.2f}s refused={len(refused)}" + (f" py-spy={work / 'webhook.raw'}" if spy else ""))
    finally:
        if sampler is not None:
            sampler.send_signal(2)
            sampler.wait(30)
        await session.close()
        hold.set()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--py-spy", metavar="PATH", help="sample the server with this py-spy (raw stacks)")
    args = parser.parse_args()
    asyncio.run(main(args.updates, args.in_flight, args.py_spy))
