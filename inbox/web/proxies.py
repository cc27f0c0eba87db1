"""Trusted reverse proxies: the real client address and scheme behind nginx, Caddy or a load balancer.

``SHOPDESK_TRUSTED_PROXIES`` lists the addresses or networks (``10.0.0.5``, ``10.0.0.0/8``,
``::1``) of the proxies in front of the server; by default none. :func:`trusted_proxies_middleware`
rewrites ``request.remote`` and ``request.scheme`` ONLY when the TCP peer is one of them:

* the client is found by walking the ``Forwarded`` header's ``for=`` values (RFC 7239; when it is
  absent, ``X-Forwarded-For``) from the right, skipping trusted hops; the first address that is
  not a trusted proxy is the client (a value a client wrote itself further left is never
  reached). When every hop is trusted the leftmost one is the client; an unreadable hop
  (``unknown``, an obfuscated name, garbage) stops the walk at the last trusted hop;
* the scheme is the ``proto=`` (else ``X-Forwarded-Proto``) value the nearest proxy added,
  ``http`` or ``https`` only.

From any other peer the headers are ignored: a client that talks to us directly and writes
``X-Forwarded-For: 1.2.3.4`` is still its own address. Everything downstream (the login
throttle, the sign-in log lines, ``request.secure`` for cookies) reads ``request.remote`` /
``request.scheme`` and so gets the real client.

Why not aiohttp-remotes: its ``XForwardedFiltered`` never checks the TCP peer (any client can
spoof the header), and its strict variants answer 400 to every request that does not come
through the exact configured chain of proxies (direct health checks, a second proxy path).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiohttp import hdrs, web

__all__ = ["TrustedProxies", "client_address", "parse_trusted", "trusted_proxies_middleware"]

log = logging.getLogger("inbox.web.proxies")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# one forwarded-pair of RFC 7239: token "=" ( token / quoted-string )
_PAIR = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,"\s]*)\s*')
_SCHEMES = frozenset({"http", "https"})
_MAX_HOPS = 32


def parse_trusted(values: str | Iterable[str] | None) -> tuple[IPNetwork, ...]:
    """``"10.0.0.1, 192.168.0.0/16"`` (or a list of such) → networks; ValueError names a bad entry."""
    if values is None:
        return ()
    items = values.replace(";", ",").split(",") if isinstance(values, str) else list(values)
    networks: list[IPNetwork] = []
    for raw in items:
        item = str(raw).strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def _address(value: str) -> IPAddress | None:
    """An address from a header value: ``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:80``, ``2001:db8::1``."""
    value = value.strip().strip('"').strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _forwarded(headers: Any) -> tuple[list[str], list[str]] | None:
    """(for= values, proto= values) of every ``Forwarded`` element, left to right; None when absent."""
    values = headers.getall(hdrs.FORWARDED, [])
    if not values:
        return None
    fors: list[str] = []
    protos: list[str] = []
    for header in values:
        for element in header.split(","):
            pairs = {}
            for part in element.split(";"):
                match = _PAIR.fullmatch(part) if part.strip() else None
                if match:
                    pairs[match.group(1).lower()] = _unquote(match.group(2))
            if not pairs:
                continue
            fors.append(pairs.get("for", ""))
            if "proto" in pairs:
                protos.append(pairs["proto"])
    return fors, protos


def _x_forwarded(headers: Any) -> tuple[list[str], list[str]]:
    fors = [v for header in headers.getall(hdrs.X_FORWARDED_FOR, []) for v in header.split(",")]
    protos = [v for header in headers.getall(hdrs.X_FORWARDED_PROTO, []) for v in header.split(",")]
    return fors, protos


class TrustedProxies:
    """Which peers may tell us the client's address and scheme."""

    def __init__(self, networks: Sequence[IPNetwork]) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address.version == net.version and address in net
                                           for net in self.networks)

    def resolve(self, peer: str | None, headers: Any) -> tuple[str | None, str | None]:
        """(client address, scheme) the headers say, or (None, None) when they do not count."""
        if not self.networks or peer is None or not self.trusts(_address(peer)):
            return None, None
        found = _forwarded(headers)
        fors, protos = found if found is not None else _x_forwarded(headers)
        fors = [f.strip() for f in fors if f.strip()][-_MAX_HOPS:]
        client: IPAddress | None = None
        for value in reversed(fors):
            address = _address(value)
            if address is None:
                break  # unreadable: the client is the last hop we could trust
            client = address
            if not self.trusts(address):
                break
        scheme = None
        if protos:
            nearest = protos[-1].strip().strip('"').lower()
            scheme = nearest if nearest in _SCHEMES else None
        return (str(client) if client is not None else None), scheme


def trusted_proxies_middleware(proxies: TrustedProxies) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware that applies :class:`TrustedProxies` (put it first in the chain)."""

    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        peer_host = peer[0] if isinstance(peer, (tuple, list)) and peer else None
        client, scheme = proxies.resolve(peer_host, request.headers)
        overrides: dict[str, Any] = {}
        if client is not None and client != request.remote:
            overrides["remote"] = client
        if scheme is not None and scheme != request.scheme:
            overrides["scheme"] = scheme
        if overrides:
            request = request.clone(**overrides)
        return await handler(request)

    return middleware


def client_address(request: web.Request) -> str:
    """The client's address (the trusted proxies' view when the middleware is installed)."""
    return request.remote or "unknown"
