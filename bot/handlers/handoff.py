"""Hand-offs to a person: asked for, complaints, payment problems, and "when will someone answer?"."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.dialog.turn import Turn
from inbox.models import Priority
from ordersvc.service import get_setting

__all__ = ["human_agent", "complaint", "payment_issue", "next_opening", "hand_off", "DEFAULT_BUSINESS_HOURS"]

DEFAULT_BUSINESS_HOURS: dict[str, Any] = {"timezone": None, "days": [0, 1, 2, 3, 4], "open": "09:00", "close": "18:00"}


def next_opening(now: datetime, hours: dict[str, Any], default_tz: str) -> datetime | None:
    """None while the team is in; otherwise when it opens next (aware, in the shop's zone)."""
    tz = ZoneInfo(hours.get("timezone") or default_tz)
    local = now.astimezone(tz)
    opens, closes = time.fromisoformat(hours.get("open", "09:00")), time.fromisoformat(hours.get("close", "18:00"))
    days = set(hours.get("days", [0, 1, 2, 3, 4]))
    if not days:
        return None
    if local.weekday() in days and opens <= local.time() < closes:
        return None
    day = local.date()
    if local.weekday() in days and local.time() < opens:
        return datetime.combine(day, opens, tz)
    for _ in range(8):
        day += timedelta(days=1)
        if day.weekday() in days:
            return datetime.combine(day, opens, tz)
    return None


async def hand_off(turn: Turn, reason: str, *, priority: Priority = Priority.normal) -> None:
    hours = await get_setting(turn.session, "business_hours", DEFAULT_BUSINESS_HOURS)
    opening = next_opening(turn.now, hours, turn.config.timezone)
    turn.say("handoff", reason=reason, opens_at=opening)
    turn.escalate(reason, priority=priority)


async def human_agent(turn: Turn) -> None:
    await hand_off(turn, "human_agent")


async def complaint(turn: Turn) -> None:
    await hand_off(turn, "complaint", priority=Priority.high)


async def payment_issue(turn: Turn) -> None:
    await hand_off(turn, "payment_issue", priority=Priority.high)
