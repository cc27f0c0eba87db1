"""``GET /inbox/admin/telegram``: the webhook's state (getWebhookInfo) for admins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from bot.connectors.telegram.setup import (
    WEBHOOK_PATH,
    TelegramSetupError,
    WebhookStatus,
    fetch_status,
)

if TYPE_CHECKING:
    from bot.connectors.telegram.connector import TelegramConnector

__all__ = ["ADMIN_PATH", "admin_page"]

ADMIN_PATH = "/inbox/admin/telegram"


async def admin_page(connector: TelegramConnector, request: web.Request) -> web.Response:
    """``GET /inbox/admin/telegram``: the webhook's state (getWebhookInfo) for admins.

    JSON for ``Accept: application/json``, else a page in the inbox's layout. Like the
    other admin pages it does not exist (404) for anyone but an admin.
    """
    from inbox.web.rendering import error_response, wants_json
    from inbox.web.state import AGENT, STATE

    has_inbox = STATE in request.app
    agent = request.get(AGENT)
    if agent is None or not agent.is_admin:
        if has_inbox:
            return error_response(request, 404, "Not found.")
        return web.json_response({"error": "Not found."}, status=404)
    try:
        status: WebhookStatus | None = await fetch_status(connector.bot, connector.token)
        problem = None
    except TelegramSetupError as exc:
        status, problem = None, str(exc)
    if wants_json(request) or not has_inbox:
        if status is None:
            return web.json_response({"error": problem}, status=502)
        return web.json_response({**status.to_json(), "mode": "polling" if connector.polling else "webhook"})
    from inbox.web.auth import csrf_token

    env = request.app[STATE].jinja
    template = env.from_string(_ADMIN_TEMPLATE)
    from inbox.web.rendering import page_context

    html = template.render(**page_context(request), agent=agent,
                           csrf_token=await csrf_token(request), section="telegram", status=status,
                           problem=problem, polling=connector.polling, webhook_path=WEBHOOK_PATH)
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


_ADMIN_TEMPLATE = """{% extends "inbox/layout.html" %}
{% block title %}Telegram · Admin · Shopdesk{% endblock %}
{% block content %}
<main class="page">
  <h1>Telegram</h1>
  {% if problem %}<p class="flash flash-error" role="alert">{{ problem }}</p>{% endif %}
  {% if status %}
  <table class="table">
    <tbody>
      <tr><th>Mode</th><td>{{ 'long polling' if polling else 'webhook' }}</td></tr>
      <tr><th>Webhook URL</th><td class="code">{{ status.url or '(not set)' }}</td></tr>
      <tr><th>Pending updates</th><td>{{ status.pending_update_count }}</td></tr>
      <tr><th>Last error</th><td>{% if status.last_error_message %}{{ status.last_error_date|when }}: {{ status.last_error_message }}{% else %}none{% endif %}</td></tr>
    </tbody>
  </table>
  {% endif %}
  <p class="muted">Set the webhook with <span class="code">shopdesk telegram set-webhook https://YOUR-HOST{{ webhook_path }}</span>.</p>
</main>
{% endblock %}
"""
