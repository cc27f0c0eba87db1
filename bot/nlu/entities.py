"""Pull order numbers, e-mail addresses, phone numbers, postal codes and tracking numbers
out of a customer message.

Every pattern works in any script: boundaries are spelled out with ASCII look-arounds
instead of ``\\b`` (which treats Chinese characters as word characters, so ``订单1001``
would not match ``\\b1001``). Full-width ASCII (``＃１００１``, common with Chinese input
methods) is folded to ASCII one character for one character, so offsets still index the
original text and ``text[e.start:e.end]`` is what the customer typed.

Overlaps are resolved by priority, then position (an entity never overlaps another):

1. ``email``
2. ``order_number`` written with a label: ``#1001``, ``№1001``, ``order 1001``,
   ``pedido 1001``, ``заказ №1001``, ``đơn hàng 1001``, ``订单1001`` (an explicit label beats
   a tracking-number reading: one 10-digit number in seven passes DHL's check digit)
3. ``order_number`` in marketplace shapes: Amazon ``113-1234567-1234567`` (and digital
   ``D01-…``), eBay ``12-12345-12345``, and any 2–4 groups of digits joined by dashes with
   12–17 digits in all (``4587345-001-9912345``, ``1234-5678-9012``)
4. ``tracking_number`` (check-digit validated, from :mod:`ordersvc.tracking`)
5. ``postal_code`` after a keyword (``zip``, ``postcode``, ``индекс``, ``邮编`` …)
6. ``phone``
7. ``postal_code`` by shape alone (UK, Canada, ZIP+4, ``CA 94103``)
8. ``order_number`` as a bare number of 3–15 digits (Shopify's 13-digit order ids, long
   marketplace numbers; leading zeros kept: ``00004587345`` is an order number, not a
   phone), unless it reads as money, a quantity with a unit, a percentage, a time, a date
   part, an apartment/street number or a year next to a month name

A letter O typed inside a number (``#1O01``) is read as a zero, one character for one, only
within a run of digits and O's holding at least two digits. Long numbers may be a
tracking number too; the dialog looks such a reference up as both.

Values: order numbers from shops are the display name ``#1001`` (a custom prefix is kept:
``#US-1001``); marketplace ones are the string as typed. Phones are digits with a leading
``+`` for international numbers (``00`` becomes ``+``). Postal codes are upper-cased with
single spaces (``SW1A 1AA``). Tracking numbers are the carrier's normalised number.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Entity", "ENTITY_TYPES", "MAX_SCAN_CHARS", "extract_entities", "labelled_order_spans"]

log = logging.getLogger(__name__)

ENTITY_TYPES = ("order_number", "email", "phone", "postal_code", "tracking_number")
#: Only this many characters of a message are scanned by default.
MAX_SCAN_CHARS = 5000


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity; ``text[start:end]`` is the span as written in the original text."""

    type: str
    value: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- helpers ---------------------------------------------------------------------------

# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space, one char for one char.
_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FOLD[0x3000] = 0x20


# "#1O01": a letter O among digits is a zero (a run of digits and O's with two digits or more)
_O_IN_NUMBER = re.compile(r"(?<![^\W\d_])(?=[0-9Oo]*[0-9][0-9Oo]*[0-9])[0-9Oo]*[Oo][0-9Oo]*(?![^\W\d_])")


def _fold(text: str) -> str:
    text = text.translate(_FOLD)
    if "o" not in text and "O" not in text:
        return text
    emails = [m.span() for m in _EMAIL.finditer(text)]  # an address keeps every letter

    def zero_for_o(match: re.Match[str]) -> str:
        if any(start <= match.start() < end for start, end in emails):
            return match.group()
        return match.group().replace("O", "0").replace("o", "0")

    return _O_IN_NUMBER.sub(zero_for_o, text)


_LETTER = r"[^\W\d_]"  # a letter in any script
_SP = r"[ \t\u00a0]"

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])"
    r"(?P<local>[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*)@"
    r"(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24})"
    r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"
)

# Words that label the number after them as an order number.
_ORDER_WORD_ALPHA = (
    r"(?<!" + _LETTER + r")"
    r"(?:orders?|ord|pedidos?|orden(?:es)?|compra|заказ[а-яё]*|"
    r"mã\s*đơn(?:\s*hàng)?|ma\s*don(?:\s*hang)?|đơn(?:\s*hàng)?|don(?:\s*hang)?)"
)
_ORDER_WORD_CJK = r"(?:订单|訂單|单号|單號|注文)"
_NUMBER_WORD = (
    r"(?:no\.?|nr\.?|num(?:ber)?\.?|n[º°o]\.?|número|numero|номер|số|so|id|"
    r"号码?|號碼?|编号|編號|号|號)"
)
_ORDER_ID = r"(?:[A-Z]{1,4}-?)?[0-9]{3,15}(?:-[A-Z0-9]{1,4})?"
_LABELLED_ORDER = re.compile(
    r"(?:" + _ORDER_WORD_ALPHA + r"|" + _ORDER_WORD_CJK + r")"
    r"(?:\s*" + _NUMBER_WORD + r")?"
    r"(?:\s*(?:is|es|là|:|：|-))?\s*"
    r"(?P<id>(?P<sign>[#№]\s?)?" + _ORDER_ID + r")"
    r"(?![0-9A-Za-z])(?![.,/:][0-9])(?!-[0-9])",
    re.IGNORECASE,
)
_HASH_ORDER = re.compile(
    r"(?<![0-9A-Za-z&#/])(?P<id>(?P<sign>[#№]\s?)" + _ORDER_ID + r")"
    r"(?![0-9A-Za-z])(?![.,/:][0-9])(?!-[0-9])",
    re.IGNORECASE,
)
_MARKETPLACE_ORDER = re.compile(
    r"(?<![0-9A-Za-z\-])(?:(?:[0-9]{3}|D0[0-9])-[0-9]{7}-[0-9]{7}|[0-9]{2}-[0-9]{5}-[0-9]{5})"
    r"(?![0-9A-Za-z]|-[0-9])"
)
#: other long dashed numbers (2–4 groups, 12–17 digits): marketplace order numbers, never phones
_DASHED_ORDER = re.compile(r"(?<![0-9A-Za-z+\-])[0-9]{2,9}(?:-[0-9]{2,9}){1,3}(?![0-9A-Za-z]|-[0-9])")

_BARE_NUMBER = re.compile(
    r"(?<![0-9A-Za-z#№+&@/_\-])(?<![0-9][.,:])[0-9]{3,15}(?![0-9A-Za-z_])(?![.,:/\-][0-9])"
)
_MONEY_BEFORE = re.compile(r"(?:[$€£¥₫₽]|us\$|usd|eur|rs\.?)\s?$", re.IGNORECASE)
_UNIT_AFTER = re.compile(
    r"\s?(?:%|[$€£¥₫₽]|đ(?!" + _LETTER + r")|"
    r"(?:vnd|vnđ|đồng|dong|usd|eur|euros?|dollars?|bucks|pesos?|mxn|rub|руб\w*|р\.|"
    r"k|tr|triệu|trieu|nghìn|ngàn|ngan|lakh|"
    r"gb|mb|tb|kb|kg|g|mg|lbs?|oz|mm|cm|m|km|ml|l|mah|w|kw|v|hz|mhz|ghz|px|dpi|rpm|"
    r"items?|pcs|pieces?|units?|cái|шт\w*|штук\w*|"
    r"days?|hours?|hrs?|minutes?|mins?|weeks?|months?|years?|días?|dias?|horas?|"
    r"semanas?|meses|años?|anos?|дн\w*|день|час\w*|недел\w*|месяц\w*|лет|год\w*|"
    r"ngày|giờ|tuần|tháng|năm|miles?|km/h|mph)(?!" + _LETTER + r")"
    r"|元|块|塊|円|美元|万|件|个|個|天|小时|小時|分钟|分鐘|週|周|年|月|日|岁|歲)",
    re.IGNORECASE,
)
_ADDRESS_BEFORE = re.compile(
    r"(?<!" + _LETTER + r")(?:apt|apartment|suite|ste|unit|room|rm|floor|fl|house|"
    r"piso|dpto|depto|departamento|calle|кв|квартира|дом|д|ул|улица|офис|phòng|số\s*nhà|"
    r"nhà|đường|duong|lô)\.?\s?$"
    r"|(?:室|号楼|號樓|楼|樓|路|街)\s?$",
    re.IGNORECASE,
)
_STREET_AFTER = re.compile(
    r"^\s+(?:[A-Za-z]+\s+){0,2}(?:street|st|avenue|ave|road|rd|blvd|boulevard|lane|ln|"
    r"drive|dr|way|court|ct|place|pl)(?![A-Za-z])",
    re.IGNORECASE,
)
_MONTHS = (
    r"jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|"
    r"june|july|august|september|october|november|december|"
    r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|"
    r"noviembre|diciembre|"
    r"январ\w*|феврал\w*|март\w*|апрел\w*|ма[йя]|июн\w*|июл\w*|август\w*|сентябр\w*|"
    r"октябр\w*|ноябр\w*|декабр\w*|tháng\s*\d{1,2}|thang\s*\d{1,2}"
)
_MONTH_NEAR = re.compile(r"(?<!" + _LETTER + r")(?:" + _MONTHS + r")(?!" + _LETTER + r")", re.IGNORECASE)
_YEAR_WORD_BEFORE = re.compile(r"(?:năm|nam|год[ау]?|year|in|since|desde|en|de|del|с|в)\s$", re.IGNORECASE)

_PHONE_GROUP = r"(?:\(" + _SP + r"?[0-9]{1,5}" + _SP + r"?\)|[0-9]++)"
_PHONE_SEP = r"(?:" + _SP + r"?[\-.\u2010-\u2013]" + _SP + r"?|" + _SP + r")"
_PHONE = re.compile(
    r"(?<![0-9A-Za-z+#№&@/_.\-])"
    r"(?P<plus>\+" + _SP + r"?)?"
    + _PHONE_GROUP
    + r"(?:" + _PHONE_SEP + r"?" + _PHONE_GROUP + r"){0,8}"
    r"(?![0-9A-Za-z])"
)
_BARE_MOBILE = re.compile(r"1[3-9][0-9]{9}|0[35789][0-9]{8}|[78]9[0-9]{9}")
_DATE_START = re.compile(
    r"(?:19|20)[0-9]{2}[\-./][0-9]{1,2}[\-./][0-9]{1,2}|[0-9]{1,2}[\-./][0-9]{1,2}[\-./](?:19|20)[0-9]{2}"
)

_POSTAL_KEYWORD = (
    r"(?:(?<!" + _LETTER + r")(?:zip(?:\s*code)?|postal\s*code|post\s*code|postcode|"
    r"código\s*postal|codigo\s*postal|c\.p\.|cp|почтовый\s+индекс|индекс|"
    r"mã\s*bưu\s*(?:chính|điện)|ma\s*buu\s*(?:chinh|dien))(?!" + _LETTER + r")"
    r"|邮编|郵編|邮政编码|郵政編碼|郵遞區號|郵递区号|邮递区号)"
)
_UK = r"[A-PR-UWYZ][A-HK-Y]?[0-9][A-Z0-9]?" + _SP + r"?[0-9][ABD-HJLNP-UW-Z]{2}"
_CA = r"[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z]" + _SP + r"?[0-9][ABCEGHJ-NPRSTV-Z][0-9]"
_POSTAL_IN_CONTEXT = re.compile(
    _POSTAL_KEYWORD
    + r"\s*(?:is|es|là|:|：|-|#)?\s*"
    r"(?P<code>" + _UK + r"|" + _CA + r"|[0-9]{5}-[0-9]{4}|[0-9]{4,6})"
    r"(?![0-9A-Za-z])",
    re.IGNORECASE,
)
_POSTAL_SHAPED = re.compile(
    r"(?<![0-9A-Za-z])(?P<code>" + _UK + r"|" + _CA + r")(?![0-9A-Za-z])"
    r"|(?<![0-9A-Za-z\-])(?P<zip4>[0-9]{5}-[0-9]{4})(?![0-9A-Za-z\-])"
)
_US_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE "
    "NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR"
).split()
_US_STATE_ZIP = re.compile(
    r"(?<![A-Za-z])(?:" + "|".join(_US_STATES) + r")" + _SP + r"{1,2}"
    r"(?P<code>[0-9]{5}(?:-[0-9]{4})?)(?![0-9A-Za-z\-])"
)


@dataclass(frozen=True, slots=True)
class _Candidate:
    priority: int
    start: int
    end: int
    type: str
    value: str


def _canonical_order(raw: str) -> str:
    ident = re.sub(r"\s", "", raw).lstrip("#№").upper()
    return "#" + ident


# --- finders ---------------------------------------------------------------------------


def _emails(text: str) -> list[_Candidate]:
    return [
        _Candidate(0, m.start(), m.end(), "email", f"{m['local']}@{m['domain'].lower()}")
        for m in _EMAIL.finditer(text)
    ]


def _labelled_orders(text: str) -> list[_Candidate]:
    found = []
    for pattern in (_LABELLED_ORDER, _HASH_ORDER):
        for m in pattern.finditer(text):
            ident = m["id"]
            if not any(ch.isdigit() for ch in ident):
                continue
            found.append(
                _Candidate(1, m.start("id"), m.end("id"), "order_number", _canonical_order(ident))
            )
    return found


def _marketplace_orders(text: str) -> list[_Candidate]:
    found = [
        _Candidate(2, m.start(), m.end(), "order_number", m.group().upper())
        for m in _MARKETPLACE_ORDER.finditer(text)
    ]
    for m in _DASHED_ORDER.finditer(text):
        digits = m.group().replace("-", "")
        if 12 <= len(digits) <= 17 and not _DATE_START.match(m.group()):
            found.append(_Candidate(2, m.start(), m.end(), "order_number", m.group()))
    return found


_tracking_finder: Callable[[str], list[Any]] | None = None
_tracking_loaded = False


def _find_tracking_numbers(text: str) -> list[Any]:
    """``ordersvc.tracking.find_tracking_numbers`` if that package is importable."""
    global _tracking_finder, _tracking_loaded
    if not _tracking_loaded:
        try:
            from ordersvc.tracking import find_tracking_numbers

            finder: Callable[[str], list[Any]] | None = find_tracking_numbers
        except ImportError:  # pragma: no cover - depends on the installed tree
            log.warning("ordersvc.tracking is not importable; tracking numbers are not extracted")
            finder = None
        _tracking_finder, _tracking_loaded = finder, True
    return _tracking_finder(text) if _tracking_finder is not None else []


def _tracking(text: str) -> list[_Candidate]:
    try:
        matches = _find_tracking_numbers(text)
    except Exception:  # a bug there must not take the bot down
        log.exception("tracking-number extraction failed")
        return []
    return [_Candidate(3, m.start, m.end, "tracking_number", str(m.number)) for m in matches]


def _phone_value(span: str) -> str | None:
    """Normalised phone number for a candidate span, or None if it is not a phone."""
    digits = re.sub(r"[^0-9]", "", span)
    stripped = span.lstrip()
    international = stripped.startswith("+")
    # "00" dials abroad; "0000…" is a zero-padded order number (00004587345), never a phone
    if not international and digits.startswith("00") and not digits.startswith("000") and len(digits) >= 10:
        international, digits = True, digits[2:]
    groups = re.findall(r"[0-9]+", span)
    separated = len(groups) > 1
    if _DATE_START.match(stripped) or re.fullmatch(r"[0-9]{5}-[0-9]{4}", stripped):
        return None  # a date, or a US ZIP+4
    if international:
        if not 8 <= len(digits) <= 15:
            return None
        return "+" + digits
    if not 9 <= len(digits) <= 12:
        return None
    if not separated:
        return digits if _BARE_MOBILE.fullmatch(digits) else None
    if any(len(g) > 5 for g in groups[1:]) or len(groups[0]) > 5:
        return None
    # "125.000.000" or "1 299 000 ₫" read as money, not as a phone.
    if (
        not groups[0].startswith("0")
        and len(groups[0]) <= 3
        and all(len(g) == 3 for g in groups[1:])
        and ("(" not in span)
        and (re.search(r"[.,]", span) is not None)
    ):
        return None
    return digits


def _phones(text: str) -> list[_Candidate]:
    found: list[_Candidate] = []
    pos = 0
    while (m := _PHONE.search(text, pos)) is not None:
        span = m.group()
        value = _phone_value(span)
        if value is not None and _UNIT_AFTER.match(text, m.end()) is None:
            found.append(_Candidate(5, m.start(), m.end(), "phone", value))
            pos = m.end()
            continue
        # Not a phone as a whole: maybe it is once its first group is dropped
        # ("1001 555-123-4567"); restart after that group.
        first = re.search(r"[0-9]+", span)
        pos = m.start() + (first.end() if first else len(span))
        if pos <= m.start():  # pragma: no cover - defensive
            pos = m.start() + 1
    return found


def _postal_value(raw: str) -> str:
    code = re.sub(r"\s+", "", raw).upper()
    if re.fullmatch(r"[A-Z0-9]{5,7}", code) and re.search(r"[A-Z]", code):
        code = f"{code[:-3]} {code[-3:]}"  # UK / Canada: space before the inward part
    return code


def _postal_codes(text: str) -> list[_Candidate]:
    found = []
    for m in _POSTAL_IN_CONTEXT.finditer(text):
        found.append(_Candidate(4, m.start("code"), m.end("code"), "postal_code", _postal_value(m["code"])))
    for m in _US_STATE_ZIP.finditer(text):
        found.append(_Candidate(6, m.start("code"), m.end("code"), "postal_code", m["code"]))
    for m in _POSTAL_SHAPED.finditer(text):
        group = "code" if m["code"] else "zip4"
        found.append(_Candidate(6, m.start(group), m.end(group), "postal_code", _postal_value(m[group])))
    return found


def _is_year_near_month(text: str, start: int, end: int) -> bool:
    number = int(text[start:end])
    if end - start != 4 or not 1900 <= number <= 2099:
        return False
    window = text[max(0, start - 20) : min(len(text), end + 20)]
    if _MONTH_NEAR.search(window):
        return True
    return bool(_YEAR_WORD_BEFORE.search(text[max(0, start - 8) : start]))


def _bare_orders(text: str) -> list[_Candidate]:
    found = []
    for m in _BARE_NUMBER.finditer(text):
        start, end = m.span()
        before = text[max(0, start - 12) : start]
        if _MONEY_BEFORE.search(before) or _ADDRESS_BEFORE.search(before):
            continue
        if _UNIT_AFTER.match(text, end) or _STREET_AFTER.match(text[end : end + 40]):
            continue
        if _is_year_near_month(text, start, end):
            continue
        found.append(_Candidate(8, start, end, "order_number", "#" + m.group()))
    return found


_ASCII_DIGIT = re.compile(r"[0-9]")
_FINDERS = (_emails, _labelled_orders, _marketplace_orders, _tracking, _phones, _postal_codes, _bare_orders)


def labelled_order_spans(text: str, *, max_chars: int = MAX_SCAN_CHARS) -> set[tuple[int, int]]:
    """Spans of order numbers written out as such: ``#1001``, ``order 1001``, ``заказ 1001``,
    ``订单1001``, marketplace shapes. (A bare ``1001`` may be a postal code; these may not.)"""
    if not text or not isinstance(text, str):
        return set()
    folded = _fold(text[:max_chars])
    return {(c.start, c.end) for c in (*_labelled_orders(folded), *_marketplace_orders(folded))}


def extract_entities(text: str, *, max_chars: int | None = MAX_SCAN_CHARS) -> list[Entity]:
    """Entities in *text*, ordered by position, never overlapping.

    Only the first *max_chars* characters are scanned (``None``: all of them); the cut is
    moved to the next whitespace so that a number is never split. Never raises on odd
    input; non-string input gives ``[]``.
    """
    if not text or not isinstance(text, str):
        return []
    if max_chars is not None and len(text) > max_chars:
        cut = max_chars
        while cut < len(text) and cut < max_chars + 100 and not text[cut].isspace():
            cut += 1
        text = text[:cut]
    folded = _fold(text)
    if "@" not in folded and _ASCII_DIGIT.search(folded) is None:
        return []  # every entity holds an ASCII digit (after folding) or is an e-mail address
    candidates: list[_Candidate] = []
    for finder in _FINDERS:
        candidates.extend(finder(folded))
    candidates.sort(key=lambda c: (c.priority, c.start, -(c.end - c.start)))
    chosen: list[_Candidate] = []
    for cand in candidates:
        if cand.end <= cand.start:
            continue
        if any(cand.start < kept.end and kept.start < cand.end for kept in chosen):
            continue
        chosen.append(cand)
    chosen.sort(key=lambda c: c.start)
    return [Entity(c.type, c.value, c.start, c.end) for c in chosen]
