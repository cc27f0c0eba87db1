"""The inbox pages over HTTP, as an agent sees them: sign in through the real login form, then
time ``GET /inbox`` (the list), ``GET /inbox?q=...`` (search), a switch to each triage view and
``GET /inbox/analytics`` over the last 7, 30, 90, 180 and 365 days (each compared with the period
before it; the seed spans 180 days) one request at a time, with p50/p95 per range as well.

A view switch is what the browser asks for when a triage tab is clicked: the boosted page
(``GET /inbox?view=…`` with htmx's headers), then, once it is in place, the live counts
(``GET /inbox/triage/state``, triage.js) and the top bar's unread count
(``GET /inbox/notifications/count``, ``hx-trigger="load"``); its time is the three requests'
server round trips one after the other (the browser's own 120 ms debounce is not counted)."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import aiohttp

from tests.bench.load import percentile

__all__ = ["ADMIN_EMAIL", "ADMIN_PASSWORD", "TRIAGE_VIEWS", "create_admin", "create_agents", "time_pages"]

ADMIN_EMAIL = "bench-admin@shop.test"
ADMIN_PASSWORD = "bench admin password 0123"
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"')

LIST_PAGES = ("/inbox", "/inbox?status=any", "/inbox?status=pending")
# one search word or phrase in each language, and an order number
SEARCHES = ("return", "envío", "доставка", "giao hàng", "退货", "退貨", "1042", "policy")
# the triage tabs (inbox.queries.triage.TRIAGE_VIEWS), in the order the page shows them
TRIAGE_VIEWS = ("human", "bot", "mine", "unassigned", "waiting", "snoozed", "resolved")
_SWITCH_AFTER = ("/inbox/triage/state", "/inbox/notifications/count")
_HTMX = {"HX-Request": "true", "HX-Boosted": "true", "HX-Current-URL": "/inbox"}
AGENTS = 12  # the seed assigns conversations round these agents (the bench admin is the first)


def analytics_pages(today: Any = None) -> tuple[str, ...]:
    """The analytics page over the last 7, 30, 90, 180 and 365 days (the seed spans 180), all
    channels, and 90 days of one channel."""
    from datetime import UTC, datetime, timedelta

    day = today or datetime.now(UTC).date()
    spans = ((6, ""), (29, ""), (89, ""), (179, ""), (364, ""), (89, "&channel=telegram"))
    return tuple(f"/inbox/analytics?from={(day - timedelta(days=n)).isoformat()}&to={day.isoformat()}{extra}"
                 for n, extra in spans)


async def create_admin(database_url: str) -> None:
    await create_agents(database_url, 0)


async def create_agents(database_url: str, others: int = AGENTS - 1) -> list[int]:
    """The bench admin and ``others`` more agents; their ids, the admin's first."""
    from inbox.actions.agent_create import agent_create
    from shopbase.rows import saved_id
    from shopdesk.db import create_engine, session_maker

    engine = create_engine(database_url)
    try:
        async with session_maker(engine)() as db:
            agents = [await agent_create(db, ADMIN_EMAIL, ADMIN_PASSWORD, name="Bench Admin", admin=True)]
            for n in range(1, others + 1):
                agents.append(await agent_create(db, f"bench-agent-{n}@shop.test", ADMIN_PASSWORD,
                                                 name=f"Bench Agent {n}"))
            await db.commit()
            return [saved_id(a) for a in agents]
    finally:
        await engine.dispose()


def _range_name(url: str) -> str:
    from datetime import date
    from urllib.parse import parse_qs, urlsplit

    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    days = (date.fromisoformat(params["to"]) - date.fromisoformat(params["from"])).days + 1
    return f"{days}d" + (f" {params['channel']}" if "channel" in params else "")


def _ms(times: list[float]) -> dict[str, Any]:
    p50, p95 = percentile(times, 50), percentile(times, 95)
    return {"requests": len(times), "p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "p95_ms": None if p95 is None else round(p95 * 1000, 1)}


def _csrf(body: str) -> str:
    match = _CSRF.search(body)
    if not match:
        raise RuntimeError("no CSRF token on the login page")
    return html.unescape(match.group(1) or match.group(2))


async def _timed_get(http: aiohttp.ClientSession, url: str, timeout: float,
                     headers: dict[str, str] | None = None) -> tuple[float, int, int]:
    started = time.perf_counter()
    async with http.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout),
                        headers=headers) as resp:
        body = await resp.read()
        return time.perf_counter() - started, resp.status, len(body)


def _stats(times: list[float]) -> dict[str, Any]:
    p50, p95 = percentile(times, 50), percentile(times, 95)
    return {
        "requests": len(times),
        "p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "p95_ms": None if p95 is None else round(p95 * 1000, 1),
        "max_ms": round(max(times) * 1000, 1) if times else None,
    }


async def time_view_switches(http: aiohttp.ClientSession, *, rounds: int, timeout: float) -> dict[str, Any]:
    """Each triage tab clicked ``rounds`` times (after one warm-up round), round-robin: the time
    of the switch (page + live counts + unread count), per view and over all, and of its parts."""
    per_view: dict[str, list[float]] = {v: [] for v in TRIAGE_VIEWS}
    parts: dict[str, list[float]] = {"page": [], "counts": [], "notifications": []}
    statuses: set[int] = set()
    timeouts: list[str] = []
    for n in range(rounds + 1):
        for view in TRIAGE_VIEWS:
            url = f"/inbox?view={view}"
            try:
                page = await _timed_get(http, url, timeout, _HTMX)
                after = [await _timed_get(http, extra, timeout) for extra in _SWITCH_AFTER]
            except TimeoutError:
                timeouts.append(url)
                if len(timeouts) >= 2:
                    break
                continue
            if n == 0:
                continue  # warm-up
            statuses.update(r[1] for r in (page, *after))
            per_view[view].append(page[0] + sum(r[0] for r in after))
            for name, r in zip(parts, (page, *after)):
                parts[name].append(r[0])
        if len(timeouts) >= 2:
            break
    overall = [t for times in per_view.values() for t in times]
    return {**_stats(overall), "statuses": sorted(statuses), "timeouts": len(timeouts),
            "timed_out": sorted(set(timeouts)),
            "views": {v: _stats(times) for v, times in per_view.items()},
            "parts": {name: _stats(times) for name, times in parts.items()}}


PAGE_KINDS = ("list", "search", "views", "analytics")


async def time_pages(base_url: str, *, requests: int, timeout: float = 30.0,
                     kinds: tuple[str, ...] = PAGE_KINDS) -> dict[str, Any]:
    """p50/p95 of ``requests`` list pages, searches and analytics pages (after a warm-up of each),
    and of the view switches (:func:`time_view_switches`); ``kinds`` picks which. A request
    slower than ``timeout`` s is counted as such; after two of them that kind stops."""
    jar = aiohttp.CookieJar(unsafe=True)  # cookies on 127.0.0.1
    async with aiohttp.ClientSession(base_url, cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.get("/login") as page:
            token = _csrf(await page.text())
        async with http.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
                             allow_redirects=False) as resp:
            if resp.status != 303:
                raise RuntimeError(f"login answered {resp.status}")
        result: dict[str, Any] = {}
        plans = (("list", LIST_PAGES), ("search", tuple(f"/inbox?status=any&q={q}" for q in SEARCHES)),
                 ("views", ()), ("analytics", analytics_pages()))
        for kind, urls in plans:
            if kind not in kinds:
                continue
            if kind == "views":
                result["views"] = await time_view_switches(
                    http, rounds=max(1, requests * 2 // len(TRIAGE_VIEWS)), timeout=timeout)
                continue
            times: list[float] = []
            statuses: set[int] = set()
            sizes: list[int] = []
            timeouts: list[str] = []
            plan = list(urls) + [urls[i % len(urls)] for i in range(requests)]  # one warm-up of each first
            per_url: dict[str, list[float]] = {}
            for n, url in enumerate(plan):
                try:
                    seconds, status, size = await _timed_get(http, url, timeout)
                except TimeoutError:
                    timeouts.append(url)
                    if len(timeouts) >= 2:
                        break
                    continue
                if n >= len(urls):
                    times.append(seconds)
                    per_url.setdefault(url, []).append(seconds)
                    statuses.add(status)
                    sizes.append(size)
            result[kind] = {
                **_stats(times),
                "statuses": sorted(statuses),
                "mean_kb": round(sum(sizes) / len(sizes) / 1024, 1) if sizes else None,
                "timeouts": len(timeouts),
                "timed_out": sorted(set(timeouts)),
            }
            if kind == "analytics":  # each range on its own: "7d", "30d" … ("90d telegram")
                result[kind]["ranges"] = {_range_name(url): _ms(found) for url, found in per_url.items()}
        return result
