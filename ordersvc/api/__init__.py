"""The REST API under ``/api/v1``: orders, shipments, returns and stock for the merchant's systems.

``setup(app, sessionmaker)`` mounts a sub-application with its own middlewares, so the
bearer-token check and the JSON error bodies apply to these routes only. Every route needs
``Authorization: Bearer <token>`` (see ``ordersvc.api_tokens``) except ``openapi.json``.

Errors are ``{"error": code, "message": "..."}`` with a 4xx status (the shape of a
:class:`shopbase.refusal.Refused`): unknown or repeated query parameters and bad values give
400, a missing order 404, a body over 64 KiB 413. Listings are paginated by
an opaque ``cursor`` (``next_cursor`` in the answer, ``null`` on the last page).

The operation table ``OPERATIONS`` gives the routes (``ROUTES``) and the document
(``OPENAPI``, generated from it and the pydantic models in ``schemas``).

Modules: ``http`` (errors, JSON answers, middlewares, checked input), ``queries`` (lookups),
``schemas`` (pydantic models of queries, bodies and answers), ``views`` (handlers,
``OPERATIONS``, ``setup``) and ``openapi`` (the generator). This package re-exports their
public names.
"""

from __future__ import annotations

from ordersvc.api.http import API_APP, API_PREFIX, MAX_BODY_BYTES, SESSIONS
from ordersvc.api.schemas import MAX_LIMIT
from ordersvc.api.views import OPENAPI, OPERATIONS, ROUTES, setup

__all__ = [
    "API_PREFIX",
    "API_APP",
    "SESSIONS",
    "MAX_BODY_BYTES",
    "MAX_LIMIT",
    "ROUTES",
    "OPERATIONS",
    "OPENAPI",
    "setup",
]
