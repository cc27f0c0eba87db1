"""Start-up: the server takes chats and webhooks at once; the bot answers once its models are loaded."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest


async def _frame(ws: Any, kind: str, timeout: float = 30.0, author: str | None = None) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            frame = json.loads((await ws.receive()).data)
            if frame.get("type") == kind and (author is None or frame.get("author") == author):
                return frame

    return await asyncio.wait_for(loop(), timeout)


async def test_messages_wait_for_the_models_and_are_answered_once_they_load(
    aiohttp_client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shopdesk.app
    from shopdesk.app import RUNTIME, build_app

    release = threading.Event()
    real_load = shopdesk.app._load_models

    def slow_load() -> None:  # a fresh machine training the models
        assert release.wait(60), "the test never released the model load"
        real_load()

    monkeypatch.setattr(shopdesk.app, "_load_models", slow_load)
    app = build_app(settings)
    client = await aiohttp_client(app)  # start-up does not wait for the models
    try:
        health = await (await client.get("/healthz")).json()
        assert health == {"status": "ok", "database": True, "bot": "starting"}

        ws = await client.ws_connect("/widget/ws")
        await ws.send_json({"type": "hello", "lang": "en"})
        await _frame(ws, "history")
        await ws.send_json({"type": "message", "text": "hi", "client_id": "c1"})
        echo = await _frame(ws, "message", author="customer")
        assert echo["client_id"] == "c1" and echo["id"]  # recorded while the models load
        with pytest.raises(asyncio.TimeoutError):
            await _frame(ws, "message", timeout=0.5, author="bot")  # ... but nobody answers yet

        release.set()
        reply = await _frame(ws, "message", author="bot")
        assert reply["text"]
        assert (await (await client.get("/healthz")).json())["bot"] == "ready"
        assert app[RUNTIME].bot_ready.is_set()
        await ws.close()
    finally:
        release.set()
