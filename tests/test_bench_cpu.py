"""The benchmark's CPU accounting (tests/bench/cpu.py): process trees read from /proc, with
live children, children that exited (through their parent's reaped time) and threads; the
ms-per-message arithmetic and the scaling bound."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.bench.cpu import (
    CpuMeter,
    CpuReading,
    cpu_seconds,
    ms_per_message,
    read_proc_table,
    scaling_bound,
    scaling_summary,
    tree_cpu,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

BURN = 0.5  # CPU seconds each burner uses

# busy until this process has used argv[1] CPU seconds (all of it in one thread when argv[2] is
# "thread"), then "burned" on stdout and wait for stdin to close
_BURNER = r"""
import sys, threading, time
def burn():
    start = time.thread_time()
    while time.thread_time() - start < float(sys.argv[1]):
        pass
if sys.argv[2] == "thread":
    t = threading.Thread(target=burn); t.start(); t.join()
else:
    burn()
print("burned", flush=True)
sys.stdin.read()
"""

# waits for a line, then runs a burner child: "live" keeps it running (holding its stdin),
# "exit" lets it finish and waits for it (reaps it); then one line on stdout and wait for stdin
_PARENT = r"""
import subprocess, sys
burner, burn, mode = sys.argv[1], sys.argv[2], sys.argv[3]
sys.stdin.readline()
if mode == "live":
    child = subprocess.Popen([sys.executable, "-c", burner, burn, "main"], stdin=subprocess.PIPE)
    sys.stdin.read()
    child.stdin.close(); child.wait()
else:
    child = subprocess.Popen([sys.executable, "-c", burner, burn, "main"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE)
    child.communicate(timeout=120)
    print("reaped", child.pid, flush=True)
    sys.stdin.read()
"""


@contextmanager
def _parent(mode: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _PARENT, _BURNER, str(BURN), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(60)
        if proc.stdout is not None:
            proc.stdout.close()


def _go(proc: subprocess.Popen[str]) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return proc.stdout.readline()


def _assert_counted(used: float) -> None:
    # the burner's own interpreter start-up comes on top; a loaded machine changes wall time, not CPU
    assert BURN * 0.5 <= used <= BURN * 3, used


def test_a_live_child_is_counted_in_its_parents_tree() -> None:
    with _parent("live") as proc:
        before, own_before = tree_cpu(read_proc_table(), [proc.pid]), cpu_seconds(proc.pid)
        assert _go(proc).strip() == "burned"
        table = read_proc_table()
        children = [pid for pid, entry in table.items() if entry.ppid == proc.pid]
        assert len(children) == 1  # the burner, still running
        _assert_counted(tree_cpu(table, [proc.pid]) - before)
        assert cpu_seconds(proc.pid) - own_before < BURN * 0.5  # the parent itself only waited


def test_a_child_that_exited_is_counted_through_its_parents_reaped_time() -> None:
    with _parent("exit") as proc:
        before = tree_cpu(read_proc_table(), [proc.pid])
        reaped_before = cpu_seconds(proc.pid, children=True) - cpu_seconds(proc.pid)
        word, child = _go(proc).split()
        assert word == "reaped"
        table = read_proc_table()
        assert int(child) not in table  # gone from /proc
        _assert_counted(tree_cpu(table, [proc.pid]) - before)
        _assert_counted(cpu_seconds(proc.pid, children=True) - cpu_seconds(proc.pid) - reaped_before)


def test_a_threads_cpu_is_counted_in_its_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _BURNER, str(BURN), "thread"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "burned"  # the thread has ended
        _assert_counted(cpu_seconds(proc.pid))
        assert tree_cpu(read_proc_table(), [proc.pid]) == pytest.approx(cpu_seconds(proc.pid), abs=0.05)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(60)
        assert proc.stdout is not None
        proc.stdout.close()


def test_the_meter_charges_each_part_with_its_own_processes() -> None:
    with _parent("live") as server, _parent("exit") as database:
        meter = CpuMeter(servers=[server.pid], postmaster=database.pid, generator_trees=[])
        before = meter.read()
        _go(server)
        _go(database)
        result = meter.per_message(before, answered=100)
        # 0.5 s over 100 messages = 5 ms each, start-ups on top
        for key in ("server_cpu_ms", "db_cpu_ms"):
            value = result[key]
            assert value is not None and 2.5 <= value <= 15, result
        gen = result["gen_cpu_ms"]
        assert gen is not None and gen < 2.5, result  # this process only waited for lines
    assert CpuMeter(servers=[server.pid]).per_message(None, 100) == {}


def test_cpu_of_a_process_that_is_gone_is_zero() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(60)
    assert cpu_seconds(proc.pid) == 0.0
    assert tree_cpu(read_proc_table(), [proc.pid]) == 0.0


def test_ms_per_message() -> None:
    before, after = CpuReading(10.0, 4.0, 1.0), CpuReading(12.0, 5.5, 1.2)
    assert ms_per_message(before, after, 1000) == {"server_cpu_ms": 2.0, "db_cpu_ms": 1.5, "gen_cpu_ms": 0.2}
    sqlite = ms_per_message(CpuReading(1.0, None, 0.0), CpuReading(1.5, None, 0.1), 250)
    assert sqlite == {"server_cpu_ms": 2.0, "db_cpu_ms": None, "gen_cpu_ms": 0.4}
    assert ms_per_message(before, after, 0) == {"server_cpu_ms": None, "db_cpu_ms": None, "gen_cpu_ms": None}


def test_scaling_bound() -> None:
    # two processes on two CPUs, one process server-bound: 2s/(s+p+g)
    assert scaling_bound(3.7, 1.9, 0.4, processes=2, cpus=2) == round(2 * 3.7 / 6.0, 2)
    # PostgreSQL and the generator cost more than the server: one process already fills 2 CPUs
    assert scaling_bound(2.0, 2.0, 0.5, processes=2, cpus=2) == 1.0
    # plenty of CPUs: N processes, N times one
    assert scaling_bound(4.0, 0.4, 0.1, processes=4, cpus=16) == 4.0
    # more processes than the CPUs allow: C·s/(s+p+g)
    assert scaling_bound(4.0, 0.0, 0.0, processes=4, cpus=2) == 2.0
    assert scaling_bound(0.0, 1.0, 1.0, processes=2, cpus=2) is None


def _run(server: str, path: str, rate: float, s: float | None, p: float | None, g: float | None) -> dict[str, object]:
    closed = {"phase": "closed x200", "answered_per_s": rate, "server_cpu_ms": s, "db_cpu_ms": p, "gen_cpu_ms": g}
    return {"server": server, "path": path, "phases": [closed, {"phase": "open 50/s", "answered_per_s": 50.0}]}


def test_scaling_summary_takes_the_bound_from_the_one_process_row() -> None:
    chat = [_run("shopdesk SQLite", "widget", 900.0, 3.0, None, 0.3),
            _run("shopdesk PostgreSQL", "widget", 870.0, 3.5, 1.9, 0.4),
            _run("shopdesk PostgreSQL x2", "widget", 759.0, 4.0, 2.1, 0.5),
            _run("shopdesk PostgreSQL", "telegram", 723.0, 3.5, 2.5, 0.5)]
    summary = scaling_summary(chat, cpus=2)
    assert list(summary) == ["widget x2"]  # no telegram x2 row
    row = summary["widget x2"]
    assert row["ratio"] == round(759 / 870, 2)
    assert row["bound"] == round(2 * 3.5 / 5.8, 2)
    assert (row["s_ms"], row["p_ms"], row["g_ms"]) == (3.5, 1.9, 0.4)
    assert row["one_sp_ms"] == 5.4 and row["many_sp_ms"] == 6.1
