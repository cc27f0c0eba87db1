"""What the benchmark's customers say, and the text of the seeded inbox.

``CUSTOMER_TURNS``: per language, messages that the bot answers with exactly one reply without
starting a flow (greeting, shipping and return questions, thanks), so that every message
sent can be paired with the next reply in its conversation. A customer keeps one language.

``seed_corpus()``: real-looking multilingual texts for the seeded inbox: the labelled customer
messages of ``tests/nlu_heldout.csv`` (six languages) and the bot's reply templates.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

__all__ = ["CUSTOMER_TURNS", "LANGUAGES", "seed_corpus"]

LANGUAGES = ("en", "es", "ru", "vi", "zh-Hans", "zh-Hant")

CUSTOMER_TURNS: dict[str, tuple[str, ...]] = {
    "en": ("hi", "how long does shipping take?", "what is your return policy?", "thanks"),
    "es": ("hola", "¿cuánto tarda el envío?", "¿cuál es la política de devoluciones?", "gracias"),
    "ru": ("привет", "доставка сколько идёт?", "как вернуть товар? какие правила возврата?", "спасибо"),
    "vi": ("xin chào", "giao hàng mất bao lâu?", "chính sách đổi trả thế nào?", "cảm ơn"),
    "zh-Hans": ("你好", "配送需要多久？", "退货政策是什么？", "谢谢"),
    "zh-Hant": ("您好", "運送需要多久？", "退貨政策是什麼？", "謝謝"),
}

_TESTS = Path(__file__).resolve().parent.parent
_TEMPLATES = _TESTS.parent / "templates" / "replies"
_JINJA_VALUE = re.compile(r"{{[^}]*}}")
_JINJA_TAG = re.compile(r"{%[^%]*%}|{#[^#]*#}")


def seed_corpus() -> dict[str, tuple[list[str], list[str]]]:
    """Per language: (customer messages, bot/agent replies)."""
    customers: dict[str, list[str]] = {lang: list(turns) for lang, turns in CUSTOMER_TURNS.items()}
    heldout = _TESTS / "nlu_heldout.csv"
    if heldout.exists():
        with heldout.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                lang = row.get("lang") or ""
                if lang in customers and row.get("text"):
                    customers[lang].append(row["text"])
    replies: dict[str, list[str]] = {}
    for lang in LANGUAGES:
        texts = []
        folder = _TEMPLATES / lang
        for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
            raw = _JINJA_TAG.sub("", path.read_text(encoding="utf-8"))
            text = " ".join(_JINJA_VALUE.sub("#1042", raw).split())
            if text:
                texts.append(text[:600])
        replies[lang] = texts or list(customers[lang])
    return {lang: (customers[lang], replies[lang]) for lang in LANGUAGES}
