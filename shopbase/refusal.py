"""One shape for "not allowed / not possible, because …".

Every layer that refuses a change (the order store, the inbox actions, the bot, the web views,
the API, the CLI) raises :class:`Refused`. ``code`` is a stable machine-readable reason that
the agent UI, the bot's reply templates, the API (as a 4xx body) and Slack translate;
``message`` is one plain line for logs, the CLI and agents; ``fields`` holds per-field
problems of a form (``{"zip": "required"}``). A refusal means nothing was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Refused"]


class Refused(Exception):
    """A change that was refused; the caller's transaction holds no part of it."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        fields: Mapping[str, str] | None = None,
        status: int = 409,
        **details: Any,
    ) -> None:
        self.code = code
        self.message = message or code.replace("_", " ")
        self.fields: dict[str, str] = dict(fields or {})
        #: the HTTP status a web edge answers with (409 conflict, 403 forbidden, 404, 422 …)
        self.status = status
        self.details: dict[str, Any] = details
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"Refused({self.code!r}, {self.message!r})"
