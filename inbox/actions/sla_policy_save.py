"""An admin saves the SLA policy (business hours, holidays, targets): checked whole, audited."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Agent
from inbox.sla import SETTINGS_KEY, SlaPolicy, load_policy
from ordersvc.service import put_setting
from shopbase.refusal import Refused

__all__ = ["sla_policy_save"]


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


async def sla_policy_save(session: AsyncSession, raw: Mapping[str, Any], *, by: Agent) -> SlaPolicy:
    """Store the policy; a refusal (naming the field) writes nothing. Admins only. Running
    clocks keep their due times; new clocks use the new policy."""
    if not by.is_admin:
        raise Refused("forbidden", "only admins can change the SLA policy", status=403)
    try:
        policy = SlaPolicy.model_validate(dict(raw))
    except ValidationError as exc:
        raise Refused("invalid", _problem(exc), status=400) from None
    previous = await load_policy(session)
    await put_setting(session, SETTINGS_KEY, policy.model_dump(mode="json"))
    changed = sorted(k for k in SlaPolicy.model_fields if getattr(previous, k) != getattr(policy, k))
    write_audit(session, None, "sla_policy.saved", agent=by, detail={"changed": changed})
    return policy
