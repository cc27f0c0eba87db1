"""The analytics page and its CSV downloads (issue 15 item 1) on SQLite and PostgreSQL: every
agent may read it; numbers of the hand-made dataset appear formatted; each table downloads as
CSV; bad periods and unknown filters answer 400 with the form, never a 500."""

from __future__ import annotations

import re
from typing import Any

import pytest
from analytics_data import FIRST, LAST, seed
from sqlmodel import col, select

from inbox.models import Agent
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    add_agent,
    build_web_app,
    fast_hashing,
    login,
)

PERIOD = f"from={FIRST}&to={LAST}"


@pytest.fixture
async def client(aiohttp_client: Any, sessions: Any) -> Any:
    async with sessions() as session:
        await seed(session)
        agent = (await session.exec(select(Agent).where(col(Agent.email) == "a@shop.test"))).one()
        agent.name = "<b>Alice</b>"  # an agent's name is shown escaped
        await session.commit()
    await add_agent(sessions)
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    return await aiohttp_client(build_web_app(sessions).app)


async def test_agents_and_admins_see_the_numbers_and_charts(client: Any) -> None:
    await login(client)  # an agent, not an admin: read-only, but allowed
    resp = await client.get(f"/inbox/analytics?{PERIOD}")
    page = await resp.text()
    assert resp.status == 200, page
    assert page.count("<svg class=\"chart") >= 7 and 'role="img"' in page
    assert "<script" not in page.split("<main", 1)[1].split("</main>", 1)[0]
    assert "&lt;b&gt;Alice&lt;/b&gt;" in page and "<b>Alice</b>" not in page
    kpis = re.findall(r'<span class="kpi-name">([^<]+)</span>\s*<strong class="kpi-value">([^<]+)</strong>', page)
    values = dict(kpis)
    assert values["Conversations"] == "6"
    assert values["Bot automation rate"] == "33%"
    assert values["Median first response"] == "2 min"
    assert values["Average rating"] == "3.5"
    assert values["On-time shipping rate"] == "50%"
    assert values["Median order processing time"] == "2 days"
    assert 'href="/inbox/analytics/export.csv?table=return_rates&amp;from=2026-11-01&amp;to=2026-11-10"' in page
    # the reader's language: Russian numbers and words
    ru = await client.get(f"/inbox/analytics?{PERIOD}", headers={"Accept-Language": "ru"})
    assert "Аналитика" in await ru.text()


async def test_channel_filter_and_csv_of_every_table(client: Any) -> None:
    await login(client, "boss@shop.test")
    page = await (await client.get(f"/inbox/analytics?{PERIOD}&channel=telegram")).text()
    assert re.search(r'kpi-name">Conversations</span>\s*<strong class="kpi-value">2<', page)
    assert '<option value="telegram" selected>' in page
    from inbox.analytics.report import TABLE_KEYS

    for key in TABLE_KEYS:
        resp = await client.get(f"/inbox/analytics/export.csv?table={key}&{PERIOD}")
        assert resp.status == 200, key
        assert resp.headers["Content-Type"].startswith("text/csv")
        assert f'filename="shopdesk-{key}-2026-11-01-2026-11-10.csv"' in resp.headers["Content-Disposition"]
        assert (await resp.text()).count("\r\n") >= 1
    text = await (await client.get(f"/inbox/analytics/export.csv?table=response_times&{PERIOD}")).text()
    assert text.splitlines()[1] == "First response,2,120,300,210.0,600,600"


@pytest.mark.parametrize(("query", "message"), [
    ("from=2026-11-10&to=2026-11-01", "The start date is after the end date."),
    ("from=2026-11-01&to=2099-01-01", "The period ends in the future."),
    ("from=2016-01-01&to=2026-11-01", "The period is longer than 366 days."),
    ("from=<script>&to=2026-11-01", "The start date must be a date like 2026-11-30."),
    ("channel=fax", "Unknown channel."),
    ("status=open", "Unknown filter."),
])
async def test_bad_input_is_a_400_with_the_form(client: Any, query: str, message: str) -> None:
    await login(client)
    resp = await client.get(f"/inbox/analytics?{query}")
    body = await resp.text()
    assert resp.status == 400
    assert message in body and "<script>" not in body.split("<main", 1)[1]
    assert 'name="from"' in body
    csv = await client.get(f"/inbox/analytics/export.csv?table=kpis&{query}")
    assert csv.status == 400


async def test_unknown_table_and_signed_out(client: Any) -> None:
    resp = await client.get("/inbox/analytics", allow_redirects=False)
    assert resp.status in (302, 303) and "/login" in resp.headers["Location"]
    await login(client)
    bad = await client.get(f"/inbox/analytics/export.csv?table=agents&{PERIOD}", headers={"Accept": "application/json"})
    assert bad.status == 400 and "Unknown table" in (await bad.json())["error"]


async def test_an_empty_shop_renders_every_chart_empty(aiohttp_client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    client = await aiohttp_client(build_web_app(sessions).app)
    await login(client)
    resp = await client.get("/inbox/analytics")
    page = await resp.text()
    assert resp.status == 200
    assert page.count("No data in this period.") >= 7
    csv = await client.get("/inbox/analytics/export.csv?table=return_rates")
    assert (await csv.text()) == "product,sku,sold,returned,rate,top_reason\r\n"
