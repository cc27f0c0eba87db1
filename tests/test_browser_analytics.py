"""The analytics page in headless Chromium (issue 15 item 1): it renders with its charts and
no CSP violation, the filter form narrows it, a table downloads as CSV, and in dark mode the
chart text stays readable (contrast of the computed colours)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from analytics_data import FIRST, LAST, seed

from tests.browser import (  # noqa: F401  (browser_fixture provides the ``browser`` fixture)
    LiveServer,
    browser_fixture,
    sign_in,
    start_live_server,
    watch,
)
from tests.web_helpers import PASSWORD, add_agent, fast_hashing  # noqa: F401

pytestmark = pytest.mark.browser
TIMEOUT = 10_000


@pytest.fixture
async def server(aiohttp_server: Any, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async for live in start_live_server(aiohttp_server, sqlite_url):
        async with live.sessions() as session:
            await seed(session)
            await session.commit()
        await add_agent(live.sessions, "ana@shop.test", name="Ana Lopez", admin=True)
        yield live


def _luminance(rgb: str) -> float:
    parts = [int(float(p)) for p in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]]

    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in parts)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


_COLOURS = """() => {
  const text = document.querySelector('.chart-box .chart-tick, .chart-box .chart-label');
  const box = document.querySelector('.chart-box');
  const page = document.body;
  return {text: getComputedStyle(text).fill, box: getComputedStyle(box).backgroundColor,
          body: getComputedStyle(page).color, bodyBg: getComputedStyle(page).backgroundColor,
          bar: getComputedStyle(document.querySelector('.chart rect.series-0')).fill};
}"""


async def test_page_renders_filters_and_downloads_csv(browser: Any, server: LiveServer) -> None:
    context = await browser.new_context(accept_downloads=True)
    page = await context.new_page()
    seen = await watch(page)
    await sign_in(page, server, "ana@shop.test", PASSWORD)
    await page.get_by_role("link", name="Analytics").click()  # a boosted (htmx) navigation
    await page.wait_for_url("**/inbox/analytics")
    await page.locator("svg.chart").first.wait_for()
    boosted = await page.evaluate(_COLOURS)
    assert _contrast(boosted["bar"], boosted["box"]) >= 3 and boosted["bar"] != "rgb(0, 0, 0)", boosted
    await page.get_by_label("From", exact=True).fill(FIRST)
    await page.get_by_label("To", exact=True).fill(LAST)
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url(f"**/inbox/analytics?from={FIRST}&to={LAST}&channel=")
    kpi = page.locator(".kpi", has_text="Conversations").first
    assert (await kpi.locator(".kpi-value").inner_text()).strip() == "6"
    assert await page.locator("svg.chart").count() >= 7
    assert await page.get_by_role("img", name="Conversations per day by channel").count() == 1
    # the table behind a chart
    await page.get_by_text("Show the numbers").first.click()
    assert await page.locator("#table-conversations_by_day tbody tr").count() == 10

    await page.get_by_label("Channel", exact=True).select_option("telegram")
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url("**channel=telegram")
    assert (await page.locator(".kpi", has_text="Conversations").first.locator(".kpi-value").inner_text()).strip() == "2"

    async with page.expect_download() as info:
        await page.locator("#h-response_times").locator("xpath=..").get_by_role("link", name="Download CSV").click()
    download = await info.value
    assert download.suggested_filename == f"shopdesk-response_times-{FIRST}-{LAST}.csv"
    path = await download.path()
    assert open(path, encoding="utf-8").read().splitlines()[1] == "First response,1,120,120,120.0,600,600"

    seen.assert_clean()
    resp = await page.goto(server.at("/inbox/analytics?from=2026-11-10&to=2026-11-01"))
    assert resp is not None and resp.status == 400
    assert "The start date is after the end date." in await page.locator("[role=alert]").inner_text()
    await context.close()


async def test_dark_mode_keeps_the_charts_readable(browser: Any, server: LiveServer) -> None:
    for scheme in ("light", "dark"):
        context = await browser.new_context(color_scheme=scheme)
        page = await context.new_page()
        seen = await watch(page)
        await sign_in(page, server, "ana@shop.test", PASSWORD)
        await page.goto(server.at(f"/inbox/analytics?from={FIRST}&to={LAST}"))
        colours = await page.evaluate(_COLOURS)
        assert _contrast(colours["text"], colours["box"]) >= 4.5, (scheme, colours)
        assert _contrast(colours["body"], colours["bodyBg"]) >= 4.5, (scheme, colours)
        assert _contrast(colours["bar"], colours["box"]) >= 3, (scheme, colours)
        if scheme == "dark":
            assert _luminance(colours["box"]) < 0.1  # a dark panel, not a white box in a dark page
        seen.assert_clean()
        await context.close()
