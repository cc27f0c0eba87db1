"""Recognise carrier tracking numbers, alone or inside free text.

Supported formats (every one is check-digit validated; a number whose check
digit does not match is never reported):

========  =====================================================  ==============
carrier   shape (after normalisation)                            check digit
========  =====================================================  ==============
UPS       ``1Z`` + 15 letters/digits + 1 digit (18 chars)         UPS mod 10
USPS      20 digits (legacy Delivery Confirmation)                GS1 mod 10 *
USPS      22 digits starting 91–95 (IMpb and legacy ``91``)        GS1 mod 10
USPS      26 or 30 digits starting 92–95 (IMpb, long mailer IDs)  GS1 mod 10
USPS      ``420`` + ZIP5/ZIP9 routing + one of the IMpb forms      GS1 mod 10
FedEx     12 digits (Express)                                     3-1-7 mod 11
FedEx     15 digits (Ground)                                      GS1 mod 10
FedEx     22 digits starting ``96`` (Ground "96" barcode)         GS1 mod 10 **
DHL       10 digits (Express waybill)                             mod 7
S10       2 letters + 8 digits + 1 digit + ISO country (13)       S10 mod 11
========  =====================================================  ==============

\\* Old 20-digit USPS numbers were computed as if ``91`` were prepended, so a
20-digit number is accepted if it passes either with or without that prefix.
\\** Only the last 14 digits before the check digit (shipper + package id)
are weighted; the ``96`` + SCNC + service prefix is ignored.

Deliberately *not* supported because they carry no check digit or collide too
easily with other identifiers: DHL 11-digit and eCommerce numbers, UPS waybill
(letter + 10 digits), FedEx 34/32-digit barcodes, SSCC-18, Japan Post/Yamato/
Sagawa 12-digit mod-7 numbers (a valid one may be reported as FedEx).

Text scanning rules (``find_tracking_numbers``):

* Candidates are built from runs of ASCII letters/digits. A number must start
  and end on such a run's boundary, so ``order1Z…`` is ignored but text in
  scripts without spaces (Chinese, Japanese) around the number is fine.
* Runs separated by exactly one space (or no-break/thin space) may be glued,
  so ``1Z 999 AA1 01 2345 6784`` is found. Hyphens never glue groups: that is
  what keeps phone numbers (``555-123-4567``), Amazon (``113-1234567-1234567``)
  and eBay (``12-12345-12345``) order numbers out.
* Digit-only numbers written in several groups must use groups of at most six
  digits and must not be the middle of a longer digit sequence, so a fragment
  of a mistyped USPS number is not reported as FedEx.
* Digit-only numbers are ignored when glued to other characters by ``- . , _``
  (decimals, dashed references), preceded by ``+`` or a country calling code
  (``+1 …``), or shortly preceded by a phone word (``tel``, ``phone``,
  ``call``, ``телефон``, ``电话`` …).
* DHL's 10-digit mod-7 check passes for one random 10-digit string in seven,
  which includes many phone numbers. A DHL match therefore must be a single
  run of exactly ten digits (no spaces), not preceded by ``+`` or ``#``, and
  not near a phone word. A bare ``5551234567`` whose mod-7 digit happens to
  match is still reported as DHL: that is the accepted trade-off.
* A serial made of one repeated digit (``000000000000``) is a placeholder and
  is rejected even when its check digit works out.
* Overlaps are resolved by preferring an unspaced run over a glued candidate,
  then the longer number, then the earlier one; matches never overlap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote

from ._countries import ISO_COUNTRY_CODES
from .checksums import (
    dhl_mod7_check_digit,
    fedex12_check_digit,
    gs1_mod10_check_digit,
    s10_check_digit,
    ups_check_digit,
)

__all__ = [
    "Carrier",
    "TrackingMatch",
    "detect_carrier",
    "find_tracking_numbers",
    "normalize_tracking_number",
    "tracking_url",
]


class Carrier(str, Enum):
    """Carriers whose tracking numbers can be recognised."""

    UPS = "ups"
    USPS = "usps"
    FEDEX = "fedex"
    DHL = "dhl"
    S10 = "s10"
    """UPU S10 identifier used by every national post for international items."""


@dataclass(frozen=True, slots=True)
class TrackingMatch:
    """A tracking number found in a piece of text.

    ``number`` is normalised (upper-case, no spaces); ``start``/``end`` are the
    offsets of the match in the original text, so ``text[start:end]`` is the
    number as the customer typed it, spaces included.
    """

    carrier: Carrier
    number: str
    start: int
    end: int


def normalize_tracking_number(raw: str) -> str:
    """Upper-case ``raw`` and drop all whitespace."""
    return "".join(raw.split()).upper()


# --------------------------------------------------------------------------
# Validation of a single, normalised number
# --------------------------------------------------------------------------

_UPS_RE = re.compile(r"1Z[0-9A-Z]{15}[0-9]")
_S10_RE = re.compile(r"([A-Z]{2})([0-9]{8})([0-9])([A-Z]{2})")
# Service indicators allowed by the S10 standard: international categories
# (C parcels, E EMS, H e-commerce, L express letters, M M-bags, R registered,
# U miscellaneous, V insured), Q[A-M] reply service, and the ranges reserved
# for domestic/bilateral use.
_S10_SERVICE_RE = re.compile(r"[BCDEHLMNPRUVZ][A-Z]|Q[A-M]|A[V-Z]|G[AD]")
_USPS_IMPB_PREFIXES = ("92", "93", "94", "95")
_USPS_22_PREFIXES = ("91", *_USPS_IMPB_PREFIXES)


def _gs1_ok(digits: str) -> bool:
    return gs1_mod10_check_digit(digits[:-1]) == int(digits[-1])


def _is_placeholder(digits: str) -> bool:
    """True for serials like ``00000000000`` + check digit."""
    return len(set(digits[:-1])) == 1


def _is_ups(number: str) -> bool:
    return bool(_UPS_RE.fullmatch(number)) and ups_check_digit(number[2:17]) == int(
        number[17]
    )


def _is_s10(number: str) -> bool:
    match = _S10_RE.fullmatch(number)
    if match is None:
        return False
    service, serial, check, country = match.groups()
    return (
        bool(_S10_SERVICE_RE.fullmatch(service))
        and country in ISO_COUNTRY_CODES
        and s10_check_digit(serial) == int(check)
    )


def _is_usps_without_routing(digits: str) -> bool:
    size = len(digits)
    if size == 20:
        # Legacy numbers: accepted with or without the implied "91" prefix.
        return _gs1_ok(digits) or _gs1_ok("91" + digits)
    if size == 22:
        return digits.startswith(_USPS_22_PREFIXES) and _gs1_ok(digits)
    if size in (26, 30):
        return digits.startswith(_USPS_IMPB_PREFIXES) and _gs1_ok(digits)
    return False


def _strip_usps_routing(digits: str) -> str | None:
    """Return the tracking part of a ``420``+ZIP prefixed USPS barcode, if any.

    The routing prefix is ``420`` + a 5-digit ZIP (8 digits) or ``420`` +
    ZIP+4 (12 digits); what follows must be a 22/26-digit USPS number.
    """
    if not digits.startswith("420"):
        return None
    for prefix_len in (8, 12):
        rest = digits[prefix_len:]
        if len(rest) in (22, 26) and _is_usps_without_routing(rest):
            return rest
    return None


def _classify_digits(digits: str) -> Carrier | None:
    size = len(digits)
    if _is_placeholder(digits):
        return None
    if size == 10:
        return Carrier.DHL if dhl_mod7_check_digit(digits[:9]) == int(digits[9]) else None
    if size == 12:
        return Carrier.FEDEX if fedex12_check_digit(digits[:11]) == int(digits[11]) else None
    if size == 15:
        return Carrier.FEDEX if _gs1_ok(digits) else None
    if size == 22 and digits.startswith("96"):
        return Carrier.FEDEX if _gs1_ok(digits[7:]) else None
    if _is_usps_without_routing(digits) or _strip_usps_routing(digits) is not None:
        return Carrier.USPS
    return None


def _classify(number: str) -> Carrier | None:
    """Carrier of an already normalised number, or None if it is not valid."""
    if not (number.isascii() and number.isalnum()):
        return None
    if number.isdigit():
        return _classify_digits(number)
    if _is_ups(number):
        return Carrier.UPS
    if _is_s10(number):
        return Carrier.S10
    return None


def detect_carrier(number: str) -> Carrier | None:
    """Carrier of a tracking number given on its own (e.g. a Shopify field).

    Whitespace and case are ignored; any other character makes the input
    invalid. Unlike ``find_tracking_numbers`` no context rules apply, so a
    bare 10-digit string with a valid mod-7 digit is reported as DHL.
    """
    return _classify(normalize_tracking_number(number))


# --------------------------------------------------------------------------
# Scanning free text
# --------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[A-Za-z0-9]+")
_GROUP_SEPARATORS = frozenset(" \u00a0\u2009\u202f")
_NUMERIC_CONNECTORS = frozenset("-\u2010\u2011\u2012\u2013\u2014.,_")
_VALID_LENGTHS = frozenset({10, 12, 13, 15, 18, 20, 22, 26, 30, 34})
_MAX_LENGTH = max(_VALID_LENGTHS)
_MAX_DIGIT_GROUP = 6
_PHONE_WINDOW = 24
_MAX_PHONE_DIGITS = 15  # E.164 limit
_PHONE_PREFIX_RE = re.compile(r"\+\s?(?:\d{1,4}\)?[\s.\-]?)?$")
_LETTER = r"[^\W\d_]"
_PHONE_HINT_RE = re.compile(
    rf"(?<!{_LETTER})(?:tel|t[ée]l[ée]phone|telefon|tel[ée]fono|phone|ph|mobile|mob|"
    rf"cell|fax|call|sms|whats\s?app|viber|handy|телефон|тел|моб|мобильный)(?!{_LETTER})"
    r"|电话|手机|電話|携帯"
)


@dataclass(frozen=True, slots=True)
class _Candidate:
    carrier: Carrier
    number: str
    start: int
    end: int
    glued: bool

    def overlaps(self, other: _Candidate) -> bool:
        return self.start < other.end and other.start < self.end


def _glued_by_connector(text: str, start: int, end: int) -> bool:
    """True if the span is stuck to more letters/digits via ``- . , _``."""
    if start >= 2 and text[start - 1] in _NUMERIC_CONNECTORS and text[start - 2].isalnum():
        return True
    return (
        end + 1 < len(text)
        and text[end] in _NUMERIC_CONNECTORS
        and text[end + 1].isalnum()
    )


def _looks_like_phone(text: str, start: int) -> bool:
    before = text[max(0, start - _PHONE_WINDOW) : start]
    return bool(_PHONE_PREFIX_RE.search(before) or _PHONE_HINT_RE.search(before.casefold()))


def _digit_context_ok(
    text: str,
    tokens: list[tuple[int, int]],
    first: int,
    last: int,
    carrier: Carrier,
) -> bool:
    """Context rules for all-digit candidates spanning ``tokens[first..last]``."""
    start, end = tokens[first][0], tokens[last][1]
    glued = last > first
    if carrier is Carrier.DHL and (glued or text[start - 1 : start] == "#"):
        return False
    if _glued_by_connector(text, start, end):
        return False
    digit_count = sum(e - s for s, e in tokens[first : last + 1])
    if digit_count <= _MAX_PHONE_DIGITS and _looks_like_phone(text, start):
        return False
    if glued:
        if any(e - s > _MAX_DIGIT_GROUP for s, e in tokens[first : last + 1]):
            return False
        # A glued candidate must not be a slice of a longer spaced digit run.
        if first > 0 and _joined(text, tokens[first - 1], tokens[first]):
            s, e = tokens[first - 1]
            if text[s:e].isdigit():
                return False
        if last + 1 < len(tokens) and _joined(text, tokens[last], tokens[last + 1]):
            s, e = tokens[last + 1]
            if text[s:e].isdigit():
                return False
    return True


def _joined(text: str, left: tuple[int, int], right: tuple[int, int]) -> bool:
    """True if two ASCII runs are separated by exactly one space-like char."""
    return right[0] - left[1] == 1 and text[left[1]] in _GROUP_SEPARATORS


def _candidates(text: str) -> list[_Candidate]:
    tokens = [m.span() for m in _TOKEN_RE.finditer(text)]
    found: list[_Candidate] = []
    for first in range(len(tokens)):
        pieces: list[str] = []
        length = 0
        for last in range(first, len(tokens)):
            if last > first and not _joined(text, tokens[last - 1], tokens[last]):
                break
            s, e = tokens[last]
            length += e - s
            if length > _MAX_LENGTH:
                break
            pieces.append(text[s:e])
            if length not in _VALID_LENGTHS:
                continue
            number = "".join(pieces).upper()
            carrier = _classify(number)
            if carrier is None:
                continue
            if number.isdigit() and not _digit_context_ok(
                text, tokens, first, last, carrier
            ):
                continue
            found.append(
                _Candidate(carrier, number, tokens[first][0], e, glued=last > first)
            )
    return found


def find_tracking_numbers(text: str) -> list[TrackingMatch]:
    """Find check-digit-valid tracking numbers in free text.

    Returns non-overlapping matches in order of appearance. See the module
    docstring for the boundary, grouping and phone-number rules.
    """
    ranked = sorted(_candidates(text), key=lambda c: (c.glued, -len(c.number), c.start))
    chosen: list[_Candidate] = []
    for candidate in ranked:
        if not any(candidate.overlaps(kept) for kept in chosen):
            chosen.append(candidate)
    chosen.sort(key=lambda c: c.start)
    return [TrackingMatch(c.carrier, c.number, c.start, c.end) for c in chosen]


# --------------------------------------------------------------------------
# Public tracking pages
# --------------------------------------------------------------------------

_TRACKING_URLS: dict[Carrier, str] = {
    Carrier.UPS: "https://www.ups.com/track?tracknum={}",
    Carrier.USPS: "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    Carrier.FEDEX: "https://www.fedex.com/fedextrack/?trknbr={}",
    Carrier.DHL: "https://www.dhl.com/global-en/home/tracking/tracking-express.html"
    "?submit=1&tracking-id={}",
    # S10 items pass through two posts (origin and destination); an aggregator
    # shows both legs, which no single national post site does.
    Carrier.S10: "https://parcelsapp.com/en/tracking/{}",
}


def tracking_url(carrier: Carrier, number: str) -> str:
    """Public tracking page for ``number`` at ``carrier``.

    The number is normalised and URL-quoted; it is not validated, so numbers
    merchants typed into Shopify still get a link. USPS ``420``+ZIP routing
    prefixes are removed because the USPS site expects the bare number. S10
    items link to parcelsapp.com, which follows both the origin and the
    destination post.
    """
    normalized = normalize_tracking_number(number)
    if carrier is Carrier.USPS and normalized.isdigit():
        normalized = _strip_usps_routing(normalized) or normalized
    return _TRACKING_URLS[Carrier(carrier)].format(quote(normalized, safe=""))
