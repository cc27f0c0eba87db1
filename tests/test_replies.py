"""Reply templates: every template and label exists in every supported language and renders."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
import yaml

from inbox.replies import SUPPORTED_LANGUAGES, render_reply, replies_dir, reply_label, reply_names
from ordersvc.returns import DEFAULT_RETURN_POLICY
from ordersvc.service import DEFAULT_SHIPPING_POLICY

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
ORDER = SimpleNamespace(name="#1001", cancelled_at=NOW)
SHIPMENT = {
    "name": "#1001.1", "status": "in_transit", "status_text": "On its way", "carrier": "UPS",
    "tracking_number": "1Z999AA10123456784", "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    "eta": NOW, "delivered_at": None, "items": ["1 × Trail shoe"],
    "last_scan": {"message": "Arrived at facility", "location": "Louisville, KY", "at": NOW}, "late": False,
}
MOVEMENTS = [
    SimpleNamespace(kind=k, amount=Decimal("19.99"), currency="EUR", at=NOW, order_name="#1001", rma_number="R1001-1",
                    status="approved", code="CREDIT-1")
    for k in ("refund", "store_credit", "pending_refund", "pending_store_credit")
]
CONTEXTS = {
    "greeting": {"name": "Ana"},
    "handoff": {"reason": "complaint", "opens_at": NOW},
    "verify_ask_proof": {"order_ref": "#1001"},
    "wismo_cancelled": {"order": ORDER},
    "wismo_unfulfilled": {"order": ORDER, "ship_by": NOW},
    "wismo_unfulfilled_late": {"order": ORDER, "ship_by": NOW},
    "wismo_status": {"order": ORDER, "shipments": [SHIPMENT, SHIPMENT], "pending_items": ["1 × Cap"], "ship_by": NOW},
    "wismo_sorry_late": {"order": ORDER, "problem": False},
    "return_policy": {"policy": DEFAULT_RETURN_POLICY},
    "shipping_info": {"policy": DEFAULT_SHIPPING_POLICY},
    "refunds_list": {"items": MOVEMENTS},
    "tracking_update": {"order": ORDER, "shipments": [SHIPMENT]},
    **{f"update_{kind}": {"order": ORDER, "tracking_url": SHIPMENT["tracking_url"],
                          "shipment": SimpleNamespace(carrier="UPS", eta=NOW, delivered_at=NOW)}
       for kind in ("out_for_delivery", "delivered", "failed_attempt", "exception", "late")},
}


def test_every_template_exists_in_every_language() -> None:
    english = reply_names("en")
    assert len(english) > 20
    for lang in SUPPORTED_LANGUAGES:
        assert reply_names(lang) == english, f"{lang} differs: {sorted(reply_names(lang) ^ english)}"


def test_every_label_exists_in_every_language() -> None:
    def keys(lang: str) -> set[str]:
        return set(yaml.safe_load((replies_dir() / lang / "labels.yaml").read_text(encoding="utf-8")))

    for lang in SUPPORTED_LANGUAGES:
        assert keys(lang) == keys("en"), f"{lang} labels differ: {sorted(keys(lang) ^ keys('en'))}"
        assert all(isinstance(k, str) for k in keys(lang))


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_templates_render_in_each_language(lang: str) -> None:
    from jinja2 import Environment

    env = Environment()
    for name in sorted(reply_names(lang)):
        env.parse((replies_dir() / lang / f"{name}.txt").read_text(encoding="utf-8"))  # syntax check for all
    for name, context in CONTEXTS.items():
        text = render_reply(name, lang, shop="Demo Shop", tz="Europe/Madrid", **context)
        assert text.strip(), name
        assert "{{" not in text and "{%" not in text


def test_money_and_dates_are_formatted_for_the_locale() -> None:
    en = render_reply("refunds_list", "en", shop="S", tz="UTC", items=MOVEMENTS[:1])
    es = render_reply("refunds_list", "es", shop="S", tz="UTC", items=MOVEMENTS[:1])
    assert "€19.99" in en
    assert "19,99\xa0€" in es
    assert "Nov 20, 2026" in en
    # a moment is shown to the minute, in the shop's time zone
    opens = render_reply("handoff", "en", shop="S", tz="Europe/Madrid", reason="complaint", opens_at=NOW)
    assert "Nov 20, 2026, 4:30\u202fPM" in opens and "4:30:00" not in opens
    assert "2026年11月20日 16:30" in render_reply("handoff", "zh-Hans", shop="S", tz="Europe/Madrid",
                                                  reason="complaint", opens_at=NOW)


def test_customer_text_is_data_not_template() -> None:
    text = render_reply("verify_ask_proof", "en", shop="S", tz="UTC", order_ref="{{ 7*7 }}")
    assert "{{ 7*7 }}" in text
    assert "49" not in text


def test_unsupported_language_falls_back_to_english() -> None:
    assert render_reply("thanks", "pt", shop="S", tz="UTC") == render_reply("thanks", "en", shop="S", tz="UTC")
    assert reply_label("intent_track_order", "de") == "Track my order"
    assert reply_label("intent_track_order", "ru") == "Где мой заказ"


def test_optional_parts_keep_the_spaces_around_them() -> None:
    expected = {"en": "business days with UPS", "es": "días laborables con UPS", "ru": "рабочих дней службами UPS",
                "vi": "ngày làm việc qua UPS", "zh-Hans": "发出，承运商：UPS、USPS", "zh-Hant": "寄出，物流商：UPS、USPS"}
    for lang, words in expected.items():
        assert words in render_reply("shipping_info", lang, shop="S", tz="UTC", policy=DEFAULT_SHIPPING_POLICY), lang


def test_spanish_speaks_to_the_customer_as_tu_throughout() -> None:
    """Greeting, verification and handoff say "tú"; a return or a cancellation must not switch to "usted"."""
    usted = re.compile(r"\b(perdone|elija|responda|ayudarle|quiere|dígame|imprima|lleve|recibirá|podrá)\b", re.IGNORECASE)
    for path in sorted((replies_dir() / "es").glob("*.txt")):
        assert usted.findall(path.read_text(encoding="utf-8")) == [], path.name
