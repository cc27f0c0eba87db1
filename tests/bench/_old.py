"""``make bench``: end-to-end chat throughput against the bare-aiohttp limit.

Starts the real app (``shopdesk.app.build_app``) on a fresh SQLite database and a free
loopback port, then opens ``--clients`` widget WebSockets that each send ``--messages``
customer messages, one at a time, waiting for the bot's reply to each (record → bot → outbox
→ socket). The same load is then run against a bare aiohttp WebSocket echo server, which is
the ceiling for this machine and client. Both run in this one process with the client, so
the numbers are comparable with each other, not absolute. Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

MESSAGES = ["hi", "where is my order?", "thanks", "what is your return policy?", "how long does shipping take?"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _client(url: str, count: int, latencies: list[float], *, hello: bool) -> int:
    answered = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        if hello:
            await ws.send_str(json.dumps({"type": "hello", "lang": "en"}))
            while (json.loads((await ws.receive(timeout=30)).data)).get("type") != "history":
                pass
        for i in range(count):
            text = MESSAGES[i % len(MESSAGES)]
            started = time.perf_counter()
            await ws.send_str(json.dumps({"type": "message", "text": text, "client_id": f"c{i}"}))
            while True:
                frame = json.loads((await ws.receive(timeout=30)).data)
                if frame.get("type") == "message" and frame.get("author") != "customer":
                    break
                if frame.get("type") == "error":
                    raise RuntimeError(frame.get("message"))
            latencies.append(time.perf_counter() - started)
            answered += 1
    return answered


async def _load(url: str, clients: int, messages: int, *, hello: bool) -> tuple[float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    results = await asyncio.wait_for(
        asyncio.gather(*(_client(url, messages, latencies, hello=hello) for _ in range(clients))), timeout=600
    )
    elapsed = time.perf_counter() - started
    return sum(results) / elapsed, latencies


async def _echo_app() -> web.Application:
    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            frame = json.loads(msg.data)
            await ws.send_str(json.dumps({"type": "message", "author": "bot", "text": frame.get("text", "")}))
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_echo)
    return app


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _report(name: str, rate: float, latencies: list[float]) -> None:
    p50 = statistics.median(latencies) * 1000
    p95 = sorted(latencies)[int(len(latencies) * 0.95) - 1] * 1000
    print(f"{name:<28} {rate:8.1f} replies/s   p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   n={len(latencies)}")


def _nlu_timing() -> None:
    """Median time per message of each understanding step, on the labelled messages of
    tests/nlu_heldout.csv (timing only; nothing of them is printed)."""
    import csv

    from bot.nlu import analyze, detect_language, extract_entities, get_classifier, get_tone

    with Path(__file__).with_name("nlu_heldout.csv").open(encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    classifier, tone = get_classifier(), get_tone()
    steps = {
        "language": detect_language,
        "intent": classifier.predict,
        "tone": tone.hostility,
        "entities": extract_entities,
        "whole analyze()": analyze,
    }
    parts = []
    for name, step in steps.items():
        for text in texts[:20]:
            step(text)  # warm up (lazy detectors, caches)
        times = []
        for text in texts:
            started = time.perf_counter()
            step(text)
            times.append(time.perf_counter() - started)
        parts.append(f"{name} {statistics.median(times) * 1000:.3f}")
    print(f"NLU median ms per message ({len(texts)} messages): " + ", ".join(parts))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5, help="per client; at most 7 (the widget's burst allowance)")
    args = parser.parse_args()
    args.messages = max(1, min(args.messages, 7))

    from shopdesk.app import build_app
    from shopdesk.db import create_engine, migrate, session_maker
    from shopdesk.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", data_dir=Path(tmp) / "data")
        engine = create_engine(settings.database_url)
        await migrate(engine)
        from shopdesk.demo import seed_demo_orders

        await seed_demo_orders(session_maker(engine), seed=7)
        await engine.dispose()
        from bot.nlu import get_classifier, get_tone

        get_classifier()  # train or load the models once, outside the measurement
        get_tone()
        _nlu_timing()
        port = _free_port()
        runner = await _serve(build_app(settings), port)
        try:
            rate, lat = await _load(f"http://127.0.0.1:{port}/widget/ws", args.clients, args.messages, hello=True)
            _report("shopdesk (SQLite, widget)", rate, lat)
        finally:
            await runner.cleanup()

    port = _free_port()
    runner = await _serve(await _echo_app(), port)
    try:
        rate, lat = await _load(f"http://127.0.0.1:{port}/ws", args.clients, args.messages, hello=False)
        _report("bare aiohttp echo", rate, lat)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
