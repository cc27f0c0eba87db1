"""The web chat: the customer's WebSocket at ``/widget/ws``, the webchat Sender, ``/widget.js``, ``/shop``.

Identity. A visitor is anonymous: on the first ``hello`` the server mints a random visitor id
and a token ``<issued>.<HMAC(key, visitor, issued)>``; the widget keeps both in localStorage
and presents them in the next ``hello``, so the conversation resumes after a reload. The
token is the visitor's bearer credential; a bad or expired one simply gets a new identity
(never someone else's conversation). It is re-issued on every connect.

Frames (JSON text). Client → server::

    {"type": "hello", "visitor": "...", "token": "...", "lang": "en"}   (first)
    {"type": "message", "text": "...", "client_id": "..."}
    {"type": "postback", "value": "...", "label": "...", "client_id": "..."}

Server → client: ``session`` (identity), ``history`` (replayed from the database),
``message`` ``{id, author, author_name, text, quick_replies, client_id?}`` and ``error``
``{message, client_id?}``. A bad frame (not JSON, unknown type, empty, too long, NUL,
binary, too many per second) gets an error frame and stores nothing; the socket stays open.
``client_id`` is the dedupe key: a resend after a reconnect is acknowledged with the
stored message's id and never stored twice.

The widget never receives internal notes, system lines, or another visitor's messages:
history is read by this visitor's contact only and pushes go to this visitor's sockets only.
"""

from inbox.web.webchat.connector import TokenBucket, widget_socket
from inbox.web.webchat.send import HISTORY_LIMIT, VisitorHub, WebchatSender, load_history
from inbox.web.webchat.setup import STATIC_DIR, check_visitor_token, htmx_dir, issue_visitor_token, shop_page, widget_js
from inbox.web.webchat.translate import read_inbound, visitor_label

__all__ = [
    "HISTORY_LIMIT",
    "STATIC_DIR",
    "TokenBucket",
    "VisitorHub",
    "WebchatSender",
    "check_visitor_token",
    "htmx_dir",
    "issue_visitor_token",
    "load_history",
    "read_inbound",
    "shop_page",
    "visitor_label",
    "widget_js",
    "widget_socket",
]
