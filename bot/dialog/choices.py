"""Choices offered as quick replies, and reading the customer's pick back.

Channels with buttons send the button's value as a postback; channels without them show a
numbered list, so "2" or the label typed out picks the same choice.
"""

from __future__ import annotations

import re
import unicodedata

from bot.dialog.turn import Turn

__all__ = ["offer", "pick", "is_cancel", "is_yes", "is_no"]

_CANCEL = {
    "cancel", "never mind", "nevermind", "nvm", "stop", "forget it", "quit", "exit",
    "cancelar", "olvídalo", "olvidalo", "déjalo", "dejalo", "no importa",
    "отмена", "отменить", "стоп", "забудь", "неважно", "не важно", "хватит",
    "hủy", "huỷ", "thôi", "bỏ qua", "không cần nữa",
    "取消", "算了", "不用了", "没事了", "沒事了", "停止",
}
_YES = {"yes", "y", "yeah", "yep", "sure", "ok", "okay", "confirm", "sí", "si", "claro", "vale", "да", "ага", "конечно",
        "có", "vâng", "đồng ý", "ừ", "是", "是的", "好", "好的", "对", "對", "确认", "確認"}
_NO = {"no", "n", "nope", "nah", "нет", "не", "không", "ko", "不", "不是", "不要", "否"}


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    return re.sub(r"[\s!.?,;:¡¿。！？，]+$", "", re.sub(r"^[\s!.?,;:¡¿。！？，]+", "", text))


def is_cancel(text: str) -> bool:
    return _norm(text) in _CANCEL


def is_yes(text: str) -> bool:
    return _norm(text) in _YES


def is_no(text: str) -> bool:
    return _norm(text) in _NO


def offer(turn: Turn, template: str, choices: list[tuple[str, str]], **context: object) -> None:
    """Say ``template`` with ``choices`` as quick replies and remember them for :func:`pick`."""
    turn.state.slots["choices"] = [[label, value] for label, value in choices]
    turn.say(template, choices=choices, **context)


def pick(turn: Turn) -> str | None:
    """The value the customer chose from the last offered choices, or None."""
    choices: list[list[str]] = turn.state.slots.get("choices") or []
    values = [value for _, value in choices]
    if turn.postback is not None:
        return turn.postback if turn.postback in values else None
    text = _norm(turn.text)
    if text.isdigit() and 1 <= int(text) <= len(choices):
        return choices[int(text) - 1][1]
    for label, value in choices:
        if text and (text == _norm(label) or text == _norm(value)):
            return value
    return None
