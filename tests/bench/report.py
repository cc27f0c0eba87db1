"""The printed table and ``bench-results.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["print_report", "write_json"]


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ms(value: Any) -> str:
    """A CPU-per-message column: blank where it was not measured."""
    return "" if value is None else _f(float(value), 2)


def _scaling_cpu_lines(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Per "path xN": measured ratio, the bound from the one-process row (tests/bench/cpu.py) and
    server + PostgreSQL CPU per message with N processes against one."""
    lines = []
    for key, row in rows.items():
        n, c = row["processes"], row["cpus"]
        text = f"  {key}: measured {_f(row.get('ratio'), 2)}"
        if row.get("bound") is not None:
            text += (f", bound on {c} CPUs min({n}, {c}s/(s+p+g)) / min(1, {c}s/(s+p+g)) = {_f(row['bound'], 2)} "
                     f"with one process's s {_ms(row['s_ms'])}, p {_ms(row['p_ms'])}, g {_ms(row['g_ms'])} ms")
        one, many = row.get("one_sp_ms"), row.get("many_sp_ms")
        if one and many is not None:
            change = round(100 * (many / one - 1))
            text += (f"; server+PostgreSQL CPU per message (s+p) x{n} {_ms(many)} ms, one {_ms(one)} ms "
                     f"({'+' if change >= 0 else ''}{change}%)")
        lines.append(text)
    return lines


def _chat_rows(results: dict[str, Any]) -> list[str]:
    head = (f"{'path':<9}{'server':<25}{'phase':<14}{'sent':>7}{'answered':>9}{'msg/s':>9}{'p50 ms':>9}"
            f"{'p99 ms':>9}{'lost':>6}{'err':>5}{'cpu%':>5}{'srv ms':>8}{'db ms':>7}{'gen ms':>7}  note")
    lines = [head, "-" * len(head)]
    for run in results.get("chat", []):
        label = run["server"]
        if run.get("error"):
            lines.append(f"{run['path']:<9}{label:<25}{'-':<14}  FAILED: {run['error']}")
            continue
        for phase in run.get("phases", []):
            if phase.get("skipped"):
                lines.append(f"{run['path']:<9}{label:<25}{phase['phase']:<14}  skipped: {phase['skipped']}")
                continue
            lines.append(
                f"{run['path']:<9}{label:<25}{phase['phase']:<14}{phase['sent']:>7}{phase['answered']:>9}"
                f"{_f(phase['answered_per_s']):>9}{_f(phase['p50_ms']):>9}{_f(phase['p99_ms']):>9}"
                f"{phase['lost']:>6}{phase['errors']:>5}{_f(phase.get('client_cpu_pct')):>5}"
                f"{_ms(phase.get('server_cpu_ms')):>8}{_ms(phase.get('db_cpu_ms')):>7}{_ms(phase.get('gen_cpu_ms')):>7}"
                f"  {phase.get('note', '')}"
            )
    return lines


def print_report(results: dict[str, Any]) -> None:
    meta = results["meta"]
    print()
    print(f"Shopdesk benchmark ({'QUICK' if meta['quick'] else 'full'}), {meta['started']}, {meta['cpus']} CPUs, "
          f"Python {meta['python']}; load client and server in separate processes, loopback only")
    print("Latency: from the message leaving the client (open loop: its scheduled time) to the bot's reply "
          "arriving (widget frame / sendMessage at the fake Bot API). lost = no reply within the bound;")
    print("cpu% = the load generator's own CPU use (near 100: the figure is bounded by the client, not the server).")
    print("srv/db/gen ms = CPU ms per answered message (closed loop and soak, from /proc) of the server process(es), "
          "PostgreSQL (all its processes) and the load generator (this process and the fake Bot API).")
    print()
    for line in _chat_rows(results):
        print(line)
    ratios = results.get("ratios", {})
    if ratios:
        print()
        print("shopdesk / bare aiohttp, closed-loop answered msg/s: "
              + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} -" for k, v in ratios.items()))
    scaling = results.get("scaling", {})
    if scaling:
        print("several processes on one PostgreSQL / one process, closed-loop answered msg/s: "
              + ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} -" for k, v in scaling.items()))
        for line in _scaling_cpu_lines(results.get("scaling_cpu", {})):
            print(line)
    nlu = results.get("understanding", {})
    print()
    if nlu.get("error"):
        print(f"Understanding: FAILED: {nlu['error']}")
    elif nlu:
        parts = [f"{k[:-3]} {v:.3f}" for k, v in nlu.items() if k.endswith("_ms")]
        print(f"Understanding, ms per message ({nlu['messages']} messages; medians unless p90/p99/cpu): "
              + ", ".join(parts))
    inbox = results.get("inbox", [])
    if inbox:
        print()
        head = (f"{'inbox':<12}{'conversations':>14}{'messages':>10}{'seed s':>8}{'list p50':>10}{'list p95':>10}"
                f"{'search p50':>12}{'search p95':>12}{'RSS MB':>8}{'ready s':>9}")
        print(head)
        print("-" * len(head))
        for row in inbox:
            if row.get("error"):
                print(f"{row['database']:<12}  FAILED: {row['error']}")
                continue
            lst, srch = row.get("list") or {}, row.get("search") or {}
            print(f"{row['database']:<12}{row['conversations']:>14}{row['messages']:>10}{_f(row['seed_s']):>8}"
                  f"{_f(lst.get('p50_ms')):>10}{_f(lst.get('p95_ms')):>10}{_f(srch.get('p50_ms')):>12}"
                  f"{_f(srch.get('p95_ms')):>12}"
                  f"{_f(row.get('rss_mb')):>8}{_f(row.get('ready_s')):>9}")
        for row in inbox:
            switch = row.get("views") or {}
            if switch.get("requests"):
                print(f"{row['database']:<12}view switch p50 {_f(switch['p50_ms'])} ms, p95 {_f(switch['p95_ms'])} ms, "
                      f"max {_f(switch['max_ms'])} ms, {switch['requests']} switches, statuses {switch['statuses']}; "
                      "parts p50/p95: " + ", ".join(f"{k} {_f(v['p50_ms'])}/{_f(v['p95_ms'])}"
                                                   for k, v in switch.get("parts", {}).items()))
                print(f"{'':<12}per view p50/p95: " + ", ".join(f"{k} {_f(v['p50_ms'])}/{_f(v['p95_ms'])}"
                                                               for k, v in switch.get("views", {}).items()))
        for row in inbox:
            part = row.get("analytics") or {}
            if part.get("requests"):
                print(f"{row['database']:<12}analytics page p50 {_f(part['p50_ms'])} ms, p95 {_f(part['p95_ms'])} ms, "
                      f"max {_f(part['max_ms'])} ms, {part['requests']} requests, statuses {part['statuses']}")
                for name, found in (part.get("ranges") or {}).items():
                    print(f"{'':<12}  {name:<14} p50 {_f(found['p50_ms'])} ms, p95 {_f(found['p95_ms'])} ms "
                          f"({found['requests']} requests)")
        for row in inbox:
            for kind in ("list", "search", "views", "analytics"):
                part = row.get(kind) or {}
                if part.get("timeouts"):
                    print(f"{row['database']} {kind}: {part['timeouts']} request(s) over {row.get('page_timeout_s')}s, "
                          f"e.g. {part['timed_out'][:2]} (stopped after two)")
        print("(ms; GET /inbox list pages, /inbox?q= searches, triage view switches (the boosted page, then "
              "/inbox/triage/state and /inbox/notifications/count) and /inbox/analytics over 7-365 days as a "
              "signed-in admin, one at a time; "
              "ready s: this server's start-up, alone on the machine)")
    servers = [r for r in results.get("chat", []) if r.get("memory")]
    if servers:
        print()
        print("Server resident memory (MB) and start-up (the chat servers of a group start at the same time):")
        for run in servers:
            mem = ", ".join(f"{k} {_f(v)}" for k, v in run["memory"].items())
            extra = f"; ready in {run['ready_s']:.1f}s" if run.get("ready_s") is not None else ""
            if run.get("first_answer_s") is not None:
                extra += f", first answer {run['first_answer_s']:.1f}s later"
            growth = run.get("growth_kb_per_1k_messages")
            extra += f"; growth over the soak {growth:.1f} KB per 1,000 answered" if growth is not None else ""
            print(f"  {run['path']:<9}{run['server']:<25}{mem}{extra}")
    run = results.get("memory_run")
    if run:
        print()
        if run.get("error"):
            print(f"Memory run: FAILED: {run['error']}")
        else:
            growth = run.get("growth_kb_per_1k_messages")
            print(f"Memory run ({run['path']}, {run['server']}): {run.get('answered', 0)} of {run['target_messages']} "
                  f"messages answered in {_f(run.get('seconds'))}s; RSS {_f(run.get('rss_before_mb'))} MB before, "
                  f"{_f(run.get('rss_after_mb'))} MB after"
                  + (f", {growth:.1f} KB per 1,000 answered" if growth is not None else "")
                  + (f" ({run['note']})" if run.get("note") else ""))
            curve = run.get("rounds", [])
            step = max(1, len(curve) // 8)
            print("  answered → RSS MB: " + ", ".join(f"{r['answered']} → {_f(r['rss_mb'])}" for r in curve[::step]))
    notes = list(results.get("notes", []))
    for run in results.get("chat", []):
        if run.get("refusals"):
            notes.append(f"{run['path']} {run['server']}: refused messages, e.g. {run['refusals'][:2]}")
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")
    print()
    print(f"finished in {results['meta'].get('seconds', 0):.0f}s; results in {results['meta'].get('json_path', '')}")


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
