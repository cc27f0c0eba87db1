"""Telegram updates → our :class:`~inbox.messages.InboundMessage` (pure functions, no I/O).

:func:`translate_update` reads one update (a webhook body or a ``getUpdates`` item). The
``dedupe_key`` is ``"<bot id>:<update_id>"``. Only private chats are served: a support
conversation holds order details, which must never be shown to a group. Group and channel
posts, edits, and update types we do not use become ``Translation(ignored=reason)``.

A pressed inline button becomes a :class:`CallbackRef` plus a message whose ``postback`` is
the button's ``callback_data``; the connector accepts it only when the button is on a message
we sent to that same chat (see ``connector.TelegramConnector._own_button``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inbox.messages import Attachment, InboundMessage
from inbox.models import Channel

__all__ = [
    "MAX_CALLBACK_DATA",
    "START_POSTBACK",
    "CallbackRef",
    "MalformedUpdate",
    "Translation",
    "callback_data_for",
    "translate_update",
]

MAX_CALLBACK_DATA = 64
_START = re.compile(r"^/start(?:@[A-Za-z0-9_]{1,64})?(?:\s+(\S+))?\s*$", re.DOTALL)
_DEEP_LINK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: what a bare /start means to the dialog: the Start button is a greeting
START_POSTBACK = "intent:greeting"


class MalformedUpdate(ValueError):
    """The body is not a Telegram update at all (answered 400)."""





@dataclass(frozen=True)
class CallbackRef:
    """A pressed inline button: which query to answer, which of our messages it was under."""

    query_id: str
    chat_id: int
    message_id: int
    data: str


@dataclass(frozen=True)
class Translation:
    """What an update means to us: a message to record, or why it is ignored."""

    update_id: int
    message: InboundMessage | None = None
    callback: CallbackRef | None = None
    ignored: str | None = None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _display_name(user: Mapping[str, Any]) -> str:
    parts = [_str(user.get("first_name")) or "", _str(user.get("last_name")) or ""]
    return " ".join(p for p in parts if p).strip()


def _sent_at(value: Any) -> datetime | None:
    stamp = _int(value)
    if stamp is None or stamp <= 0:
        return None
    try:
        return datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _attachments(message: Mapping[str, Any]) -> tuple[Attachment, ...]:
    """Files the customer sent, as references (Telegram ``file_id``; never a URL with the token)."""
    found: list[Attachment] = []
    photos = [p for p in message.get("photo") or [] if isinstance(p, dict)] if isinstance(message.get("photo"), list) else []
    if photos:
        best = max(photos, key=lambda p: _int(p.get("file_size")) or 0)
        if _str(best.get("file_id")):
            found.append(Attachment(kind="image", filename="photo.jpg", url=best["file_id"], mime="image/jpeg",
                                    size=_int(best.get("file_size"))))
    for key, kind, default_name in (
        ("document", "file", "document"),
        ("video", "video", "video.mp4"),
        ("voice", "audio", "voice.ogg"),
        ("audio", "audio", "audio"),
        ("video_note", "video", "video_note.mp4"),
        ("sticker", "image", "sticker.webp"),
    ):
        item = message.get(key)
        if isinstance(item, dict) and _str(item.get("file_id")):
            found.append(
                Attachment(
                    kind=kind,
                    filename=_str(item.get("file_name")) or default_name,
                    url=item["file_id"],
                    mime=_str(item.get("mime_type")),
                    size=_int(item.get("file_size")),
                )
            )
    return tuple(found)


def translate_update(data: Any, *, bot_key: str = "") -> Translation:
    """Our reading of one Telegram update (a webhook body or a ``getUpdates`` item).

    Raises :class:`MalformedUpdate` only when ``data`` is not an object with an integer
    ``update_id``; every other oddity gives ``Translation(ignored=reason)``. ``bot_key``
    (the token's bot id) namespaces the dedupe key so that a new bot's update ids never
    collide with an old one's.
    """
    if not isinstance(data, dict):
        raise MalformedUpdate("the body is not a JSON object")
    update_id = _int(data.get("update_id"))
    if update_id is None:
        raise MalformedUpdate("update_id is missing or not an integer")
    key = f"{bot_key}:{update_id}" if bot_key else str(update_id)
    if "message" in data:
        return _translate_message(update_id, key, data["message"])
    if "callback_query" in data:
        return _translate_callback(update_id, key, data["callback_query"])
    kinds = sorted(k for k in data if k != "update_id")
    return Translation(update_id, ignored=f"update type {kinds[0] if kinds else 'none'} is not used")


def _private_chat(message: Mapping[str, Any]) -> tuple[int | None, str | None]:
    chat = message.get("chat")
    if not isinstance(chat, dict):
        return None, "message without a chat"
    chat_id = _int(chat.get("id"))
    if chat_id is None:
        return None, "chat id missing"
    if chat.get("type") != "private":
        return None, "not a private chat"
    return chat_id, None


def _translate_message(update_id: int, key: str, message: Any) -> Translation:
    if not isinstance(message, dict):
        return Translation(update_id, ignored="message is not an object")
    chat_id, problem = _private_chat(message)
    if chat_id is None:
        return Translation(update_id, ignored=problem)
    sender = _dict(message.get("from"))
    if sender.get("is_bot") is True:
        return Translation(update_id, ignored="message from a bot")
    raw_text = message.get("text", message.get("caption", ""))
    if raw_text is None:
        raw_text = ""
    if not isinstance(raw_text, str):
        return Translation(update_id, ignored="text is not a string")
    attachments = _attachments(message)
    postback: str | None = None
    start_payload: str | None = None
    start = _START.match(raw_text.strip()) if raw_text.lstrip().startswith("/start") else None
    if start is not None:
        postback = START_POSTBACK
        payload = start.group(1)
        if payload and _DEEP_LINK.match(payload):
            start_payload = payload
    if not raw_text.strip() and not attachments:
        return Translation(update_id, ignored="no text or file we can use")
    message_id = _int(message.get("message_id"))
    language = _str(sender.get("language_code"))
    return Translation(
        update_id,
        message=InboundMessage(
            channel=Channel.telegram,
            dedupe_key=key,
            contact_external_id=str(chat_id),
            text=raw_text,
            display_name=_display_name(sender) or _display_name(_dict(message.get("chat"))),
            username=_str(sender.get("username")),
            language_hint=language,
            attachments=attachments,
            channel_message_id=str(message_id) if message_id is not None else None,
            postback=postback,
            start_payload=start_payload,
            sent_at=_sent_at(message.get("date")),
        ),
    )


def _translate_callback(update_id: int, key: str, query: Any) -> Translation:
    if not isinstance(query, dict):
        return Translation(update_id, ignored="callback_query is not an object")
    query_id = _str(query.get("id"))
    data = _str(query.get("data"))
    sender = _dict(query.get("from"))
    user_id = _int(sender.get("id"))
    message = query.get("message")
    if not query_id or user_id is None:
        return Translation(update_id, ignored="callback query without id or sender")
    if not isinstance(message, dict):
        return Translation(update_id, ignored="callback query without a message (inline mode)")
    chat_id, problem = _private_chat(message)
    message_id = _int(message.get("message_id"))
    if chat_id is None or message_id is None:
        return Translation(update_id, ignored=problem or "callback message id missing")
    ref = CallbackRef(query_id=query_id, chat_id=chat_id, message_id=message_id, data=data or "")
    if chat_id != user_id:
        return Translation(update_id, callback=ref, ignored="button pressed by someone else than the chat's user")
    if not data or len(data.encode("utf-8")) > MAX_CALLBACK_DATA:
        return Translation(update_id, callback=ref, ignored="callback data missing or too long")
    return Translation(
        update_id,
        callback=ref,
        message=InboundMessage(
            channel=Channel.telegram,
            dedupe_key=key,
            contact_external_id=str(chat_id),
            text="",  # filled with the button's label once the button is known to be ours
            display_name=_display_name(sender),
            username=_str(sender.get("username")),
            language_hint=_str(sender.get("language_code")),
            postback=data,
        ),
    )


def callback_data_for(value: str) -> str:
    """The ``callback_data`` carrying a quick reply's value (at most 64 bytes)."""
    if len(value.encode("utf-8")) <= MAX_CALLBACK_DATA:
        return value
    return "h:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:40]

