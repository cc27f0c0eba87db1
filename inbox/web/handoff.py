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


# a problem the bot remembered (``Turn.remember_problem``): the request, as the intent it stands for
_REQUEST_INTENT = {"return": "start_return", "cancel": "cancel_order", "address": "change_address"}
# a bot flow the customer was in, as the intent it stands for (not-understood hand-overs)
_FLOW_INTENT = {"returns": "start_return", "cancel": "cancel_order", "address": "change_address"}

# why the bot refused a cancellation or an address change (the refusal's code)
_ORDER_REFUSALS: dict[tuple[str, str], str] = {
    ("cancel", "already_fulfilled"): N_("it has already shipped, so the bot could not cancel it"),
    ("cancel", "partially_fulfilled"): N_("part of it has shipped, so the bot could not cancel it"),
    ("cancel", ""): N_("the bot could not cancel it"),
    ("address", "already_fulfilled"): N_("it has already shipped, so the bot could not change the address"),
    ("address", "partially_fulfilled"): N_("part of it has shipped, so the bot could not change the address"),
    ("address", ""): N_("the bot could not change the address"),
}

# why the return policy refused an item (eligibility codes, "condition", else any RMA problem)
_RETURN_REFUSALS: dict[str, str] = {
    "final_sale": N_("%(item)s is final sale"),
    "not_returnable": N_("%(item)s is not returnable"),
    "window_expired": N_("the return window for %(item)s has closed"),
    "not_delivered": N_("%(item)s has not been delivered yet"),
    "already_returned": N_("%(item)s was already returned"),
    "order_cancelled": N_("the order was cancelled"),
    "condition": N_("the policy does not accept %(item)s in that condition"),
    "in_progress": N_("was in the middle of returning %(item)s"),
    "": N_("the bot could not open a return for %(item)s"),
}


def _label(translations: _gettext_module.NullTranslations, value: Any) -> str:
    """A stored value (a return reason) as its UI label in the agent's language."""
    text = str(value or "").replace("_", " ").strip().capitalize()
    return translations.pgettext("label", text) if text else ""


def _problem_parts(facts: dict[str, Any], translations: _gettext_module.NullTranslations) -> list[str]:
    """What the bot could not do, and why, from a remembered problem."""
    _ = translations.gettext
    request = str(facts.get("request") or "")
    refusal = str(facts.get("refusal") or "")
    parts: list[str] = []
    if request in ("cancel", "address"):
        parts.append(_(_ORDER_REFUSALS.get((request, refusal)) or _ORDER_REFUSALS[(request, "")]))
    elif request == "return":
        raw = facts.get("items")
        items = [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []
        for item in items[:2]:
            title = str(item.get("title") or "").strip()[:80] or _("an item")
            why = _RETURN_REFUSALS.get(str(item.get("refusal") or "")) or _RETURN_REFUSALS[""]
            phrase = _(why) % {"item": title}
            if phrase not in parts:
                parts.append(phrase)
        if len(items) > 2:
            more = len(items) - 2
            parts.append(translations.ngettext("%(num)d more item refused", "%(num)d more items refused", more)
                         % {"num": more})
        if not items and refusal:
            parts.append(_(_RETURN_REFUSALS.get(refusal) or _RETURN_REFUSALS[""]) % {"item": _("an item")})
        if facts.get("return_reason"):
            parts.append(_("return reason: %(reason)s") % {"reason": _label(translations, facts["return_reason"])})
    return parts


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
    raw_facts = context.get("facts")
    facts: dict[str, Any] = raw_facts if isinstance(raw_facts, dict) else {}
    if reason == "verification_lockout":  # never proved who they are: no order, nothing remembered
        order, facts = "", {}
    # what they wanted: the request the bot refused, else the flow they were in, else the intent
    asked = _REQUEST_INTENT.get(str(facts.get("request") or "")) or (
        _FLOW_INTENT.get(str(facts.get("flow") or "")) if intent not in _WANTED or intent == "human_agent" else None)
    wanted = _WANTED.get(asked or "") or _WANTED.get(intent) or _WANTED.get(reason)
    if wanted is not None:
        parts.append(_(wanted[0]) % {"order": order} if order else _(wanted[1]))
    elif order:
        parts.append(_("Wrote about order %(order)s") % {"order": order})
    parts += _problem_parts(facts, translations)
    if asked and reason == "human_agent":
        parts.append(_("then asked for a person"))
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
    if context.get("order") and context.get("reason") != "verification_lockout":
        rows.append((_("Order"), str(context["order"])))
    raw_facts = context.get("facts")
    facts: dict[str, Any] = raw_facts if isinstance(raw_facts, dict) else {}
    if context.get("reason") == "verification_lockout":
        facts = {}
    for key, value in sorted(facts.items()):
        if key == "items" and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    rows.append((_("Item"), f"{item.get('title') or ''} ({str(item.get('refusal') or '').replace('_', ' ')})"))
            continue
        if value is None or isinstance(value, (dict, list)):
            continue
        rows.append((_("Fact"), f"{str(key).replace('_', ' ')}: {str(value).replace('_', ' ')}"))
    said = context.get("said")
    if isinstance(said, list) and said:
        rows.append((_("Bot replies"), ", ".join(str(s).replace("_", " ") for s in said)))
    if context.get("note"):
        rows.append((_("Note"), str(context["note"])))
    return rows
