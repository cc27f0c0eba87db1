"""python-telegram-bot's request backend on aiohttp (``SHOPDESK_TELEGRAM_HTTP_CLIENT=aiohttp``, the default).

PTB talks to the Bot API through a :class:`telegram.request.BaseRequest`; it ships one on
httpx (``HTTPXRequest``), and any other asyncio HTTP client may implement the interface. Every
reply the outbox sends is one Bot API request, and measured per send (tests/bench, 16 sends in
flight, loopback) httpx's pool costs about ten times the CPU of aiohttp's: httpcore walks every
pooled connection, with a ``getpeername`` and a ``poll`` each, twice per request. The server
already runs on aiohttp, so this backend keeps PTB (its methods, types and error mapping) and
gives it aiohttp's connection pool.

Behaviour kept from ``HTTPXRequest``: the same pool size and keep-alive (``http_limits``'s
settings), connect and read timeouts; a connect timeout (including the wait for a free pooled
connection) means the request was not sent and is raised as :class:`telegram.error.TimedOut`
*from* ``aiohttp.ConnectionTimeoutError`` (``TelegramSender`` retries it); any other timeout is a
``TimedOut`` whose outcome is unknown; other client errors are ``NetworkError``\\ s naming only the
exception class (an aiohttp message may hold the URL, and the URL holds the bot token). aiohttp
has no write timeout; PTB's ``write_timeout`` is ignored.

A request without files is sent as PTB's ``RequestData.json_payload`` (``application/json``, which
the Bot API takes for every method except uploads) rather than as an urlencoded form: aiohttp
builds a ``FormData`` for a ``dict`` body, which cost about a fifth of the client's CPU per send.
Requests with files stay ``multipart/form-data``. The ``ClientTimeout`` of each combination of
timeouts is built once. The session keeps no cookies (``DummyCookieJar``; the Bot API sets none).
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import certifi
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = ["AiohttpRequest"]


def _chosen(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


class AiohttpRequest(BaseRequest):
    """A PTB request backend on one :class:`aiohttp.ClientSession` (built in the running loop by
    ``initialize`` or the first request, and again after ``shutdown``)."""

    __slots__ = ("_session", "_pool_size", "_keepalive", "_read_timeout", "_connect_timeout", "_pool_timeout",
                 "_timeouts")

    #: the Content-Type of a request without files (its body is PTB's ``json_payload``)
    _JSON_HEADERS = {"Content-Type": "application/json"}

    def __init__(self, *, connection_pool_size: int, keepalive_seconds: float, read_timeout: float | None,
                 connect_timeout: float | None = 10.0, pool_timeout: float | None = 1.0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._pool_size = max(1, int(connection_pool_size))
        self._keepalive = float(keepalive_seconds)
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._timeouts: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    @property
    def pool_size(self) -> int:
        return self._pool_size

    @property
    def keepalive_seconds(self) -> float:
        return self._keepalive

    def _build(self) -> aiohttp.ClientSession:
        # the certificate authorities httpx trusts (certifi, which it requires), also on hosts
        # without a system CA bundle (slim containers)
        tls = ssl.create_default_context(cafile=certifi.where())
        if self._keepalive > 0:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._pool_size,
                                             keepalive_timeout=self._keepalive, ssl=tls)
        else:  # a new connection for every request
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._pool_size,
                                             force_close=True, ssl=tls)
        # the Bot API sets no cookies: no jar to match against every request and answer
        return aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT},
                                     auto_decompress=True, trust_env=False, cookie_jar=aiohttp.DummyCookieJar())

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = self._build()

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            self._session = self._build()  # as HTTPXRequest, usable before initialize()
        read = _chosen(read_timeout, self._read_timeout)
        connect = _chosen(connect_timeout, self._connect_timeout)
        pool = _chosen(pool_timeout, self._pool_timeout)
        timeout = self._timeouts.get((read, connect, pool))
        if timeout is None:
            if len(self._timeouts) >= 16:  # per-call timeouts of many values: keep the cache small
                self._timeouts.clear()
            # aiohttp's "connect" covers the wait for a pooled connection and the TCP connect
            timeout = self._timeouts[(read, connect, pool)] = aiohttp.ClientTimeout(
                total=None, sock_read=read, sock_connect=connect,
                connect=None if connect is None or pool is None else connect + pool,
            )
        data: aiohttp.FormData | bytes | None = None
        headers: dict[str, Any] | None = None
        if request_data is not None:
            if request_data.contains_files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, part in request_data.multipart_data.items():
                    filename, content, *rest = part
                    mimetype = rest[0] if rest else None
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                data = form
            else:
                data = request_data.json_payload
                headers = self._JSON_HEADERS
        try:
            async with self._session.request(method, url, data=data, headers=headers, timeout=timeout) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as err:  # no connection: nothing was sent
            raise TimedOut("Connect timeout: the request was not sent to Telegram") from err
        except TimeoutError as err:  # aiohttp's read timeouts are TimeoutErrors too
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}") from err
