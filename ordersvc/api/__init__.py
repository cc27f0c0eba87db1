"""The REST API under ``/api/v1``: orders, shipments, returns and stock for the merchant's systems.

``setup(app, sessionmaker)`` mounts a sub-application with its own middlewares, so the
bearer-token check and the JSON error bodies apply to these routes only. Every route needs
``Authorization: Bearer <token>`` (see ``ordersvc.api_tokens``) except ``openapi.json``.

Errors are ``{"error": "..."}`` with a 4xx status: unknown or repeated query parameters and
bad values give 400, a missing order 404, a body over 64 KiB 413. Listings are paginated by
an opaque ``cursor`` (``next_cursor`` in the answer, ``null`` on the last page).

The route table is ``ROUTES``; ``OPENAPI`` documents every one of them (a test checks that).

Modules: ``http`` (errors, JSON answers, middlewares, checked input), ``queries`` (lookups),
``views`` (handlers, ``ROUTES``, ``setup``) and ``openapi`` (the document). This package
re-exports their public names.
"""

from __future__ import annotations

from ordersvc.api.http import API_APP, API_PREFIX, MAX_BODY_BYTES, MAX_LIMIT, SESSIONS, ApiError
from ordersvc.api.openapi import OPENAPI
from ordersvc.api.views import ROUTES, setup

__all__ = [
    "API_PREFIX",
    "API_APP",
    "SESSIONS",
    "MAX_BODY_BYTES",
    "MAX_LIMIT",
    "ROUTES",
    "OPENAPI",
    "ApiError",
    "setup",
]
