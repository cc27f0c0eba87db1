"""Slack connector: ``connector`` (Bolt wiring, thread replies, buttons, ``/order``),
``translate`` (payloads → clicks and thread posts, pure), ``send`` (alerts through the durable
outbox), ``setup`` (clients, signatures, log levels), ``admin`` (agents and linking),
``blocks`` (Block Kit builders).

Importing this package changes no environment variable and no logger level.
"""

from bot.connectors.slack.admin import link_slack_user
from bot.connectors.slack.connector import SlackConnector
from bot.connectors.slack.send import THREAD_KIND, SlackAlertSender, notice_for
from bot.connectors.slack.setup import EVENTS_PATH, make_client
from bot.connectors.slack.translate import NOTE_PREFIX

__all__ = [
    "EVENTS_PATH",
    "NOTE_PREFIX",
    "THREAD_KIND",
    "SlackAlertSender",
    "SlackConnector",
    "link_slack_user",
    "make_client",
    "notice_for",
]
