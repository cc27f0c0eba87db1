"""Structured logs that never carry secrets or customer emails.

Records are one JSON object per line. A redacting filter masks anything that looks like an
email address, a Telegram bot token, a Slack token or a bearer token, whatever logger it
came from (httpx logs full request URLs, and the Telegram token is part of the path).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

__all__ = ["configure_logging", "redact", "RedactingFilter", "JsonFormatter"]

_PATTERNS = [
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "<email>"),
    # no \b in front: in a Bot API URL the token follows "bot" ("/bot123456:AA...")
    (re.compile(r"(?<![0-9])\d{6,12}:[A-Za-z0-9_-]{30,}"), "<telegram-token>"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+"), "<slack-token>"),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), "<slack-app-token>"),
    (re.compile(r"\bsdk_[A-Za-z0-9_-]{20,}"), "<api-token>"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1<token>"),
]


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    FIELDS = ("conversation_id", "message_id", "update_id", "event_id", "order_id", "channel")

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                data[name] = getattr(record, name)
        if record.exc_info:
            data["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # request URLs of these clients contain the bot token (PTB's own "telegram" logger prints its
    # API URL at DEBUG); aiosqlite and SQLAlchemy's engine print SQL parameters (customer data)
    # below WARNING. Keep them all at WARNING, whatever the level.
    for noisy in ("httpx", "httpcore", "telegram", "telegram.ext", "aiohttp.access", "aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
