"""Issue 13's bad input: a Slack channel that no longer exists. An escalation was posted into
the alert channel, then the channel was deleted: the customer's later messages (mirrored into the
thread) and the card's update after a claim are refused by Slack with ``channel_not_found``.
Each is dropped with one log line naming the code, nothing crashes, nothing is posted twice, the
customer's side and the claim itself go on as usual. (A new alert into a deleted channel:
tests/test_alert_slack.py and tests/test_slack.py.)"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.connectors.slack import blocks as sb
from inbox.models import Channel, Conversation, OutboxMessage, OutboxStatus
from tests.db_helpers import eventually, rows
from tests.fakes import slack as fs
from tests.fakes.slack import FakeSlack
from tests.test_slack import (  # noqa: F401  (fake is a fixture)
    ALERTS,
    add_agent,
    assert_quiet_logs,
    customer_conversation,
    customer_writes,
    escalate,
    fake,
    make_env,
    slack_lines,
    slack_settings,
)


async def test_a_deleted_alert_channel_drops_thread_posts_once_each_and_nothing_else_breaks(
        aiohttp_client: Any, fake: FakeSlack, settings: Any, sessions: Any, caplog: Any) -> None:  # noqa: F811
    caplog.set_level(logging.INFO)
    env = await make_env(aiohttp_client, fake, slack_settings(settings, fake), sessions, retry_base=0.01)
    ana = await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions, external_id="77", name="Lan")
    alert = await escalate(env, conversation_id)
    posted = len(fake.calls_for("chat.postMessage"))

    # the channel is deleted: every post or update into it is refused from now on
    fake.fail_next("chat.postMessage", error="channel_not_found", times=1000)
    fake.fail_next("chat.update", error="channel_not_found", times=1000)
    await customer_writes(env.sessions, "77", "any news?")
    await customer_writes(env.sessions, "77", "hello??")
    await env.idle()
    await asyncio.sleep(0.2)
    assert len(fake.calls_for("chat.postMessage")) == posted + 2  # one try each: never retried, never twice
    dropped = [line for line in slack_lines(caplog) if "channel_not_found" in line]
    assert len(dropped) == 2 and all("dropped" in line for line in dropped)

    # a claim from the card still assigns the conversation; only the card's update is lost (one line)
    resp = await env.post(fs.block_actions_body(sb.ACTION_CLAIM, str(conversation_id), "U0ANA", ALERTS, alert["ts"]))
    assert resp.status == 200

    async def assigned() -> bool:
        async with env.sessions() as s:
            conversation = await s.get(Conversation, conversation_id)
            return conversation is not None and conversation.assignee_id == ana.id
    await eventually(assigned)
    await env.idle()
    await asyncio.sleep(0.2)
    updates = len(fake.calls_for("chat.update"))
    assert updates <= 1 and len([line for line in slack_lines(caplog) if "channel_not_found" in line]) == 2 + updates

    notices = await rows(env.sessions, OutboxMessage, OutboxMessage.channel == Channel.slack)
    assert not [n for n in notices if n.status == OutboxStatus.pending]  # nothing left to retry forever
    assert [n.status for n in notices].count(OutboxStatus.sent) == 1  # the escalation, before the deletion
    assert_quiet_logs(caplog, fake)
