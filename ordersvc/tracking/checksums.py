"""Check-digit algorithms used by the supported carriers.

Every function takes the *payload* (the characters that feed the check-digit
computation, without the check digit itself) and returns the expected check
digit as an ``int``. Callers compare it with the digit printed on the label.
Inputs are assumed to be already normalised (upper-case ASCII, no spaces) and
of the right shape; the functions do not validate lengths.
"""

from __future__ import annotations

__all__ = [
    "dhl_mod7_check_digit",
    "fedex12_check_digit",
    "gs1_mod10_check_digit",
    "s10_check_digit",
    "ups_check_digit",
]


def _ups_char_value(char: str) -> int:
    """Numeric value of one character of a UPS 1Z payload.

    Digits count as themselves. Letters are folded onto 0–9 by counting from
    ``A`` = 2 and wrapping every ten letters (A=2 … H=9, I=0, J=1 … Z=7), which
    is the same as ``(code point - 3) mod 10`` for ASCII capitals.
    """
    if char.isdigit():
        return int(char)
    return (ord(char) - 3) % 10


def ups_check_digit(payload: str) -> int:
    """UPS ``1Z`` numbers: the 15 characters after ``1Z`` are the payload.

    Each character is turned into a digit (see ``_ups_char_value``); every
    second one, counting from the first payload character as position 0, is
    doubled (plain doubling, no digit-sum as in Luhn). The check digit is what
    must be added to the sum to reach the next multiple of ten.
    """
    total = 0
    for index, char in enumerate(payload):
        value = _ups_char_value(char)
        total += value * 2 if index % 2 == 1 else value
    return (10 - total % 10) % 10


def gs1_mod10_check_digit(payload: str) -> int:
    """The GS1 "weights 3 and 1" rule (USPS 20/22/26/30, FedEx Ground 15).

    Starting from the rightmost payload digit and moving left, digits are
    weighted 3, 1, 3, 1 …; the check digit brings the weighted sum up to the
    next multiple of ten. Anchoring the weights on the right makes the result
    independent of how many digits the payload has.
    """
    total = 0
    for index, char in enumerate(reversed(payload)):
        total += int(char) * (3 if index % 2 == 0 else 1)
    return (10 - total % 10) % 10


_FEDEX12_WEIGHTS = (3, 1, 7)


def fedex12_check_digit(payload: str) -> int:
    """FedEx Express 12-digit numbers (11-digit payload).

    Reading left to right, the payload digits are weighted 3, 1, 7, 3, 1, 7 …;
    the weighted sum is reduced modulo 11 and then modulo 10 (so a remainder of
    10 gives check digit 0).
    """
    total = sum(
        int(char) * _FEDEX12_WEIGHTS[index % 3] for index, char in enumerate(payload)
    )
    return total % 11 % 10


def dhl_mod7_check_digit(payload: str) -> int:
    """DHL Express 10-digit waybills (9-digit payload).

    The check digit is simply the payload read as an integer, modulo 7, so it
    is always between 0 and 6.
    """
    return int(payload) % 7


_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def s10_check_digit(serial: str) -> int:
    """UPU S10 international postal items (8-digit serial between the letters).

    The eight serial digits are weighted 8, 6, 4, 2, 3, 5, 9, 7 left to right.
    The check digit is 11 minus the weighted sum modulo 11, except that the two
    results which are not single digits are remapped: 10 becomes 0 and 11
    becomes 5.
    """
    total = sum(int(char) * weight for char, weight in zip(serial, _S10_WEIGHTS))
    check = 11 - total % 11
    if check == 10:
        return 0
    if check == 11:
        return 5
    return check
