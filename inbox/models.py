"""The inbox's tables: agents, contacts, conversations, messages, the outbox and the audit trail.

Rows are written only through ``inbox.actions`` (and the outbox dispatcher's status updates); read freely.
A contact is one identity on one channel; it points at an ordersvc customer only after the
customer proved who they are (``Contact.customer_id`` + ``verified_at``), never because
they typed an email.
"""

from __future__ import annotations

import enum
import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import relationship
from sqlmodel import Field, Relationship, SQLModel

from shopbase.clock import utcnow
from shopbase.coltypes import JSONType, enum_column
from shopbase.search_text import index_text


def _new_list() -> list[Any]:
    """An empty list, as a default factory: pydantic reads a factory's signature each time it
    builds a default, and a builtin's (``list``, ``dict``) is parsed from text every time
    (~0.12 ms each; a new Conversation spent two thirds of its construction there)."""
    return []


def _new_dict() -> dict[Any, Any]:
    """An empty dict, as a default factory (see ``_new_list``)."""
    return {}

__all__ = [
    "ConversationDaily",
    "ResponseDaily",
    "AnalyticsTzOffset",
    "AnalyticsRollupState",
    "Channel",
    "ConversationStatus",
    "Priority",
    "Owner",
    "Direction",
    "Author",
    "OutboxStatus",
    "Role",
    "Agent",
    "Team",
    "Contact",
    "Conversation",
    "ConversationCount",
    "Message",
    "OutboxMessage",
    "AuditEvent",
    "CannedResponse",
    "Label",
    "VerificationAttempt",
    "search_text_of",
    "CsatSurvey",
    "ExternalThread",
    "AlertRule",
    "FiredAlert",
    "NotificationRead",
    "Macro",
    "PRIORITY_RANK",
    "CustomerProfile",
    "CustomerIdentity",
    "CustomerNote",
    "CustomerMerge",
    "SavedView",
    "AgentPreference",
]


class Channel(str, enum.Enum):
    webchat = "webchat"
    telegram = "telegram"
    slack = "slack"
    terminal = "terminal"


class ConversationStatus(str, enum.Enum):
    open = "open"
    pending = "pending"
    snoozed = "snoozed"
    resolved = "resolved"


class Priority(str, enum.Enum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


PRIORITY_RANK = {Priority.low: 0, Priority.normal: 1, Priority.high: 2, Priority.urgent: 3}


class Owner(str, enum.Enum):
    bot = "bot"
    agent = "agent"


class Direction(str, enum.Enum):
    inbound = "in"
    outbound = "out"


class Author(str, enum.Enum):
    customer = "customer"
    bot = "bot"
    agent = "agent"
    system = "system"


class OutboxStatus(str, enum.Enum):
    pending = "pending"
    sent = "sent"
    undeliverable = "undeliverable"
    #: the send's outcome is not known (the platform did not answer in time): never sent again
    unknown = "unknown"


class Role(str, enum.Enum):
    admin = "admin"
    agent = "agent"


class Team(SQLModel, table=True):
    __tablename__ = "team"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)


class Agent(SQLModel, table=True):
    __tablename__ = "agent"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(default="", max_length=120)
    password_hash: str = Field(max_length=255)
    role: Role = Field(default=Role.agent, sa_type=enum_column(Role))
    team_id: int | None = Field(default=None, foreign_key="team.id")
    slack_user_id: str | None = Field(default=None, max_length=32, index=True)
    is_active: bool = True
    #: may accept a return the policy refuses (final sale, not returnable, window closed), with a reason
    can_override_returns: bool = False
    session_version: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None
    #: the agent's UI language (one of inbox.web.i18n.LANGUAGES); None: the browser's Accept-Language
    language: str | None = Field(default=None, max_length=16)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin


class Contact(SQLModel, table=True):
    __tablename__ = "contact"
    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id", name="uq_contact_channel_external"),
        # /metrics counts undeliverable contacts per channel at every scrape: a tiny partial index
        sa.Index("ix_contact_undeliverable", "channel", sqlite_where=sa.text("undeliverable_at IS NOT NULL"),
                 postgresql_where=sa.text("undeliverable_at IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = Field(sa_type=enum_column(Channel))
    external_id: str = Field(max_length=128)
    display_name: str = Field(default="", max_length=255)
    username: str | None = Field(default=None, max_length=255)
    language: str | None = Field(default=None, max_length=16)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    verified_at: datetime | None = None
    undeliverable_at: datetime | None = None
    # proactive shipment updates: a widget visitor must allow them; anyone can say "stop"
    updates_allowed_at: datetime | None = None
    updates_stopped_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    # display_name and username as the search index sees them; kept like Message.search_text
    search_text: str | None = Field(
        default=None,
        sa_type=sa.Text,
        sa_column_kwargs={"default": lambda ctx: search_text_of(Contact, ctx.get_current_parameters())},
    )


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"
    __table_args__ = (
        # one active (not resolved) conversation per contact: enforced by the database
        sa.Index(
            "uq_conversation_active_contact",
            "contact_id",
            unique=True,
            sqlite_where=sa.text("status != 'resolved'"),
            postgresql_where=sa.text("status != 'resolved'"),
        ),
        sa.Index("ix_conversation_status_last", "status", "last_message_at"),
        # the inbox's "all" list (newest activity first, no status filter) reads it in order
        sa.Index("ix_conversation_last_activity", "last_message_at", "id"),
        # analytics (migration 0014): the conversations opened in a period, without visiting the table
        sa.Index("ix_conversation_created_analytics", "created_at", "channel", "last_intent", "first_response_at",
                 "resolved_at", "assignee_id"),
        # the SLA job finds running clocks that are due (inbox.sla)
        sa.Index("ix_conversation_sla_due", "sla_due_at"),
        # the triage views (inbox.queries.triage): every view is "status = …" plus owner, assignee
        # and the access rule's team; with the order's columns, counts and a page's ids are read
        # from this index alone
        # (PostgreSQL: with the id, so that a page's ids need no table row; SQLite's rowid is in every index)
        sa.Index("ix_conversation_triage", "status", "owner", "assignee_id", "team_id", "priority", "sla_due_at",
                 "last_message_at", postgresql_include=["id"]),
    )

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel: Channel = Field(sa_type=enum_column(Channel))
    status: ConversationStatus = Field(default=ConversationStatus.open, sa_type=enum_column(ConversationStatus))
    priority: Priority = Field(default=Priority.normal, sa_type=enum_column(Priority))
    owner: Owner = Field(default=Owner.bot, sa_type=enum_column(Owner))
    assignee_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    labels: list[str] = Field(default_factory=_new_list, sa_type=JSONType)
    language: str | None = Field(default=None, max_length=16)
    last_intent: str | None = Field(default=None, max_length=32, index=True)
    summary: str | None = Field(default=None, max_length=2000)
    bot_state: dict[str, Any] = Field(default_factory=_new_dict, sa_type=JSONType)
    snoozed_until: datetime | None = None
    first_response_at: datetime | None = None
    #: the running SLA clock (inbox.sla): when the answer is due (UTC), which target ("first" /
    #: "next"), when it breached; while waiting on the customer the clock is paused with the
    #: business seconds that were left. Written only by the actions through ``inbox.sla``.
    sla_due_at: datetime | None = None
    sla_kind: str | None = Field(default=None, max_length=8)
    sla_breached_at: datetime | None = None
    sla_paused_seconds: int | None = None
    #: the bot's structured hand-off context (reason, intent, order, what it said), for the summary
    handoff: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    resolved_at: datetime | None = None
    last_message_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)



class ConversationCount(SQLModel, table=True):
    """The inbox's counts, kept on write by database triggers on ``conversation`` (migration
    0019), in the writer's own transaction: the number of conversations of each (status, owner,
    assignee, team) is the sum of ``n`` over that group's rows (:mod:`inbox.queries.counts`).
    PostgreSQL: rows (group, +1) / (group, -1) are only added, so concurrent writers never wait
    for one another here, and the reader now and then folds them into one per group; SQLite
    (one writer): one row per group, updated in place. No code writes these rows but the
    triggers and that fold."""

    __tablename__ = "conversation_count"
    __table_args__ = (sa.Index("ix_conversation_count_group", "status", "owner", "assignee_id", "team_id"),)

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(max_length=24)
    owner: str = Field(max_length=24)
    assignee_id: int | None = None
    team_id: int | None = None
    n: int

class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        # the platform's own id (Telegram update_id, Slack event_id, widget client id) dedupes
        sa.UniqueConstraint("channel", "dedupe_key", name="uq_message_channel_dedupe"),
        sa.Index("ix_message_conversation_id", "conversation_id", "id"),
        sa.Index("ix_message_unprocessed", "processed", "direction"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    channel: Channel = Field(sa_type=enum_column(Channel))
    direction: Direction = Field(sa_type=enum_column(Direction, 4))
    author: Author = Field(sa_type=enum_column(Author))
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    is_internal: bool = False
    text: str = Field(default="")
    attachments: list[dict[str, Any]] = Field(default_factory=_new_list, sa_type=JSONType)
    quick_replies: list[dict[str, Any]] = Field(default_factory=_new_list, sa_type=JSONType)
    dedupe_key: str | None = Field(default=None, max_length=128)
    channel_message_id: str | None = Field(default=None, max_length=128)
    intent: str | None = Field(default=None, max_length=32)
    # an inbound quick-reply press (its value) and a deep-link start parameter, as the connector saw them
    postback: str | None = Field(default=None, max_length=256)
    start_payload: str | None = Field(default=None, max_length=256)
    processed: bool = True
    delivery_status: str | None = Field(default=None, max_length=16)
    #: the language the bot detected in this (customer) message; None when the bot did not read it
    language: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    # ``text`` as the search index sees it (shopbase.search_text.index_text), derived on every
    # insert and ORM change (see _keep_search_text below); a Core UPDATE of ``text`` must set it
    # too. Indexed by migration 0004 (FTS5 on SQLite, GIN tsvector on PostgreSQL).
    search_text: str | None = Field(
        default=None,
        sa_type=sa.Text,
        sa_column_kwargs={"default": lambda ctx: search_text_of(Message, ctx.get_current_parameters())},
    )


def search_text_of(model: type[SQLModel], values: Any) -> str:
    """The ``search_text`` of a row of ``model`` (Message: its text; Contact: its names)."""
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name, None)
    text = " ".join(str(get(name) or "") for name in _SEARCHED_FIELDS[model])
    return _index_short_text(text) if len(text) <= _CACHED_CHARS else index_text(text)


#: the bot's replies are rendered from templates, so the same texts come again and again (and
#: "hi", "thanks"): their index text is kept (a pure function of the text; bounded: at most
#: 4,096 texts of at most 512 characters)
_CACHED_CHARS = 512
_index_short_text = functools.lru_cache(maxsize=4096)(index_text)


_SEARCHED_FIELDS: dict[type[SQLModel], tuple[str, ...]] = {Message: ("text",), Contact: ("display_name", "username")}


def _keep_search_text(model: type[SQLModel]) -> None:
    """Derive ``model.search_text`` whenever the ORM inserts a row or changes a searched field."""

    def on_insert(_mapper: Any, _connection: Any, row: Any) -> None:
        row.search_text = search_text_of(model, row)

    def on_update(_mapper: Any, _connection: Any, row: Any) -> None:
        state = sa.inspect(row)
        if any(state.attrs[name].history.has_changes() for name in _SEARCHED_FIELDS[model]):
            row.search_text = search_text_of(model, row)

    sa.event.listen(model, "before_insert", on_insert)
    sa.event.listen(model, "before_update", on_update)


_keep_search_text(Message)
_keep_search_text(Contact)


#: the execution option that names this server process on a cluster (``shopdesk.cluster.NodeAffinity``
#: sets it on the engine); a customer's outbox row written through that engine carries the name
NODE_OPTION = "shopdesk_node"


def _writing_node(context: Any) -> str | None:
    """The ``outbox.node`` of a new row: the process that wrote it, for customer replies only
    (notices have no affinity). None on SQLite and outside a cluster."""
    if context is None:
        return None
    node = context.execution_options.get(NODE_OPTION)
    if node is None or context.get_current_parameters().get("contact_id") is None:
        return None
    return str(node)


class OutboxMessage(SQLModel, table=True):
    """A message waiting to be delivered; written in the transaction that produced it.

    A row with no contact is a *notice* for the shop's own people (a Slack alert): its
    payload is the notice, ``conversation_id`` is the conversation it is about (if any).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_status_due", "status", "next_attempt_at"),
        # the pending rows of a stream (migration 0028): "is there an earlier pending row of this
        # conversation on this channel" (the claim's heads, a reply born claimed) reads only these;
        # those queries compare status with the literal 'pending', so that the planner may use it
        sa.Index("ix_outbox_pending_stream", "conversation_id", "channel", "id",
                 sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    channel: Channel = Field(sa_type=enum_column(Channel))
    payload: dict[str, Any] = Field(default_factory=_new_dict, sa_type=JSONType)
    status: OutboxStatus = Field(default=OutboxStatus.pending, sa_type=enum_column(OutboxStatus))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)
    channel_message_id: str | None = Field(default=None, max_length=128)
    sent_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    #: several processes on one PostgreSQL: the process whose dispatcher sends this row (the one
    #: that wrote it, which holds the widget visitor's socket). Others take it only when that
    #: process is gone or the row is overdue (``shopdesk.cluster.NodeAffinity``). Set by the
    #: column default from the engine's ``NODE_OPTION``; NULL: any dispatcher.
    node: str | None = Field(default=None, max_length=32, sa_column_kwargs={"default": _writing_node})

    # write-only link so that ``inbox.actions.message_send`` can add both rows before the flush
    # that gives the message its id; never read it (lazy="raise": query explicitly instead)
    message: Message | None = Relationship(sa_relationship=relationship("Message", lazy="raise"))


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_event_action_created", "action", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    actor: str = Field(default="system", max_length=32)
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=_new_dict, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow)


class CannedResponse(SQLModel, table=True):
    __tablename__ = "canned_response"

    id: int | None = Field(default=None, primary_key=True)
    shortcut: str = Field(max_length=64, unique=True)
    title: str = Field(default="", max_length=120)
    #: language code (en, es, ru, vi, zh-Hans, zh-Hant) -> body template; written only by ``canned_save``
    bodies: dict[str, str] = Field(default_factory=_new_dict, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow)


class Label(SQLModel, table=True):
    __tablename__ = "label"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    color: str = Field(default="#64748b", max_length=16)


class VerificationAttempt(SQLModel, table=True):
    """Order verification tries, counted per conversation and per order to stop guessing."""

    __tablename__ = "verification_attempt"
    __table_args__ = (sa.Index("ix_verification_order_time", "order_ref", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    order_ref: str = Field(max_length=64)
    success: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class CsatSurvey(SQLModel, table=True):
    """One satisfaction survey per conversation (asked after it was resolved) and its answer:
    a rating 1–5 and an optional comment, kept with the agent and the intent it was about."""

    __tablename__ = "csat_survey"
    __table_args__ = (
        sa.Index("ix_csat_contact_rated", "contact_id", "rated_at"),
        sa.Index("ix_csat_survey_rated_at", "rated_at"),  # analytics: ratings given in a period (0014)
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    contact_id: int = Field(foreign_key="contact.id")
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    intent: str | None = Field(default=None, max_length=32, index=True)
    resolved_by: str = Field(default="agent", max_length=16)
    language: str | None = Field(default=None, max_length=16)
    rating: int | None = None
    comment: str | None = Field(default=None, max_length=2000)
    asked_at: datetime = Field(default_factory=utcnow)
    rated_at: datetime | None = None
    commented_at: datetime | None = None


class ExternalThread(SQLModel, table=True):
    """Where a conversation is mirrored outside the inbox (a Slack alert thread)."""

    __tablename__ = "external_thread"
    __table_args__ = (sa.UniqueConstraint("kind", "channel_ref", "thread_ref", name="uq_external_thread"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", index=True)
    kind: str = Field(max_length=32)
    channel_ref: str = Field(max_length=64)
    thread_ref: str = Field(max_length=64)
    purpose: str = Field(default="escalation", max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class AlertRule(SQLModel, table=True):
    """A merchant's setting for one alert rule (rules without a row run with their defaults)."""

    __tablename__ = "alert_rule"

    rule: str = Field(primary_key=True, max_length=32)
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=_new_dict, sa_type=JSONType)
    updated_at: datetime = Field(default_factory=utcnow)


class FiredAlert(SQLModel, table=True):
    """One alert that fired: at most once per (rule, subject, window); also the agents' notifications."""

    __tablename__ = "fired_alert"
    __table_args__ = (sa.UniqueConstraint("rule", "subject", "window", name="uq_fired_alert_key"),)

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(max_length=32)
    subject: str = Field(max_length=128)
    window: str = Field(max_length=64)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", index=True)
    detail: dict[str, Any] = Field(default_factory=_new_dict, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class NotificationRead(SQLModel, table=True):
    """How far an agent has read the notifications (the newest ``FiredAlert.id`` they saw)."""

    __tablename__ = "notification_read"

    agent_id: int = Field(foreign_key="agent.id", primary_key=True)
    last_read_id: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class LoginFailure(SQLModel, table=True):
    """A failed sign-in, counted by the login throttle per key (an email, a client address):
    in the database so that every server process sees the same counts. ``key`` is an HMAC of
    the key under the server's secret, never the email or address itself; rows older than the
    throttle's window are deleted as new ones come."""

    __tablename__ = "login_failure"
    __table_args__ = (sa.Index("ix_login_failure_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, index=True)


class CustomerProfile(SQLModel, table=True):
    """One customer across channels (issue 14, CRM): the contacts (Telegram, widget …) and the
    order-store customers (email identities) linked to it by ``CustomerIdentity`` rows.

    A profile is created when a contact is verified (``contact_link``) or when an agent first
    merges, notes or tags a contact. A profile merged into another one keeps its row with
    ``merged_into_id`` set (so the merge can be undone) and owns nothing until then.
    """

    __tablename__ = "customer_profile"

    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(default="", max_length=255)
    tags: list[str] = Field(default_factory=_new_list, sa_type=JSONType)
    merged_into_id: int | None = Field(default=None, foreign_key="customer_profile.id", index=True)
    erased_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CustomerIdentity(SQLModel, table=True):
    """One identity of a profile: a contact (a chat on one channel) or an order-store customer
    (an email address the customer proved). Each identity belongs to at most one profile."""

    __tablename__ = "customer_identity"
    __table_args__ = (
        sa.CheckConstraint("(contact_id IS NULL) != (customer_id IS NULL)", name="ck_customer_identity_one"),
    )

    id: int | None = Field(default=None, primary_key=True)
    profile_id: int = Field(foreign_key="customer_profile.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", unique=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", unique=True)
    #: how it got here: "verified" (order verification), "agent" (added by hand), "merge"
    via: str = Field(default="verified", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class CustomerNote(SQLModel, table=True):
    """An agent's note about a customer (not about one conversation)."""

    __tablename__ = "customer_note"
    __table_args__ = (sa.Index("ix_customer_note_profile_created", "profile_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: int = Field(foreign_key="customer_profile.id")
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    body: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow)


class CustomerMerge(SQLModel, table=True):
    """An agent merged ``source`` into ``target``: what moved (so un-merge can move it back)."""

    __tablename__ = "customer_merge"
    __table_args__ = (sa.Index("ix_customer_merge_target", "target_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="customer_profile.id", index=True)
    target_id: int = Field(foreign_key="customer_profile.id")
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    #: {"identities": [ids], "notes": [ids], "tags_added": [..]}
    moved: dict[str, Any] = Field(default_factory=_new_dict, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow)
    undone_at: datetime | None = None
    undone_by_id: int | None = Field(default=None, foreign_key="agent.id")


class Macro(SQLModel, table=True):
    """An admin-defined bundle of conversation actions applied in one click (``macro_apply``):
    send a canned reply, set status / priority, add labels, assign, snooze."""

    __tablename__ = "macro"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    #: a single key pressed with Alt in the conversation (optional)
    shortcut: str | None = Field(default=None, max_length=1)
    canned_id: int | None = Field(default=None, foreign_key="canned_response.id")
    status: str | None = Field(default=None, max_length=16)
    priority: str | None = Field(default=None, max_length=16)
    add_labels: list[str] = Field(default_factory=_new_list, sa_type=JSONType)
    #: "me" (whoever applies it), "none" (unassign), an agent id as text, or None (leave as is)
    assign: str | None = Field(default=None, max_length=16)
    snooze_hours: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SavedView(SQLModel, table=True):
    """An agent's saved filter set for the inbox list (the list's query string, checked by
    ``inbox.web.views.ListParams``); written only by ``inbox.actions.saved_view_save``."""

    __tablename__ = "saved_view"
    __table_args__ = (sa.UniqueConstraint("agent_id", "name", name="uq_saved_view_agent_name"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    name: str = Field(max_length=60)
    query: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow)


class AgentPreference(SQLModel, table=True):
    """An agent's notification switches (sound, desktop notifications); no row: both off."""

    __tablename__ = "agent_preference"

    agent_id: int = Field(foreign_key="agent.id", primary_key=True)
    notify_sound: bool = False
    notify_desktop: bool = False
    updated_at: datetime = Field(default_factory=utcnow)


class DeliveryHold(SQLModel, table=True):
    """A platform's "wait until" (a 429's ``retry_after``) for one recipient or a whole channel,
    kept by the outbox dispatcher so that every process, and every reply created later (also
    after a restart), waits it out. ``contact_id`` is the held contact, or
    ``HOLD_ALL_CONTACTS`` (0: every customer row of the channel, a bulk flood wait) or
    ``HOLD_ALL_NOTICES`` (-1: every notice row of the channel). Expired rows are deleted as
    new holds come."""

    __tablename__ = "delivery_hold"

    channel: str = Field(primary_key=True, max_length=16)
    contact_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    not_before: datetime = Field(index=True)


#: ``DeliveryHold.contact_id`` of a hold on every customer row / every notice row of a channel
HOLD_ALL_CONTACTS = 0
HOLD_ALL_NOTICES = -1


class ConversationDaily(SQLModel, table=True):
    """Conversations opened per shop-local day (days since 1970-01-01, ``shopbase.sqltime.local_day``),
    channel and intent, and how many of them the bot resolved alone (``inbox.analytics.metrics``).
    Kept by database triggers (migration 0020) in the transaction of every write that changes it;
    rebuilt only by ``inbox.actions.analytics_rebuild``. Read by ``inbox.analytics.rollup``."""

    __tablename__ = "conversation_daily"

    day: int = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=24)
    intent: str = Field(primary_key=True, max_length=64)
    conversations: int = 0
    automated: int = 0


class ResponseDaily(SQLModel, table=True):
    """The exact histogram of response times: per (measure, shop-local day, channel, whole seconds)
    how many conversations opened that day took that long to the first agent reply
    (``first_response``) or to resolution (``resolution``). Kept by the same triggers as
    :class:`ConversationDaily`; the percentiles read a period's distinct durations from it."""

    __tablename__ = "response_daily"

    measure: str = Field(primary_key=True, max_length=16)
    day: int = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=24)
    seconds: int = Field(primary_key=True)
    conversations: int = 0


class AnalyticsTzOffset(SQLModel, table=True):
    """The shop zone's UTC offsets for the triggers' local day: each from ``since_epoch`` (seconds)."""

    __tablename__ = "analytics_tz_offset"

    since_epoch: int = Field(primary_key=True, sa_type=sa.BigInteger)
    offset_seconds: int


class AnalyticsRollupState(SQLModel, table=True):
    """One row: the time zone ``conversation_daily`` counts days in, and when it was last rebuilt."""

    __tablename__ = "analytics_rollup_state"

    id: int = Field(default=1, primary_key=True)
    timezone: str = Field(max_length=64)
    rebuilt_at: datetime = Field(default_factory=utcnow)
