"""``shopdesk chat``: talk to the bot as a customer in the terminal.

Merchants use it to try their flows. Each line typed is recorded like any other channel's
message (channel ``terminal``), processed by the same pipeline, and the bot's replies are
printed and marked delivered. Quick replies are shown numbered; typing the number picks one.
With ``--email`` the terminal identity is linked to that customer, as if already verified.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import BotSettings
from bot.pipeline import Pipeline
from inbox.actions.contact_create import contact_create
from inbox.actions.contact_link import contact_link
from inbox.actions.message_record import message_record
from inbox.events import EventBus
from inbox.messages import InboundMessage, InvalidMessage, OutboundPayload
from inbox.models import Channel
from inbox.outbox import take_pending
from ordersvc.service import find_customer_by_email
from shopbase.sessions import session_maker

__all__ = ["run_terminal_chat", "TerminalSession"]


class TerminalSession:
    """One customer identity on the terminal channel, driving the real pipeline."""

    def __init__(self, engine: AsyncEngine, settings: BotSettings, *, lang: str | None = None) -> None:
        self.sessions = session_maker(engine)
        self.settings = settings
        self.pipeline = Pipeline(sessions=self.sessions, bus=EventBus(), settings=settings)
        self.identity = "terminal-" + secrets.token_hex(6)
        self.lang = lang
        self._counter = 0

    async def link_email(self, email: str) -> bool:
        """Link this identity to the customer with ``email`` (merchant's own test tool)."""
        async with self.sessions() as session:
            customer = await find_customer_by_email(session, email)
            if customer is None:
                return False
            contact = await contact_create(session, Channel.terminal, self.identity,
                                           display_name=customer.first_name, language=self.lang)
            await contact_link(session, contact, customer.id)  # type: ignore[arg-type]
            await session.commit()
            return True

    async def send(self, text: str, postback: str | None = None) -> list[OutboundPayload]:
        """Say ``text``; return the bot's replies (and mark them delivered)."""
        self._counter += 1
        result = await message_record(
            self.sessions,
            InboundMessage(
                channel=Channel.terminal,
                dedupe_key=f"{self.identity}:{self._counter}",
                contact_external_id=self.identity,
                text=text,
                language_hint=self.lang,
                postback=postback,
            ),
            max_chars=self.settings.max_message_chars,
        )
        await self.pipeline.process(result.message_id)
        async with self.sessions() as session:
            replies = await take_pending(session, result.conversation_id)
            await session.commit()
        return replies


def _show(payloads: list[OutboundPayload], out: TextIO) -> list[str]:
    choices: list[str] = []
    for payload in payloads:
        out.write("bot> " + payload.text.replace("\n", "\n     ") + "\n")
        for attachment in payload.attachments:
            out.write(f"     [{attachment.filename}] {attachment.url or ''}\n")
        for quick in payload.quick_replies:
            choices.append(quick.value)
            out.write(f"     {len(choices)}. {quick.label}\n")
    out.flush()
    return choices


async def run_terminal_chat(engine: AsyncEngine, settings: BotSettings, *, email: str | None = None,
                            lang: str | None = None, inp: TextIO | None = None, out: TextIO | None = None) -> None:
    inp = inp or sys.stdin
    out = out or sys.stdout
    chat = TerminalSession(engine, settings, lang=lang)
    if email:
        if not await chat.link_email(email):
            out.write("(no customer with that email; chatting as a new customer)\n")
    out.write("Type a message (Ctrl-D to leave).\n")
    choices: list[str] = []
    loop = asyncio.get_running_loop()
    while True:
        out.write("you> ")
        out.flush()
        line = await loop.run_in_executor(None, inp.readline)
        if not line:
            out.write("\n")
            return
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        postback = None
        if text.strip().isdigit() and 1 <= int(text.strip()) <= len(choices):
            postback = choices[int(text.strip()) - 1]
        try:
            replies = await chat.send(text, postback=postback)
        except InvalidMessage as exc:
            out.write(f"(not sent: {exc})\n")
            continue
        choices = _show(replies, out)
