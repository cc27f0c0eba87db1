"""Who may see which conversation (the same rule everywhere, also for search and live updates).

An admin sees every conversation; any other active agent sees conversations with no team,
conversations of their own team, and conversations assigned to them. Deactivated agents see
nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from inbox.models import Agent, Conversation

__all__ = ["check_access", "may_see", "access_condition"]


def check_access(agent: Agent, conversation: Conversation) -> bool:
    """May ``agent`` see ``conversation``? (see the module docstring)"""
    return may_see(agent, conversation.assignee_id, conversation.team_id)


def may_see(agent: Agent, assignee_id: int | None, team_id: int | None) -> bool:
    """:func:`check_access` for a conversation with this assignee and team."""
    if not agent.is_active:
        return False
    if agent.is_admin:
        return True
    if assignee_id is not None and assignee_id == agent.id:
        return True
    return team_id is None or (agent.team_id is not None and team_id == agent.team_id)


def access_condition(agent: Agent) -> ColumnElement[bool]:
    """The SQL form of :func:`check_access` over ``Conversation``."""
    if not agent.is_active:
        return sa.false()
    if agent.is_admin:
        return sa.true()
    conds: list[ColumnElement[bool]] = [Conversation.team_id.is_(None)]  # type: ignore[union-attr]
    if agent.team_id is not None:
        conds.append(Conversation.team_id == agent.team_id)  # type: ignore[arg-type]
    if agent.id is not None:
        conds.append(Conversation.assignee_id == agent.id)  # type: ignore[arg-type]
    return sa.or_(*conds)
