"""SLA policies and the conversation's SLA clock.

The policy (``ShopSetting('sla')``, edited on ``/inbox/admin/sla`` through the ``sla_policy_save``
action) holds opening hours per weekday, closed dates and optionally a country whose public
holidays close the shop too (the ``holidays`` package), in the shop's time zone, and the targets
in business minutes per priority: a *first* response (nobody has answered yet) and a *next*
response (the customer wrote again after an agent's answer), with overrides per channel.

A conversation's clock lives in its columns ``sla_due_at`` (UTC), ``sla_kind`` (first / next),
``sla_breached_at`` and ``sla_paused_seconds``. Only actions change it, through the functions
below, each with the caller's session and ``now``:

* the bot hands over (``conversation_escalate``), or the customer writes while people own the
  conversation (``message_record``): a clock starts unless one runs (first response while nobody
  has answered, else next response);
* an agent answers (``agent_reply``): the clock stops (the customer's next message starts a
  next-response clock);
* waiting on the customer (pending) or snoozed: paused, keeping the business seconds left; back
  to open by an agent or the snooze's end: resumed with them; the customer writing: a new clock;
* resolved, or handed back to the bot: cleared;
* the priority changes: the running clock keeps the business time already spent and takes the
  new target.

``SlaJob`` (a periodic job like the alert runner) marks clocks past due as breached through the
``conversation_sla_breach`` action, once per clock; the ``sla_breach`` alert rule then announces it.
Business-time arithmetic is :mod:`shopbase.business_time` (zoneinfo, DST-safe).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Channel, Conversation, ConversationStatus, Owner, Priority
from inbox.periodic import PeriodicJob
from ordersvc.models import ShopSetting
from shopbase.business_time import Schedule, add_business, business_seconds
from shopbase.clock import utcnow

__all__ = [
    "SETTINGS_KEY",
    "WEEKDAYS",
    "SlaPolicy",
    "Targets",
    "load_policy",
    "parse_policy",
    "set_default_timezone",
    "sla_start",
    "sla_on_escalate",
    "sla_on_customer_message",
    "sla_on_agent_reply",
    "sla_on_status",
    "sla_on_priority",
    "sla_clear",
    "sla_state",
    "SlaJob",
]

log = logging.getLogger(__name__)

SETTINGS_KEY = "sla"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FIRST, NEXT = "first", "next"
_MAX_MINUTES = 30 * 24 * 60
_default_timezone = "UTC"


def set_default_timezone(name: str) -> None:
    """The shop's zone (``SHOPDESK_SHOP_TIMEZONE``), used while the policy names none (the app sets it)."""
    global _default_timezone
    Schedule.always(name)  # validates
    _default_timezone = name


def _hhmm(value: str) -> int:
    text = str(value or "").strip()
    if text == "24:00":
        return 24 * 60
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError("must be a time such as 09:00")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError("must be a time such as 09:00")
    return h * 60 + m


class Targets(BaseModel):
    """Business minutes for the first and the next response (None: no target)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    first: int | None = Field(default=None, ge=1, le=_MAX_MINUTES)
    next: int | None = Field(default=None, ge=1, le=_MAX_MINUTES)


def _default_targets() -> dict[str, Targets]:
    return {
        Priority.urgent.value: Targets(first=30, next=60),
        Priority.high.value: Targets(first=60, next=120),
        Priority.normal.value: Targets(first=240, next=480),
        Priority.low.value: Targets(first=480, next=960),
    }


def _default_hours() -> dict[str, list[str] | None]:
    return {day: (["09:00", "18:00"] if day not in ("sat", "sun") else None) for day in WEEKDAYS}


class SlaPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    enabled: bool = True
    #: IANA zone; None: the shop's (``SHOPDESK_SHOP_TIMEZONE``)
    timezone: str | None = None
    #: weekday → ["09:00", "18:00"] or None (closed)
    hours: dict[str, list[str] | None] = Field(default_factory=_default_hours)
    #: local dates the team is off
    holidays: list[date] = Field(default_factory=list)
    #: ISO 3166 country code whose public holidays close the shop (the ``holidays`` package), e.g. "US"
    holiday_country: str | None = Field(default=None, max_length=8)
    #: priority → targets (every priority has one; a missing one takes the default)
    targets: dict[str, Targets] = Field(default_factory=_default_targets)
    #: channel → priority → targets overriding the defaults
    channel_targets: dict[str, dict[str, Targets]] = Field(default_factory=dict)
    #: the countdown turns amber with this many minutes left
    warn_minutes: int = Field(default=30, ge=1, le=24 * 60)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None:
            try:
                Schedule.always(value)
            except Exception:
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, list[str] | None]) -> dict[str, list[str] | None]:
        out: dict[str, list[str] | None] = {}
        for day in WEEKDAYS:
            span = value.get(day)
            if not span:
                out[day] = None
                continue
            if len(span) != 2:
                raise ValueError(f"{day}: opening and closing time")
            opens, closes = _hhmm(span[0]), _hhmm(span[1])
            if opens >= closes:
                raise ValueError(f"{day}: closes before it opens")
            out[day] = [span[0].strip(), span[1].strip()]
        return out

    @field_validator("holiday_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        value = (value or "").strip().upper() or None
        if value is not None:
            import holidays

            if value not in holidays.list_supported_countries():
                raise ValueError(f"no public holidays known for {value!r}")
        return value

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: dict[str, Targets]) -> dict[str, Targets]:
        defaults = _default_targets()
        for key in value:
            if key not in defaults:
                raise ValueError(f"unknown priority {key!r}")
        return {p: value.get(p, defaults[p]) for p in defaults}

    @field_validator("channel_targets")
    @classmethod
    def _channel_targets(cls, value: dict[str, dict[str, Targets]]) -> dict[str, dict[str, Targets]]:
        channels = {c.value for c in Channel}
        priorities = {p.value for p in Priority}
        for channel, per in value.items():
            if channel not in channels:
                raise ValueError(f"unknown channel {channel!r}")
            for key in per:
                if key not in priorities:
                    raise ValueError(f"unknown priority {key!r}")
        return {c: dict(per) for c, per in value.items() if per}

    @model_validator(mode="after")
    def _some_hours(self) -> SlaPolicy:
        if self.enabled and not any(self.hours.get(day) for day in WEEKDAYS):
            raise ValueError("the team must be open on at least one weekday")
        return self

    @property
    def zone(self) -> str:
        return self.timezone or _default_timezone

    def schedule(self) -> Schedule:
        return _schedule(self.model_dump_json(), self.zone)

    def target_minutes(self, kind: str, priority: Priority | str, channel: Channel | str) -> int | None:
        p = Priority(priority).value
        c = Channel(channel).value
        override = self.channel_targets.get(c, {}).get(p)
        chosen = override if override is not None else self.targets.get(p)
        if chosen is None:
            return None
        return chosen.first if kind == FIRST else chosen.next


@lru_cache(maxsize=16)
def _schedule(policy_json: str, zone: str) -> Schedule:
    policy = SlaPolicy.model_validate_json(policy_json)
    hours = {}
    for index, day in enumerate(WEEKDAYS):
        span = policy.hours.get(day)
        if span:
            hours[index] = (_hhmm(span[0]), _hhmm(span[1]))
    closed = set(policy.holidays)
    if policy.holiday_country:
        import holidays

        year = utcnow().year
        closed |= set(holidays.country_holidays(policy.holiday_country, years=range(year - 1, year + 3)).keys())
    return Schedule(zone, hours, frozenset(closed))


def parse_policy(raw: Any) -> SlaPolicy:
    """A policy from stored JSON; a broken row falls back to the defaults (logged)."""
    try:
        return SlaPolicy.model_validate(raw or {})
    except ValidationError:
        log.warning("the stored SLA policy is not valid; using the defaults")
        return SlaPolicy()


async def load_policy(session: AsyncSession) -> SlaPolicy:
    row = await session.get(ShopSetting, SETTINGS_KEY)
    return parse_policy(row.value if row is not None else None)


# --------------------------------------------------------------------------- the clock


def sla_clear(conversation: Conversation) -> None:
    conversation.sla_due_at = None
    conversation.sla_kind = None
    conversation.sla_breached_at = None
    conversation.sla_paused_seconds = None


def _running(conversation: Conversation) -> bool:
    return conversation.sla_due_at is not None


def sla_start(conversation: Conversation, policy: SlaPolicy, now: datetime, kind: str | None = None) -> None:
    """Start a clock of ``kind`` (default: first while nobody answered, else next) from ``now``."""
    kind = kind or (FIRST if conversation.first_response_at is None else NEXT)
    sla_clear(conversation)
    minutes = policy.target_minutes(kind, conversation.priority, conversation.channel) if policy.enabled else None
    if minutes is None:
        return
    due = add_business(policy.schedule(), now, minutes * 60)
    if due is None:
        return
    conversation.sla_due_at = due
    conversation.sla_kind = kind


async def sla_on_escalate(session: AsyncSession, conversation: Conversation, now: datetime) -> None:
    if not _running(conversation):
        sla_start(conversation, await load_policy(session), now)


async def sla_on_customer_message(session: AsyncSession, conversation: Conversation, now: datetime) -> None:
    """The customer wrote: people owe an answer (only when people own an open conversation)."""
    if conversation.owner != Owner.agent or conversation.status != ConversationStatus.open:
        return
    if not _running(conversation):
        sla_start(conversation, await load_policy(session), now)


def sla_on_agent_reply(conversation: Conversation) -> None:
    sla_clear(conversation)


async def sla_on_status(session: AsyncSession, conversation: Conversation, previous: ConversationStatus,
                        now: datetime) -> None:
    """After a status change: pause (pending, snoozed), resume (open again), clear (resolved)."""
    new = ConversationStatus(conversation.status)
    if new == ConversationStatus.resolved:
        sla_clear(conversation)
        return
    policy = None
    if new in (ConversationStatus.pending, ConversationStatus.snoozed):
        if conversation.sla_due_at is not None:
            policy = await load_policy(session)
            left = business_seconds(policy.schedule(), now, conversation.sla_due_at)
            conversation.sla_paused_seconds = max(0, int(left))
            conversation.sla_due_at = None
        return
    if previous in (ConversationStatus.pending, ConversationStatus.snoozed) and conversation.sla_paused_seconds is not None:
        policy = await load_policy(session)
        due = add_business(policy.schedule(), now, conversation.sla_paused_seconds)
        conversation.sla_paused_seconds = None
        conversation.sla_due_at = due
        if due is None:
            conversation.sla_kind = None


async def sla_on_priority(session: AsyncSession, conversation: Conversation, previous: Priority,
                          now: datetime) -> None:
    """Keep the business time already spent on the clock; take the new priority's target."""
    if conversation.sla_kind is None or conversation.sla_breached_at is not None:
        return
    policy = await load_policy(session)
    old = policy.target_minutes(conversation.sla_kind, previous, conversation.channel)
    new = policy.target_minutes(conversation.sla_kind, conversation.priority, conversation.channel)
    if old is None or new is None:
        return
    delta = (new - old) * 60
    schedule = policy.schedule()
    if conversation.sla_paused_seconds is not None:
        conversation.sla_paused_seconds = max(0, conversation.sla_paused_seconds + delta)
    elif conversation.sla_due_at is not None:
        left = business_seconds(schedule, now, conversation.sla_due_at) + delta
        conversation.sla_due_at = add_business(schedule, now, max(0.0, left))


def sla_state(conversation: Any, now: datetime, warn_minutes: int = 30) -> str | None:
    """"ok", "warn", "breached", "paused" or None (no clock), for the page's first paint."""
    due = getattr(conversation, "sla_due_at", None)
    if due is None:
        return "paused" if getattr(conversation, "sla_paused_seconds", None) is not None else None
    left = (due - now).total_seconds()
    if left <= 0 or getattr(conversation, "sla_breached_at", None) is not None:
        return "breached"
    return "warn" if left <= warn_minutes * 60 else "ok"


# --------------------------------------------------------------------------- the periodic job


class SlaJob(PeriodicJob):
    """Every ``interval`` seconds, mark the clocks past due as breached (one transaction)."""

    name = "sla-breaches"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, interval: float = 30.0,
                 clock: Callable[[], datetime] = utcnow, batch: int = 200,
                 should_run: Callable[[], bool] = lambda: True) -> None:
        super().__init__(interval=interval, should_run=should_run)
        self.sessions = sessions
        self.clock = clock
        self.batch = batch

    async def run_once(self, now: datetime | None = None) -> list[int]:
        """Breach the due clocks at ``now`` (default: the clock); the conversation ids."""
        from inbox.actions.conversation_sla_breach import conversation_sla_breach

        now = now or self.clock()
        async with self.sessions() as session:
            due = (
                await session.exec(
                    select(Conversation)
                    .where(col(Conversation.sla_due_at).is_not(None), col(Conversation.sla_due_at) <= now,
                           col(Conversation.sla_breached_at).is_(None))
                    .order_by(col(Conversation.sla_due_at))
                    .limit(self.batch)
                )
            ).all()
            breached = [await conversation_sla_breach(session, conversation, now=now) for conversation in due]
            await session.commit()
        ids = [cid for cid in breached if cid is not None]
        if ids:
            log.info("sla: %d clock(s) breached", len(ids))
        return ids
