"""Prometheus metrics at ``GET /metrics`` (text exposition format, prometheus-client).

One :class:`Metrics` per application, each with its own ``CollectorRegistry`` (never the
process-global one), so several apps in one process (tests) never share or clash.

Where the numbers come from, all wired here in the composition root (no other package knows
about Prometheus):

* inbound messages: the ``on_inbound`` callback each channel's edge calls after a message is
  committed (:meth:`Metrics.count_inbound` wraps it per channel);
* outbound sends: every customer ``Sender`` registered in the app's :class:`CountingSenders`
  is wrapped, counting each attempt's result (sent, retry, failed, error);
* bot turns: :attr:`bot.pipeline.Pipeline.on_turn` reports intent, outcome (answered alone,
  escalated, failed), NLU time and handler time;
* webhook rejections: :func:`Metrics.middleware` sees every 4xx/5xx answer on a webhook path
  (Telegram, Slack, Shopify) and counts it by source and reason;
* outbox backlog, its oldest row's age and undeliverable contacts: read from the database at
  scrape time with two indexed queries (``ix_outbox_status_due``, ``ix_contact_undeliverable``).

Access: with ``SHOPDESK_METRICS_TOKEN`` set, a request needs ``Authorization: Bearer <token>``
(from anywhere). Without it, only a direct loopback request (127.0.0.0/8, ::1, no
``Forwarded``/``X-Forwarded-For``/``X-Real-IP`` header: a reverse proxy on the same host would
otherwise make every visitor look local) is answered; anything else gets 403.

Several processes on one host (``SHOPDESK_METRICS_DIR``, or prometheus-client's own
``PROMETHEUS_MULTIPROC_DIR``): :func:`enable_multiprocess` switches prometheus-client to its
multiprocess mode before the app's metrics exist, so every process writes its values to memory-mapped
files in that directory, and ``/metrics`` in any process answers with all processes' numbers added
up (``MultiProcessCollector``): counters and histograms summed, the database gauges (outbox
backlog and age, undeliverable contacts: the same numbers whichever process read them) as the most
recently set value. At start a process deletes the files of processes that are no longer running
(and any of its own pid, left by an earlier process with the same id); at a clean stop it marks
itself dead. A finished process's counts therefore leave the sums, which Prometheus sees as a
counter reset (``rate()`` and ``increase()`` handle it).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.exposition import choose_encoder
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col

from inbox.channels import Sender, SenderRegistry
from inbox.models import Channel, Contact, OutboxMessage, OutboxStatus

__all__ = ["Metrics", "METRICS", "CountingSenders", "setup_metrics", "webhook_source", "rejection_reason",
           "enable_multiprocess", "multiprocess_dir", "clean_stale_files", "multiprocess_registry"]

log = logging.getLogger("shopdesk.metrics")

#: the paths whose error answers count as webhook rejections, and the source label of each
WEBHOOK_SOURCES = {"/webhooks/telegram": "telegram", "/webhooks/shopify": "shopify", "/slack/events": "slack"}
_REASONS = {400: "malformed", 401: "signature", 403: "signature", 405: "method", 413: "too_large",
            415: "malformed", 422: "invalid", 429: "rate_limited"}
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
#: latency buckets (seconds): NLU takes milliseconds, a turn with order look-ups tens of them
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: prometheus-client's file names: <kind>[_<mode>]_<pid>.db
_FILE_PID = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def clean_stale_files(directory: Path) -> list[int]:
    """Delete the value files of processes that no longer run, and those bearing this process's
    own pid (an earlier process's, since this one has written none yet); the pids cleaned."""
    gone: set[int] = set()
    for path in directory.glob("*.db"):
        match = _FILE_PID.search(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or not _alive(pid):
            gone.add(pid)
    for pid in sorted(gone):
        multiprocess.mark_process_dead(pid, str(directory))  # the live gauges' files
        for path in directory.glob(f"*_{pid}.db"):
            path.unlink(missing_ok=True)
    return sorted(gone)


def enable_multiprocess(directory: Path) -> None:
    """Process-wide: every metric value created from now on lives in ``directory`` (shared by the
    processes of one host), after the stale files there are cleaned. Call it before the app's
    :class:`Metrics` exist (``build_app`` does when ``SHOPDESK_METRICS_DIR`` is set)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[_MULTIPROC_ENV] = str(directory)
    clean_stale_files(directory)
    values.ValueClass = values.MultiProcessValue()


def multiprocess_dir() -> Path | None:
    """The shared directory when multiprocess mode is on in this process."""
    raw = os.environ.get(_MULTIPROC_ENV)
    return Path(raw) if raw and values.ValueClass is not values.MutexValue else None


def multiprocess_registry(directory: Path) -> CollectorRegistry:
    """A registry that reads every process's files in ``directory`` and adds them up."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    return registry


def webhook_source(path: str) -> str | None:
    return WEBHOOK_SOURCES.get(path.rstrip("/") or "/")


def rejection_reason(status: int) -> str:
    if status >= 500:
        return "unavailable"
    return _REASONS.get(status, str(status))


class Metrics:
    """The app's metrics in its own registry."""

    def __init__(self) -> None:
        #: the shared directory of multiprocess mode (None: this process's numbers only)
        self.multiprocess_dir = multiprocess_dir()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.inbound = Counter("shopdesk_messages_inbound", "Customer messages recorded, by channel",
                               ["channel"], registry=r)
        self.outbound = Counter("shopdesk_messages_outbound",
                                "Outbound send attempts to customers, by channel and result "
                                "(sent, retry, failed: never deliverable, error: unexpected)",
                                ["channel", "result"], registry=r)
        self.outbox_backlog = Gauge("shopdesk_outbox_backlog", "Outbox rows waiting to be sent, by channel",
                                    ["channel"], registry=r, multiprocess_mode="mostrecent")
        self.outbox_oldest = Gauge("shopdesk_outbox_oldest_age_seconds",
                                   "Age of the oldest outbox row waiting to be sent, by channel (0: none)",
                                   ["channel"], registry=r, multiprocess_mode="mostrecent")
        self.undeliverable = Gauge("shopdesk_contacts_undeliverable",
                                   "Contacts we can no longer reach (blocked the bot, deleted the chat), by channel",
                                   ["channel"], registry=r, multiprocess_mode="mostrecent")
        self.understanding = Histogram("shopdesk_bot_understanding_seconds",
                                       "Time to understand one message (language, intent, tone, entities)",
                                       registry=r, buckets=_LATENCY_BUCKETS)
        self.handler = Histogram("shopdesk_bot_handler_seconds",
                                 "Time from an understood message to the committed bot turn, by intent",
                                 ["intent"], registry=r, buckets=_LATENCY_BUCKETS)
        self.bot_turns = Counter("shopdesk_bot_turns",
                                 "Messages the bot handled, by intent and outcome (answered alone, escalated, failed)",
                                 ["intent", "outcome"], registry=r)
        self.escalations = Counter("shopdesk_escalations", "Hand-overs from the bot to a person, by intent and reason",
                                   ["intent", "reason"], registry=r)
        self.webhook_rejections = Counter("shopdesk_webhook_rejections",
                                          "Webhook requests answered with an error, by source and reason",
                                          ["source", "reason"], registry=r)
        self.scrape_errors = Counter("shopdesk_metrics_scrape_errors",
                                     "Scrapes whose database read failed (the gauges kept their last values)",
                                     registry=r)
        #: labelled children by (metric, labels): ``labels()`` takes a lock and builds a key on
        #: every call; the label values are few (channels, intents, outcomes, reasons)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        for channel in Channel:
            self.inbound.labels(channel.value)
            self.outbox_backlog.labels(channel.value).set(0)
            self.outbox_oldest.labels(channel.value).set(0)
            self.undeliverable.labels(channel.value).set(0)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- the hooks -------------------------------------------------------------------------

    def count_inbound(self, channel: str,
                      on_inbound: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """``on_inbound`` counting each new (non-duplicate) message of ``channel``."""

        async def counted(result: Any) -> None:
            if not getattr(result, "duplicate", False):
                self._child(self.inbound, channel).inc()
            await on_inbound(result)

        return counted

    def on_turn(self, stats: Any) -> None:
        intent = str(stats.intent or "unknown")[:32]
        if stats.understanding_seconds is not None:
            self.understanding.observe(stats.understanding_seconds)
        if stats.outcome != "failed":
            self._child(self.handler, intent).observe(stats.handler_seconds)
        self._child(self.bot_turns, intent, str(stats.outcome)).inc()
        if stats.escalation_reason:
            self._child(self.escalations, intent, str(stats.escalation_reason)[:32]).inc()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        source = webhook_source(request.path)
        if source is None:
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                self.webhook_rejections.labels(source, rejection_reason(exc.status)).inc()
            raise
        if response.status >= 400:
            self.webhook_rejections.labels(source, rejection_reason(response.status)).inc()
        return response

    # -- scrape time -----------------------------------------------------------------------

    async def refresh(self, sessions: async_sessionmaker[Any], now: datetime | None = None) -> None:
        """Read the outbox backlog and the undeliverable contacts (two small indexed queries)."""
        now = now or datetime.now(UTC)
        backlog = (
            sa.select(col(OutboxMessage.channel), sa.func.count(), sa.func.min(col(OutboxMessage.created_at)))
            .where(col(OutboxMessage.status) == OutboxStatus.pending)
            .group_by(OutboxMessage.channel)
        )
        undeliverable = (
            sa.select(col(Contact.channel), sa.func.count())
            .where(col(Contact.undeliverable_at).is_not(None))
            .group_by(Contact.channel)
        )
        async with sessions() as db:
            pending = (await db.exec(backlog)).all()
            blocked = (await db.exec(undeliverable)).all()
        for channel in Channel:
            self.outbox_backlog.labels(channel.value).set(0)
            self.outbox_oldest.labels(channel.value).set(0)
            self.undeliverable.labels(channel.value).set(0)
        for channel, count, oldest in pending:
            name = Channel(channel).value
            self.outbox_backlog.labels(name).set(count)
            if oldest is not None:
                if oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=UTC)
                self.outbox_oldest.labels(name).set(max(0.0, (now - oldest).total_seconds()))
        for channel, count in blocked:
            self.undeliverable.labels(Channel(channel).value).set(count)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format ``accept`` asks for (Prometheus text, or OpenMetrics); its content type."""
        encoder, content_type = choose_encoder(accept)
        if self.multiprocess_dir is not None:
            return encoder(multiprocess_registry(self.multiprocess_dir)), content_type
        return encoder(self.registry), content_type


METRICS = web.AppKey("shopdesk_metrics", Metrics)


class _CountingSender:
    """A customer ``Sender`` whose every attempt is counted; everything else is the sender's own."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.channel = inner.channel

    def __getattr__(self, name: str) -> Any:  # send_notice, close … (absent ones stay absent)
        return getattr(self._inner, name)

    async def send(self, contact: Any, payload: Any) -> str | None:
        from inbox.channels import PermanentFailure, RetryLater

        channel = Channel(self.channel).value
        try:
            result: str | None = await self._inner.send(contact, payload)
        except RetryLater:
            self._metrics._child(self._metrics.outbound, channel, "retry").inc()
            raise
        except PermanentFailure:
            self._metrics._child(self._metrics.outbound, channel, "failed").inc()
            raise
        except Exception:
            self._metrics._child(self._metrics.outbound, channel, "error").inc()
            raise
        self._metrics._child(self._metrics.outbound, channel, "sent").inc()
        return result


class CountingSenders(SenderRegistry):
    """The app's sender registry: customer senders are wrapped to count their sends."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def register(self, sender: Any) -> None:
        if isinstance(sender, Sender) and not isinstance(sender, _CountingSender):
            sender = _CountingSender(sender, self.metrics)
        super().register(sender)


# -- the endpoint ------------------------------------------------------------------------------


def _allowed(request: web.Request, token: str | None) -> web.Response | None:
    """None when the request may read the metrics; else the refusal."""
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return None
        return web.json_response({"error": "a valid bearer token is required (SHOPDESK_METRICS_TOKEN)"}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    try:
        local = ipaddress.ip_address((request.remote or "").split("%", 1)[0]).is_loopback
    except ValueError:
        local = False
    if local and not any(h in request.headers for h in _PROXY_HEADERS):
        return None
    return web.json_response({"error": "metrics are served to loopback only; set SHOPDESK_METRICS_TOKEN to "
                                       "scrape from another address"}, status=403)


def setup_metrics(app: web.Application, metrics: Metrics, sessions: async_sessionmaker[Any],
                  token: str | None) -> None:
    app[METRICS] = metrics

    async def metrics_view(request: web.Request) -> web.Response:
        refused = _allowed(request, token)
        if refused is not None:
            return refused
        try:
            await metrics.refresh(sessions)
        except Exception:  # a database outage must not hide the in-process counters
            metrics.scrape_errors.inc()
            log.warning("metrics: reading the outbox and contacts failed", exc_info=True)
        body, content_type = metrics.exposition(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    app.router.add_get("/metrics", metrics_view)

    if metrics.multiprocess_dir is not None:
        directory = metrics.multiprocess_dir

        async def mark_dead(_app: web.Application) -> None:
            multiprocess.mark_process_dead(os.getpid(), str(directory))

        app.on_cleanup.append(mark_dead)
