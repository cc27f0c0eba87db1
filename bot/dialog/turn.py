"""One bot turn: what the customer said, what the bot knows, and what it decides to do.

Handlers never write replies or database rows for the inbox themselves: they call
``turn.say(...)``, ``turn.escalate(...)`` and ``turn.alert(...)``; the pipeline turns those
into outbox rows, ownership changes and events in the same transaction that marks the
inbound message processed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.messages import Attachment, OutboundPayload, QuickReply
from inbox.models import Contact, Conversation, Priority
from inbox.replies import render_reply, render_reply_memo, reply_label
from shopbase.formatting import format_percent

__all__ = ["Turn", "Escalation", "DialogState", "BotConfig", "PROBLEM_MEMORY"]

#: how long a refusal the bot gave is worth telling the agent about when the customer is handed over
PROBLEM_MEMORY = timedelta(minutes=30)


@dataclass
class BotConfig:
    shop_name: str = "our shop"
    public_url: str = "http://127.0.0.1:8080"
    timezone: str = "UTC"
    secret_key: bytes = b""
    business_hours: dict[str, Any] = field(default_factory=dict)


@dataclass
class DialogState:
    """Per-conversation memory, stored as JSON on the conversation (survives restarts)."""

    flow: str | None = None
    step: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    verified_order_ids: list[int] = field(default_factory=list)
    low_confidence_turns: int = 0
    pending_intent: str | None = None
    #: a flow put aside for another request ("actually, where is my other order?"), offered again after it
    suspended: dict[str, Any] | None = None
    #: more requests from the same message ("where is 1001 and can I return it?"), run once the first is done
    queued: list[dict[str, Any]] = field(default_factory=list)
    #: what the bot could not do for the customer a moment ago (a refused cancellation, return or
    #: address change), kept so that a hand-over in a later turn ("talk to a person") can tell the
    #: agent what was asked and why it was refused (:meth:`Turn.remember_problem`)
    problem: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> DialogState:
        data = dict(data or {})  # never mutate the loaded JSON: the change would not be saved (copies below)
        return cls(**{k: _copied(data[k]) for k in cls.__dataclass_fields__ if k in data})

    def to_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "step": self.step,
            "slots": dict(self.slots),
            "verified_order_ids": list(self.verified_order_ids),
            "low_confidence_turns": self.low_confidence_turns,
            "pending_intent": self.pending_intent,
            "suspended": dict(self.suspended) if self.suspended else None,
            "queued": [dict(q) for q in self.queued],
            "problem": dict(self.problem) if self.problem else None,
        }

    def start(self, flow: str, step: str, **slots: Any) -> None:
        self.flow, self.step, self.slots = flow, step, dict(slots)

    def clear(self) -> None:
        """Leave the open flow (a suspended flow and queued requests stay: see :meth:`reset`)."""
        self.flow, self.step, self.slots, self.pending_intent = None, None, {}, None

    def reset(self) -> None:
        """Forget everything in progress: the open flow, a suspended one and queued requests."""
        self.clear()
        self.suspended, self.queued, self.problem = None, [], None

    def suspend(self) -> None:
        """Put the open flow aside (it is offered again once the new request is answered)."""
        self.suspended = {"flow": self.flow, "step": self.step, "slots": dict(self.slots),
                          "pending_intent": self.pending_intent}
        self.clear()

    def restore(self) -> bool:
        """Reopen the suspended flow; False when there was none."""
        saved, self.suspended = self.suspended, None
        if not saved or not saved.get("flow"):
            return False
        self.flow, self.step = saved["flow"], saved.get("step")
        self.slots, self.pending_intent = dict(saved.get("slots") or {}), saved.get("pending_intent")
        return True


def _copied(value: Any) -> Any:
    """A deep copy of a JSON value (``copy.deepcopy``'s result, without its memo and dispatch:
    dicts and lists of plain values, which is what ``bot_state`` holds); anything else is
    handed to ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: _copied(v) for k, v in value.items()}
    if kind is list:
        return [_copied(v) for v in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    return copy.deepcopy(value)


@dataclass(frozen=True)
class Escalation:
    reason: str
    priority: Priority
    summary: str
    #: the same facts, structured, for the agents' hand-off sentence (``inbox.handoff``)
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    session: AsyncSession
    conversation: Conversation
    contact: Contact
    text: str
    postback: str | None
    lang: str
    now: datetime
    config: BotConfig
    state: DialogState
    intent: str = "unknown"
    confidence: float = 0.0
    #: the message is strongly negative (insults, swearing, fury, threats): see bot.nlu.tone
    hostile: bool = False
    entities: list[Any] = field(default_factory=list)
    #: every intent with its probability, best first (for clarifying questions)
    ranking: tuple[tuple[str, float], ...] = ()
    replies: list[OutboundPayload] = field(default_factory=list)
    escalation: Escalation | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    order_ref: str | None = None
    #: what ``bot.dialog.choices.pick`` read of this turn's text, per set of choices (the dialog
    #: may ask twice in one turn: does the text answer the open flow? then the flow's step reads it)
    picked: dict[Any, str | None] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ output

    def say(self, template: str, /, *, choices: list[tuple[str, str]] | None = None,
            attachments: tuple[Attachment, ...] = (), **context: Any) -> None:
        """Queue a reply rendered from ``templates/replies/<lang>/<template>.txt``."""
        text = render_reply(template, self.lang, shop=self.config.shop_name, tz=self.config.timezone, **context)
        quick = tuple(QuickReply(label=label, value=value) for label, value in (choices or []))
        self.replies.append(OutboundPayload(text=text, quick_replies=quick, attachments=attachments))
        self.said.append(template)

    def say_memo(self, template: str, /, key: Hashable, context: Callable[[], dict[str, Any]]) -> None:
        """:meth:`say` (no choices, no attachments) of a reply whose context, ``context()``, is told
        entirely by ``key`` (equal keys, equal contexts: e.g. a stored policy's JSON): its text
        is rendered once per template, language, shop and key (``inbox.replies.render_reply_memo``)."""
        shop, tz = self.config.shop_name, self.config.timezone
        text = render_reply_memo(template, self.lang, (shop, tz, key), lambda: {**context(), "shop": shop, "tz": tz})
        self.replies.append(OutboundPayload(text=text))
        self.said.append(template)

    def remember_problem(self, request: str, refusal: str, **facts: Any) -> None:
        """The bot could not do what was asked (``request``: return, cancel, address; ``refusal``:
        the refusal's code, or ``in_progress`` when the customer asked for a person mid-way): keep
        it, with ``facts`` (JSON-safe: item titles, the return reason),
        for a hand-over in this turn or a later one (within :data:`PROBLEM_MEMORY`)."""
        self.state.problem = {"request": request, "refusal": refusal, "order": self.order_ref,
                              "at": self.now.isoformat(), **facts}

    def _recent_problem(self) -> dict[str, Any]:
        problem = self.state.problem
        if not isinstance(problem, dict):
            return {}
        try:
            at = datetime.fromisoformat(str(problem.get("at")))
        except ValueError:
            return {}
        if not (timedelta(0) <= self.now - at <= PROBLEM_MEMORY):
            return {}
        return {k: v for k, v in problem.items() if k != "at"}

    def escalate(self, reason: str, *, priority: Priority = Priority.normal, note: str = "",
                 facts: dict[str, Any] | None = None) -> None:
        """Hand the conversation to the agents' queue, with a short summary of what happened and
        the same as structured context (``facts``: what the handler found, e.g. days since the
        parcel's last scan, plus the problem remembered from a moment ago), from which the inbox
        writes the agent a sentence in their language. A verification lockout carries no order
        and no remembered problem: the customer never proved who they are."""
        locked = reason == "verification_lockout"
        merged: dict[str, Any] = {} if locked else self._recent_problem()
        order_ref = None if locked else (self.order_ref or merged.get("order"))
        merged.pop("order", None)
        merged.update({k: v for k, v in (facts or {}).items() if v is not None})
        parts = [f"reason: {reason}", f"intent: {self.intent} ({format_percent(self.confidence, 'en')})"]
        if order_ref:
            parts.append(f"order: {order_ref}")
        if self.said:
            parts.append("bot said: " + ", ".join(self.said[-5:]))
        if note:
            parts.append(note)
        context: dict[str, Any] = {
            "reason": reason, "intent": self.intent, "confidence": round(float(self.confidence), 4),
            "order": order_ref, "said": list(self.said[-8:]), "note": note[:300] or None,
            "facts": merged, "hostile": bool(self.hostile),
        }
        if self.escalation is None or _rank(priority) > _rank(self.escalation.priority):
            self.escalation = Escalation(reason=reason, priority=priority, summary="; ".join(parts)[:2000],
                                         context=context)
        self.state.reset()

    def alert(self, kind: str, **data: Any) -> None:
        """A merchant alert (Slack and the inbox), published after the turn commits."""
        self.alerts.append({"kind": kind, **data})

    def label(self, value: str) -> str:
        """A short UI label (button text) in the customer's language."""
        return reply_label(value, self.lang)


def _rank(priority: Priority) -> int:
    from inbox.models import PRIORITY_RANK

    return PRIORITY_RANK[priority]
