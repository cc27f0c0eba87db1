"""A slim loopback Bot API for the benchmark: it answers what python-telegram-bot asks at start
(``getMe``) and every ``sendMessage``, and reports each reply's chat and arrival time.

``tests/fakes/telegram.py`` emulates much more (and keeps every call for assertions); here a
reply costs one form parse and one small JSON answer, so the fake stays cheap next to the load
generator in the same process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable

from aiohttp import web

from tests.fakes.telegram import BOT_FIRST_NAME, BOT_ID, BOT_USERNAME, DEFAULT_TOKEN

__all__ = ["FakeBotApi", "FakeBotApiProcess", "FakeBotApiThread"]

_ME = {"id": BOT_ID, "is_bot": True, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME,
       "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}
_FROM = {"id": BOT_ID, "is_bot": True, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME}


class FakeBotApi:
    """``POST /bot<token>/<method>``; ``on_reply(chat_id, perf_counter_time)`` for every sendMessage."""

    def __init__(self, on_reply: Callable[[int, float], None], token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.on_reply = on_reply
        self.other_calls = 0
        #: sendMessage calls that asked for a paid broadcast (``allow_paid_broadcast``)
        self.paid_broadcasts = 0
        self._ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle)

    async def _params(self, request: web.Request) -> dict[str, str]:
        if request.content_type == "application/json":
            body = await request.json()
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"].lower()
        if method == "getme":
            return web.json_response({"ok": True, "result": _ME})
        params = await self._params(request)
        if method == "sendmessage":
            arrived = time.perf_counter()
            chat_id = int(params.get("chat_id", "0"))
            if params.get("allow_paid_broadcast") in ("true", "True", "1"):
                self.paid_broadcasts += 1
            self.on_reply(chat_id, arrived)
            message = {"message_id": next(self._ids), "from": _FROM, "date": int(time.time()),
                       "chat": {"id": chat_id, "type": "private", "first_name": "Ana"},
                       "text": params.get("text", "")}
            return web.json_response({"ok": True, "result": message})
        self.other_calls += 1
        return web.json_response({"ok": True, "result": True})


class FakeBotApiThread:
    """Runs a :class:`FakeBotApi` on its own event loop in a thread: Telegram's servers do not share
    the server's event loop, so the benchmark's platform should not either (its answers would
    otherwise wait behind the webhooks' work and be counted as our latency)."""

    def __init__(self, api: FakeBotApi, port: int) -> None:
        self.api = api
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner = web.AppRunner(self.api.app, access_log=None)
                loop.run_until_complete(self._runner.setup())
                loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            except BaseException as exc:  # reported to start()'s caller
                failed.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-bot-api", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failed:
            raise failed[0]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)


class FakeBotApiProcess:
    """A :class:`FakeBotApi` in a process of its own (``python -m tests.bench.fake_api PORT``): the
    load generator's event loop and GIL do not delay it, and it stamps each reply's arrival itself
    (``perf_counter`` is CLOCK_MONOTONIC on Linux, one clock for every process), so a late
    generator cannot add to a Telegram reply's measured latency. Each reply reaches
    ``on_reply(chat_id, arrived)`` in this process (``router`` as in the benchmark)."""

    def __init__(self, port: int, on_reply: Callable[[int, float], None]) -> None:
        self.port = port
        self.on_reply = on_reply
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.fake_api", str(self.port),
            stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            await self.stop()
            raise RuntimeError("the fake Bot API did not start")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            chat, at = line.decode().split("\t")
            self.on_reply(int(chat), float(at))

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


def _serve(port: int) -> None:
    """The child of :class:`FakeBotApiProcess`: one ``chat<TAB>perf_counter`` line per reply."""
    out = sys.stdout

    def on_reply(chat_id: int, at: float) -> None:
        out.write(f"{chat_id}\t{at:.6f}\n")
        out.flush()

    async def main() -> None:
        runner = web.AppRunner(FakeBotApi(on_reply).app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        out.write("ready\n")
        out.flush()
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
