"""Slack's 429 through the outbox (issue 16, item 2): the wait is Slack's ``Retry-After``, it never
counts towards giving up, and the other Slack notices wait for it too. Loopback Slack Web API
fake (``tests/fakes/slack.py``) and the real slack_sdk client."""

from __future__ import annotations

from typing import Any

import pytest

from inbox.models import OutboxMessage, OutboxStatus
from tests.db_helpers import rows
from tests.fakes.slack import FakeSlack
from tests.test_slack import make_env, slack_settings


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeSlack:
    slack = FakeSlack()
    server = await aiohttp_server(slack.app)
    slack.base_url = str(server.make_url("")).rstrip("/")
    return slack


async def test_slack_429s_delay_every_notice_and_never_give_up(aiohttp_client: Any, fake: FakeSlack, settings: Any,
                                                              sessions: Any) -> None:
    # giving up after 0.5 s of an outage: a rate limit that lasts longer must not count as one
    env = await make_env(aiohttp_client, fake, slack_settings(settings, fake), sessions, retry_base=0.05,
                         retry_give_up=0.5)
    fake.fail_next("chat.postMessage", 429, retry_after=1, times=3)
    await env.alert(None, {"kind": "low_stock", "sku": "TEE-M", "available": 2})
    await env.alert(None, {"kind": "low_stock", "sku": "TEE-L", "available": 1})
    await env.idle()
    assert [m["text"] for m in env.alerts()] == ["Low stock: TEE-M", "Low stock: TEE-L"]
    calls = fake.calls_for("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 429, 200, 200]  # nothing posted during the wait
    for call, following in zip(calls, calls[1:], strict=False):
        if call.status == 429:  # the client did not retry inline: the outbox waited Retry-After
            assert following.at - call.at >= 1.0 - 0.01
    assert {r.status for r in await rows(sessions, OutboxMessage)} == {OutboxStatus.sent}
