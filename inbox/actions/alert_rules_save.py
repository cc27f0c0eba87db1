"""An admin switches alert rules on or off and tunes their parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.alerts.config import RULES, check_params
from inbox.models import Agent, AlertRule
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["alert_rules_save"]


async def alert_rules_save(session: AsyncSession, changes: Mapping[str, tuple[bool, Mapping[str, Any]]], *,
                           by: Agent) -> list[str]:
    """Store ``{rule: (enabled, params)}``; every rule is checked before anything is written, so
    a refusal (unknown rule, a parameter out of range, naming the field) changes nothing.
    Admins only. Returns the rules saved."""
    if not by.is_admin:
        raise Refused("forbidden", "only admins can change alert rules", status=403)
    checked: dict[str, tuple[bool, dict[str, Any]]] = {}
    for rule, (enabled, raw) in changes.items():
        if rule not in RULES:
            raise Refused("invalid", f"unknown alert rule {rule!r}", status=400)
        try:
            valid = check_params(rule, dict(raw))
        except ValueError as exc:
            raise Refused("invalid", f"{rule.replace('_', ' ')}: {exc}", status=400) from None
        checked[rule] = (bool(enabled), valid.model_dump(mode="json"))
    now = utcnow()
    for rule, (enabled, params) in checked.items():
        row = await session.get(AlertRule, rule) or AlertRule(rule=rule)
        row.enabled = enabled
        row.params = params
        row.updated_at = now
        session.add(row)
    await session.flush()
    write_audit(session, None, "alert_rules.saved", agent=by,
                detail={"rules": {rule: enabled for rule, (enabled, _) in checked.items()}}, now=now)
    return sorted(checked)
