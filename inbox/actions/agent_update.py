"""An admin changes an agent account: (de)activate, role, Slack user id, password, sign out
everywhere. Every change is audited; deactivating, a new password and "sign out" end the
agent's sessions (``session_version``)."""

from __future__ import annotations

import re

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.auth import set_password
from inbox.models import Agent, Role
from shopbase.refusal import Refused

__all__ = ["AGENT_CHANGES", "agent_update"]

AGENT_CHANGES = ("deactivate", "activate", "make_admin", "make_agent", "slack", "password", "sign_out",
                 "allow_overrides", "deny_overrides")
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")


async def agent_update(
    session: AsyncSession,
    agent: Agent,
    change: str,
    *,
    by: Agent,
    slack_user_id: str = "",
    password: str = "",
) -> None:
    """Apply one of :data:`AGENT_CHANGES`. Refused for an unknown change, for an admin
    deactivating or demoting themself, and for a malformed Slack user id; ``AgentError``
    for a password that is too weak."""
    self_change = agent.id == by.id
    if change == "deactivate":
        if self_change:
            raise Refused("self", "you cannot deactivate yourself", status=400)
        agent.is_active = False
        agent.session_version += 1  # signs them out everywhere
    elif change == "activate":
        agent.is_active = True
    elif change == "make_admin":
        agent.role = Role.admin
    elif change == "make_agent":
        if self_change:
            raise Refused("self", "you cannot remove your own admin role", status=400)
        agent.role = Role.agent
    elif change == "slack":
        value = slack_user_id.strip().upper()
        if value and not _SLACK_ID.match(value):
            raise Refused("bad_slack_id", "a Slack user id looks like U0123ABCD", status=400)
        agent.slack_user_id = value or None
    elif change == "password":
        await set_password(session, agent, password)
    elif change == "sign_out":
        agent.session_version += 1
    elif change in ("allow_overrides", "deny_overrides"):  # may accept returns the policy refuses
        agent.can_override_returns = change == "allow_overrides"
    else:
        raise Refused("unknown_change", "unknown action", status=400)
    session.add(agent)
    write_audit(session, None, f"agent.{change}", agent=by, detail={"agent_id": agent.id})
