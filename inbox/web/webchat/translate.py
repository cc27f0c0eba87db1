"""The web chat's frames, translated: a customer's ``message`` / ``postback`` frame into our
``InboundMessage`` (or the one-line reason it is refused), a stored ``Message`` into the frame the
widget shows. Pure functions: no I/O, no database."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from inbox.messages import InboundMessage, InvalidMessage, check_text
from inbox.models import Author, Channel, Message

__all__ = ["FrameRefused", "VISITOR_RE", "client_id", "friendly", "message_frame", "read_inbound", "visitor_label"]

VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{16,48}$")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_POSTBACK = 256
_MAX_LABEL = 200


@dataclass(frozen=True)
class FrameRefused:
    """A frame we store nothing for; ``message`` is shown to the customer."""

    message: str
    client_id: str | None = None


def client_id(frame: dict[str, Any]) -> str | None:
    value = frame.get("client_id")
    return value if isinstance(value, str) and _CLIENT_ID_RE.match(value) else None


def visitor_label(visitor: str) -> str:
    """A short, stable, readable name for an anonymous visitor ("Web visitor 7F3A")."""
    return "Web visitor " + hashlib.sha256(visitor.encode()).hexdigest()[:4].upper()



def read_inbound(frame: dict[str, Any], kind: str, *, visitor: str, lang: str | None,
                 max_chars: int) -> InboundMessage | FrameRefused:
    """A ``message`` or ``postback`` frame of ``visitor`` as an ``InboundMessage``."""
    cid = client_id(frame)
    if cid is None:
        return FrameRefused("Every message needs a client_id of 1-64 letters, digits, '-' or '_'.")
    postback: str | None = None
    limit = max_chars
    if kind == "message":
        raw = frame.get("text")
    else:
        value = frame.get("value")
        if not isinstance(value, str) or not value.strip() or len(value) > _MAX_POSTBACK or "\x00" in value:
            return FrameRefused("That button is not valid.", cid)
        postback = value.strip()
        raw = frame.get("label") if isinstance(frame.get("label"), str) and frame.get("label") else value
        limit = min(max_chars, _MAX_LABEL)
    if not isinstance(raw, str):
        return FrameRefused("The message text must be a string.", cid)
    try:
        text = check_text(raw, max_chars=limit)
    except InvalidMessage as exc:
        return FrameRefused(friendly(exc.reason, max_chars), cid)
    if not text:
        return FrameRefused("The message is empty.", cid)
    return InboundMessage(
        channel=Channel.webchat,
        dedupe_key=f"{visitor}:{cid}",
        contact_external_id=visitor,
        text=text,
        display_name=visitor_label(visitor),
        language_hint=lang,
        channel_message_id=cid,
        postback=postback,
    )


def friendly(reason: str, max_chars: int) -> str:
    if "too long" in reason:
        return f"The message is too long (at most {max_chars} characters)."
    if "NUL" in reason:
        return "The message contains a character we cannot accept (NUL)."
    if "empty" in reason:
        return "The message is empty."
    return "The message could not be accepted: " + reason



def message_frame(message: Message, agent_names: dict[int, str]) -> dict[str, Any]:
    author = message.author.value if isinstance(message.author, Author) else str(message.author)
    name = None
    if author == "agent" and message.agent_id is not None:
        name = agent_names.get(message.agent_id)
    return {
        "type": "message",
        "id": message.id,
        "author": author,
        "author_name": name,
        "text": message.text,
        "quick_replies": [
            {"label": str(q.get("label", "")), "value": str(q.get("value", ""))}
            for q in (message.quick_replies or [])
            if isinstance(q, dict)
        ],
    }


