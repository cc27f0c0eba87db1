"""Agents in Slack: who a Slack user is in Shopdesk, and linking them.

Agents are matched to Slack users by ``Agent.slack_user_id``; an unknown Slack user is looked
up (``users.info`` for the email, else ``users.lookupByEmail`` for each unlinked agent) and
linked on first match. Someone who is not an agent is told to link their account.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.connectors.slack import blocks
from bot.connectors.slack.setup import slack_error
from inbox import slack_cards
from inbox.actions.agent_slack_link import agent_slack_link
from inbox.models import Agent

__all__ = ["LINK_HINT", "AgentDirectory", "agent_label", "link_slack_user"]

log = logging.getLogger("shopdesk.slack")

LINK_HINT = ("I don't know you as a Shopdesk agent yet. Ask an admin to link your Slack account, "
             "or make sure your Slack email is the one you sign in to the inbox with.")


async def link_slack_user(session: AsyncSession, agent: Agent, slack_user_id: str | None) -> None:
    """Set (or clear) the Slack user an agent acts as (admin action; the caller commits)."""
    await agent_slack_link(session, agent, slack_user_id)


def agent_label(agent: Agent) -> str:
    """The agent's name (escaped) and a mention of their Slack user, for Slack texts."""
    mention = f" (<@{agent.slack_user_id}>)" if agent.slack_user_id else ""
    return f"{blocks.escape(agent.name or f'agent #{agent.id}')}{mention}"


class AgentDirectory:
    """Finds (and links on first sight) the active agent behind a Slack user id."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: AsyncWebClient) -> None:
        self.sessions = sessions
        self.client = client

    async def agent_for(self, slack_user_id: str) -> Agent | None:
        """The active agent linked to this Slack user, linking by email on first sight."""
        if not slack_user_id:
            return None
        async with self.sessions() as session:
            agent = await slack_cards.linked_agent(session, slack_user_id)
            if agent is not None:
                return agent
        email = await self._slack_email(slack_user_id)
        async with self.sessions() as session:
            # Linked meanwhile? Slack delivers the same event several times at once, and the
            # first delivery may have linked this user while this one asked Slack for the email.
            agent = await slack_cards.linked_agent(session, slack_user_id)
            if agent is not None:
                return agent
            if email:
                agent = await slack_cards.unlinked_agent_by_email(session, email)
            if agent is None:
                agent = await self._link_by_lookup(session, slack_user_id)
            if agent is None:  # nobody to link: unless a concurrent delivery linked them just now
                return await slack_cards.linked_agent(session, slack_user_id)
            await link_slack_user(session, agent, slack_user_id)
            await session.commit()
            log.info("slack: linked a Slack user to agent %s by email", agent.id)
            return agent

    async def _slack_email(self, slack_user_id: str) -> str | None:
        try:
            info = await self.client.users_info(user=slack_user_id)
        except SlackClientError as exc:
            log.info("slack: users.info failed (%s)", slack_error(exc))
            return None
        user = info.get("user") or {}
        if user.get("is_bot") or user.get("deleted"):
            return None
        email = (user.get("profile") or {}).get("email")
        return email if isinstance(email, str) and email else None

    async def _link_by_lookup(self, session: AsyncSession, slack_user_id: str) -> Agent | None:
        """users.lookupByEmail for unlinked agents (when users.info shows no email)."""
        for agent in await slack_cards.unlinked_agents(session, limit=50):
            try:
                found = await self.client.users_lookupByEmail(email=agent.email)
            except SlackClientError:
                continue
            if (found.get("user") or {}).get("id") == slack_user_id:
                return agent
        return None
