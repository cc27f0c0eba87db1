"""What one answered message costs on PostgreSQL: ``python -m tests.bench.pgcost``.

Not a test and not part of ``make bench``: a measurement for the several-processes work
(issue 16). It starts a throwaway cluster with ``pg_stat_statements``, ``--processes`` servers
on one database, drives a closed loop of ``--clients`` customers for ``--seconds`` on the
widget or the Telegram path, and prints, per answered message:

* commits (``pg_stat_database.xact_commit``) and statements (``pg_stat_statements`` calls),
  NOTIFYs among them; the busiest statements by calls;
* CPU seconds of the server processes and of PostgreSQL (the postmaster's reaped children plus
  its live ones, from ``/proc``), which is what several processes on shared cores compete for;
* PostgreSQL's CPU split by process kind (pool connections, listeners, backends that exited
  during the run: a churning pool shows there), the load generator's own CPU (this process, with
  the fake Bot API), and the statements that took the most execution time (triggers included);
* answered messages per second (noise on a loaded machine) and the servers' resident memory;
* the hot tables' row writes per message (``pg_stat_user_tables``: inserts, updates, HOT updates —
  an update that is not HOT writes an entry in every index of the table), read after the backends
  have flushed their counters (PostgreSQL does that when a backend is idle for 10 s).

``--env SHOPDESK_X=V`` gives the servers a setting; ``--pg-options`` more server options
(``--keep`` keeps PostgreSQL's log with the servers' logs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from tests.bench.cpu import cpu_seconds, postmaster_pid
from tests.bench.load import Router, TelegramTarget, WidgetTarget, closed_loop, first_answer
from tests.bench.servers import WEBHOOK_SECRET, ServerProcess, rss_mb, start_shopdesk
from tests.fakes.telegram import DEFAULT_TOKEN
from tests.pg_cluster import PgServer, pg_bindir, start_cluster, stop_cluster

_cpu = cpu_seconds  # /proc readings shared with make bench's CPU columns (tests/bench/cpu.py)


def _postgres_cpu(cluster: PgServer, per_pid: dict[int, float] | None = None) -> float:
    postmaster = postmaster_pid(cluster.base)
    assert postmaster is not None
    total = _cpu(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == postmaster:
            cpu = _cpu(int(entry.name))
            total += cpu
            if per_pid is not None:
                per_pid[int(entry.name)] = cpu
    return total


async def _pg_labels(cluster: PgServer) -> dict[int, str]:
    """What each PostgreSQL process is: its backend type, and a client's application name."""
    rows = await _admin(cluster, "shop", "SELECT pid, backend_type, application_name, left(query, 30) AS q "
                                         "FROM pg_stat_activity")
    return {int(r["pid"]): (str(r["backend_type"]) if r["backend_type"] != "client backend" else
                            "client " + (str(r["application_name"]).split(":")[0] or
                                         ("listener" if str(r["q"]).startswith("LISTEN") else "pool")))
            for r in rows}


async def _admin(cluster: PgServer, database: str, sql: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(host=cluster.host, port=cluster.port, user=cluster.user, database=database)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _snapshot(cluster: PgServer, servers: list[ServerProcess]) -> dict[str, Any]:
    [row] = await _admin(cluster, "shop", "SELECT xact_commit, xact_rollback FROM pg_stat_database "
                                          "WHERE datname = 'shop'")
    calls = await _admin(cluster, "shop", "SELECT query, toplevel, calls, plans, total_plan_time, total_exec_time, wal_bytes FROM pg_stat_statements "
                                          "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'shop')")
    statements: Counter[str] = Counter()
    plans: Counter[str] = Counter()  # with pg_stat_statements.track_planning=on (--pg-options)
    wal: Counter[str] = Counter()
    plan_times: Counter[str] = Counter()
    times: Counter[str] = Counter()
    per_pid: dict[int, float] = {}
    for r in calls:
        statements[r["query"]] += int(r["calls"])
        plans[r["query"]] += int(r["plans"])
        if r["toplevel"]:  # a nested statement's time is in its top-level statement's already
            times[r["query"]] += float(r["total_exec_time"])
            wal[r["query"]] += int(r["wal_bytes"])
            plan_times[r["query"]] += float(r["total_plan_time"])
    return {"commits": int(row["xact_commit"]), "rollbacks": int(row["xact_rollback"]),
            "statements": dict(statements), "plans": dict(plans), "times": dict(times), "wal": dict(wal),
            "plan_times": dict(plan_times),
            "server_cpu": sum(_cpu(s.proc.pid) for s in servers), "pg_cpu": _postgres_cpu(cluster, per_pid),
            "pg_per_pid": per_pid, "pg_labels": await _pg_labels(cluster),
            "generator_cpu": _cpu(os.getpid())}


_TABLE_STATS = ("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                "WHERE relname IN ('conversation', 'message', 'outbox', 'contact')")


async def _table_stats(cluster: PgServer) -> dict[str, tuple[int, int, int]]:
    rows = await _admin(cluster, "shop", _TABLE_STATS)
    [wal] = await _admin(cluster, "shop", "SELECT wal_records, wal_bytes FROM pg_stat_wal")
    return {"wal": (int(wal["wal_records"]), int(wal["wal_bytes"]), 0),
            **{str(r["relname"]): (int(r["n_tup_ins"]), int(r["n_tup_upd"]), int(r["n_tup_hot_upd"])) for r in rows}}


def _table_writes(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]],
                  answered: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, (ins, upd, hot) in sorted(after.items()):
        if name == "wal":
            continue
        b_ins, b_upd, b_hot = before.get(name, (0, 0, 0))
        out[name] = {"inserts": round((ins - b_ins) / answered, 3), "updates": round((upd - b_upd) / answered, 3),
                     "hot_updates": round((hot - b_hot) / answered, 3)}
    return out


def _pg_breakdown(before: dict[str, Any], after: dict[str, Any], answered: int, left_out: float) -> dict[str, float]:
    labels = {**before["pg_labels"], **after["pg_labels"]}
    split: Counter[str] = Counter()
    for pid, cpu in after["pg_per_pid"].items():
        split[labels.get(pid, "other")] += cpu - before["pg_per_pid"].get(pid, 0.0)
    split["exited"] = (after["pg_cpu"] - before["pg_cpu"] - left_out) - sum(split.values())
    return {k: round(1000 * v / answered, 2) for k, v in split.most_common()}


async def _sample_waits(cluster: PgServer, waits: Counter[str], own: dict[str, float]) -> None:
    """Sample what the servers' connections do every 50 ms; ``own`` gets this sampler's own cost
    (its queries, each a transaction, and its backend's CPU), which the results leave out."""
    import asyncpg

    conn = await asyncpg.connect(host=cluster.host, port=cluster.port, user=cluster.user, database="shop")
    pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
    own["cpu_before"] = _cpu(pid)
    try:
        while True:
            rows = await conn.fetch(_SAMPLE)
            own["queries"] = own.get("queries", 0) + 1
            for r in rows:
                kind = f"{r['wait_event_type']}:{r['wait_event']}" if r["wait_event_type"] else "CPU"
                if r["wait_event_type"] == "Lock":
                    kind += " " + " ".join(str(r["q"]).split())[:50]
                waits[f"{r['state']} {kind}"] += 1
            await asyncio.sleep(0.05)
    finally:
        own["cpu"] = _cpu(pid) - own["cpu_before"]
        await conn.close()


_SAMPLE = ("SELECT state, wait_event_type, wait_event, left(query, 60) AS q FROM pg_stat_activity "
           "WHERE datname = 'shop' AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
           "AND state <> 'idle' AND query NOT LIKE 'LISTEN%'")


def _start_perf(path: str, seconds: float, pids: list[int]) -> subprocess.Popen[bytes]:
    """``perf record`` of this cluster's PostgreSQL processes (``pids``: the ones running when the
    measured closed loop starts) for that loop only; ``perf report -i PATH --sort symbol``."""
    return subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", ",".join(map(str, pids)), "-o", path,
                             "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.bench.__main__ import FakeApiServer

    bindir = pg_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found")
    cluster = await asyncio.to_thread(start_cluster, bindir, extra_options=(
        "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
        + (f" {args.pg_options}" if args.pg_options else "")))
    workdir = Path(tempfile.mkdtemp(prefix="shopdesk-pgcost-"))
    fake = FakeApiServer()
    await fake.start()
    servers: list[ServerProcess] = []
    target: WidgetTarget | TelegramTarget | None = None
    try:
        await _admin(cluster, "postgres", "CREATE DATABASE shop")
        await _admin(cluster, "shop", "CREATE EXTENSION pg_stat_statements")
        url = cluster.url("shop")
        extra_env = dict(item.split("=", 1) for item in args.env)
        servers.append(await start_shopdesk("pgcost #1", url, workdir, fake.base, token=DEFAULT_TOKEN,
                                            extra_env=extra_env))
        servers += await asyncio.gather(*(start_shopdesk(f"pgcost #{i + 1}", url, workdir, fake.base,
                                                         token=DEFAULT_TOKEN, extra_env=extra_env)
                                          for i in range(1, args.processes)))
        router = Router()
        urls = [s.url for s in servers]
        if args.path == "widget":
            target = WidgetTarget(urls, router)
        else:
            fake.router = router
            target = TelegramTarget(urls, router, WEBHOOK_SECRET, customers=args.customers)
        await target.open(args.customers, timeout=60)
        if await first_answer(target, router, bound=90) is None:
            raise RuntimeError("no first answer")
        # every customer's conversation exists before the measurement (a first message costs more)
        await closed_loop(target, router, clients=args.customers, duration=0.5, bound=60, grace=60,
                          phase="warm-up")
        await closed_loop(target, router, clients=min(20, args.clients), duration=3, bound=30, grace=10,
                          phase="warm-up")
        await router.settle(10)
        await asyncio.sleep(args.idle)  # a quiet moment: what an idle process costs is not counted below
        await asyncio.sleep(11)  # every backend has flushed its table counters (idle for 10 s)
        tables_before = await _table_stats(cluster)
        await _admin(cluster, "shop", "SELECT pg_stat_statements_reset()")
        before = await _snapshot(cluster, servers)
        load_before = os.getloadavg()
        waits: Counter[str] = Counter()
        own: dict[str, float] = {}
        sampler = asyncio.create_task(_sample_waits(cluster, waits, own))
        profiler = _start_perf(args.perf, args.seconds, sorted(before["pg_per_pid"])) if args.perf else None
        try:
            stats = await closed_loop(target, router, clients=args.clients, duration=args.seconds, bound=30,
                                      grace=10, phase="measured")
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            if profiler is not None:
                await asyncio.to_thread(profiler.wait)
        await router.settle(10)
        after = await _snapshot(cluster, servers)
        summary = stats.summary()
        answered = max(1, stats.answered)
        await asyncio.sleep(11)  # as above: the counters of the measured run are all in
        tables_after = await _table_stats(cluster)
        # the sampler's own statements, transactions and CPU are not the servers' (left out below)
        statements = {q: n for q, n in after["statements"].items() if "wait_event_type, wait_event" not in q}
        times = {q: t for q, t in after["times"].items() if "wait_event_type, wait_event" not in q}
        total_calls = sum(statements.values())
        notifies = sum(n for q, n in statements.items() if "pg_notify" in q.lower() or q.lower().startswith("notify"))
        top = sorted(statements.items(), key=lambda kv: -kv[1])[: args.top]
        slowest = sorted(times.items(), key=lambda kv: -kv[1])[: args.top]
        result = {
            "path": args.path, "processes": args.processes, "clients": args.clients,
            "answered": stats.answered, "answered_per_s": summary["answered_per_s"],
            "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"],
            "commits_per_msg": round((after["commits"] - before["commits"] - own.get("queries", 0)) / answered, 2),
            "rollbacks_per_msg": round((after["rollbacks"] - before["rollbacks"]) / answered, 2),
            "statements_per_msg": round(total_calls / answered, 2),
            "notifies_per_msg": round(notifies / answered, 3),
            # WAL written (pg_stat_wal, the whole cluster: the sampler's reads write none)
            "wal_records_per_msg": round((tables_after["wal"][0] - tables_before["wal"][0]) / answered, 2),
            "wal_bytes_per_msg": round((tables_after["wal"][1] - tables_before["wal"][1]) / answered),
            "server_cpu_ms_per_msg": round(1000 * (after["server_cpu"] - before["server_cpu"]) / answered, 2),
            "pg_cpu_ms_per_msg": round(1000 * (after["pg_cpu"] - before["pg_cpu"] - own.get("cpu", 0.0)) / answered, 2),
            "sampler_left_out": {"transactions": int(own.get("queries", 0)),
                                 "pg_cpu_ms_per_msg": round(1000 * own.get("cpu", 0.0) / answered, 2)},
            # this process: the load generator, the fake Bot API and the 20 Hz activity sampler's client side
            "generator_cpu_ms_per_msg": round(1000 * (after["generator_cpu"] - before["generator_cpu"]) / answered, 2),
            # executing top-level statements (triggers included), as PostgreSQL timed them
            "pg_exec_ms_per_msg": round(sum(times.values()) / answered, 2),
            # planning them (0 unless --pg-options '-c pg_stat_statements.track_planning=on')
            "pg_plan_ms_per_msg": round(sum(t for q, t in after["plan_times"].items()
                                            if "wait_event_type, wait_event" not in q) / answered, 3),
            # PostgreSQL's CPU per answered message by process kind (from /proc; "exited": reaped children)
            "pg_cpu_ms_per_msg_by_process": _pg_breakdown(before, after, answered, own.get("cpu", 0.0)),
            # rows written per answered message (the quiet moments before and after add nothing)
            "table_writes_per_msg": _table_writes(tables_before, tables_after, answered),
            "extra_replies": router.extra,  # replies nobody waited for (a repeated send, or an answer after its bound)
            "rss_mb": [round(rss_mb(s.proc.pid) or 0, 1) for s in servers],
            "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            # what the servers' connections were doing, sampled every 50 ms (Lock:* = waiting for a row lock)
            "activity_samples": dict(waits.most_common(12)),
            "top_statements": [{"calls_per_msg": round(n / answered, 3), "query": " ".join(q.split())[:160]}
                               for q, n in top],
            "top_statements_by_time": [{"exec_ms_per_msg": round(t / answered, 3),
                                        "calls_per_msg": round(statements.get(q, 0) / answered, 3),
                                        "plans_per_msg": round(after["plans"].get(q, 0) / answered, 3),
                                        "plan_ms_per_msg": round(after["plan_times"].get(q, 0.0) / answered, 3),
                                        "wal_bytes_per_msg": round(after["wal"].get(q, 0) / answered),
                                        "query": " ".join(q.split())[:160]} for q, t in slowest],
        }
        if args.quiet:
            await asyncio.sleep(args.quiet)  # the resident size once the burst is over
            result["rss_after_quiet_mb"] = [round(rss_mb(s.proc.pid) or 0, 1) for s in servers]
        return result
    finally:
        if target is not None:
            await target.close()
        for server in servers:
            server.stop()
        await fake.stop()
        if args.keep and cluster.base is not None:
            shutil.copyfile(cluster.base / "log", workdir / "postgresql.log")
        await asyncio.to_thread(stop_cluster, cluster)
        if args.keep:
            print(f"server logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.pgcost", description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--path", choices=("widget", "telegram"), default="telegram")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle", type=float, default=0.0, help="seconds of quiet before the measurement")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--quiet", type=float, default=0.0, help="also read RSS after this many quiet seconds")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--env", action="append", default=[], metavar="SHOPDESK_X=VALUE",
                        help="a setting for the servers (repeatable)")
    parser.add_argument("--pg-options", default="", help="more server options, e.g. '-c log_statement=all'")
    parser.add_argument("--json", default="")
    parser.add_argument("--perf", default="", metavar="PATH",
                        help="record PostgreSQL during the measured loop with `perf record -g` into PATH")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
