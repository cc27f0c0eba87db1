"""``python -m tests.bench.telegram_send [--sends 4000] [--in-flight 16]``: the CPU one Telegram reply
costs the sending side (``TelegramSender.send`` → python-telegram-bot → the configured request
backend), measured as this thread's CPU time while the slim fake Bot API answers from its own
thread (its work is not counted). Half the replies carry a two-button keyboard. A before/after
figure for the Telegram connector on a loaded machine, where messages per second are noise.
Loopback only, bounded in count. Prints one line."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bot.connectors.telegram.send import SendPacer, TelegramSender
from bot.connectors.telegram.setup import make_bot
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import Channel, Contact
from tests.bench.fake_api import FakeBotApi, FakeBotApiThread
from tests.fakes.telegram import DEFAULT_TOKEN
from tests.pg_cluster import free_port


async def main(sends: int, in_flight: int, http_client: str) -> None:
    from shopdesk.settings import load_settings

    port = free_port()
    api = FakeBotApiThread(FakeBotApi(lambda _chat, _at: None), port)
    api.start()
    settings: Any = load_settings(telegram_token=DEFAULT_TOKEN, telegram_api_url=f"http://127.0.0.1:{port}/bot",
                                  secret_key="bench-secret-key-0123456789abcdef0123456789",
                                  telegram_http_client=http_client)
    bot = make_bot(settings)
    await bot.initialize()
    sender = TelegramSender(bot, SendPacer(0, 0), public_url="https://shop.example", token=DEFAULT_TOKEN)
    buttons = (QuickReply("Track my order", "intent:track_order"), QuickReply("Talk to a person", "intent:agent"))
    payloads = [OutboundPayload("Your order #1234 ships tomorrow. Anything else I can help with?"),
                OutboundPayload("Your order #1234 ships tomorrow.", quick_replies=buttons)]
    contact = Contact(channel=Channel.telegram, external_id="10000001")

    async def customer(count: int) -> None:
        for i in range(count):
            await sender.send(contact, payloads[i % 2])

    try:
        await asyncio.gather(*(customer(20) for _ in range(in_flight)))  # warm: connections, caches
        per_task = max(1, sends // in_flight)
        cpu, wall = time.thread_time(), time.perf_counter()
        await asyncio.gather(*(customer(per_task) for _ in range(in_flight)))
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        done = per_task * in_flight
        print(f"telegram send ({http_client}): sends={done} in_flight={in_flight} "
              f"client_cpu_us_per_send={1e6 * cpu / done:.0f} wall={wall:.2f}s")
    finally:
        await bot.shutdown()
        api.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=4000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--http-client", choices=["aiohttp", "httpx"], default="aiohttp")
    args = parser.parse_args()
    asyncio.run(main(args.sends, args.in_flight, args.http_client))
