"""The composition root: the one place that wires connectors, bot, inbox and ordersvc together.

``build_app(settings)`` returns the aiohttp application; ``serve(settings)`` migrates the
database and runs it. Everything long-lived (engine, event bus, outbox dispatcher, inbound
worker, connectors) starts and stops in the application's ``cleanup_ctx`` so that tests get
the same wiring as production.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from shopdesk.db import create_engine, migrate, ping, session_maker
from shopdesk.memory import MemoryTrimmer, return_free_memory
from shopdesk.settings import Settings

__all__ = ["Runtime", "RUNTIME", "build_app", "serve"]

log = logging.getLogger("shopdesk")


@dataclass
class Runtime:
    """The long-lived parts of one running server, reachable as ``app[RUNTIME]``."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[Any]
    bus: Any
    senders: Any
    dispatcher: Any = None
    worker: Any = None
    pipeline: Any = None
    proactive: Any = None
    alerts: Any = None
    #: PostgreSQL only: the event fan-out to the other processes, and which process runs the
    #: periodic jobs (shopdesk.cluster); on SQLite ``leadership`` always leads
    fanout: Any = None
    leadership: Any = None
    affinity: Any = None
    sla: Any = None
    #: gives the memory freed after bursts back to the system (shopdesk.memory)
    trimmer: MemoryTrimmer = field(default_factory=MemoryTrimmer)
    connectors: list[Any] = field(default_factory=list)
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    #: set once the language models are loaded: the bot starts answering (messages that came
    #: in before wait, recorded and acknowledged)
    bot_ready: asyncio.Event = field(default_factory=asyncio.Event)


RUNTIME = web.AppKey("shopdesk_runtime", Runtime)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    ok = await ping(runtime.engine)
    return web.json_response({"status": "ok" if ok else "unavailable", "database": ok,
                              "bot": "ready" if runtime.bot_ready.is_set() else "starting"},
                             status=200 if ok else 503)


def _body_limit_error(exc: web.HTTPRequestEntityTooLarge) -> web.Response:
    return web.json_response({"error": "request body too large"}, status=413)


def _routing_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """Unknown path or method: a page for a browser, ``{"error": ...}`` for everything else
    (instead of aiohttp's bare ``404: Not Found`` text)."""
    if exc.status == 405:
        message = f"method {request.method} is not allowed here"
    else:
        message = "not found"
    headers = {k: v for k, v in exc.headers.items() if k == "Allow"}
    if "text/html" in request.headers.get("Accept", ""):
        from inbox.web.rendering import error_response
        from inbox.web.state import STATE

        if STATE in request.app:
            response = error_response(request, exc.status, message.capitalize() + ".")
            response.headers.update(headers)
            return response
    return web.json_response({"error": message}, status=exc.status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """No traceback ever reaches a client: unexpected errors become a plain 500 JSON body."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        return _body_limit_error(exc)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        if exc.content_type != "text/plain":  # a view's own page or JSON body: keep it
            raise
        return _routing_error(request, exc)
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        if request.transport is None or request.transport.is_closing():
            # the client went away mid-request (typically in the middle of the body): nothing
            # was done and nobody is left to answer; not a server error
            log.info("client disconnected during %s %s", request.method, request.path)
            return web.json_response({"error": "client disconnected"}, status=400)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)


def _load_models() -> None:
    from bot.dialog.choices import vocabulary
    from bot.dialog.requests import split_requests
    from bot.nlu import SUPPORTED_LANGUAGES, analyze, get_classifier, get_tone, train_out_of_process
    from bot.nlu.language import warm_up as warm_up_language

    started = time.perf_counter()
    train_out_of_process()  # a missing model cache is built in a child: the server never imports scikit-learn
    get_classifier()
    get_tone()
    # everything else the first message of each language would load lazily: lingua's models
    # (a Latin-script sentence the word rules leave open), the dialog's word lists
    analyze("could you please tell me the status of my parcel")
    warm_up_language()  # lingua's models: most English and Spanish messages are decided without them
    from shopbase.formatting import babel_locale, format_number

    for lang in SUPPORTED_LANGUAGES:
        vocabulary(lang)
        split_requests("where is my order and can I return it", lang)
        # Babel's locale data (a pickle per locale, read on first use): the first reply with a
        # number in each language paid ~0.1 s for it (the profile's biggest item after warm-up)
        format_number(30, babel_locale(lang))
    return_free_memory()  # loading left freed buffers (the model files' bytes) in malloc's arenas
    log.info("language models ready in %.1fs", time.perf_counter() - started)


async def _ensure_analytics_rollup(sessions: async_sessionmaker[Any], timezone: str) -> None:
    """Recount the analytics rollup when the shop's zone is not the one it counts days in (a few
    seconds per 100,000 conversations, only after the zone changed); until it has, the report
    counts the conversations themselves, so a failure here is logged, never fatal."""
    from inbox.actions.analytics_rebuild import ensure_analytics_rollup

    try:
        async with sessions() as session:
            if await ensure_analytics_rollup(session, timezone):
                await session.commit()
                log.info("analytics rollup rebuilt for the shop's time zone", extra={"timezone": timezone})
    except Exception:
        log.warning("analytics rollup: the rebuild for the shop's time zone failed (the report reads the "
                    "conversations meanwhile; run shopdesk analytics rebuild)", exc_info=True)


async def _start_bot(runtime: Runtime) -> None:
    try:
        await asyncio.to_thread(_load_models)
    except Exception:
        log.exception("loading the language models failed; the bot answers after a restart")
        raise
    runtime.bot_ready.set()


def build_app(settings: Settings, *, engine: AsyncEngine | None = None, migrate_on_start: bool = True,
              telegram_polling: bool = False, sole_server: bool = False) -> web.Application:
    """The whole server. ``sole_server``: no other server can run on this database (``serve``
    holds the SQLite file's lock, :func:`claim_sqlite_server`), so outbox claims found at start
    are a dead process's and are released."""
    import bot.files
    import inbox.web
    import ordersvc.api
    import ordersvc.webhooks
    from bot.connectors import build_connectors
    from bot.forget import ErasureWatch
    from bot.pipeline import Pipeline
    from inbox import sla
    from inbox.actions.message_record_group import record_in_groups
    from inbox.actions.shipment_notify import shipment_notify, shipment_notify_many
    from inbox.alerts.runner import AlertRunner
    from inbox.channels import SenderRegistry
    from inbox.events import EventBus
    from inbox.outbox import OutboxDispatcher
    from inbox.privacy import shopify_privacy_handlers
    from inbox.proactive import ProactiveJob
    from inbox.replies import configure_overrides
    from inbox.worker import InboundWorker
    from shopdesk.cluster import Leadership, NodeAffinity, PgNotifyFanout, asyncpg_dsn, is_postgres
    from shopdesk.logs import access_log_middleware, request_middleware
    from shopdesk.metrics import CountingSenders, Metrics, enable_multiprocess, multiprocess_dir, setup_metrics

    settings.ensure_secret_key()
    engine = engine or create_engine(settings.database_url, **settings.engine_options())
    sessions = session_maker(engine)
    bus = EventBus()
    shared_dir = settings.metrics_dir or (Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
                                          if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else None)
    if shared_dir is not None and multiprocess_dir() != shared_dir:
        enable_multiprocess(shared_dir)
    metrics = Metrics()
    senders: SenderRegistry = CountingSenders(metrics)
    runtime = Runtime(settings=settings, engine=engine, sessions=sessions, bus=bus, senders=senders)
    override_dir = settings.data_dir / "replies"
    configure_overrides(override_dir if override_dir.is_dir() else None)

    # outermost first: the access log and the metrics see the final answer, 500s included
    access = [access_log_middleware] if settings.access_log else []
    app = web.Application(client_max_size=1024**2,
                          middlewares=[request_middleware, *access, metrics.middleware, json_errors])
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    token = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else None
    setup_metrics(app, metrics, sessions, token or None)

    runtime.pipeline = Pipeline(sessions=sessions, bus=bus, settings=settings)
    runtime.pipeline.on_turn = metrics.on_turn
    # micro-batches: the ready messages of different conversations understood and committed
    # together (group commit), on both databases. ONE batch at a time by default, and the messages
    # that arrive meanwhile wait in the worker and form the next batch together: SQLite has one
    # connection, so a second batch could only wait for it (widget closed loop: 11 -> 16 messages per
    # batch, server CPU per message 0.92-1.08 -> 0.85 ms; tests.bench.per_message); on PostgreSQL a
    # batch's fixed cost (its round trips and commit) is most of a message's, so one batch at a time
    # is cheaper too (settings.bot_batches). A batch holds a pooled connection for all its turns; at
    # most half the pool is given to batches, so that webhooks and the outbox (claims, "sent" marks,
    # lease renewals) never wait for a connection behind them: a reply sent whose mark waits is one
    # that a crash would send again.
    batches = 1 if settings.is_sqlite else max(1, min(settings.bot_batches, settings.db_pool_size // 2))
    runtime.worker = InboundWorker(sessions, runtime.pipeline.process, ready=runtime.bot_ready,
                                   batch=runtime.pipeline.process_many, concurrency=batches)
    if not is_postgres(settings.database_url):
        record_in_groups(sessions)  # customer messages arriving together: one commit (message_record_group)
    dsn = asyncpg_dsn(settings.database_url) if is_postgres(settings.database_url) else None
    runtime.fanout = PgNotifyFanout(dsn, bus) if dsn else None
    # several processes: a reply is sent by the process that wrote it (shopdesk.cluster.NodeAffinity)
    runtime.affinity = NodeAffinity(runtime.fanout.origin) if runtime.fanout is not None else None
    # the backstop outlasts the senders' own timeouts (Telegram's read timeout, pacing waits)
    runtime.dispatcher = OutboxDispatcher(sessions, senders, bus, send_timeout=settings.telegram_read_timeout + 60,
                                          concurrency=settings.outbox_concurrency, affinity=runtime.affinity)
    runtime.pipeline.on_commit = runtime.dispatcher.wake  # the replies just committed: claim them now
    if settings.outbox_born_claimed:  # ... or send them without a claim (inbox.outbox_handoff)
        runtime.pipeline.handoff = runtime.dispatcher
    if runtime.fanout is not None and runtime.affinity is not None:
        runtime.affinity.install(engine)
        runtime.affinity.follow(bus)
        runtime.affinity.wake = runtime.dispatcher.wake
        runtime.affinity.on_node_gone += [runtime.dispatcher.wake, runtime.worker.sweep]
        runtime.fanout.on_remote = runtime.affinity.on_remote
    runtime.leadership = Leadership(dsn)
    runtime.alerts = AlertRunner(sessions, timezone=settings.shop_timezone, should_run=runtime.leadership)
    runtime.pipeline.should_run_periodic = runtime.leadership
    sla.set_default_timezone(settings.shop_timezone)
    runtime.sla = sla.SlaJob(sessions, should_run=runtime.leadership)

    zone, language = settings.shop_timezone, settings.default_language
    runtime.proactive = ProactiveJob(
        sessions, functools.partial(shipment_notify, shop_timezone=zone, default_language=language),
        notify_many=functools.partial(shipment_notify_many, shop_timezone=zone, default_language=language),
        chunk=100)

    async def on_order_change(event: str, order_id: int) -> None:
        if event == "shipment.updated":
            runtime.proactive.wake()  # the customer's update was written with the change: send it now
        await runtime.pipeline.on_order_change(event, order_id)

    async def on_inbound(result: Any) -> None:
        if not result.duplicate:
            runtime.worker.submit(result.message_id, result.conversation_id)

    bot.files.setup(app, sessions, settings.secret_key_bytes(), settings.shop_name, settings.shop_timezone)
    ordersvc.api.setup(app, sessions)
    ordersvc.webhooks.setup(app, sessions, lambda: _shopify_secrets(settings), on_change=on_order_change,
                            privacy=shopify_privacy_handlers(settings.files_dir),
                            concurrency=settings.webhook_concurrency)
    inbox.web.setup(
        app,
        sessions=sessions,
        bus=bus,
        config=inbox.web.WebConfig(
            secret_key=settings.secret_key_bytes(),
            public_url=settings.public_url,
            shop_name=settings.shop_name,
            max_message_chars=settings.max_message_chars,
            widget_burst=settings.widget_burst,
            widget_rate=settings.widget_per_second,
            reopen_days=settings.reopen_days,
            shop_timezone=settings.shop_timezone,
            default_language=settings.default_language,
            secure_cookies=settings.public_url.startswith("https://"),
            trusted_proxies=settings.trusted_proxies,
            translate_url=settings.translate_url,
            translate_api_key=settings.translate_api_key.get_secret_value() if settings.translate_api_key else None,
        ),
        senders=senders,
        on_inbound=metrics.count_inbound("webchat", on_inbound),
    )
    # only the Telegram connector records customer messages (Slack carries agents' replies)
    runtime.connectors = build_connectors(app, settings=settings, sessions=sessions, bus=bus, senders=senders,
                                          on_inbound=metrics.count_inbound("telegram", on_inbound),
                                          telegram_polling=telegram_polling)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if migrate_on_start:
            await migrate(engine)
        await _ensure_analytics_rollup(sessions, settings.shop_timezone)
        if runtime.fanout is not None:
            await runtime.fanout.start()
        if runtime.affinity is not None:
            await runtime.affinity.start(sessions)
        await runtime.leadership.start()
        for connector in runtime.connectors:
            await connector.start()
        if sole_server:
            await runtime.dispatcher.release_claims()
        runtime.dispatcher.start()
        await runtime.worker.start()
        # Load (or, on a fresh machine, train: a few seconds) the language models in a thread
        # while the server already takes webhooks and chats: messages are recorded and wait in
        # the worker until the bot can read them; the loop never blocks.
        runtime.background.append(asyncio.create_task(_start_bot(runtime), name="bot-start"))
        runtime.proactive.start()
        runtime.background.append(asyncio.create_task(runtime.pipeline.run_periodic(), name="periodic"))
        # every process: an erasure (here, in another process or from the CLI) empties the bot's
        # in-memory caches of customers' texts within ErasureWatch's interval (bot.forget)
        runtime.background.append(asyncio.create_task(ErasureWatch(sessions).run(), name="erasure-watch"))
        runtime.alerts.start()
        runtime.sla.start()
        runtime.trimmer.start()
        try:
            yield
        finally:
            await runtime.trimmer.stop()
            for task in runtime.background:
                task.cancel()
            await asyncio.gather(*runtime.background, return_exceptions=True)
            await runtime.proactive.stop()
            await runtime.alerts.stop()
            await runtime.sla.stop()
            await runtime.worker.stop()
            await runtime.dispatcher.stop()
            for connector in reversed(runtime.connectors):
                await connector.stop()
            await runtime.leadership.stop()
            if runtime.affinity is not None:
                await runtime.affinity.stop()
            if runtime.fanout is not None:
                await runtime.fanout.stop()
            await engine.dispose()

    app.cleanup_ctx.append(lifecycle)
    return app


def _shopify_secrets(settings: Settings) -> list[str]:
    return [
        s.get_secret_value()
        for s in (settings.shopify_webhook_secret, settings.shopify_webhook_secret_previous)
        if s is not None and s.get_secret_value()
    ]


class SecondServer(RuntimeError):
    """Another ``shopdesk serve`` already runs on this SQLite file."""


def claim_sqlite_server(database_url: str) -> IO[bytes] | None:
    """One server process per SQLite file: SQLite is the one-process embedded default (the
    live sockets, the outbox and the worker assume they are alone, and the loop would wait in
    SQLite's busy handler for another server's writes). Holds an exclusive lock on
    ``<file>.serve.lock`` for the life of the process (the OS drops it if the process dies);
    the CLI's short commands are not affected. Returns the open lock file, or None for
    PostgreSQL and in-memory databases. Raises :class:`SecondServer` with a clear message."""
    if not database_url.startswith("sqlite"):
        return None
    path = database_url.split("///", 1)[-1]
    if not path or path == ":memory:":
        return None
    lock_path = Path(path).with_name(Path(path).name + ".serve.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SecondServer(
            f"another shopdesk server is already running on the SQLite database {path}. SQLite serves one "
            "process; stop the other one, or use PostgreSQL (SHOPDESK_DATABASE_URL=postgresql+asyncpg://…) "
            "to run several processes."
        ) from None
    return handle


async def serve(settings: Settings, *, host: str | None = None, port: int | None = None,
                telegram_polling: bool = False) -> None:
    from shopdesk.heap import settle_when
    from shopdesk.logs import configure_logging

    configure_logging(settings.log_level)
    guard = claim_sqlite_server(settings.database_url)
    app = build_app(settings, telegram_polling=telegram_polling, sole_server=guard is not None)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host = host or settings.host
    port = port or settings.port
    site = web.TCPSite(runner, host, port)
    await site.start()
    # once the language models are in, freeze what lives for the whole process (shopdesk.heap)
    settling = asyncio.get_running_loop().create_task(settle_when(app[RUNTIME].bot_ready), name="heap-settle")
    print(f"Shopdesk is serving on http://{host}:{port}  (inbox: /inbox  shop with chat widget: /shop)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        settling.cancel()
        await runner.cleanup()
        if guard is not None:
            guard.close()
