"""The chat widget's per-socket flood limit comes from the settings (SHOPDESK_WIDGET_PER_SECOND,
SHOPDESK_WIDGET_BURST); 0 per second turns it off."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from inbox.models import Message
from tests.db_helpers import count


async def _frames(ws: Any, n: int) -> list[dict[str, Any]]:
    return [json.loads((await asyncio.wait_for(ws.receive(), 30)).data) for _ in range(n)]


async def _burst(aiohttp_client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, sends: int) -> list[dict[str, Any]]:
    import shopdesk.app
    from shopdesk.app import build_app

    async def never_ready(runtime: Any) -> None:  # the widget's edge only: the bot stays silent
        return None

    monkeypatch.setattr(shopdesk.app, "_start_bot", never_ready)
    client = await aiohttp_client(build_app(settings))
    ws = await client.ws_connect("/widget/ws")
    await ws.send_json({"type": "hello", "lang": "en"})
    while json.loads((await asyncio.wait_for(ws.receive(), 30)).data)["type"] != "history":
        pass
    for i in range(sends):
        await ws.send_json({"type": "message", "text": f"message {i}", "client_id": f"c{i}"})
    frames = await _frames(ws, sends)
    await ws.close()
    return frames


async def test_widget_limit_off(aiohttp_client: Any, settings: Any, sessions: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings.model_copy(update={"widget_per_second": 0.0, "widget_burst": 1})
    frames = await _burst(aiohttp_client, settings, monkeypatch, 40)
    assert [f["type"] for f in frames] == ["message"] * 40
    assert await count(sessions, Message) == 40


async def test_widget_limit_from_settings(aiohttp_client: Any, settings: Any, sessions: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # a burst of 4 (the hello took one), then one frame every 1,000 s: the rest is refused
    settings = settings.model_copy(update={"widget_per_second": 0.001, "widget_burst": 4})
    frames = await _burst(aiohttp_client, settings, monkeypatch, 10)
    assert [f["type"] for f in frames] == ["message"] * 3 + ["error"] * 7
    assert all("too fast" in f["message"] for f in frames[3:])
    assert await count(sessions, Message) == 3


def test_widget_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from shopdesk.settings import SettingsError, load_settings

    monkeypatch.setenv("SHOPDESK_WIDGET_PER_SECOND", "50")
    monkeypatch.setenv("SHOPDESK_WIDGET_BURST", "100")
    settings = load_settings()
    assert (settings.widget_per_second, settings.widget_burst) == (50.0, 100)
    monkeypatch.setenv("SHOPDESK_WIDGET_PER_SECOND", "-1")
    with pytest.raises(SettingsError, match="SHOPDESK_WIDGET_PER_SECOND"):
        load_settings()
