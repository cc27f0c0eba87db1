# ruff: noqa: F811  (the fixtures imported from test_slack are used as parameters of the same name)
"""Alert rules and returns insight in Slack, against the loopback Slack fake with the real
slack_sdk client: Block Kit alerts with a link back, ``/returns``, a vanished channel."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from inbox.alerts.runner import AlertRunner
from inbox.models import FiredAlert, OutboxMessage, OutboxStatus
from ordersvc.models import ReturnAuthorization, ReturnLine, ReturnReason
from tests.fakes import slack as fs
from tests.ordersvc_builders import make_level, make_order, make_variants, make_warehouse
from tests.test_slack import (  # noqa: F401  (fixtures)
    ALERTS,
    Env,
    add_agent,
    buttons,
    env,
    fake,
    lite_sessions,
    make_env,
    slack_settings,
    texts,
)

NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # before the digest's default 09:00


async def returns_of_a_tee(sessions: Any, *, note: str = "runs <!channel> small & tight") -> None:
    async with sessions() as s:
        for variant in await make_variants(s, "linen-tee", ["TEE-S", "TEE-M"]):
            variant.product_title = "Linen tee"  # the catalogue's name wins over the order lines'
        _, lines = await make_order(s, [{"sku": "TEE-S", "quantity": 10, "title": "Linen tee"},
                                        {"sku": "MUG", "quantity": 1, "title": "Mug"}],
                                    placed_at=NOW - timedelta(days=10))
        for i in range(3):
            rma = ReturnAuthorization(rma_number=f"R-{i}", order_id=lines[0].order_id,
                                      requested_at=NOW - timedelta(days=i + 1))
            s.add(rma)
            await s.flush()
            s.add(ReturnLine(rma_id=rma.id, order_line_id=lines[0].id, quantity=1, reason=ReturnReason.too_small,
                             reason_note=note if i == 0 else None))
        await s.commit()


async def test_rule_alerts_reach_slack_as_block_kit_with_a_link_back(env: Env) -> None:
    await returns_of_a_tee(env.sessions)
    async with env.sessions() as s:
        main = await make_warehouse(s, "MAIN")
        await make_level(s, main, "TEE-M", on_hand=1, safety_stock=2)
        await s.commit()
    runner = AlertRunner(env.sessions)
    fired = await runner.run_once(NOW)
    await env.idle()
    posted = env.alerts()
    assert sorted(m["text"] for m in posted) == ["Low stock: TEE-M at Warehouse MAIN", "Returns are spiking: Linen tee"]
    spike = next(m for m in posted if m["text"].startswith("Returns"))
    assert "3 returned as “Too small” in 7 days" in texts(spike)  # the reason as the catalog labels it
    [button] = buttons(spike).values()
    assert button["text"]["text"] == "Open product's returns"
    assert button["url"] == "https://desk.example/inbox/admin/returns?product=linen-tee"
    assert [b["type"] for b in spike["blocks"]] == ["header", "section", "actions"]
    # the notices were written with the alerts, once; a second run fires and posts nothing
    async with env.sessions() as s:
        notices = (await s.exec(select(OutboxMessage).where(OutboxMessage.contact_id.is_(None)))).all()
    assert len(notices) == len(fired) == 2
    assert await runner.run_once(NOW + timedelta(minutes=5)) == []
    await env.idle()
    assert len(env.alerts()) == 2


async def test_escalation_rule_does_not_post_twice(env: Env) -> None:
    from tests.test_slack import customer_conversation, escalate

    conversation_id = await customer_conversation(env.sessions)
    await escalate(env, conversation_id)  # the escalation alert with Claim / Resolve
    fired = await AlertRunner(env.sessions).run_once(datetime.now(UTC))
    await env.idle()
    async with env.sessions() as s:
        rules = [a.rule for a in (await s.exec(select(FiredAlert).where(FiredAlert.id.in_(fired)))).all()]
    assert "escalation" in rules  # in the inbox's notifications …
    # … but Slack has it once, from the escalation itself (the other post is the day's digest)
    assert sum(f"#{conversation_id}" in m["text"] for m in env.alerts()) == 1


async def test_vanished_channel_marks_the_notice_failed_with_one_line(
        aiohttp_client: Any, fake: Any, lite_settings: Any, lite_sessions: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    env = await make_env(aiohttp_client, fake, slack_settings(lite_settings, fake), lite_sessions, retry_base=0.01)
    async with lite_sessions() as s:
        main = await make_warehouse(s, "MAIN")
        await make_level(s, main, "MUG", on_hand=0)
        await s.commit()
    fake.fail_next("chat.postMessage", error="channel_not_found")
    runner = AlertRunner(lite_sessions)
    assert len(await runner.run_once(NOW)) == 1
    await env.idle()
    async with lite_sessions() as s:
        [notice] = (await s.exec(select(OutboxMessage))).all()
    assert notice.status == OutboxStatus.undeliverable and "channel_not_found" in (notice.last_error or "")
    lines = [r.getMessage() for r in caplog.records if "channel_not_found" in r.getMessage()]
    assert len(lines) == 1 and "dropped" in lines[0]
    assert await runner.run_once(NOW + timedelta(minutes=1)) == []  # fired once: no retry storm
    assert len(fake.calls_for("chat.postMessage")) == 1


async def test_returns_command_answers_privately_with_rate_reasons_and_words(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    await returns_of_a_tee(env.sessions, note="runs <!channel> small & <http://evil|tight>")
    async with env.sessions() as s:  # a second product with "tee" in its name
        await make_order(s, [{"sku": "TEE-KIDS", "quantity": 1, "title": "Kids tee"}], name="#7",
                         placed_at=datetime.now(UTC) - timedelta(days=1))
        await s.commit()
    url = env.fake.response_url("r1")
    # /returns reads the last 30 days from now: move the returns there
    async with env.sessions() as s:
        for rma in (await s.exec(select(ReturnAuthorization))).all():
            rma.requested_at = datetime.now(UTC) - timedelta(days=2)
        await s.commit()
    resp = await env.post(fs.slash_command_body("/returns", "tee-s", "U0ANA", ALERTS, url))
    answer = await resp.json()
    assert resp.status == 200 and answer["response_type"] == "ephemeral"
    body = json.dumps(answer["blocks"], ensure_ascii=False)
    assert "Returns: Linen tee" in body and "30%" in body and "too small: 3" in body
    assert "runs &lt;!channel&gt; small &amp; &lt;http://evil|tight&gt;" in body  # the customer's words, inert
    assert "<!channel>" not in body
    assert buttons(answer["blocks"] and {"blocks": answer["blocks"]})[
        "shopdesk_open"]["url"] == "https://desk.example/inbox/admin/returns?product=linen-tee"

    several = await (await env.post(fs.slash_command_body("/returns", "tee", "U0ANA", ALERTS, url))).json()
    assert "Several products match" in several["text"] and "Kids tee" in json.dumps(several["blocks"])
    miss = await (await env.post(fs.slash_command_body("/returns", "sofa & <b", "U0ANA", ALERTS, url))).json()
    assert miss["text"] == "No product found for `sofa &amp; &lt;b`."
    stranger = await (await env.post(fs.slash_command_body("/returns", "tee-s", "U0STRANGER", ALERTS, url))).json()
    assert "Only Shopdesk agents" in stranger["text"]
    usage = await (await env.post(fs.slash_command_body("/returns", "  ", "U0ANA", ALERTS, url))).json()
    assert "Usage" in usage["text"]
    assert env.fake.calls_for("chat.postMessage") == []  # nothing public
