"""Slack payloads → what they mean to us (pure functions, no I/O).

* :func:`read_click`: a ``block_actions`` body → :class:`Click` (who, on which message, value).
* :func:`read_thread_post`: a ``message`` event → :class:`ThreadPost` when it is a person's
  reply inside a thread (not a bot, not an edit, not the thread's parent).
* :func:`check_shape`: why a signed body cannot be a request bolt can dispatch.
* :func:`order_query`: the text of ``/order`` as plain words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.connectors.slack.blocks import slack_to_plain

__all__ = [
    "NOTE_PREFIX",
    "Click",
    "ThreadPost",
    "check_shape",
    "order_query",
    "read_click",
    "read_thread_post",
]

NOTE_PREFIX = "note:"


@dataclass(frozen=True)
class Click:
    """One button click, read from a block_actions body."""

    user_id: str
    channel: str
    message_ts: str
    value: str
    action_ts: str
    message_blocks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def delivery_key(self) -> str:
        """The click's own id: a retried delivery of it has the same key."""
        return f"action:{self.user_id}:{self.action_ts}"


def read_click(body: Mapping[str, Any]) -> Click | None:
    try:
        action = body["actions"][0]
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        message = body.get("message") or {}
        ts = container.get("message_ts") or message.get("ts")
        user_id = body["user"]["id"]
        if not (isinstance(channel, str) and isinstance(ts, str) and isinstance(user_id, str)):
            return None
        return Click(user_id=user_id, channel=channel, message_ts=ts, value=str(action.get("value") or ""),
                     action_ts=str(action.get("action_ts") or ""),
                     message_blocks=list(message.get("blocks") or []))
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class ThreadPost:
    """A person's message inside a thread: a reply to the customer or an internal note."""

    channel: str
    user: str
    ts: str
    thread_ts: str
    text: str  # plain text (Slack markup undone), stripped; without the note prefix for notes
    is_note: bool
    delivery_key: str


def read_thread_post(event: Mapping[str, Any], event_id: str) -> ThreadPost | None:
    if event.get("subtype") or event.get("bot_id"):
        return None
    channel, user, ts, thread_ts = (event.get(k) for k in ("channel", "user", "ts", "thread_ts"))
    text = event.get("text")
    if not (isinstance(channel, str) and channel and isinstance(user, str) and user and isinstance(ts, str) and ts
            and isinstance(thread_ts, str) and thread_ts) or thread_ts == ts:
        return None
    if not isinstance(text, str):
        return None
    plain = slack_to_plain(text).strip()
    is_note = plain.lower().startswith(NOTE_PREFIX)
    return ThreadPost(channel=channel, user=user, ts=ts, thread_ts=thread_ts,
                      text=plain[len(NOTE_PREFIX):].strip() if is_note else plain, is_note=is_note,
                      delivery_key=f"event:{event_id}" if event_id else f"message:{channel}:{ts}")


def order_query(text: str) -> str:
    """``/order`` text as plain words (``<mailto:a@b|a@b>`` → ``a@b``), at most 200 characters."""
    return " ".join(slack_to_plain(text).split())[:200]


def _is_object_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def check_shape(body: Any) -> str | None:
    """Why a signed body cannot be a Slack request bolt can dispatch, or None.

    Slack always sends these shapes; checking them keeps bolt's own parsing from failing
    (a 500, which Slack would retry) on a body that is signed but malformed.
    """
    if not isinstance(body, dict):
        return "not an object"
    if body.get("type") == "event_callback":
        if not isinstance(body.get("event"), dict):
            return "event must be an object"
        if "authorizations" in body and not _is_object_list(body["authorizations"]):
            return "authorizations must be a list of objects"
    if "actions" in body and not _is_object_list(body["actions"]):
        return "actions must be a list of objects"
    for key in ("user", "channel", "container", "message", "team", "view"):
        if body.get("type") in ("block_actions", "view_submission", "shortcut", "message_action") \
                and key in body and body[key] is not None and not isinstance(body[key], dict):
            return f"{key} must be an object"
    return None
