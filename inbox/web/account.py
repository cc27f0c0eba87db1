"""The signed-in agent's own profile: the language of their inbox.

``GET /inbox/account`` shows it; ``POST /inbox/account/language`` saves the choice through the
``agent_language`` action (an empty value: follow the browser's ``Accept-Language``).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from inbox.actions.agent_language import agent_language
from inbox.models import Agent
from inbox.web.auth import csrf_token
from inbox.web.i18n import LANGUAGE_NAMES, LANGUAGES, N_, negotiate, translations, translations_for
from inbox.web.rendering import error_response, render
from inbox.web.state import AGENT, STATE
from shopbase.refusal import Refused

__all__ = ["routes"]


async def account_page(request: web.Request) -> web.Response:
    session = await get_session(request)
    flash = session.pop("flash", None)
    browser = negotiate(request.headers.get("Accept-Language"))
    return render(
        request,
        "inbox/account.html",
        {
            "agent": request[AGENT],
            "csrf_token": await csrf_token(request),
            "flash": flash,
            "section": "account",
            "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "browser_language_name": LANGUAGE_NAMES[browser],
        },
    )


async def save_language(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    me = request[AGENT]
    async with request.app[STATE].sessions() as db:
        agent = await db.get(Agent, me.id)
        if agent is None:
            raise web.HTTPSeeOther("/login")
        try:
            agent_language(db, agent, str(form.get("language") or ""))
        except Refused as exc:
            await db.rollback()
            text = translations_for(request).gettext(exc.message)
            return error_response(request, 400, text[:1].upper() + text[1:])
        await db.commit()
        chosen = agent.language or negotiate(request.headers.get("Accept-Language"))
    session = await get_session(request)
    # said in the language just chosen, since that is what the next page is in
    session["flash"] = ["ok", translations(chosen).gettext(N_("Language saved."))]
    raise web.HTTPSeeOther("/inbox/account")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/inbox/account", account_page, name="account"),
        web.post("/inbox/account/language", save_language, name="account_language"),
    ]
