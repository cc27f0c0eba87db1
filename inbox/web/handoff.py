"""The bot's hand-off, in a sentence an agent reads in two seconds, in the agent's language.

The bot stores what it knew when it handed over as structured context on the conversation
(``Conversation.handoff``: reason, intent and confidence, order, the reply templates it used,
facts its handler found such as days since the parcel's last scan). :func:`handoff_sentence`
words it with the agent's gettext translations: what the customer wanted, what is wrong, what the
bot already told them ("Asked where order #1003 is; the parcel has had no scan for 7 days; the
bot apologised and promised a person"). :func:`handoff_details` lists the same facts for the
``<details>`` under it. Unknown values are skipped, never shown raw in the sentence.
"""

from __future__ import annotations

import gettext as _gettext_module
from typing import Any

from shopbase.formatting import format_percent

__all__ = ["handoff_sentence", "handoff_details"]


def N_(message: str) -> str:
    return message


# what the customer wanted: (with an order, without one)
_WANTED: dict[str, tuple[str, str]] = {
    "track_order": (N_("Asked where order %(order)s is"), N_("Asked where their order is")),
    "cancel_order": (N_("Wants to cancel order %(order)s"), N_("Wants to cancel an order")),
    "change_address": (N_("Wants to change the address of order %(order)s"), N_("Wants to change a delivery address")),
    "start_return": (N_("Wants to return items from order %(order)s"), N_("Wants to return something")),
    "refund_status": (N_("Asked about the refund for order %(order)s"), N_("Asked about a refund")),
    "return_policy": (N_("Asked about returning order %(order)s"), N_("Asked about the return policy")),
    "shipping_info": (N_("Asked about shipping for order %(order)s"), N_("Asked about shipping")),
    "payment_issue": (N_("Has a payment problem with order %(order)s"), N_("Has a payment problem")),
    "invoice": (N_("Asked for the invoice of order %(order)s"), N_("Asked for an invoice")),
    "complaint": (N_("Complained about order %(order)s"), N_("Complained")),
    "human_agent": (N_("Asked for a person about order %(order)s"), N_("Asked for a person")),
}

# why the bot handed over (when it adds something to what they wanted)
_REASONS: dict[str, str] = {
    "negative": N_("the customer is upset"),
    "low_confidence": N_("the bot was not sure what they meant"),
    "not_understood": N_("the bot did not understand their answer twice"),
    "verification_lockout": N_("too many wrong order checks, so verification is locked"),
    "bot_error": N_("the bot failed on their last message"),
    "payment_issue": N_("payment problems need a person"),
}


def _said(context: dict[str, Any]) -> set[str]:
    said = context.get("said")
    return {str(s) for s in said} if isinstance(said, list) else set()


def handoff_sentence(context: dict[str, Any] | None, translations: _gettext_module.NullTranslations) -> str:
    """One sentence in the translations' language; "" when there is no structured context."""
    if not isinstance(context, dict) or not context:
        return ""
    _ = translations.gettext
    parts: list[str] = []
    intent = str(context.get("intent") or "")
    order = str(context.get("order") or "").strip()[:40]
    reason = str(context.get("reason") or "")
    wanted = _WANTED.get(intent) or _WANTED.get(reason)
    if wanted is not None:
        parts.append(_(wanted[0]) % {"order": order} if order else _(wanted[1]))
    elif order:
        parts.append(_("Wrote about order %(order)s") % {"order": order})

    raw_facts = context.get("facts")
    facts: dict[str, Any] = raw_facts if isinstance(raw_facts, dict) else {}
    days = facts.get("days_since_scan")
    if isinstance(days, int) and not isinstance(days, bool) and days >= 1:
        parts.append(translations.ngettext("the parcel has had no scan for %(num)d day",
                                           "the parcel has had no scan for %(num)d days", days) % {"num": days})
    if facts.get("problem"):
        parts.append(_("the carrier reports a delivery problem"))
    if facts.get("not_shipped"):
        parts.append(_("it has not shipped by the expected date"))
    if reason in _REASONS and not (reason == intent):
        parts.append(_(_REASONS[reason]))
    elif context.get("hostile") and reason != "negative":
        parts.append(_(_REASONS["negative"]))

    said = _said(context)
    apologised = bool(said & {"wismo_sorry_late", "bot_error"}) or (
        "handoff" in said and reason in ("negative", "complaint"))
    promised = bool(said & {"handoff", "handoff_unsure", "wismo_sorry_late", "bot_error"})
    if apologised and promised:
        parts.append(_("the bot apologised and promised a person"))
    elif promised:
        parts.append(_("the bot told them a person will reply"))

    if not parts:
        return ""
    sentence = "; ".join(parts)
    return sentence[:1].upper() + sentence[1:]


def handoff_details(context: dict[str, Any] | None, translations: _gettext_module.NullTranslations,
                    locale: str) -> list[tuple[str, str]]:
    """(label, value) rows of the structured context, for the one-click details."""
    if not isinstance(context, dict) or not context:
        return []
    _ = translations.gettext
    rows: list[tuple[str, str]] = []
    if context.get("reason"):
        rows.append((_("Reason"), str(context["reason"]).replace("_", " ")))
    if context.get("intent"):
        intent = str(context["intent"]).replace("_", " ")
        confidence = context.get("confidence")
        if isinstance(confidence, (int, float)) and not isinstance(confidence, bool):
            intent += f" ({format_percent(confidence, locale)})"
        rows.append((_("Intent"), intent))
    if context.get("order"):
        rows.append((_("Order"), str(context["order"])))
    raw_facts = context.get("facts")
    facts: dict[str, Any] = raw_facts if isinstance(raw_facts, dict) else {}
    for key, value in sorted(facts.items()):
        rows.append((_("Fact"), f"{str(key).replace('_', ' ')}: {value}"))
    said = context.get("said")
    if isinstance(said, list) and said:
        rows.append((_("Bot replies"), ", ".join(str(s).replace("_", " ") for s in said)))
    if context.get("note"):
        rows.append((_("Note"), str(context["note"])))
    return rows
