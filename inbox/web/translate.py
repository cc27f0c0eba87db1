"""The agents' "Translate" action on a customer message, through a LibreTranslate server.

Offered only when ``WebConfig.translate_url`` (``SHOPDESK_TRANSLATE_URL``) names a server; with
none configured the button is not rendered and the route answers 404, so nothing pretends.
The message is translated into the agent's UI language (source detected by the server). The
translation is shown to the agent only (never stored, never sent to the customer).

LibreTranslate's API: ``POST <url>/translate`` with JSON ``{"q", "source": "auto", "target",
"format": "text", "api_key"}`` answers ``{"translatedText": ...}``.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web
from sqlmodel import col, select

from inbox.models import Author, Message
from inbox.queries.conversations import get_conversation
from inbox.web.i18n import N_, request_language, translations_for
from inbox.web.state import AGENT, STATE

__all__ = ["TranslateError", "libretranslate", "routes", "LIBRETRANSLATE_CODES"]

log = logging.getLogger("inbox.web.translate")

#: our language codes → LibreTranslate's (``zt`` is its Traditional Chinese)
LIBRETRANSLATE_CODES = {"en": "en", "es": "es", "ru": "ru", "vi": "vi", "zh-Hans": "zh", "zh-Hant": "zt"}
MAX_CHARS = 5000
TIMEOUT_SECONDS = 10.0


class TranslateError(Exception):
    """The translation server could not translate (unreachable, refused, or answered nonsense)."""


async def libretranslate(
    url: str, text: str, target: str, *, api_key: str | None = None, timeout: float = TIMEOUT_SECONDS
) -> str:
    """``text`` translated into ``target`` (one of our codes) by the LibreTranslate server at ``url``."""
    payload: dict[str, Any] = {
        "q": text[:MAX_CHARS],
        "source": "auto",
        "target": LIBRETRANSLATE_CODES.get(target, "en"),
        "format": "text",
    }
    if api_key:
        payload["api_key"] = api_key
    endpoint = url.rstrip("/") + "/translate"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as client:
            async with client.post(endpoint, json=payload) as resp:
                if resp.status != 200:
                    raise TranslateError(f"the translation server answered {resp.status}")
                data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TranslateError(f"the translation server cannot be reached ({type(exc).__name__})") from None
    translated = data.get("translatedText") if isinstance(data, dict) else None
    if not isinstance(translated, str):
        raise TranslateError("the translation server answered without a translation")
    return translated


def _small_int(raw: str) -> int | None:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
        return None
    value = int(raw)
    return value if value <= 2**31 - 1 else None


_NOT_FOUND = N_("There is no such message, or you do not have access to it.")
_FAILED = N_("The translation service did not answer. Try again later.")


async def translate_message(request: web.Request) -> web.Response:
    """POST /inbox/c/<id>/messages/<message_id>/translate → ``{"text", "language"}`` (JSON)."""
    state = request.app[STATE]
    tr = translations_for(request)
    config = state.config
    if not config.translate_url:
        return web.json_response({"error": tr.gettext(N_("No translation service is configured."))}, status=404)
    cid = _small_int(request.match_info.get("cid", ""))
    mid = _small_int(request.match_info.get("mid", ""))
    async with state.sessions() as db:
        conversation = await get_conversation(db, request[AGENT], cid) if cid is not None else None
        message = None
        if conversation is not None and mid is not None:
            message = (
                await db.exec(
                    select(Message).where(
                        col(Message.id) == mid,
                        col(Message.conversation_id) == conversation.id,
                        col(Message.author) == Author.customer,
                    )
                )
            ).first()
    if message is None:
        return web.json_response({"error": tr.gettext(_NOT_FOUND)}, status=404)
    target = request_language(request)
    try:
        text = await libretranslate(config.translate_url, message.text, target, api_key=config.translate_api_key)
    except TranslateError as exc:
        log.warning("translation failed", extra={"message_id": message.id, "problem": str(exc)})
        return web.json_response({"error": tr.gettext(_FAILED)}, status=502)
    return web.json_response({"text": text, "language": target}, headers={"Cache-Control": "no-store"})


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.post(r"/inbox/c/{cid:\d+}/messages/{mid:\d+}/translate", translate_message, name="translate_message"),
    ]
