"""return_policy and shipping_info, answered from the merchant's configured policies.

Their text is a function of the stored policy alone, so it is rendered once per policy (its
JSON), language and shop (``Turn.say_memo``), not on every question."""

from __future__ import annotations

import json
from typing import Any

from bot.dialog.turn import Turn
from ordersvc.returns.policy import POLICY_SETTING_KEY, policy_from_stored
from ordersvc.service import DEFAULT_SHIPPING_POLICY, SHIPPING_POLICY_KEY, setting_over
from ordersvc.settings_read import stored_setting

__all__ = ["return_policy", "shipping_info"]


async def return_policy(turn: Turn) -> None:
    value = await stored_setting(turn.session, POLICY_SETTING_KEY)
    _say_policy(turn, "return_policy", value, lambda: policy_from_stored(value))


async def shipping_info(turn: Turn) -> None:
    value = await stored_setting(turn.session, SHIPPING_POLICY_KEY)
    _say_policy(turn, "shipping_info", value, lambda: setting_over(value, DEFAULT_SHIPPING_POLICY))


def _say_policy(turn: Turn, template: str, value: Any, policy: Any) -> None:
    """``turn.say(template, policy=policy())``, its text kept per stored ``value``."""
    try:
        key = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):  # not plain JSON: rendered as it comes
        turn.say(template, policy=policy())
        return
    turn.say_memo(template, (template, key), lambda: {"policy": policy()})
