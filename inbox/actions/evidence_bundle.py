"""The dispute evidence bundle: one action, from a conversation or one of its orders.

``evidence_bundle`` checks that the order (if any) belongs to the conversation's verified
customer, reads the facts (``inbox.queries.evidence``), writes the audit row (who bundled what,
when: ids only) and, with ``share="slack"``, collects ``evidence.shared``: after the commit
the Slack notice feed writes an outbox notice, and the Slack sender uploads the PDF and the
JSON into the conversation's escalation thread (durable, retried, never posted twice).
The conversation comes from the access-checked ``get_conversation``.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import order_for_conversation, write_audit
from inbox.events import Event, EventType, collect
from inbox.models import Agent, Conversation
from inbox.queries.evidence import Evidence, load_evidence
from inbox.slack_cards import escalation_thread
from ordersvc.models import Order
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["evidence_bundle", "SHARE_TARGETS", "SLACK_THREAD_KIND"]

SHARE_TARGETS = ("slack",)
#: ``ExternalThread.kind`` of Slack threads (``bot.connectors.slack.send.THREAD_KIND``)
SLACK_THREAD_KIND = "slack"


async def evidence_bundle(
    session: AsyncSession,
    conversation: Conversation,
    *,
    agent: Agent | None,
    order_id: int | None = None,
    share: str | None = None,
    output: str = "pdf",
    now: datetime | None = None,
) -> Evidence:
    """The bundle's facts (refused: the order is not the customer's; no Slack thread to share into)."""
    now = now or utcnow()
    order: Order | None = None
    if order_id is not None:
        _contact, order = await order_for_conversation(session, conversation, order_id)
    if share is not None:
        if share not in SHARE_TARGETS:
            raise Refused("unknown_share_target", "Unknown place to share the evidence.", status=400)
        if await escalation_thread(session, SLACK_THREAD_KIND, conversation.id) is None:
            raise Refused("no_slack_thread", "This conversation has no Slack thread to attach the evidence to.",
                          status=409)
    evidence = await load_evidence(session, conversation, order, now=now)
    write_audit(session, conversation.id, "evidence.bundled", agent=agent,
                detail={"order_id": order_id, "output": "slack" if share else output,
                        "messages": len(evidence.messages)}, now=now)
    if share is not None:
        collect(session, Event(EventType.evidence_shared.value, conversation.id,
                               {"order_id": order_id, "agent_id": agent.id if agent is not None else None}))
    return evidence
