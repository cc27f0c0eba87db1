"""Metrics across processes: two real processes write the same SHOPDESK_METRICS_DIR and one
registry reads the sum; a starting process cleans the files of processes that no longer run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shopdesk.metrics import multiprocess_registry

#: one process of the app: multiprocess mode on, then the app's own Metrics counting
WORKER = """
import sys
from pathlib import Path
from shopdesk.metrics import Metrics, enable_multiprocess
enable_multiprocess(Path(sys.argv[1]))
m = Metrics()
assert m.multiprocess_dir == Path(sys.argv[1])
m.inbound.labels("telegram").inc(int(sys.argv[2]))
m.outbound.labels("webchat", "sent").inc()
m.understanding.observe(0.003)
m.outbox_backlog.labels("telegram").set(float(sys.argv[3]))
body, _ = m.exposition()
sys.stdout.write(body.decode())
"""


def _run(directory: Path, inbound: int, backlog: int) -> str:
    done = subprocess.run([sys.executable, "-c", WORKER, str(directory), str(inbound), str(backlog)],
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_two_processes_add_up_in_one_scrape(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    # the first process is still running (it sleeps after counting) when the second starts, counts
    # and answers its own /metrics: the answer holds both processes' numbers
    first = subprocess.Popen([sys.executable, "-c", WORKER + "\nimport time; time.sleep(8)\n", str(shared), "2", "7"],
                             stdout=subprocess.PIPE, text=True)
    try:
        import time

        deadline = time.monotonic() + 60
        while not list(shared.glob("counter_*.db")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(shared.glob("counter_*.db")), "the first process wrote no value file"
        second = _samples(_run(shared, 3, 4))  # the second process's own /metrics answer
        assert second[("shopdesk_messages_inbound_total", (("channel", "telegram"),))] == 5.0
        assert second[("shopdesk_messages_outbound_total", (("channel", "webchat"), ("result", "sent")))] == 2.0
        assert second[("shopdesk_bot_understanding_seconds_count", ())] == 2.0
        # a gauge read from the database: the value set most recently (the second process's)
        assert second[("shopdesk_outbox_backlog", (("channel", "telegram"),))] == 4.0
    finally:
        first.wait(timeout=60)
    # both ended; a scrape reading the directory still adds up both
    both = _samples(generate_latest(multiprocess_registry(shared)).decode())
    assert both[("shopdesk_messages_inbound_total", (("channel", "telegram"),))] == 5.0


def test_a_starting_process_cleans_the_files_of_dead_ones(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    _run(shared, 2, 1)
    _run(shared, 3, 1)  # the first has ended: its files go when the second starts
    after = _samples(generate_latest(multiprocess_registry(shared)).decode())
    assert after[("shopdesk_messages_inbound_total", (("channel", "telegram"),))] == 3.0
    # a file of a process that does not exist (a pid beyond the system's range) is cleaned as well
    stale = shared / "counter_999999999.db"
    stale.write_bytes((shared / next(p.name for p in shared.glob("counter_*.db"))).read_bytes())
    from shopdesk.metrics import clean_stale_files

    assert 999999999 in clean_stale_files(shared)
    assert not stale.exists()


def test_without_a_directory_each_process_counts_alone() -> None:
    from shopdesk.metrics import Metrics

    m = Metrics()
    assert m.multiprocess_dir is None
    m.inbound.labels("telegram").inc()
    body, _ = m.exposition()
    assert _samples(body.decode())[("shopdesk_messages_inbound_total", (("channel", "telegram"),))] == 1.0
