"""The inbox pages over HTTP, as an agent sees them: sign in through the real login form, then
time ``GET /inbox`` (the list), ``GET /inbox?q=...`` (search) and ``GET /inbox/analytics`` over
the last 7, 30, 90, 180 and 365 days (each compared with the period before it; the seed spans 180
days) one request at a time, with p50/p95 per range as well."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import aiohttp

from tests.bench.load import percentile

__all__ = ["ADMIN_EMAIL", "ADMIN_PASSWORD", "create_admin", "time_pages"]

ADMIN_EMAIL = "bench-admin@shop.test"
ADMIN_PASSWORD = "bench admin password 0123"
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"')

LIST_PAGES = ("/inbox", "/inbox?status=any", "/inbox?status=pending")
# one search word or phrase in each language, and an order number
SEARCHES = ("return", "envío", "доставка", "giao hàng", "退货", "退貨", "1042", "policy")


def analytics_pages(today: Any = None) -> tuple[str, ...]:
    """The analytics page over the last 7, 30, 90, 180 and 365 days (the seed spans 180), all
    channels, and 90 days of one channel."""
    from datetime import UTC, datetime, timedelta

    day = today or datetime.now(UTC).date()
    spans = ((6, ""), (29, ""), (89, ""), (179, ""), (364, ""), (89, "&channel=telegram"))
    return tuple(f"/inbox/analytics?from={(day - timedelta(days=n)).isoformat()}&to={day.isoformat()}{extra}"
                 for n, extra in spans)


async def create_admin(database_url: str) -> None:
    from inbox.actions.agent_create import agent_create
    from shopdesk.db import create_engine, session_maker

    engine = create_engine(database_url)
    try:
        async with session_maker(engine)() as db:
            await agent_create(db, ADMIN_EMAIL, ADMIN_PASSWORD, name="Bench Admin", admin=True)
            await db.commit()
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


async def _timed_get(http: aiohttp.ClientSession, url: str, timeout: float) -> tuple[float, int, int]:
    started = time.perf_counter()
    async with http.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        body = await resp.read()
        return time.perf_counter() - started, resp.status, len(body)


async def time_pages(base_url: str, *, requests: int, timeout: float = 30.0) -> dict[str, Any]:
    """p50/p95 of ``requests`` list pages, searches and analytics pages (after a warm-up of each). A
    request slower than ``timeout`` s is counted as such; after two of them that kind stops."""
    jar = aiohttp.CookieJar(unsafe=True)  # cookies on 127.0.0.1
    async with aiohttp.ClientSession(base_url, cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.get("/login") as page:
            token = _csrf(await page.text())
        async with http.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
                             allow_redirects=False) as resp:
            if resp.status != 303:
                raise RuntimeError(f"login answered {resp.status}")
        result: dict[str, Any] = {}
        kinds = (("list", LIST_PAGES), ("search", tuple(f"/inbox?status=any&q={q}" for q in SEARCHES)),
                 ("analytics", analytics_pages()))
        for kind, urls in kinds:
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
            p50, p95 = percentile(times, 50), percentile(times, 95)
            result[kind] = {
                "requests": len(times),
                "p50_ms": None if p50 is None else round(p50 * 1000, 1),
                "p95_ms": None if p95 is None else round(p95 * 1000, 1),
                "max_ms": round(max(times) * 1000, 1) if times else None,
                "statuses": sorted(statuses),
                "mean_kb": round(sum(sizes) / len(sizes) / 1024, 1) if sizes else None,
                "timeouts": len(timeouts),
                "timed_out": sorted(set(timeouts)),
            }
            if kind == "analytics":  # each range on its own: "7d", "30d" … ("90d telegram")
                result[kind]["ranges"] = {_range_name(url): _ms(found) for url, found in per_url.items()}
        return result
