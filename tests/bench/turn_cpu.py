"""``python -m tests.bench.turn_cpu [--customers 192] [--rounds 12] [--batch 32] [--profile FILE]``:
the CPU of a bot turn inside a micro-batch (``Pipeline.process_many``), in this process, on SQLite.

The benchmark's customers (``tests.bench.texts.CUSTOMER_TURNS``, six languages, as many per
language) each send their next message every round; the first ``WARM_UP`` rounds (one of each
message) are not measured; a round's messages are recorded (not measured), then answered in micro-batches of ``--batch`` conversations, and the loop
thread's CPU time (``time.thread_time``) around each ``process_many`` is added up. Prints the
CPU per answered turn (and with ``--profile`` writes a cProfile of the measured calls only).
Deterministic work, so before/after comparisons hold on a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import tempfile
import time
from pathlib import Path

from tests.bench.texts import CUSTOMER_TURNS, LANGUAGES

#: rounds not measured: conversations opened, every kind of message answered once (data files read)
WARM_UP = max(len(turns) for turns in CUSTOMER_TURNS.values())


async def main(customers: int, rounds: int, batch: int, profile: str | None) -> None:
    from bot.nlu import analyze
    from bot.pipeline import Pipeline
    from inbox.actions.message_record import message_record
    from inbox.events import EventBus
    from inbox.messages import InboundMessage
    from inbox.models import Channel
    from shopdesk.db import create_engine, migrate, session_maker
    from shopdesk.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="shopdesk-turn-cpu-"))
    url = f"sqlite+aiosqlite:///{work / 'shopdesk.db'}"
    engine = create_engine(url)
    await migrate(engine)
    sessions = session_maker(engine)
    settings = load_settings(database_url=url, secret_key="bench-secret-key-0123456789abcdef0123456789",
                             data_dir=work / "data")
    bus = EventBus()
    bus.bind(sessions)
    pipeline = Pipeline(sessions=sessions, bus=bus, settings=settings)
    analyze("hello")  # the models loaded before anything is measured
    people = [(f"v{i}", LANGUAGES[i % len(LANGUAGES)]) for i in range(customers)]
    profiler = cProfile.Profile() if profile else None
    cpu = 0.0
    answered = 0
    try:
        for round_ in range(WARM_UP + rounds):
            ids = []
            for who, lang in people:
                turns = CUSTOMER_TURNS[lang]
                message = InboundMessage(Channel.webchat, f"{who}-{round_}", who, turns[round_ % len(turns)],
                                         language_hint=lang)
                ids.append((await message_record(sessions, message)).message_id)
            for start in range(0, len(ids), batch):
                chunk = ids[start:start + batch]
                began = time.thread_time()
                measured = round_ >= WARM_UP
                if profiler is not None and measured:
                    profiler.enable()
                outcome = await pipeline.process_many(chunk)
                if profiler is not None:
                    profiler.disable()
                if measured:
                    cpu += time.thread_time() - began
                    answered += len(chunk)
                if any(error is not None for error in outcome.values()):
                    raise SystemExit(f"a turn failed: {outcome}")
            await bus.wait_idle()
    finally:
        await engine.dispose()
    print(f"turns={answered} batch={batch} cpu_s={cpu!r} cpu_us_per_turn={round(1e6 * cpu / max(1, answered))}")
    if profiler is not None and profile:
        profiler.dump_stats(profile)
        print(f"profile: {profile}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=192)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--profile", help="write a cProfile of the measured process_many calls here")
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.rounds, args.batch, args.profile))
