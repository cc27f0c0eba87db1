"""``python -m tests.bench.stages [--paths widget,telegram] [--rates 50,200] [--seconds 6] [--repeat 1]``:
where a message's latency goes, stage by stage, at fixed open-loop rates (one ``shopdesk serve``
on SQLite, the server started with ``BENCH_STAGE_TRACE``, see ``shopbase/stagetrace.py``).

For each path and rate it prints the end-to-end p50/p99 measured by the load generator (from the
*scheduled* send time, as ``make bench``) and, from the server's own timestamps, the p50/p99 of
each step (received → recorded → routed → turn started → answered (committed) → claimed by the
outbox → sending → sent) and of received → sent, plus the server's CPU per answered message and
the load generator's own event-loop lag (a late generator shows up in the end-to-end figures,
not in the server's steps).

The fake Bot API runs in a process of its own (``tests.bench.fake_api.FakeBotApiProcess``) and
stamps each reply's arrival itself, so neither the load generator's loop nor a GIL it would share
delays a Telegram reply's timestamp. Loopback only, bounded in time. Linux only (/proc)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.bench.__main__ import FakeApiServer
from tests.bench.databases import Databases
from tests.bench.load import Router, TelegramTarget, WidgetTarget, closed_loop, first_answer, open_loop, percentile
from tests.bench.servers import WEBHOOK_SECRET, start_shopdesk
from tests.fakes.telegram import DEFAULT_TOKEN

CUSTOMERS = 300
#: the server's stages of one inbound message, in order (keyed by the message id)
MESSAGE_STAGES = ("received", "recorded", "routed", "turn", "answered")
#: the outbox's stages of its reply (keyed by conversation, paired in order)
OUTBOX_STAGES = ("claimed", "sending", "sent")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the stages ------------------------------------------------------------------------------


Stamp = tuple[float, float]  # wall (perf_counter), the loop thread's CPU (thread_time)


def read_trace(path: Path) -> tuple[dict[str, dict[int, Stamp]], dict[str, dict[int, list[Stamp]]], dict[int, int]]:
    by_message: dict[str, dict[int, Stamp]] = defaultdict(dict)
    by_conversation: dict[str, dict[int, list[Stamp]]] = defaultdict(lambda: defaultdict(list))
    conversation_of: dict[int, int] = {}
    for line in path.read_text().splitlines():
        stage, key, at, used = line.split("\t")
        if stage == "conv":
            conversation_of[int(key)] = int(float(at))
        elif stage in OUTBOX_STAGES:
            by_conversation[stage][int(key)].append((float(at), float(used)))
        else:
            by_message[stage].setdefault(int(key), (float(at), float(used)))
    return by_message, by_conversation, conversation_of


def stage_table(path: Path) -> dict[str, Any]:
    """p50/p99 (ms) of each step between consecutive stages, per answered message: wall time and
    the server loop's CPU time spent meanwhile."""
    by_message, by_conversation, conversation_of = read_trace(path)
    rows: dict[int, dict[str, Stamp]] = {}
    for stage in MESSAGE_STAGES:
        for message_id, at in by_message.get(stage, {}).items():
            rows.setdefault(message_id, {})[stage] = at
    # the n-th reply claimed/sent in a conversation answers its n-th answered message
    per_conversation: dict[int, list[int]] = defaultdict(list)
    for message_id in sorted(rows):
        if "answered" in rows[message_id] and message_id in conversation_of:
            per_conversation[conversation_of[message_id]].append(message_id)
    for conversation, message_ids in per_conversation.items():
        for stage in OUTBOX_STAGES:
            for message_id, at in zip(message_ids, by_conversation.get(stage, {}).get(conversation, []), strict=False):
                rows[message_id][stage] = at
    order = MESSAGE_STAGES + OUTBOX_STAGES
    steps: dict[str, list[float]] = defaultdict(list)
    busy: dict[str, list[float]] = defaultdict(list)
    for row in rows.values():
        if not all(s in row for s in order):
            continue
        for a, b in [*zip(order, order[1:], strict=False), ("received", "sent")]:
            steps[f"{a}→{b}"].append(row[b][0] - row[a][0])
            busy[f"{a}→{b}"].append(row[b][1] - row[a][1])
    table: dict[str, Any] = {name: (_ms(percentile(v, 50)), _ms(percentile(v, 99)),
                                    _ms(percentile(busy[name], 50)), _ms(percentile(busy[name], 99)))
                             for name, v in steps.items()}
    table["complete"] = len(steps.get("received→sent", []))
    return table


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """The load generator's own lateness: how late a 1 ms sleep wakes up."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        samples.append(time.perf_counter() - before - 0.001)


async def run_path(path: str, rates: list[int], seconds: float, repeat: int, work: Path,
                   fake: FakeApiServer, profile: str = "") -> None:
    trace = work / f"trace-{path}"
    os.environ["BENCH_STAGE_TRACE"] = str(trace)
    url = await Databases(work).url("sqlite", f"stages-{path}")
    server = await start_shopdesk(f"stages {path}", url, work, fake.base, token=DEFAULT_TOKEN)
    os.environ.pop("BENCH_STAGE_TRACE", None)
    router = Router()
    fake.router = router
    target: WidgetTarget | TelegramTarget | None = None
    pid = server.proc.pid
    try:
        target = (WidgetTarget(server.urls, router) if path == "widget"
                  else TelegramTarget(server.urls, router, WEBHOOK_SECRET, customers=CUSTOMERS))
        await target.open(CUSTOMERS, timeout=60)
        if await first_answer(target, router, bound=90) is None:
            raise SystemExit("no answer to a first message within 90 s")
        await closed_loop(target, router, clients=20, duration=3, bound=10, grace=2, phase="warm-up")
        await router.settle(5)
        idle = cpu_seconds(pid)
        await asyncio.sleep(2)
        print(f"{path}: server idle CPU {100 * (cpu_seconds(pid) - idle) / 2:.0f} % of a core")
        for _ in range(repeat):
            for rate in rates:
                os.kill(pid, signal.SIGUSR2)
                await asyncio.sleep(0.2)
                lag: list[float] = []
                stop = asyncio.Event()
                lagger = asyncio.create_task(loop_lag(lag, stop))
                spy = None
                if profile:
                    spy = await asyncio.create_subprocess_exec(
                        profile, "record", "-p", str(pid), "-f", "raw", "-r", "250", "-d", str(int(seconds)),
                        "-o", str(work / f"profile-{path}-{rate}.txt"),
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                before = cpu_seconds(pid)
                stats = await open_loop(target, router, rate=rate, duration=seconds, drain=5,
                                        customers=CUSTOMERS, phase=f"open {rate}/s")
                used = cpu_seconds(pid) - before
                if spy is not None:
                    await spy.wait()
                    print(f"    py-spy profile: {work / f'profile-{path}-{rate}.txt'}")
                stop.set()
                await lagger
                os.kill(pid, signal.SIGUSR1)
                await asyncio.sleep(0.5)
                summary = stats.summary()
                table = stage_table(Path(f"{trace}.{pid}"))
                print(f"{path} {rate}/s: answered={summary['answered']}/{summary['sent']} "
                      f"e2e p50={summary['p50_ms']} p99={summary['p99_ms']} ms; "
                      f"server cpu {1000 * used / max(1, stats.answered):.2f} ms/message; "
                      f"generator lag p50={_ms(percentile(lag, 50))} p99={_ms(percentile(lag, 99))} ms; "
                      f"load {os.getloadavg()[0]:.2f}")
                print(f"    {'step (ms)':22s} {'wall p50':>9} {'p99':>8} {'loop-cpu p50':>13} {'p99':>8}")
                for name, value in table.items():
                    if name != "complete":
                        print(f"    {name:22s} {value[0]!s:>9} {value[1]!s:>8} {value[2]!s:>13} {value[3]!s:>8}")
                print(f"    ({table['complete']} messages traced through every stage)")
                await router.settle(5)
    finally:
        if target is not None:
            await target.close()
        server.stop()
        fake.router = None


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="shopdesk-stages-"))
    fake = FakeApiServer()
    await fake.start()
    try:
        for path in args.paths.split(","):
            await run_path(path, [int(r) for r in args.rates.split(",")], args.seconds, args.repeat, work, fake,
                           args.py_spy)
    finally:
        await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default="widget,telegram")
    parser.add_argument("--rates", default="50,200")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--py-spy", default="", metavar="PATH",
                        help="sample the server with this py-spy during each rate (raw stacks in the work dir)")
    args = parser.parse_args()
    asyncio.run(main(args))
