"""The merchant switches kinds of proactive customer messages on or off (delivery updates per
kind, the satisfaction survey): from the admin page or ``shopdesk updates set``."""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Agent
from inbox.proactive import SETTING_KINDS, SETTINGS_KEY, update_settings
from ordersvc.service import put_setting
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["customer_updates_save"]


async def customer_updates_save(session: AsyncSession, switches: Mapping[str, bool], *,
                                by: Agent | None = None, actor: str | None = None) -> dict[str, bool]:
    """Store ``{kind: on}`` for the kinds given (the others keep their state) in the caller's
    transaction and audit what changed; returns every switch. An agent must be an admin
    (403); an unknown kind is refused (400) before anything is written. ``by=None`` is the
    command line (``actor``)."""
    if by is not None and not by.is_admin:
        raise Refused("forbidden", "only admins can change customer updates", status=403)
    unknown = sorted(kind for kind in switches if kind not in SETTING_KINDS)
    if unknown:
        raise Refused("invalid", f"unknown kind of update {unknown[0][:40]!r}; one of: {', '.join(SETTING_KINDS)}",
                      status=400)
    current = await update_settings(session)
    changed = {kind: bool(on) for kind, on in switches.items() if current[kind] != bool(on)}
    if not changed:
        return current
    current.update(changed)
    await put_setting(session, SETTINGS_KEY, current)
    write_audit(session, None, "customer_updates.saved", agent=by, actor=None if by else (actor or "cli"),
                detail={"changed": changed}, now=utcnow())
    return current
