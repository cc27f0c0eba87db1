"""Response headers every page carries (strict CSP, nosniff, referrer policy) and Origin checks.

The CSP allows scripts and styles only from our own origin: no inline ``<script>``, no
``on*=`` handlers, no ``style=`` attributes, no ``eval``. A stored-XSS payload that somehow
escaped the template autoescaping would still not run.
"""

from __future__ import annotations

from aiohttp import web

from inbox.web.state import WebConfig

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "add_security_headers", "check_origin"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: runs for every response, errors and static files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def check_origin(request: web.Request, config: WebConfig) -> bool:
    """True when the request's Origin is our public URL or the host the request was sent to.

    Browsers always send Origin on WebSocket handshakes; a missing one is a non-browser
    client, which cannot ride on a victim's cookies, so it is let through for the widget
    (no cookies) but not for the agents' socket (see callers).
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    origin = origin.strip().lower()
    if origin == config.public_origin:
        return True
    host = request.headers.get("Host", "").strip().lower()
    return bool(host) and origin in (f"http://{host}", f"https://{host}")
