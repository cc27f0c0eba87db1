""""stop" / "start": the customer turns proactive delivery updates off or on (any language;
words in ``bot/dialog/data/<lang>.yaml``: ``updates_stop``, ``updates_start``; buttons
``updates:off`` / ``updates:on``)."""

from __future__ import annotations

from bot.dialog.choices import is_cancel, updates_request
from bot.dialog.turn import Turn
from inbox.actions.contact_updates import contact_updates

__all__ = ["wanted", "set_updates"]

POSTBACKS = {"updates:on": "start", "updates:off": "stop"}


def wanted(turn: Turn) -> str | None:
    """"stop" or "start" when this message is about delivery updates, else None.

    "stop" alone is also how a customer leaves an open flow (``cancel`` words): then it means
    the updates only right after one (the conversation's ``after_update`` mark), or when no
    flow is open."""
    if turn.postback is not None:
        return POSTBACKS.get(turn.postback)
    answer = updates_request(turn.text, turn.lang)
    if answer is None:
        return None
    busy = bool(turn.state.flow or turn.state.suspended)
    after_update = bool((turn.conversation.bot_state or {}).get("after_update"))
    if busy and not after_update and is_cancel(turn.text, turn.lang):
        return None
    return answer


async def set_updates(turn: Turn, answer: str) -> None:
    allow = answer == "start"
    contact_updates(turn.session, turn.contact, allow=allow, conversation_id=turn.conversation.id, now=turn.now)
    turn.say("updates_started" if allow else "updates_stopped")
