"""Our own message shapes: nothing past a connector sees a vendor payload.

A connector translates a platform update into an :class:`InboundMessage`; the bot and the
agents produce :class:`OutboundPayload` values that the outbox stores as JSON and hands to
the channel's sender. All are frozen dataclasses.

Customer text is untrusted and stays plain text (never HTML): :func:`check_text` rejects NUL
bytes and lone surrogates, normalizes newlines and Unicode (NFC), strips surrounding
whitespace and refuses texts longer than the limit with :class:`InvalidMessage`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from inbox.models import Channel
from shopbase.refusal import Refused
from shopbase.text import clean_line

__all__ = [
    "QuickReply",
    "Attachment",
    "InboundMessage",
    "OutboundPayload",
    "InvalidMessage",
    "check_text",
    "clean_url",
]

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0/C1 control characters except tab and newline: never wanted in a URL
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SAFE_URL_SCHEMES = {"http", "https"}


class InvalidMessage(Refused, ValueError):
    """A message we refuse to store or send; ``reason`` is one line fit for a 4xx answer."""

    def __init__(self, reason: str) -> None:
        super().__init__("invalid_message", reason, status=400)
        self.reason = reason


def check_text(text: str, *, max_chars: int = 4096, what: str = "message") -> str:
    """The stored form of a customer or agent text, or :class:`InvalidMessage`.

    Rejects NUL bytes and invalid surrogates (PostgreSQL refuses the first, every encoder the
    second); turns CRLF and CR into LF; NFC-normalizes; strips surrounding whitespace; and
    refuses more than ``max_chars`` characters (counted after stripping).
    """
    if not isinstance(text, str):
        raise InvalidMessage(f"{what} text must be a string")
    if "\x00" in text:
        raise InvalidMessage(f"{what} contains a NUL byte")
    if _SURROGATE.search(text):
        raise InvalidMessage(f"{what} contains invalid unicode (a lone surrogate)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) > max_chars:
        raise InvalidMessage(f"{what} too long: {len(text)} characters, at most {max_chars}")
    return text


def clean_url(url: str | None) -> str | None:
    """Keep an attachment URL only if it cannot run script when an agent clicks it:
    http(s) URLs and scheme-less references (relative paths, opaque file ids)."""
    if not url:
        return None
    url = str(url).strip()
    if "\x00" in url or _SURROGATE.search(url) or _CONTROL.search(url) or len(url) > 2048:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if scheme and scheme not in _SAFE_URL_SCHEMES:
        return None
    if url.startswith("//"):
        return None
    return url


@dataclass(frozen=True)
class QuickReply:
    """A button under a message: ``label`` is shown, ``value`` comes back as the postback."""

    label: str
    value: str


@dataclass(frozen=True)
class Attachment:
    kind: str
    filename: str
    url: str | None = None
    mime: str | None = None
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attachment:
        size = data.get("size")
        return cls(
            kind=clean_line(data.get("kind"), 32) or "file",
            filename=clean_line(data.get("filename"), 255),
            url=clean_url(data.get("url")),
            mime=clean_line(data.get("mime"), 128) or None,
            size=int(size) if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        )

    def cleaned(self) -> Attachment:
        """The same attachment with display fields made safe (see :func:`shopbase.text.clean_line`, :func:`clean_url`)."""
        return Attachment.from_dict(self.to_dict())


@dataclass(frozen=True)
class InboundMessage:
    """One customer message as a connector understood it.

    ``dedupe_key`` is the platform's own delivery id (Telegram ``update_id``, Slack
    ``event_id``, a widget client id namespaced by visitor); a retry of the same delivery
    carries the same key. ``postback`` is the value of a pressed quick reply;
    ``start_payload`` a deep-link parameter.
    """

    channel: Channel
    dedupe_key: str
    contact_external_id: str
    text: str
    display_name: str = ""
    username: str | None = None
    language_hint: str | None = None
    attachments: tuple[Attachment, ...] = ()
    channel_message_id: str | None = None
    postback: str | None = None
    start_payload: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class OutboundPayload:
    """What we send: text, optional quick replies and attachments (stored in ``OutboxMessage.payload``)."""

    text: str
    quick_replies: tuple[QuickReply, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    #: who speaks ("bot", "agent", "system") and the agent's display name, stored with the outbox
    #: row so a sender can show them without reading the message back
    author: str | None = None
    author_name: str | None = None
    #: the stored Message this payload delivers (set by the outbox when it sends; not stored)
    message_id: int | None = None
    #: a proactive update the merchant pays to broadcast faster (Telegram's ``allow_paid_broadcast``)
    paid_broadcast: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            # QuickReply's two fields, without asdict's recursion (a reply's hot path)
            "quick_replies": [{"label": q.label, "value": q.value} for q in self.quick_replies],
            "attachments": [a.to_dict() for a in self.attachments],
        }
        if self.author is not None:
            data["author"] = self.author
        if self.author_name is not None:
            data["author_name"] = self.author_name
        if self.paid_broadcast:
            data["paid_broadcast"] = True
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, message_id: int | None = None) -> OutboundPayload:
        """The stored payload; ``message_id``: the Message it delivers (the outbox sets it when it
        sends, instead of a ``dataclasses.replace`` per send)."""
        return cls(
            text=str(data.get("text") or ""),
            quick_replies=tuple(
                QuickReply(label=str(q.get("label", "")), value=str(q.get("value", "")))
                for q in data.get("quick_replies") or ()
            ),
            attachments=tuple(Attachment.from_dict(a) for a in data.get("attachments") or ()),
            author=str(data["author"]) if data.get("author") else None,
            author_name=str(data["author_name"]) if data.get("author_name") else None,
            paid_broadcast=data.get("paid_broadcast") is True,
            message_id=message_id,
        )
