"""The agents' UI in six languages: gettext catalogs read with Babel, chosen per request.

Catalogs are ``inbox/locale/<lang>/LC_MESSAGES/messages.po`` (English msgids are the source;
``make i18n-extract`` / ``i18n-update`` keep them in step with the code). They are read from the
``.po`` files themselves when first needed, so there is no compiled ``.mo`` that could be
forgotten or go stale; fuzzy and empty entries fall back to English.

A request's language is the agent's choice (``Agent.language``) or else the best match of the
browser's ``Accept-Language`` among :data:`LANGUAGES`, else English (:func:`request_language`).
Nothing is installed globally: the templates' ``_()`` / ``{% trans %}`` read the translations
passed in each render's context (``translations``), and Python code asks
:func:`translations_for` for the request's own, so concurrent requests never see each other's.
"""

from __future__ import annotations

import gettext as _gettext_module
import re
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from aiohttp import web
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import pass_context
from jinja2.runtime import Context

from inbox.replies import SUPPORTED_LANGUAGES

__all__ = [
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "LOCALE_DIR",
    "N_",
    "NC_",
    "LABEL_CONTEXT",
    "translations",
    "translations_for",
    "request_language",
    "negotiate",
    "ui_language",
    "js_catalog",
    "install",
]

LANGUAGES: tuple[str, ...] = SUPPORTED_LANGUAGES
DEFAULT = "en"
#: each language named in itself (the profile's picker)
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "es": "Español",
    "ru": "Русский",
    "vi": "Tiếng Việt",
    "zh-Hans": "简体中文",
    "zh-Hant": "繁體中文",
}
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
JS_SOURCE = "inbox/web/static/inbox.js"
#: every script whose _("…") strings the page's JSON catalog carries
JS_SOURCES = (JS_SOURCE, "inbox/web/static/triage.js")
DOMAIN = "messages"

_REQUEST_KEY: web.RequestKey[_gettext_module.NullTranslations] = web.RequestKey("inbox_i18n")


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


#: the gettext context of the labels that ``|humanize`` shows for stored values ("Admin" the role
#: is not "Admin" the page)
LABEL_CONTEXT = "label"


def NC_(context: str, message: str) -> str:
    """Mark a string with a gettext context for extraction (keyword ``NC_:1c,2``)."""
    return message


def po_path(language: str) -> Path:
    return LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def _catalog(language: str) -> Any:
    with po_path(language).open("rb") as fp:
        return read_po(fp, locale=language.replace("-", "_"), domain=DOMAIN)


@cache
def translations(language: str) -> _gettext_module.NullTranslations:
    """The gettext translations of one of :data:`LANGUAGES` (English: the msgids themselves)."""
    if language not in LANGUAGES or language == DEFAULT:
        return _gettext_module.NullTranslations()
    buffer = BytesIO()
    write_mo(buffer, _catalog(language), use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


@cache
def js_catalog(language: str) -> dict[str, str]:
    """msgid → translation of the strings used in ``inbox.js`` and ``triage.js`` (empty for English)."""
    if language not in LANGUAGES or language == DEFAULT:
        return {}
    out: dict[str, str] = {}
    for message in _catalog(language):
        if not message.id or message.fuzzy or not isinstance(message.id, str) or not message.string:
            continue
        if any(path.endswith(JS_SOURCES) for path, _line in message.locations):
            out[message.id] = str(message.string)
    return out


# --------------------------------------------------------------------------- choosing the language

_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$|^\*$")
_TRADITIONAL_REGIONS = {"tw", "hk", "mo"}


def _match(tag: str) -> str | None:
    parts = tag.lower().replace("_", "-").split("-")
    primary = parts[0]
    if primary == "zh":
        rest = set(parts[1:])
        if "hant" in rest or (rest & _TRADITIONAL_REGIONS and "hans" not in rest):
            return "zh-Hant"
        return "zh-Hans"
    return primary if primary in LANGUAGES else None


def ui_language(tag: str | None) -> str:
    """The one of :data:`LANGUAGES` that a language tag names ("zh-Hans", "ru_RU", "es"), else English
    (a document language the agents' catalogs do not have, such as German)."""
    return (_match(tag) if tag and _TAG.match(tag.replace("_", "-")) else None) or DEFAULT


def negotiate(accept_language: str | None) -> str:
    """The best of :data:`LANGUAGES` for an ``Accept-Language`` header, else English.

    ``zh-TW``, ``zh-HK``, ``zh-MO`` and ``zh-Hant`` mean Traditional Chinese; other ``zh`` Simplified.
    """
    candidates: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "")[:1000].split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        if not tag or not _TAG.match(tag):
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0 or tag == "*":
            continue
        language = _match(tag)
        if language is not None:
            candidates.append((-quality, index, language))
    return min(candidates)[2] if candidates else DEFAULT


def request_language(request: web.Request) -> str:
    """The signed-in agent's language, else the browser's best match, else English."""
    from inbox.web.state import AGENT

    agent = request.get(AGENT)
    chosen = getattr(agent, "language", None)
    if chosen in LANGUAGES:
        return str(chosen)
    return negotiate(request.headers.get("Accept-Language"))


def translations_for(request: web.Request) -> _gettext_module.NullTranslations:
    """This request's translations (decided once per request)."""
    found = request.get(_REQUEST_KEY)
    if found is None:
        found = translations(request_language(request))
        request[_REQUEST_KEY] = found
    return found


# --------------------------------------------------------------------------- Jinja


def _from(context: Context) -> _gettext_module.NullTranslations:
    found = context.get("translations")
    return found if isinstance(found, _gettext_module.NullTranslations) else translations(DEFAULT)


@pass_context
def _template_gettext(context: Context, message: str) -> str:
    return _from(context).gettext(message)


@pass_context
def _template_ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return _from(context).ngettext(singular, plural, n)


def install(env: Any) -> None:
    """Give ``env`` (with ``jinja2.ext.i18n``) newstyle ``_``/``gettext``/``ngettext`` that read the
    ``translations`` of each render's context: no global state, no race between requests."""
    env.install_gettext_callables(gettext=_template_gettext, ngettext=_template_ngettext, newstyle=True)
