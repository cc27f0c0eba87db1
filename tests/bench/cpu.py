"""CPU seconds of processes and process trees from ``/proc``, and CPU per answered message.

``make bench`` reads them before and after each closed-loop phase (``CpuMeter``) for three
parts: the Shopdesk server process(es), the PostgreSQL cluster (the postmaster and all its
children) and the load generator (the benchmark's own process and the fake Bot API). A
process's ``utime + stime`` in ``/proc/<pid>/stat`` covers all its threads, live and exited;
``cutime + cstime`` is what its children that it has reaped used (with their own reaped
children), so a PostgreSQL backend that exits during a phase is still counted through the
postmaster. ``python -m tests.bench.pgcost`` uses the same reading.

The bound on N processes' scaling (``scaling_bound``): a Shopdesk process runs its work on one
event loop, so one process answers at most 1/s messages per second, s = its CPU seconds per
message; all processes, PostgreSQL and the load generator share the machine's C CPUs, so at most
C/(s+p+g) (p: PostgreSQL's, g: the load generator's CPU per message). N processes answer at most
min(N/s, C/(s+p+g)), one at most min(1/s, C/(s+p+g)); their ratio is

    min(N, C·s/(s+p+g)) / min(1, C·s/(s+p+g))

(2s/(s+p+g) for two processes on two CPUs when p+g ≤ s), taken from the one-process row.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CpuMeter", "CpuReading", "ProcTable", "cpu_seconds", "ms_per_message", "postmaster_pid",
           "read_proc_table", "scaling_bound", "tree_cpu"]

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (``state`` first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """CPU seconds of ``pid`` (all its threads; with ``children``, plus its reaped children's);
    0.0 when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + ((cutime + cstime) if children else 0)) / _TICK


@dataclass(frozen=True)
class ProcEntry:
    ppid: int
    own: float  # utime + stime, seconds (all threads)
    reaped: float  # cutime + cstime, seconds (children it has waited for)


ProcTable = dict[int, ProcEntry]


def read_proc_table() -> ProcTable:
    """Every process in ``/proc`` now: parent and CPU seconds (one pass; a process that exits
    meanwhile is left out, its time is in its parent's reaped time once waited for)."""
    table: ProcTable = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None:
            continue
        try:
            ppid, utime, stime, cutime, cstime = (int(fields[i]) for i in (1, 11, 12, 13, 14))
        except (IndexError, ValueError):
            continue
        table[int(entry.name)] = ProcEntry(ppid, (utime + stime) / _TICK, (cutime + cstime) / _TICK)
    return table


def tree_cpu(table: ProcTable, roots: Iterable[int]) -> float:
    """CPU seconds of the processes ``roots`` and all their live descendants, each with its
    reaped children (so descendants that exited and were waited for count too). A root not
    in the table (gone) counts 0."""
    children: dict[int, list[int]] = {}
    for pid, entry in table.items():
        children.setdefault(entry.ppid, []).append(pid)
    total, seen = 0.0, set()
    stack = [r for r in roots if r in table]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table[pid].own + table[pid].reaped
        stack.extend(children.get(pid, ()))
    return total


def postmaster_pid(base: Path | None) -> int | None:
    """The postmaster of a ``tests/pg_cluster.py`` cluster (its ``base`` directory), or None."""
    if base is None:
        return None
    try:
        return int((base / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class CpuReading:
    server: float
    database: float | None
    generator: float


@dataclass
class CpuMeter:
    """What one closed-loop phase is charged with: ``servers`` (process trees), ``postmaster``
    (its tree; None: no separate database, SQLite), the generator: ``own`` (this process's own
    CPU only: its children are the servers under test) and ``generator_trees`` (the fake Bot API)."""

    servers: Sequence[int]
    postmaster: int | None = None
    generator_trees: Sequence[int] = ()
    own: int = field(default_factory=os.getpid)

    def read(self) -> CpuReading:
        table = read_proc_table()
        own = table.get(self.own)
        return CpuReading(
            server=tree_cpu(table, self.servers),
            database=None if self.postmaster is None else tree_cpu(table, [self.postmaster]),
            generator=(own.own if own is not None else 0.0) + tree_cpu(table, self.generator_trees),
        )

    def per_message(self, before: CpuReading | None, answered: int) -> dict[str, float | None]:
        """A reading now against ``before``: CPU ms per answered message (``ms_per_message``)."""
        return {} if before is None else ms_per_message(before, self.read(), answered)


def ms_per_message(before: CpuReading, after: CpuReading, answered: int) -> dict[str, float | None]:
    """CPU milliseconds per answered message of each part between two readings (None: no such
    part, or nothing answered)."""

    def per(a: float | None, b: float | None) -> float | None:
        if a is None or b is None or answered <= 0:
            return None
        return round(1000 * (b - a) / answered, 2)

    return {"server_cpu_ms": per(before.server, after.server),
            "db_cpu_ms": per(before.database, after.database),
            "gen_cpu_ms": per(before.generator, after.generator)}


def scaling_bound(s: float, p: float, g: float, *, processes: int, cpus: int) -> float | None:
    """The most N processes can answer over one on ``cpus`` CPUs, from one process's CPU per
    message s (server), p (database), g (load generator), see the module's docstring:
    min(N, C·s/(s+p+g)) / min(1, C·s/(s+p+g))."""
    if s <= 0 or processes < 1 or cpus < 1:
        return None
    share = cpus * s / (s + max(p, 0.0) + max(g, 0.0))
    return round(min(processes, share) / min(1.0, share), 2)


def scaling_summary(chat: list[dict[str, Any]], cpus: int) -> dict[str, dict[str, Any]]:
    """Per "path xN" row of several processes on one PostgreSQL: the measured ratio over one
    process (closed loop), the bound from the one-process row's s, p, g, and both rows' server +
    PostgreSQL CPU per message."""
    out: dict[str, dict[str, Any]] = {}
    for run in chat:
        server = run.get("server", "")
        if not server.startswith("shopdesk PostgreSQL x"):
            continue
        processes = int(server.rsplit("x", 1)[1])
        single = next((o for o in chat if o.get("server") == "shopdesk PostgreSQL" and o.get("path") == run["path"]),
                      None)
        many_phase, one_phase = _closed(run), _closed(single) if single else None
        if many_phase is None or one_phase is None:
            continue
        row: dict[str, Any] = {"processes": processes, "cpus": cpus}
        one_rate, many_rate = one_phase.get("answered_per_s"), many_phase.get("answered_per_s")
        row["ratio"] = round(many_rate / one_rate, 2) if one_rate and many_rate else None
        s, p, g = (one_phase.get(k) for k in ("server_cpu_ms", "db_cpu_ms", "gen_cpu_ms"))
        if s is not None and p is not None and g is not None:
            row.update(s_ms=s, p_ms=p, g_ms=g, bound=scaling_bound(s, p, g, processes=processes, cpus=cpus),
                       one_sp_ms=round(s + p, 2))
        ms, mp = many_phase.get("server_cpu_ms"), many_phase.get("db_cpu_ms")
        if ms is not None and mp is not None:
            row["many_sp_ms"] = round(ms + mp, 2)
        out[f"{run['path']} x{processes}"] = row
    return out


def _closed(run: dict[str, Any]) -> dict[str, Any] | None:
    for phase in run.get("phases", []):
        if phase.get("phase", "").startswith("closed") and not phase.get("skipped"):
            return dict(phase)
    return None
