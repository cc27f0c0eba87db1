"""Live updates for agents: one WebSocket per open inbox tab at ``/inbox/ws``.

The hub subscribes to the EventBus and forwards small JSON notices, ids only, never text:
``{"type": "message.created", "conversation_id": 7, "message_id": 42}``. The page then
fetches the re-rendered, escaped fragment over HTTP, where the usual access checks apply,
so a socket never carries anything an agent could not load anyway. Notices about a
conversation go only to agents who may see it (``inbox.queries.access.check_access``, the rule of
``get_conversation``).

Presence: a tab tells the hub which conversation it shows (``{"type": "view",
"conversation_id": 7}``, access-checked); everyone viewing that conversation gets
``{"type": "presence", "conversation_id": 7, "viewers": [{"id": 3, "name": "Ana"}]}``.
The unread notification count is pushed, not polled: right after ``hello``, and whenever an
alert fires (to every agent who may see it) or an agent marks notifications read (to that
agent's tabs), each tab gets ``{"type": "notifications", "unread": 3}`` (a number only).
A customer profile that changes (merge, un-merge, note, tags) reaches the tabs of agents who may
open it as ``{"type": "customer.updated", "profile_ids": [4, 9]}``; the profile page and the
conversation sidebar showing one of them re-read themselves.

Heartbeats are WebSocket pings (aiohttp's ``heartbeat``); a closed or stuck socket is
dropped and its presence cleared.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Agent, Conversation
from inbox.queries.access import check_access
from inbox.web.rendering import error_response
from inbox.web.security import check_origin
from inbox.web.state import AGENT, STATE

__all__ = ["AgentHub", "agent_socket"]

log = logging.getLogger("inbox.web.live")

_FORWARDED = {
    "message.created",
    "message.delivery",
    "conversation.updated",
    "conversation.assigned",
    "conversation.escalated",
    "contact.updated",
}
_NOTIFICATION_EVENTS = {"alert", "notifications.read"}
_CUSTOMER_EVENTS = {"customer.updated"}
_MAX_PROFILE_IDS = 20
_AUTHORS = {"customer", "bot", "agent", "system"}
_SEND_TIMEOUT = 5.0
HEARTBEAT_SECONDS = 20.0
SESSION_CHECK_SECONDS = 60.0


@dataclass(eq=False)
class AgentSocket:
    ws: web.WebSocketResponse
    agent: Agent
    viewing: int | None = None


class AgentHub:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._sockets: set[AgentSocket] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def count(self) -> int:
        return len(self._sockets)

    def viewers(self, conversation_id: int) -> list[dict[str, Any]]:
        seen: dict[int, dict[str, Any]] = {}
        for s in self._sockets:
            if s.viewing == conversation_id and s.agent.id is not None:
                seen.setdefault(s.agent.id, {"id": s.agent.id, "name": s.agent.name or s.agent.email.split("@")[0]})
        return sorted(seen.values(), key=lambda v: v["id"])

    async def _send(self, sock: AgentSocket, frame: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(sock.ws.send_str(json.dumps(frame)), _SEND_TIMEOUT)
        except (TimeoutError, ConnectionError, RuntimeError):
            self._sockets.discard(sock)

    async def _broadcast_presence(self, conversation_id: int | None) -> None:
        if conversation_id is None:
            return
        frame = {"type": "presence", "conversation_id": conversation_id, "viewers": self.viewers(conversation_id)}
        await asyncio.gather(*(self._send(s, frame) for s in list(self._sockets) if s.viewing == conversation_id))

    async def _push_unread(self, targets: list[AgentSocket]) -> None:
        """Send each target tab its agent's unread notification count (one query per agent)."""
        from inbox.queries.notifications import unread_count

        by_agent: dict[int, list[AgentSocket]] = {}
        for sock in targets:
            if sock.agent.id is not None:
                by_agent.setdefault(sock.agent.id, []).append(sock)
        if not by_agent:
            return
        counts: dict[int, int] = {}
        async with self._sessions() as db:
            for agent_id, socks in by_agent.items():
                counts[agent_id] = await unread_count(db, socks[0].agent)
        await asyncio.gather(*(self._send(s, {"type": "notifications", "unread": counts[agent_id]})
                               for agent_id, socks in by_agent.items() for s in socks))

    async def _on_notifications(self, event: Any) -> None:
        data = event.data or {}
        if event.type == "notifications.read":
            await self._push_unread([s for s in list(self._sockets) if s.agent.id == data.get("agent_id")])
            return
        targets = list(self._sockets)
        if event.conversation_id is not None:  # an alert about a conversation: only those who may see it
            async with self._sessions() as db:
                conversation = await db.get(Conversation, event.conversation_id)
            targets = [s for s in targets if conversation is None or check_access(s.agent, conversation)]
        await self._push_unread(targets)

    async def _on_customer(self, event: Any) -> None:
        """A customer profile changed (merge, un-merge, note, tags): each tab gets the ids of the
        changed profiles its agent may open (``profile_visible``), and re-reads what shows them."""
        from inbox.queries.profiles import profile_visible

        raw = (event.data or {}).get("profile_ids")
        ids = [i for i in raw if isinstance(i, int) and not isinstance(i, bool)][:_MAX_PROFILE_IDS] \
            if isinstance(raw, list) else []
        if not ids:
            return
        targets: list[tuple[AgentSocket, list[int]]] = []
        visible: dict[int, list[int]] = {}
        async with self._sessions() as db:
            for sock in list(self._sockets):
                agent_id = sock.agent.id or 0
                if agent_id not in visible:
                    visible[agent_id] = [i for i in ids if await profile_visible(db, sock.agent, i)]
                if visible[agent_id]:
                    targets.append((sock, visible[agent_id]))
        await asyncio.gather(*(self._send(s, {"type": "customer.updated", "profile_ids": shown})
                               for s, shown in targets))

    async def on_event(self, event: Any) -> None:
        """EventBus subscriber: forward ids of what changed to the agents who may see it."""
        if self._sockets and event.type in _NOTIFICATION_EVENTS:
            await self._on_notifications(event)
            return
        if self._sockets and event.type in _CUSTOMER_EVENTS:
            await self._on_customer(event)
            return
        if not self._sockets or event.type not in _FORWARDED or event.conversation_id is None:
            return
        async with self._sessions() as db:
            conversation = await db.get(Conversation, event.conversation_id)
        if conversation is None:
            return
        frame: dict[str, Any] = {"type": str(event.type), "conversation_id": event.conversation_id}
        data = event.data or {}
        if isinstance(data.get("message_id"), int):
            frame["message_id"] = data["message_id"]
        if data.get("author") in _AUTHORS:
            frame["author"] = data["author"]
        # ids only: lets a tab tell "a reply in a conversation assigned to me" (notifications)
        if conversation.assignee_id is not None:
            frame["assignee_id"] = conversation.assignee_id
        targets = [s for s in list(self._sockets) if check_access(s.agent, conversation)]
        await asyncio.gather(*(self._send(s, frame) for s in targets))

    async def _view(self, sock: AgentSocket, conversation_id: Any) -> None:
        from inbox.queries.conversations import get_conversation

        previous = sock.viewing
        wanted: int | None = None
        if isinstance(conversation_id, int) and not isinstance(conversation_id, bool):
            async with self._sessions() as db:
                if await get_conversation(db, sock.agent, conversation_id) is not None:
                    wanted = conversation_id
        if wanted == previous:
            if wanted is not None:
                await self._send(sock, {"type": "presence", "conversation_id": wanted, "viewers": self.viewers(wanted)})
            return
        sock.viewing = wanted
        await self._broadcast_presence(previous)
        if wanted is None:  # nothing (visible) open: say so to this tab only
            await self._send(sock, {"type": "presence", "conversation_id": None, "viewers": []})
        else:
            await self._broadcast_presence(wanted)

    async def serve(self, request: web.Request, agent: Agent) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=4096)
        await ws.prepare(request)
        sock = AgentSocket(ws=ws, agent=agent)
        self._sockets.add(sock)
        watcher = asyncio.create_task(self._watch_session(sock), name="agent-socket-session-check")
        try:
            await ws.send_str(json.dumps({"type": "hello", "agent_id": agent.id}))
            await self._push_unread([sock])  # a (re)connected tab catches up with what it missed
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
                    continue
                if not isinstance(frame, dict):
                    continue
                kind = frame.get("type")
                if kind == "view":
                    await self._view(sock, frame.get("conversation_id"))
                elif kind == "ping":
                    await self._send(sock, {"type": "pong"})
        finally:
            watcher.cancel()
            self._sockets.discard(sock)
            # the handler may be cancelled when the peer goes away: tell the others from a task of its own
            self._spawn(self._broadcast_presence(sock.viewing))
        return ws

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_session(self, sock: AgentSocket) -> None:
        """Close the socket once the agent is deactivated or signed out everywhere."""
        while not sock.ws.closed:
            await asyncio.sleep(SESSION_CHECK_SECONDS)
            try:
                async with self._sessions() as db:
                    fresh = await db.get(Agent, sock.agent.id)
            except Exception:
                log.warning("session check failed; will retry")
                continue
            if fresh is None or not fresh.is_active or fresh.session_version != sock.agent.session_version:
                await sock.ws.close(code=4401, message=b"session ended")
                return

    async def close_all(self) -> None:
        sockets = list(self._sockets)
        self._sockets.clear()
        await asyncio.gather(
            *(s.ws.close(code=1001, message=b"server shutdown") for s in sockets), return_exceptions=True
        )


async def agent_socket(request: web.Request) -> web.StreamResponse:
    """GET /inbox/ws — session-authenticated (the /inbox middleware ran) and Origin-checked."""
    state = request.app[STATE]
    if not check_origin(request, state.config):
        return error_response(request, 403, "WebSocket origin not allowed")
    return await state.agents.serve(request, request[AGENT])
