"""Tests for ordersvc.tracking: status normalisation and tracking-number recognition.

The check-digit helpers at the top of this file are a second, independent
implementation (formulated differently from the production code) used to
generate random valid numbers and to cross-check single-digit mutations.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ordersvc.tracking as tracking
from ordersvc.tracking import (
    FINAL_STATUSES,
    Carrier,
    ShipmentStatus,
    TrackingMatch,
    detect_carrier,
    find_tracking_numbers,
    status_from_carrier_text,
    status_from_shopify,
    tracking_url,
)

# ---------------------------------------------------------------------------
# Independent reference check digits
# ---------------------------------------------------------------------------

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def ref_ups_check(payload15: str) -> str:
    """UPS: letters A..Z count as 2,3,..,9,0,1,.. ; odd positions doubled."""
    values = [int(c) if c.isdigit() else (ord(c) - ord("A") + 2) % 10 for c in payload15]
    total = sum(v * (1, 2)[i % 2] for i, v in enumerate(values))
    return str(-total % 10)


def ref_weight31_check(payload: str) -> str:
    """GS1: rightmost payload digit weight 3, alternating with 1 leftwards."""
    n = len(payload)
    total = sum(int(d) * (3 if (n - i) % 2 == 1 else 1) for i, d in enumerate(payload))
    return str(-total % 10)


def ref_fedex12_check(payload11: str) -> str:
    """FedEx 12: weights 1,3,7 repeating from the rightmost payload digit."""
    total = sum(int(d) * (1, 3, 7)[k % 3] for k, d in enumerate(reversed(payload11)))
    return str(total % 11 % 10)


def ref_dhl_check(payload9: str) -> str:
    return str(int(payload9) % 7)


def ref_s10_check(serial8: str) -> str:
    total = sum(int(d) * w for d, w in zip(serial8, (8, 6, 4, 2, 3, 5, 9, 7)))
    value = 11 - total % 11
    return str({10: 0, 11: 5}.get(value, value))


S10_SERVICES_SAMPLE = ["RR", "RB", "RA", "LX", "LZ", "EA", "EE", "CP", "CX", "UA", "VV", "HA",
                       "QA", "QM", "AV", "AZ", "GA", "GD", "BA", "NZ", "ZZ", "PX", "DA", "MA"]
COUNTRIES_SAMPLE = ["CN", "GB", "US", "DE", "JP", "FR", "NL", "RU", "CA", "AU", "HK", "SE",
                    "UA", "BR", "KR", "ES", "IT", "CH", "PL", "IN", "SG", "TR", "CZ", "NO"]


def ref_carrier(number: str) -> Carrier | None:
    """Reference classifier for the formats covered by the mutation test."""
    if len(set(number[:-1])) == 1:
        return None
    if number.startswith("1Z") and len(number) == 18:
        ok = number[-1].isdigit() and all(c in ALNUM for c in number)
        return Carrier.UPS if ok and ref_ups_check(number[2:17]) == number[17] else None
    if len(number) == 13 and not number.isdigit():
        if not (number[:2].isalpha() and number[2:11].isdigit() and number[11:].isalpha()):
            return None
        return Carrier.S10 if ref_s10_check(number[2:10]) == number[10] else None
    if not number.isdigit():
        return None
    body, check = number[:-1], number[-1]
    if len(number) == 10:
        return Carrier.DHL if ref_dhl_check(body) == check else None
    if len(number) == 12:
        return Carrier.FEDEX if ref_fedex12_check(body) == check else None
    if len(number) == 15:
        return Carrier.FEDEX if ref_weight31_check(body) == check else None
    if len(number) == 20:
        ok = check in (ref_weight31_check(body), ref_weight31_check("91" + body))
        return Carrier.USPS if ok else None
    if len(number) == 22 and number[:2] == "96":
        return Carrier.FEDEX if ref_weight31_check(body[7:]) == check else None
    if len(number) == 22 and number[:2] in ("91", "92", "93", "94", "95"):
        return Carrier.USPS if ref_weight31_check(body) == check else None
    return None


# ---------------------------------------------------------------------------
# Public test numbers (typed in as facts; grouped as they appear on labels)
# ---------------------------------------------------------------------------

VALID_NUMBERS: list[tuple[str, Carrier]] = [
    ("1Z999AA10123456784", Carrier.UPS),
    ("1Z5R89390357567127", Carrier.UPS),
    ("1Z879E930346834440", Carrier.UPS),
    ("1Z410E7W0392751591", Carrier.UPS),
    ("1Z8V92A70367203024", Carrier.UPS),
    ("1ZXX3150YW44070023", Carrier.UPS),
    ("1Z001985YW99744790", Carrier.UPS),
    ("03071790000523483741", Carrier.USPS),
    ("71123456789123456787", Carrier.USPS),
    ("71969010756003077385", Carrier.USPS),  # legacy: implied "91" prefix
    ("9101123456789000000013", Carrier.USPS),
    ("9400111206206406260787", Carrier.USPS),
    ("9400111201080805483016", Carrier.USPS),
    ("9405803699300124287899", Carrier.USPS),
    ("9434611206206407667136", Carrier.USPS),
    ("9505511069605048600624", Carrier.USPS),
    ("9361289878700317633795", Carrier.USPS),
    ("9261292700768711948021", Carrier.USPS),
    ("9400100208271116404754", Carrier.USPS),
    ("986578788855", Carrier.FEDEX),
    ("477179081230", Carrier.FEDEX),
    ("799531274483", Carrier.FEDEX),
    ("790535312317", Carrier.FEDEX),
    ("974367662710", Carrier.FEDEX),
    ("041441760228964", Carrier.FEDEX),
    ("568283610012000", Carrier.FEDEX),
    ("568283610012734", Carrier.FEDEX),
    ("9611020987654312345672", Carrier.FEDEX),
    ("3318810025", Carrier.DHL),
    ("8487135506", Carrier.DHL),
    ("1099255990", Carrier.DHL),
    ("3821724944", Carrier.DHL),
    ("RB123456785GB", Carrier.S10),
    ("RB123456785US", Carrier.S10),
    ("RB123456785CV", Carrier.S10),
    ("RR123456785CN", Carrier.S10),
]

LONG_USPS_NUMBERS = [
    "92748931507708513018050063",  # 26 digits
    "420787459400111206206406260787",  # 420 + ZIP5 routing + 22
    "4201002334249200190132607600833457",  # 420 + ZIP9 routing + 22
    "420112139261290983497923666238",
]

INVALID_NUMBERS = [
    "1Z1111111111111111",
    "2Z5R89390357567127",
    "1A5R89390357567127",
    "1Z1234512345123456",
    "1z827wk74630",
    "1Z2345",
    "03071790000523483742",
    "9434611206206407667131",
    "9200000000000000000000",
    "996578788855",
    "568283610012732",
    "9600000000000000000001",
    "3318810010",
    "3318810034",
    "3318810011",
    "RB123456786US",
    "RB123456785XX",  # not an ISO country
    "XB123456785US",  # not an S10 service indicator
    "000000000000",  # placeholder, even though the FedEx check works out
    "",
    "   ",
    "1Z999AA1-0123456784",
]


def normalize(raw: str) -> str:
    return "".join(raw.split()).upper()


def _numbers_only(text: str) -> list[tuple[Carrier, str]]:
    return [(m.carrier, m.number) for m in find_tracking_numbers(text)]


# ---------------------------------------------------------------------------
# Package shape
# ---------------------------------------------------------------------------


def test_public_api_is_exported() -> None:
    for name in (
        "ShipmentStatus",
        "status_from_shopify",
        "status_from_carrier_text",
        "Carrier",
        "TrackingMatch",
        "find_tracking_numbers",
        "detect_carrier",
        "tracking_url",
    ):
        assert name in tracking.__all__
        assert hasattr(tracking, name)


def test_ordersvc_tracking_imports_only_stdlib_or_relative() -> None:
    package_dir = Path(tracking.__file__).parent
    for path in package_dir.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    continue
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", (path, module)


def test_enums_have_exact_values() -> None:
    assert [s.value for s in ShipmentStatus] == [
        "pending",
        "info_received",
        "in_transit",
        "out_for_delivery",
        "failed_attempt",
        "available_for_pickup",
        "delivered",
        "exception",
        "expired",
    ]
    assert {c.value for c in Carrier} == {"ups", "usps", "fedex", "dhl", "s10"}
    assert ShipmentStatus("delivered") == "delivered"
    assert Carrier("ups") == "ups"


def test_tracking_match_is_frozen() -> None:
    match = TrackingMatch(Carrier.UPS, "1Z999AA10123456784", 0, 18)
    with pytest.raises(AttributeError):
        match.number = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Shipment status
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shopify_value", "expected"),
    [
        (None, ShipmentStatus.PENDING),
        ("", ShipmentStatus.PENDING),
        ("label_printed", ShipmentStatus.INFO_RECEIVED),
        ("label_purchased", ShipmentStatus.INFO_RECEIVED),
        ("confirmed", ShipmentStatus.INFO_RECEIVED),
        ("attempted_delivery", ShipmentStatus.FAILED_ATTEMPT),
        ("ready_for_pickup", ShipmentStatus.AVAILABLE_FOR_PICKUP),
        ("in_transit", ShipmentStatus.IN_TRANSIT),
        ("out_for_delivery", ShipmentStatus.OUT_FOR_DELIVERY),
        ("delivered", ShipmentStatus.DELIVERED),
        ("failure", ShipmentStatus.EXCEPTION),
        # GraphQL spellings and newer enum values
        ("IN_TRANSIT", ShipmentStatus.IN_TRANSIT),
        ("OUT_FOR_DELIVERY", ShipmentStatus.OUT_FOR_DELIVERY),
        ("carrier_picked_up", ShipmentStatus.IN_TRANSIT),
        ("PICKED_UP", ShipmentStatus.DELIVERED),
        ("delayed", ShipmentStatus.EXCEPTION),
        ("buyer_action_required", ShipmentStatus.EXCEPTION),
        ("ready_for_recipient_pickup", ShipmentStatus.AVAILABLE_FOR_PICKUP),
        ("returning_to_sender", ShipmentStatus.EXCEPTION),
        # Unknown values are not an error
        ("teleported", ShipmentStatus.PENDING),
    ],
)
def test_status_from_shopify(shopify_value: str | None, expected: ShipmentStatus) -> None:
    assert status_from_shopify(shopify_value) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Out for delivery", ShipmentStatus.OUT_FOR_DELIVERY),
        ("OUT FOR DELIVERY", ShipmentStatus.OUT_FOR_DELIVERY),
        ("On vehicle for delivery", ShipmentStatus.OUT_FOR_DELIVERY),
        ("Delivered, front door", ShipmentStatus.DELIVERED),
        ("Delivered, In/At Mailbox", ShipmentStatus.DELIVERED),
        ("delivered to neighbour", ShipmentStatus.DELIVERED),
        ("Picked up by customer", ShipmentStatus.DELIVERED),
        ("Arrived at facility", ShipmentStatus.IN_TRANSIT),
        ("Departed FedEx hub", ShipmentStatus.IN_TRANSIT),
        ("Accepted at USPS Origin Facility", ShipmentStatus.IN_TRANSIT),
        ("In transit to next facility", ShipmentStatus.IN_TRANSIT),
        ("Picked up", ShipmentStatus.IN_TRANSIT),
        ("Customs clearance completed", ShipmentStatus.IN_TRANSIT),
        ("Your package will be delivered tomorrow", ShipmentStatus.IN_TRANSIT),
        ("Delivery attempted - no access", ShipmentStatus.FAILED_ATTEMPT),
        ("Notice left (no authorized recipient available)", ShipmentStatus.FAILED_ATTEMPT),
        ("The receiver was not available for delivery", ShipmentStatus.FAILED_ATTEMPT),
        ("Couldn't be delivered", ShipmentStatus.FAILED_ATTEMPT),
        ("Held at post office for pickup", ShipmentStatus.AVAILABLE_FOR_PICKUP),
        ("Available for pickup", ShipmentStatus.AVAILABLE_FOR_PICKUP),
        ("Delivered to parcel locker", ShipmentStatus.AVAILABLE_FOR_PICKUP),
        ("Shipment information received", ShipmentStatus.INFO_RECEIVED),
        ("Shipping label created, USPS awaiting item", ShipmentStatus.INFO_RECEIVED),
        ("Order processed: ready for UPS", ShipmentStatus.INFO_RECEIVED),
        ("Return to sender", ShipmentStatus.EXCEPTION),
        ("Returned to shipper", ShipmentStatus.EXCEPTION),
        ("Customs delay", ShipmentStatus.EXCEPTION),
        ("Held by customs", ShipmentStatus.EXCEPTION),
        ("Undeliverable as addressed", ShipmentStatus.EXCEPTION),
        ("Delivery exception", ShipmentStatus.EXCEPTION),
        ("Refused by recipient", ShipmentStatus.EXCEPTION),
        ("Tracking expired", ShipmentStatus.EXPIRED),
        ("  -- delivered!! --  ", ShipmentStatus.DELIVERED),
    ],
)
def test_status_from_carrier_text(text: str, expected: ShipmentStatus) -> None:
    assert status_from_carrier_text(text) is expected


@pytest.mark.parametrize("text", ["", "   ", "xyz", "Hello world", "12345", "Lorem ipsum"])
def test_status_from_carrier_text_unrecognised(text: str) -> None:
    assert status_from_carrier_text(text) is None


def test_final_statuses() -> None:
    assert ShipmentStatus.DELIVERED.is_final
    assert ShipmentStatus.EXPIRED.is_final
    assert FINAL_STATUSES == {ShipmentStatus.DELIVERED, ShipmentStatus.EXPIRED}
    for status in ShipmentStatus:
        assert status.is_final == (status in FINAL_STATUSES)
    assert not ShipmentStatus.EXCEPTION.is_final


# ---------------------------------------------------------------------------
# detect_carrier and tracking_url
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "carrier"), VALID_NUMBERS)
def test_detect_carrier_public_numbers(number: str, carrier: Carrier) -> None:
    assert detect_carrier(number) is carrier
    assert detect_carrier(f"  {number.lower()}  ") is carrier


@pytest.mark.parametrize("number", LONG_USPS_NUMBERS)
def test_detect_carrier_long_usps(number: str) -> None:
    assert detect_carrier(number) is Carrier.USPS
    assert _numbers_only(f"label {number} ok") == [(Carrier.USPS, number)]


@pytest.mark.parametrize("number", INVALID_NUMBERS)
def test_detect_carrier_rejects_invalid(number: str) -> None:
    assert detect_carrier(number) is None
    assert find_tracking_numbers(f"see {number} here") == []


def test_detect_carrier_accepts_spaced_input() -> None:
    assert detect_carrier("1Z 999 AA1 01 2345 6784") is Carrier.UPS
    assert detect_carrier("9400 1112 0108 0805 4830 16") is Carrier.USPS
    assert detect_carrier("555-123-4567") is None


@pytest.mark.parametrize(("number", "carrier"), VALID_NUMBERS)
def test_changing_the_check_digit_rejects_every_public_number(
    number: str, carrier: Carrier
) -> None:
    index = 10 if carrier is Carrier.S10 else len(number) - 1
    for digit in "0123456789":
        if digit == number[index]:
            continue
        mutated = number[:index] + digit + number[index + 1 :]
        if ref_carrier(mutated) is not None:
            continue  # 20-digit USPS accepts two different check digits
        assert detect_carrier(mutated) is None, mutated
        assert find_tracking_numbers(f"track {mutated} pls") == [], mutated


@pytest.mark.parametrize(("number", "carrier"), VALID_NUMBERS)
def test_single_digit_mutations_agree_with_reference(number: str, carrier: Carrier) -> None:
    """Every one-digit change is accepted exactly when the reference accepts it."""
    assert ref_carrier(number) is carrier
    for index, char in enumerate(number):
        if not char.isdigit() or (carrier is Carrier.UPS and index < 2):
            continue
        for digit in "0123456789":
            if digit == char:
                continue
            mutated = number[:index] + digit + number[index + 1 :]
            assert detect_carrier(mutated) is ref_carrier(mutated), mutated


def test_tracking_urls() -> None:
    assert tracking_url(Carrier.UPS, "1z999aa10123456784") == (
        "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    )
    assert tracking_url(Carrier.USPS, "9400 1112 0108 0805 4830 16") == (
        "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111201080805483016"
    )
    # The 420+ZIP routing prefix is dropped for the USPS site.
    assert tracking_url(Carrier.USPS, "420787459400111206206406260787").endswith(
        "tLabels=9400111206206406260787"
    )
    assert tracking_url(Carrier.FEDEX, "986578788855") == (
        "https://www.fedex.com/fedextrack/?trknbr=986578788855"
    )
    assert tracking_url(Carrier.DHL, "3318810025").startswith("https://www.dhl.com/")
    assert tracking_url(Carrier.DHL, "3318810025").endswith("tracking-id=3318810025")
    assert tracking_url(Carrier.S10, "RR123456785CN") == (
        "https://parcelsapp.com/en/tracking/RR123456785CN"
    )
    # Junk typed by a merchant is quoted, never injected into the URL.
    assert tracking_url(Carrier.UPS, "a&b=c/d") == "https://www.ups.com/track?tracknum=A%26B%3DC%2FD"


# ---------------------------------------------------------------------------
# find_tracking_numbers on hand-written text
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "carrier"), VALID_NUMBERS)
def test_public_numbers_found_in_text(number: str, carrier: Carrier) -> None:
    text = f"Hi, my tracking number is {number}. Thanks!"
    matches = find_tracking_numbers(text)
    assert matches == [TrackingMatch(carrier, number, 26, 26 + len(number))]


def _single(text: str, fragment: str, carrier: Carrier, number: str) -> None:
    start = text.index(fragment)
    assert find_tracking_numbers(text) == [
        TrackingMatch(carrier, number, start, start + len(fragment))
    ]


def test_russian_sentence() -> None:
    text = "мой трек 1Z999AA10123456784 где посылка?"
    assert find_tracking_numbers(text) == [
        TrackingMatch(Carrier.UPS, "1Z999AA10123456784", 9, 27)
    ]


def test_chinese_without_spaces() -> None:
    text = "您好，我的运单号是RR123456785CN请帮我查一下物流"
    assert find_tracking_numbers(text) == [TrackingMatch(Carrier.S10, "RR123456785CN", 9, 22)]
    text = "快递单号1Z999AA10123456784什么时候到？"
    assert find_tracking_numbers(text) == [
        TrackingMatch(Carrier.UPS, "1Z999AA10123456784", 4, 22)
    ]


@pytest.mark.parametrize(
    ("text", "fragment", "carrier", "number"),
    [
        ("Meine Sendungsnummer: 986578788855, wo ist das Paket?", "986578788855",
         Carrier.FEDEX, "986578788855"),
        ("Où est mon colis 9400 1112 0108 0805 4830 16 ?", "9400 1112 0108 0805 4830 16",
         Carrier.USPS, "9400111201080805483016"),
        ("¿Dónde está mi paquete (3318810025)?", "3318810025", Carrier.DHL, "3318810025"),
        ("荷物の追跡番号はEA123456785JPです", "EA123456785JP", Carrier.S10, "EA123456785JP"),
        ("tracking: 1Z 999 AA1 01 2345 6784, thanks", "1Z 999 AA1 01 2345 6784",
         Carrier.UPS, "1Z999AA10123456784"),
        ("lower case works too: 1z999aa10123456784", "1z999aa10123456784",
         Carrier.UPS, "1Z999AA10123456784"),
        ("no-break spaces 0307\u00a01790\u00a00005\u00a02348\u00a03741 ok",
         "0307\u00a01790\u00a00005\u00a02348\u00a03741", Carrier.USPS, "03071790000523483741"),
        ("FedEx ground 0414 4176 0228 964!", "0414 4176 0228 964", Carrier.FEDEX,
         "041441760228964"),
        ("https://parcelsapp.com/en/tracking/RR123456785CN", "RR123456785CN", Carrier.S10,
         "RR123456785CN"),
        ("Royal Mail RB 123 456 785 GB", "RB 123 456 785 GB", Carrier.S10, "RB123456785GB"),
    ],
)
def test_numbers_in_sentences(text: str, fragment: str, carrier: Carrier, number: str) -> None:
    _single(text, fragment, carrier, number)


def test_several_numbers_in_order_without_overlap() -> None:
    text = "Box 1: 986578788855 477179081230, box 2: RR123456785CN and 1Z999AA10123456784"
    matches = find_tracking_numbers(text)
    assert [(m.carrier, m.number) for m in matches] == [
        (Carrier.FEDEX, "986578788855"),
        (Carrier.FEDEX, "477179081230"),
        (Carrier.S10, "RR123456785CN"),
        (Carrier.UPS, "1Z999AA10123456784"),
    ]
    for match in matches:
        assert normalize(text[match.start : match.end]) == match.number
    for earlier, later in zip(matches, matches[1:]):
        assert earlier.end <= later.start


def test_unspaced_number_wins_over_glued_longer_candidate() -> None:
    # "986578788855 399" would be 15 digits; the 12-digit run stands alone.
    assert _numbers_only("parcel 986578788855 399 EUR") == [(Carrier.FEDEX, "986578788855")]
    # Two DHL waybills side by side are not glued into a USPS-20 candidate.
    assert _numbers_only("3318810025 8487135506") == [
        (Carrier.DHL, "3318810025"),
        (Carrier.DHL, "8487135506"),
    ]


def test_glued_to_letters_is_ignored() -> None:
    assert find_tracking_numbers("order1Z999AA10123456784") == []
    assert find_tracking_numbers("1Z999AA10123456784abc") == []
    assert find_tracking_numbers("x986578788855") == []


def test_spaced_digits_need_short_groups() -> None:
    # German mobile number layout whose 12 digits happen to pass FedEx's check.
    assert detect_carrier("015112345676") is Carrier.FEDEX
    assert find_tracking_numbers("ruf an: 0151 12345676") == []
    # The same digits grouped like a label (4-4-4) are accepted.
    assert _numbers_only("FedEx 0151 1234 5676") == [(Carrier.FEDEX, "015112345676")]


def test_fragment_of_mistyped_spaced_number_is_not_reported() -> None:
    # A typo in the last group must not leave some 12-digit slice as "FedEx".
    for last in "0123456789":
        text = f"usps 0307 1790 0005 2348 374{last} thx"
        found = _numbers_only(text)
        expected_valid = ref_carrier(f"0307179000052348374{last}") is not None
        assert found == ([(Carrier.USPS, f"0307179000052348374{last}")] if expected_valid else [])


@pytest.mark.parametrize(
    "text",
    [
        "Order #1001",
        "order 1001 please",
        "Amazon order 113-1234567-1234567",
        "eBay order 12-12345-12345",
        "Call me at 555-123-4567",
        "(555) 123-4567",
        "555.123.4567",
        "555 123 4567",
        "+1 555 123 4567",
        "+44 7700 900123",
        "+49 151 12345678",
        "+7 916 123-45-67",
        "0151 12345678",
        "card 4111 1111 1111 1111",
        "total 1,234,567,890.00",
        "2024-05-01 12:30",
    ],
)
def test_order_and_phone_numbers_not_matched(text: str) -> None:
    assert find_tracking_numbers(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "+3318810025",
        "+1 3318810025",
        "(+49) 3318810025",
        "phone: 3318810025",
        "Tel. 3318810025",
        "call me on 3318810025",
        "телефон 3318810025",
        "电话3318810025",
        "ref 3318810025-1",
        "3318810025.50",
        "#3318810025",
        "3318 810 025",  # spaced 10 digits: DHL must be one unspaced run
    ],
)
def test_dhl_mod7_not_taken_from_phone_like_context(text: str) -> None:
    assert detect_carrier("3318810025") is Carrier.DHL
    assert find_tracking_numbers(text) == []


def test_phone_word_far_away_does_not_block_dhl() -> None:
    text = "My phone died yesterday, but the DHL waybill is 3318810025"
    assert _numbers_only(text) == [(Carrier.DHL, "3318810025")]


def test_hotel_is_not_a_phone_word() -> None:
    assert _numbers_only("hotel 3318810025") == [(Carrier.DHL, "3318810025")]


def test_long_text_is_fast_enough() -> None:
    text = ("lorem ipsum 12 34 56 " * 3000) + "1Z999AA10123456784"
    matches = find_tracking_numbers(text)
    assert [m.number for m in matches] == ["1Z999AA10123456784"]
    assert matches[0].end == len(text)


# ---------------------------------------------------------------------------
# Property-based tests
# ---------------------------------------------------------------------------

def _digit_string(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=size, max_size=size).filter(
        lambda s: len(set(s)) > 1
    )


@st.composite
def ups_numbers(draw: st.DrawFn) -> str:
    payload = draw(st.text(alphabet=ALNUM, min_size=15, max_size=15))
    return "1Z" + payload + ref_ups_check(payload)


@st.composite
def usps20_numbers(draw: st.DrawFn) -> str:
    payload = draw(_digit_string(19))
    return payload + ref_weight31_check(payload)


@st.composite
def usps22_numbers(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["91", "92", "93", "94", "95"]))
    payload = prefix + draw(_digit_string(19))
    return payload + ref_weight31_check(payload)


@st.composite
def fedex12_numbers(draw: st.DrawFn) -> str:
    payload = draw(_digit_string(11))
    return payload + ref_fedex12_check(payload)


@st.composite
def fedex15_numbers(draw: st.DrawFn) -> str:
    payload = draw(_digit_string(14))
    return payload + ref_weight31_check(payload)


@st.composite
def fedex96_numbers(draw: st.DrawFn) -> str:
    head = "96" + draw(st.text(alphabet="0123456789", min_size=5, max_size=5))
    serial = draw(_digit_string(14))
    return head + serial + ref_weight31_check(serial)


@st.composite
def dhl_numbers(draw: st.DrawFn) -> str:
    payload = draw(_digit_string(9))
    return payload + ref_dhl_check(payload)


@st.composite
def s10_numbers(draw: st.DrawFn) -> str:
    service = draw(st.sampled_from(S10_SERVICES_SAMPLE))
    serial = draw(st.text(alphabet="0123456789", min_size=8, max_size=8))
    country = draw(st.sampled_from(COUNTRIES_SAMPLE))
    return service + serial + ref_s10_check(serial) + country


GENERATORS: dict[str, tuple[Carrier, st.SearchStrategy[str], int]] = {
    # name: (carrier, strategy, index of the check digit)
    "ups": (Carrier.UPS, ups_numbers(), 17),
    "usps20": (Carrier.USPS, usps20_numbers(), 19),
    "usps22": (Carrier.USPS, usps22_numbers(), 21),
    "fedex12": (Carrier.FEDEX, fedex12_numbers(), 11),
    "fedex15": (Carrier.FEDEX, fedex15_numbers(), 14),
    "fedex96": (Carrier.FEDEX, fedex96_numbers(), 21),
    "dhl": (Carrier.DHL, dhl_numbers(), 9),
    "s10": (Carrier.S10, s10_numbers(), 10),
}

# Filler words: no ASCII digits and no phone words, so they can neither form a
# tracking number nor veto one. Mix of languages and scripts.
_WORDS = st.one_of(
    st.sampled_from(
        ["where", "is", "my", "parcel", "please", "thanks", "wo", "ist", "mein", "Paket",
         "où", "est", "colis", "dónde", "está", "посылка", "где", "трек", "包裹", "在哪里",
         "荷物", "!", "?", "(", ")", ":", "—", "…", "😀"]
    ),
    st.text(alphabet="абвгдежзиклмнопрстуфхцчшэюяαβγδεζηθ你好快递单号", min_size=1, max_size=6),
)
_FILLER = st.lists(_WORDS, max_size=6).map(" ".join)

PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def embedded_numbers(draw: st.DrawFn) -> tuple[str, Carrier, str, str, str]:
    name = draw(st.sampled_from(sorted(GENERATORS)))
    carrier, strategy, _ = GENERATORS[name]
    number = draw(strategy)
    prefix = draw(_FILLER)
    suffix = draw(_FILLER)
    return name, carrier, number, prefix, suffix


def _join(prefix: str, middle: str, suffix: str) -> tuple[str, int]:
    head = f"{prefix} " if prefix else ""
    tail = f" {suffix}" if suffix else ""
    return head + middle + tail, len(head)


@PROPERTY_SETTINGS
@given(embedded_numbers())
def test_property_valid_numbers_found_with_exact_offsets(
    case: tuple[str, Carrier, str, str, str],
) -> None:
    _, carrier, number, prefix, suffix = case
    text, start = _join(prefix, number, suffix)
    assert find_tracking_numbers(text) == [
        TrackingMatch(carrier, number, start, start + len(number))
    ]
    assert detect_carrier(number) is carrier
    # Lower-case input is found and normalised as well.
    assert find_tracking_numbers(text.replace(number, number.lower())) == [
        TrackingMatch(carrier, number, start, start + len(number))
    ]


@PROPERTY_SETTINGS
@given(embedded_numbers(), st.integers(min_value=1, max_value=9))
def test_property_altered_check_digit_disappears(
    case: tuple[str, Carrier, str, str, str], shift: int
) -> None:
    name, _, number, prefix, suffix = case
    _, _, check_index = GENERATORS[name]
    altered_digit = str((int(number[check_index]) + shift) % 10)
    altered = number[:check_index] + altered_digit + number[check_index + 1 :]
    if name == "usps20" and ref_carrier(altered) is not None:
        return  # the legacy "91"-prefixed rule accepts a second check digit
    text, _ = _join(prefix, altered, suffix)
    assert find_tracking_numbers(text) == []
    assert detect_carrier(altered) is None


def _group(number: str, size: int) -> str:
    return " ".join(number[i : i + size] for i in range(0, len(number), size))


@PROPERTY_SETTINGS
@given(embedded_numbers(), st.integers(min_value=2, max_value=5))
def test_property_space_grouped_numbers_found(
    case: tuple[str, Carrier, str, str, str], group_size: int
) -> None:
    name, carrier, number, prefix, suffix = case
    if name == "dhl":
        return  # DHL must be a single unspaced run (phone-number trade-off)
    spaced = _group(number, group_size)
    text, start = _join(prefix, spaced, suffix)
    assert find_tracking_numbers(text) == [
        TrackingMatch(carrier, number, start, start + len(spaced))
    ]
