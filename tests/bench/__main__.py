"""``python -m tests.bench [--quick]``: see ``tests/bench/__init__.py`` and the README's Benchmark section."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench import report
from tests.bench.cpu import CpuMeter, postmaster_pid, scaling_summary
from tests.bench.databases import Databases
from tests.bench.fake_api import FakeBotApiProcess
from tests.bench.load import Router, TelegramTarget, WidgetTarget, closed_loop, first_answer, open_loop
from tests.bench.servers import (
    WEBHOOK_SECRET,
    ServerGroup,
    ServerProcess,
    start_bare,
    start_shopdesk,
    start_shopdesk_group,
)
from tests.fakes.telegram import DEFAULT_TOKEN
from tests.pg_cluster import free_port


@dataclass(frozen=True)
class Profile:
    quick: bool
    databases: tuple[str, ...]
    customers: int  # widget sockets / Telegram chats per server
    clients: int  # closed-loop concurrency
    warmup: float
    closed: float
    soak: float  # an extra closed-loop run on the first Shopdesk server, for memory growth (0: none)
    rates: tuple[int, ...]
    open_seconds: float
    drain: float
    settle: float
    bound: float  # the longest a closed-loop customer waits for one answer
    grace: float  # after the closed-loop window, how long the messages in flight are awaited
    seed_conversations: int
    seed_messages: int
    page_requests: int
    page_timeout: float
    nlu_rounds: int
    run_timeout: float
    memory_messages: int = 0  # the long memory run: this many answered messages through one server (0: none)
    memory_seconds: float = 0.0  # ... or until this much time has passed


QUICK = Profile(quick=True, databases=("sqlite",), customers=300, clients=60, warmup=1.0, closed=4.0, soak=0.0,
                rates=(50, 200, 500), open_seconds=1.5, drain=1.5, settle=2.0, bound=10.0, grace=2.0,
                seed_conversations=10_000, seed_messages=100_000, page_requests=10, page_timeout=10.0, nlu_rounds=1, run_timeout=90.0,
                memory_messages=0, memory_seconds=300.0)
FULL = Profile(quick=False, databases=("sqlite", "postgresql"), customers=600, clients=200, warmup=3.0, closed=15.0,
               soak=40.0, rates=(50, 200, 500), open_seconds=5.0, drain=10.0, settle=10.0, bound=30.0, grace=10.0,
               seed_conversations=100_000, seed_messages=1_000_000, page_requests=60, page_timeout=30.0, nlu_rounds=3, run_timeout=420.0,
               memory_messages=100_000, memory_seconds=1800.0)

DB_LABEL = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


class FakeApiServer:
    """The slim Bot API in a process of its own (``FakeBotApiProcess``: it used to share this
    process's event loop with the load generator, whose work then delayed the replies' arrival
    stamps); replies go to whichever Router is current."""

    def __init__(self) -> None:
        self.router: Router | None = None
        self.port = free_port()
        self._process = FakeBotApiProcess(self.port, self._on_reply)

    def _on_reply(self, chat_id: int, at: float) -> None:
        if self.router is not None:
            self.router.arrived(chat_id, at)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    async def start(self) -> None:
        await self._process.start()

    async def stop(self) -> None:
        await self._process.stop()


@dataclass
class Prepared:
    """A server under test with its customers connected, ready to be measured."""

    run: dict[str, Any]
    router: Router
    server: ServerProcess | ServerGroup | None = None
    target: WidgetTarget | TelegramTarget | None = None

    async def close(self) -> None:
        if self.target is not None:
            await self.target.close()
            self.target = None
        if self.server is not None:
            self.server.stop()
            self.run["memory"] = self.server.memory
            self.server = None


async def prepare(label: str, path: str, start: Callable[[], Awaitable[ServerProcess | ServerGroup]], profile: Profile,
                  fake: FakeApiServer) -> Prepared:
    """Start the server, connect the customers, wait for a first answer (the models are loaded
    then). Every step is bounded; a failure is recorded in ``run["error"]``. Each server has its
    own Router (a stopped server's unanswered messages must not hold up the next one); the fake
    Bot API reports to the Telegram one."""
    router = Router()
    if path == "telegram":
        fake.router = router
    prep = Prepared({"server": label, "path": path, "phases": []}, router)
    try:
        prep.server = server = await start()
        prep.run["ready_s"] = round(server.started_in, 2)
        server.rss("ready")
        if path == "widget":
            prep.target = WidgetTarget(server.urls, router)
        else:
            prep.target = TelegramTarget(server.urls, router, WEBHOOK_SECRET, customers=profile.customers)
        await prep.target.open(profile.customers, timeout=60)
        first = await first_answer(prep.target, router, bound=90)
        if first is None:
            raise RuntimeError("no answer to a first message within 90s")
        prep.run["first_answer_s"] = round(first, 2)
    except Exception as exc:
        prep.run["error"] = f"{type(exc).__name__}: {exc}"[:400]
    except BaseException:
        await prep.close()
        raise
    return prep


Meter = Callable[[ServerProcess | ServerGroup], CpuMeter]


async def measure(prep: Prepared, profile: Profile, *, soak: bool, meter_for: Meter | None = None) -> None:
    """Warm-up, closed loop (and soak), then the open-loop rates; with ``meter_for``, the CPU per
    answered message of the closed-loop phases (tests/bench/cpu.py)."""
    run, server, target, router = prep.run, prep.server, prep.target, prep.router
    assert server is not None and target is not None
    meter = meter_for(server) if meter_for is not None else None
    await router.settle(profile.settle)
    await closed_loop(target, router, clients=min(20, profile.clients), duration=profile.warmup,
                      bound=profile.bound, grace=profile.grace, phase="warm-up")
    await router.settle(profile.settle)
    server.rss("after warm-up")
    before = meter.read() if meter is not None else None
    closed = await closed_loop(target, router, clients=profile.clients, duration=profile.closed,
                               bound=profile.bound, grace=profile.grace, phase=f"closed x{profile.clients}")
    run["phases"].append(closed.summary() | (meter.per_message(before, closed.answered) if meter else {}))
    closed_rss = server.rss("after closed loop")
    if soak and profile.soak and await router.settle(profile.settle):
        # the long run: memory growth per message once everything is warm (the first closed
        # loop still fills caches and pools, so growth is counted from its end)
        before = meter.read() if meter is not None else None
        long_run = await closed_loop(target, router, clients=profile.clients, duration=profile.soak,
                                     bound=profile.bound, grace=profile.grace, phase="soak")
        run["phases"].append(long_run.summary() | (meter.per_message(before, long_run.answered) if meter else {}))
        soak_rss = server.rss("after soak")
        if closed_rss is not None and soak_rss is not None and long_run.answered:
            run["growth_kb_per_1k_messages"] = round((soak_rss - closed_rss) * 1024 / (long_run.answered / 1000), 1)
    saturated = False
    for rate in profile.rates:
        name = f"open {rate}/s"
        if saturated or not await router.settle(profile.settle):
            reason = (f"{router.outstanding} replies of the previous load still missing after "
                      f"{profile.settle:g}s more" if not saturated else "server still saturated")
            run["phases"].append({"phase": name, "offered_per_s": rate, "skipped": reason})
            saturated = True
            continue
        stats = await open_loop(target, router, rate=rate, duration=profile.open_seconds, drain=profile.drain,
                                customers=profile.customers, phase=name)
        run["phases"].append(stats.summary())
    server.rss("end")
    if target.refused:
        run["refusals"] = target.refused


async def run_group(results: dict[str, Any], label: str,
                    starts: dict[str, Callable[[], Awaitable[ServerProcess | ServerGroup]]],
                    profile: Profile, fake: FakeApiServer, *, soak_first: bool, cpu: bool = False,
                    postmaster: int | None = None) -> None:
    """One server per path, started and warmed up together (start-up is mostly loading models,
    which must not overlap a measurement), then measured one after the other, each alone. With
    ``cpu``, the closed-loop phases get CPU per answered message of the server, PostgreSQL (the
    tree of ``postmaster``) and the load generator (this process and the fake Bot API)."""

    def meter_for(server: ServerProcess | ServerGroup) -> CpuMeter:
        processes = server.servers if isinstance(server, ServerGroup) else [server]
        return CpuMeter([s.proc.pid for s in processes], postmaster, [fake.pid] if fake.pid else [])

    preps: list[Prepared] = []
    try:
        preps = list(await asyncio.gather(*(prepare(label, path, start, profile, fake)
                                            for path, start in starts.items())))
        for i, prep in enumerate(preps):
            if "error" not in prep.run:
                try:
                    await asyncio.wait_for(measure(prep, profile, soak=soak_first and i == 0,
                                                   meter_for=meter_for if cpu else None), profile.run_timeout)
                except TimeoutError:
                    prep.run["error"] = f"did not finish within {profile.run_timeout:.0f}s"
                except Exception as exc:
                    prep.run["error"] = f"{type(exc).__name__}: {exc}"[:400]
                await prep.close()  # the next server is measured alone
            results["chat"].append(prep.run)
    finally:
        for prep in preps:
            await prep.close()
        fake.router = None
        for prep in preps:
            if prep.router.extra:
                results["notes"].append(f"{prep.run['path']} {label}: {prep.router.extra} replies nobody was "
                                        "waiting for")


async def inbox_run(kind: str, dbs: Databases, profile: Profile, workdir: Path, fake: FakeApiServer,
                    cache: Path | None = None, pages: tuple[str, ...] = ()) -> dict[str, Any]:
    from tests.bench.pages import PAGE_KINDS, create_agents, time_pages
    from tests.bench.seed import seed_postgresql, seed_sqlite

    row: dict[str, Any] = {"database": DB_LABEL[kind], "conversations": profile.seed_conversations,
                           "messages": profile.seed_messages}
    server: ServerProcess | None = None
    try:
        name = f"inbox_{kind}"
        started = time.perf_counter()
        reused = await dbs.restore_seeded(kind, name, cache, profile.seed_conversations, profile.seed_messages)
        if reused is not None:
            url = reused
            row["seed"] = {"reused": True}
        else:
            url = await dbs.url(kind, name)
            agents = await create_agents(url)
            if kind == "sqlite":
                row["seed"] = await asyncio.to_thread(seed_sqlite, url.split("///", 1)[1], profile.seed_conversations,
                                                      profile.seed_messages, assignees=agents)
            else:
                assert dbs.pg is not None
                row["seed"] = await seed_postgresql(dbs.pg.host, dbs.pg.port, dbs.pg.user, name,
                                                    profile.seed_conversations, profile.seed_messages,
                                                    assignees=agents)
            await dbs.save_seeded(kind, name, cache, profile.seed_conversations, profile.seed_messages)
        row["seed_s"] = round(time.perf_counter() - started, 1)
        server = await start_shopdesk(f"inbox {kind}", url, workdir, fake.base, token=DEFAULT_TOKEN)
        row["ready_s"] = round(server.started_in, 2)  # this one starts alone
        server.rss("ready")
        row["page_timeout_s"] = profile.page_timeout
        row.update(await time_pages(server.url, requests=profile.page_requests, timeout=profile.page_timeout,
                                    kinds=pages or PAGE_KINDS))
        row["rss_mb"] = server.rss("after pages")
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"[:400]
    finally:
        if server is not None:
            server.stop()
            row["memory"] = server.memory
    return row


async def memory_run(dbs: Databases, profile: Profile, workdir: Path, fake: FakeApiServer, messages: int) -> dict[str, Any]:
    """``messages`` answered widget messages through one SQLite server (closed loop, in rounds of
    at most 30 s, each followed by the server's RSS), bounded by ``profile.memory_seconds``:
    resident memory before and after, and its growth per 1,000 answered messages."""
    row: dict[str, Any] = {"server": "shopdesk SQLite", "path": "widget", "target_messages": messages, "rounds": []}
    router = Router()
    server: ServerProcess | None = None
    target: WidgetTarget | None = None
    try:
        url = await dbs.url("sqlite", "memory_sqlite")
        server = await start_shopdesk("memory sqlite", url, workdir, fake.base, token=DEFAULT_TOKEN)
        target = WidgetTarget(server.url, router)
        await target.open(profile.customers, timeout=60)
        if await first_answer(target, router, bound=90) is None:
            raise RuntimeError("no answer to a first message within 90s")
        # warm: caches, pools and the first conversations of every customer exist before "before"
        await closed_loop(target, router, clients=profile.clients, duration=max(profile.warmup, 5.0),
                          bound=profile.bound, grace=profile.grace, phase="warm-up")
        await router.settle(profile.settle)
        row["rss_before_mb"] = before = server.rss("before")
        answered, started = 0, time.perf_counter()
        while answered < messages:
            left = profile.memory_seconds - (time.perf_counter() - started)
            if left <= 1:
                row["note"] = f"stopped after {profile.memory_seconds:.0f}s"
                break
            stats = await closed_loop(target, router, clients=profile.clients, duration=min(30.0, left),
                                      bound=profile.bound, grace=profile.grace, phase="memory")
            answered += stats.answered
            summary = stats.summary()
            row["rounds"].append({"answered": answered, "per_s": summary["answered_per_s"], "lost": summary["lost"],
                                  "rss_mb": server.rss(f"after {answered}")})
            if not stats.answered:
                row["note"] = "a round answered nothing"
                break
        row["seconds"] = round(time.perf_counter() - started, 1)
        row["answered"] = answered
        row["rss_after_mb"] = after = server.rss("after")
        if before is not None and after is not None and answered:
            row["growth_kb_per_1k_messages"] = round((after - before) * 1024 / (answered / 1000), 1)
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"[:400]
    finally:
        if target is not None:
            await target.close()
        if server is not None:
            server.stop()
            row["memory"] = server.memory
    return row


async def bounded(coro: Awaitable[dict[str, Any]], seconds: float, fallback: dict[str, Any]) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError:
        return {**fallback, "error": f"did not finish within {seconds:.0f}s"}


async def main_async(profile: Profile, args: argparse.Namespace) -> dict[str, Any]:
    from tests.bench.nlu import time_understanding

    began = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {"quick": profile.quick, "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                 "cpus": os.cpu_count(), "python": platform.python_version(), "profile": profile.__dict__},
        "chat": [], "inbox": [], "notes": [],
    }
    databases = tuple(d for d in (args.databases.split(",") if args.databases else profile.databases) if d)
    paths = tuple(p for p in args.paths.split(",") if p)
    if "understanding" not in args.skip:
        try:
            results["understanding"] = await asyncio.to_thread(time_understanding, profile.nlu_rounds)
        except Exception as exc:
            results["understanding"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    workdir = Path(tempfile.mkdtemp(prefix="shopdesk-bench-"))
    dbs = Databases(workdir)
    fake = FakeApiServer()
    await fake.start()
    try:
        if "chat" not in args.skip:
            # a group: one server per path, prepared together, measured one at a time (run_group)
            bare_starts = {path: lambda: start_bare(workdir, f"{fake.base}{DEFAULT_TOKEN}") for path in paths}
            await run_group(results, "bare aiohttp", bare_starts, profile, fake, soak_first=False)
            for kind in databases:
                if kind == "postgresql" and not await dbs.start_pg():
                    results["notes"].append(f"PostgreSQL skipped: {dbs.pg_error}")
                    continue

                def shopdesk_start(path: str, kind: str = kind) -> Callable[[], Awaitable[ServerProcess]]:
                    async def start() -> ServerProcess:
                        url = await dbs.url(kind, f"chat_{path}_{kind}")
                        return await start_shopdesk(f"{path} {kind}", url, workdir, fake.base, token=DEFAULT_TOKEN)

                    return start

                first = not any(r["server"].startswith("shopdesk") for r in results["chat"])
                postmaster = postmaster_pid(dbs.pg.base) if kind == "postgresql" and dbs.pg else None
                await run_group(results, f"shopdesk {DB_LABEL[kind]}", {p: shopdesk_start(p) for p in paths}, profile,
                                fake, soak_first=first, cpu=True, postmaster=postmaster)
                if kind == "postgresql" and args.processes > 1:
                    # several processes on one database, customers spread over them (SQLite serves one)
                    def group_start(path: str, n: int = args.processes) -> Callable[[], Awaitable[ServerGroup]]:
                        async def start() -> ServerGroup:
                            url = await dbs.url("postgresql", f"chat_{path}_pg_x{n}")
                            return await start_shopdesk_group(f"{path} postgresql x{n}", url, workdir, fake.base,
                                                              token=DEFAULT_TOKEN, processes=n)

                        return start

                    await run_group(results, f"shopdesk {DB_LABEL[kind]} x{args.processes}",
                                    {p: group_start(p) for p in paths}, profile, fake, soak_first=False, cpu=True,
                                    postmaster=postmaster)
        if "inbox" not in args.skip:
            for kind in databases:
                if kind == "postgresql" and not await dbs.start_pg():
                    if not any("PostgreSQL skipped" in n for n in results["notes"]):
                        results["notes"].append(f"PostgreSQL skipped: {dbs.pg_error}")
                    continue
                cache = Path(args.inbox_cache) if args.inbox_cache else None
                pages = tuple(p for p in args.inbox_pages.split(",") if p)
                results["inbox"].append(await bounded(inbox_run(kind, dbs, profile, workdir, fake, cache, pages),
                                                      profile.run_timeout + 600, {"database": DB_LABEL[kind]}))
        memory_messages = profile.memory_messages if args.memory_messages is None else args.memory_messages
        if "memory" not in args.skip and memory_messages > 0:
            results["memory_run"] = await bounded(memory_run(dbs, profile, workdir, fake, memory_messages),
                                                  profile.memory_seconds + 300, {"server": "shopdesk SQLite"})
    finally:
        await fake.stop()
        dbs.close()
        if args.keep:
            results["notes"].append(f"server logs and SQLite files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    bare = {r["path"]: _closed_rate(r) for r in results["chat"] if r["server"] == "bare aiohttp"}
    ratios = {}
    for r in results["chat"]:
        if r["server"] != "bare aiohttp":
            rate, base = _closed_rate(r), bare.get(r["path"])
            ratios[f"{r['path']} {r['server'].split()[-1]}"] = round(rate / base, 4) if rate and base else None
    results["ratios"] = ratios
    scaling = {}
    for r in results["chat"]:
        server = r["server"]
        if server.startswith("shopdesk PostgreSQL x"):
            single = next((_closed_rate(o) for o in results["chat"]
                           if o["server"] == "shopdesk PostgreSQL" and o["path"] == r["path"]), None)
            rate = _closed_rate(r)
            scaling[f"{r['path']} {server.split()[-1]}"] = round(rate / single, 2) if rate and single else None
    if scaling:
        results["scaling"] = scaling  # N processes over one, closed loop (issue 16: ≥ 1.6 for two)
        # ... and what this machine allows, from the one-process row's CPU per message (tests/bench/cpu.py)
        results["scaling_cpu"] = scaling_summary(results["chat"], os.cpu_count() or 1)
    results["meta"]["seconds"] = round(time.perf_counter() - began, 1)
    return results


def _closed_rate(run: dict[str, Any]) -> float | None:
    for phase in run.get("phases", []):
        if phase.get("phase", "").startswith("closed") and not phase.get("skipped"):
            return float(phase["answered_per_s"])
    return None


def main() -> None:
    # a server stopped between phases may drop a reply mid-request: not worth a traceback
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description="Shopdesk's benchmark (make bench).")
    parser.add_argument("--quick", action="store_true", help="a first look in under two minutes (also QUICK=1)")
    parser.add_argument("--databases", default="", help="comma-separated: sqlite,postgresql (default: per profile)")
    parser.add_argument("--paths", default="widget,telegram", help="comma-separated: widget,telegram")
    parser.add_argument("--skip", default="",
                        help="comma-separated sections to leave out: chat,inbox,understanding,memory")
    parser.add_argument("--memory-messages", type=int, default=None,
                        help="answered messages of the memory run (RSS before and after, one SQLite server; "
                             "default: 100000 in the full profile, none in QUICK; 0: none)")
    parser.add_argument("--inbox-cache", default="", metavar="DIR",
                        help="keep the inbox section's seeded databases in DIR and reuse them in later runs "
                             "(keyed by seed size, seed generator and migration head; a SQLite file, a "
                             "PostgreSQL dump); the seed takes minutes, a reuse seconds")
    parser.add_argument("--inbox-pages", default="list,search,views,analytics",
                        help="comma-separated inbox measurements: list,search,views,analytics")
    parser.add_argument("--json", default="bench-results.json", help="where to write the results")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server logs, SQLite files)")
    parser.add_argument("--processes", type=int, default=2,
                        help="also measure N server processes on one PostgreSQL (1: only one process)")
    parser.add_argument("--proactive", type=int, default=0, metavar="N",
                        help="run only the proactive-updates scenario with N shipments (tests/bench/proactive.py)")
    args = parser.parse_args()
    if args.proactive:
        from tests.bench.proactive import print_report, run_proactive

        result = asyncio.run(run_proactive(args.proactive))
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
        print_report(result)
        return
    quick = args.quick or os.environ.get("QUICK", "") not in ("", "0")
    profile = QUICK if quick else FULL
    results = asyncio.run(main_async(profile, args))
    out = Path(args.json)
    results["meta"]["json_path"] = str(out)
    report.write_json(results, out)
    report.print_report(results)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
