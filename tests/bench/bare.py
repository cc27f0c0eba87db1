"""The ceiling: a bare aiohttp server answering the same shapes as Shopdesk, nothing else.

* ``GET /widget/ws``: ``hello`` → ``session`` + empty ``history``; each ``message`` → the
  customer's own message echoed back, then a ``bot`` message (the two frames Shopdesk sends).
* ``POST /webhooks/telegram`` (secret header checked): 200 at once, then the reply goes out as
  a Bot API ``sendMessage`` to ``--api`` over a kept-alive client, as Shopdesk's reply does.
* ``GET /healthz``.

Run by the benchmark in its own process: ``python -m tests.bench.bare --port N --api URL --secret S``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import secrets
from typing import Any

import aiohttp
from aiohttp import web

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def build(api_url: str, secret: str) -> web.Application:
    app = web.Application()
    tasks: set[asyncio.Task[Any]] = set()
    client: dict[str, aiohttp.ClientSession] = {}
    expected = secret.encode()

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def widget(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame.get("type") == "hello":
                await ws.send_str(json.dumps({"type": "session", "visitor": secrets.token_urlsafe(18)}))
                await ws.send_str(json.dumps({"type": "history", "messages": []}))
            elif frame.get("type") == "message":
                text = frame.get("text", "")
                await ws.send_str(json.dumps({"type": "message", "author": "customer", "text": text,
                                              "client_id": frame.get("client_id")}))
                await ws.send_str(json.dumps({"type": "message", "author": "bot", "text": text}))
        return ws

    async def reply(chat_id: int, text: str) -> None:
        async with client["http"].post(f"{api_url}/sendMessage", data={"chat_id": str(chat_id), "text": text}) as r:
            await r.read()

    async def webhook(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), expected):
            return web.json_response({"error": "forbidden"}, status=403)
        update = await request.json()
        message = update.get("message") or {}
        task = asyncio.create_task(reply(int(message["chat"]["id"]), str(message.get("text", ""))))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.json_response({"ok": True})

    async def lifecycle(app: web.Application) -> Any:
        client["http"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32))
        yield
        await client["http"].close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/widget/ws", widget)
    app.router.add_post("/webhooks/telegram", webhook)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api", required=True, help="Bot API base URL, e.g. http://127.0.0.1:9000/bot<token>")
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    web.run_app(build(args.api.rstrip("/"), args.secret), host="127.0.0.1", port=args.port, access_log=None,
                print=None)


if __name__ == "__main__":
    main()
