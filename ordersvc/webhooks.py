"""Shopify webhooks: ``POST /webhooks/shopify``.

One request, in this order (each step answers before the next one runs):

1. the body is read, at most 1 MiB (+1 byte to notice more) → 413 when larger;
2. ``X-Shopify-Hmac-Sha256`` must be the base64 HMAC-SHA256 of the *raw* body under one of
   the configured secrets (current and previous, for rotation) → 401 before any parsing;
   no secret configured → 503;
3. ``X-Shopify-Topic`` and ``X-Shopify-Webhook-Id`` are required → 400;
4. the body must be JSON → 400 (big ids stay exact, floats become ``Decimal``);
5. one transaction records ``WebhookDelivery(source="shopify", delivery_id=<webhook id>)``
   *and* applies the topic's effect. A delivery id seen before (also when two copies race:
   the unique constraint decides) answers 200 ``{"status": "duplicate"}`` and changes
   nothing; a payload we cannot use answers 422 with the reason and writes nothing;
6. only after the commit: 200 ``{"status": "ok"}`` (``"ignored"`` for topics we do not
   handle, which are still recorded as delivered), then ``on_change(event, order_id)`` for
   each change (see :data:`ORDER_EVENTS`) so the app can fan out alerts.

Logs carry the topic, the webhook id and order ids; never secrets, bodies or emails.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.shopify import (
    UpsertResult,
    apply_shopify_refund,
    cancel_from_shopify,
    customer_data_report,
    load_json,
    redact_customer,
    upsert_shopify_fulfillment,
    upsert_shopify_order,
)
from ordersvc.shopify.events import apply_fulfillment_event
from ordersvc.shopify.stock import StockResult, apply_inventory_item, apply_inventory_level, apply_product
from shopbase.dedupe import DuplicateDelivery, claim_delivery
from shopbase.refusal import Refused

__all__ = [
    "MAX_BODY_BYTES",
    "ORDER_EVENTS",
    "TOPICS",
    "OnChange",
    "PrivacyHandler",
    "ShopifyWebhooks",
    "SHOPIFY_WEBHOOKS",
    "check_signature",
    "setup",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
ROUTE = "/webhooks/shopify"
ORDER_EVENTS: frozenset[str] = frozenset(
    {"order.created", "order.updated", "order.cancelled", "shipment.updated", "refund.created"}
)
"""Event names passed to ``on_change(event, order_id)`` after a commit."""

OnChange = Callable[[str, int], Awaitable[None]]
Event = tuple[str, int]
_ATTEMPTS = 3  # a race on a new order/customer row is retried; the second try sees the winner


@dataclass
class _Effect:
    events: list[Event] = field(default_factory=list)
    detail: str = ""  # for the log: counts and ids only


Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[_Effect]]
#: a replacement for a privacy topic's effect (``customers/redact``, ``shop/redact``) given by the
#: app, which erases more than the order store; runs in the delivery's transaction, returns the
#: log detail (counts only)
PrivacyHandler = Callable[[AsyncSession, dict[str, Any]], Awaitable[str]]
PRIVACY_TOPICS = frozenset({"customers/redact", "shop/redact"})


def _effect(result: UpsertResult) -> _Effect:
    order_id = result.order.id
    assert order_id is not None
    detail = f"order={order_id} shopify_order={result.order.external_id} {result.status.value}"
    return _Effect([(name, order_id) for name in result.events], detail)


async def _on_order(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    return _effect(await upsert_shopify_order(session, payload))


async def _on_cancelled(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    return _effect(await cancel_from_shopify(session, payload))


async def _on_fulfillment(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    return _effect(await upsert_shopify_fulfillment(session, payload))


async def _on_refund(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    return _effect(await apply_shopify_refund(session, payload))


async def _on_fulfillment_event(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    result = await apply_fulfillment_event(session, payload)
    events: list[Event] = [("shipment.updated", result.order_id)] if result.changed and result.order_id else []
    return _Effect(events, result.detail)


def _stock(result: StockResult) -> _Effect:
    return _Effect(detail=result.detail)


async def _on_inventory_level(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    return _stock(await apply_inventory_level(session, payload))


async def _on_inventory_item(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    return _stock(await apply_inventory_item(session, payload))


async def _on_product(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    return _stock(await apply_product(session, payload))


async def _on_data_request(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    # We have no mail sender: the request is acknowledged and logged by its id; the
    # merchant answers it with ``customer_data_report`` (the same function) by hand.
    report = await customer_data_report(session, payload)
    request = payload.get("data_request")
    request_id = request.get("id") if isinstance(request, dict) else None
    safe_id = str(request_id)[:40] if isinstance(request_id, (int, str)) else "?"
    return _Effect(
        detail=f"data_request={safe_id} customers={len(report['customers'])} orders={len(report['orders'])}"
    )


async def _on_customer_redact(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    counts = await redact_customer(session, payload)
    return _Effect(detail=f"redacted customers={counts['customers']} orders={counts['orders']}")


async def _on_shop_redact(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
    return _Effect(detail="acknowledged")


TOPICS: dict[str, Handler] = {
    "orders/create": _on_order,
    "orders/updated": _on_order,
    "orders/cancelled": _on_cancelled,
    "fulfillments/create": _on_fulfillment,
    "fulfillments/update": _on_fulfillment,
    "fulfillment_events/create": _on_fulfillment_event,
    "refunds/create": _on_refund,
    "inventory_levels/update": _on_inventory_level,
    "inventory_items/update": _on_inventory_item,
    "products/update": _on_product,
    "customers/data_request": _on_data_request,
    "customers/redact": _on_customer_redact,
    "shop/redact": _on_shop_redact,
}


def check_signature(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True when ``header`` is the base64 HMAC-SHA256 of ``body`` under any of ``secrets``."""
    if not header:
        return False
    given = header.strip().encode("utf-8", "replace")
    matched = False
    for secret in secrets:
        digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
        matched |= hmac.compare_digest(digest, given)
    return matched


@dataclass(frozen=True)
class ShopifyWebhooks:
    """The endpoint's collaborators (stored in the app under :data:`SHOPIFY_WEBHOOKS`)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    secrets_provider: Callable[[], list[str]]
    on_change: OnChange | None = None
    privacy: Mapping[str, PrivacyHandler] = field(default_factory=dict)
    #: deliveries whose transactions run at once (None: no bound). On a busy event loop every
    #: ready transaction runs before any other task gets its next turn: a burst of 50 webhooks
    #: made each turn ~250 ms, and the outbox, which needs several turns per send, sent ~10/s
    #: while they came. The others wait their turn here, cheaply (tests/bench/proactive.py).
    gate: asyncio.Semaphore | None = None

    def handler_for(self, topic: str) -> Handler | None:
        replacement = self.privacy.get(topic)
        if replacement is None:
            return TOPICS.get(topic)

        async def run(session: AsyncSession, payload: dict[str, Any]) -> _Effect:
            return _Effect(detail=await replacement(session, payload))

        return run

    async def deliver(
        self, webhook_id: str, topic: str, handler: Handler | None, payload: Any
    ) -> _Effect | None:
        """Record the delivery and apply its effect in one transaction; None = duplicate."""
        if self.gate is None:
            return await self._deliver(webhook_id, topic, handler, payload)
        async with self.gate:
            return await self._deliver(webhook_id, topic, handler, payload)

    async def _deliver(
        self, webhook_id: str, topic: str, handler: Handler | None, payload: Any
    ) -> _Effect | None:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self.sessionmaker() as session, session.begin():
                    await claim_delivery(session, "shopify", webhook_id, topic)
                    return await handler(session, payload) if handler else _Effect(detail="ignored")
            except DuplicateDelivery:
                return None
            except IntegrityError:
                if attempt == _ATTEMPTS:
                    raise
                log.info("shopify webhook %s: concurrent write, retrying (%d)", webhook_id, attempt)
        raise AssertionError("unreachable")

    async def announce(self, events: list[Event], webhook_id: str) -> None:
        if self.on_change is None:
            return
        for name, order_id in events:
            try:
                await self.on_change(name, order_id)
            except Exception:
                log.exception("shopify webhook %s: on_change(%s, %s) failed", webhook_id, name, order_id)


SHOPIFY_WEBHOOKS = web.AppKey("shopify_webhooks", ShopifyWebhooks)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _read_body(request: web.Request) -> bytes | None:
    """The body, or None when it is larger than ``MAX_BODY_BYTES`` (reads at most one byte more)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None
    body = bytearray()
    while len(body) <= MAX_BODY_BYTES:
        chunk = await request.content.read(MAX_BODY_BYTES + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return None if len(body) > MAX_BODY_BYTES else bytes(body)


async def handle_shopify_webhook(request: web.Request) -> web.Response:
    hooks = request.config_dict[SHOPIFY_WEBHOOKS]
    body = await _read_body(request)
    if body is None:
        return _error(413, "request body is larger than 1 MiB")
    secrets = [secret for secret in hooks.secrets_provider() if secret]
    if not secrets:
        return _error(503, "shopify webhooks are not configured")
    if not check_signature(body, request.headers.get("X-Shopify-Hmac-Sha256"), secrets):
        log.warning("shopify webhook refused: missing or invalid HMAC signature")
        return _error(401, "invalid webhook signature")

    topic = request.headers.get("X-Shopify-Topic", "").strip()
    webhook_id = request.headers.get("X-Shopify-Webhook-Id", "").strip()
    if not topic or len(topic) > 64:
        return _error(400, "missing or invalid X-Shopify-Topic header")
    if not webhook_id or len(webhook_id) > 128:
        return _error(400, "missing or invalid X-Shopify-Webhook-Id header")
    try:
        payload = load_json(body)
    except (ValueError, RecursionError):
        return _error(400, "the body is not valid JSON")

    handler = hooks.handler_for(topic)
    if handler is not None and not isinstance(payload, dict):
        return _error(422, f"{topic} payload must be a JSON object")
    try:
        effect = await hooks.deliver(webhook_id, topic, handler, payload)
    except Refused as exc:
        log.warning("shopify webhook %s %s refused: %s", webhook_id, topic, exc.message)
        return _error(exc.status, exc.message)
    except SQLAlchemyError as exc:
        log.error("shopify webhook %s %s: database error %s", webhook_id, topic, type(exc).__name__)
        return _error(503, "the order store is temporarily unavailable, please retry")

    if effect is None:
        log.info("shopify webhook %s %s: duplicate delivery", webhook_id, topic)
        return web.json_response({"status": "duplicate"})
    log.info("shopify webhook %s %s: %s", webhook_id, topic, effect.detail)
    await hooks.announce(effect.events, webhook_id)
    return web.json_response({"status": "ok" if handler is not None else "ignored"})


def setup(
    app: web.Application,
    sessionmaker: async_sessionmaker[AsyncSession],
    secrets_provider: Callable[[], list[str]],
    on_change: OnChange | None = None,
    privacy: Mapping[str, PrivacyHandler] | None = None,
    concurrency: int | None = None,
) -> None:
    """Register ``POST /webhooks/shopify`` on ``app``.

    ``secrets_provider`` is asked on every request (so a rotated secret needs no restart) and
    returns the accepted secrets, e.g. ``[current, previous]``; an empty list answers 503.
    ``on_change(event, order_id)`` runs after each commit for the events in
    :data:`ORDER_EVENTS`; keep it quick (queue work), since Shopify waits for the answer.
    ``privacy`` replaces the effect of ``customers/redact`` / ``shop/redact`` (the app erases
    the inbox's records too: ``inbox.privacy``). ``concurrency``: at most this many deliveries
    in their transaction at once (:attr:`ShopifyWebhooks.gate`).
    """
    unknown = set(privacy or {}) - PRIVACY_TOPICS
    if unknown:
        raise ValueError(f"not privacy topics: {sorted(unknown)}")
    gate = asyncio.Semaphore(concurrency) if concurrency else None
    app[SHOPIFY_WEBHOOKS] = ShopifyWebhooks(sessionmaker, secrets_provider, on_change, dict(privacy or {}), gate)
    app.router.add_post(ROUTE, handle_shopify_webhook)
