"""SHOPDESK_TRUSTED_PROXIES: forwarded client addresses and schemes count only from trusted peers
(inbox.web.proxies), and the login throttle and session cookie use what they say."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

from inbox.web.proxies import TrustedProxies, parse_trusted, trusted_proxies_middleware
from shopdesk.settings import SettingsError, load_settings
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    PASSWORD,
    add_agent,
    build_web_app,
    csrf_from,
    fast_hashing,
    make_config,
)

# the test client connects from 127.0.0.1
LOOPBACK_PROXY = "127.0.0.1"


def resolve(trusted: str, peer: str, **headers: str) -> tuple[str | None, str | None]:
    fixed = {k.replace("_", "-"): v for k, v in headers.items()}
    return TrustedProxies(parse_trusted(trusted)).resolve(peer, CIMultiDict(fixed))


# --------------------------------------------------------------------------- the rule


def test_untrusted_peer_headers_are_ignored() -> None:
    assert resolve("", "203.0.113.9", X_Forwarded_For="1.2.3.4") == (None, None)
    assert resolve("10.0.0.0/8", "203.0.113.9", X_Forwarded_For="1.2.3.4", X_Forwarded_Proto="https") == (None, None)
    assert resolve("10.0.0.0/8", "203.0.113.9", Forwarded="for=1.2.3.4;proto=https") == (None, None)


def test_trusted_peer_gives_the_rightmost_untrusted_address() -> None:
    # the client wrote "6.6.6.6" itself; nginx appended the address it saw
    assert resolve("10.0.0.5", "10.0.0.5", X_Forwarded_For="6.6.6.6, 198.51.100.7") == ("198.51.100.7", None)
    # two proxies in a row, both trusted (a network)
    assert resolve("10.0.0.0/8", "10.0.0.5", X_Forwarded_For="6.6.6.6, 198.51.100.7, 10.0.0.9",
                   X_Forwarded_Proto="https") == ("198.51.100.7", "https")
    # every hop trusted: the leftmost
    assert resolve("10.0.0.0/8", "10.0.0.5", X_Forwarded_For="10.1.1.1, 10.0.0.9") == ("10.1.1.1", None)
    # garbage stops the walk at the last trusted hop, never beyond
    assert resolve("10.0.0.0/8", "10.0.0.5", X_Forwarded_For="6.6.6.6, nonsense, 10.0.0.9") == ("10.0.0.9", None)
    # a scheme other than http/https is ignored
    assert resolve("10.0.0.5", "10.0.0.5", X_Forwarded_For="198.51.100.7", X_Forwarded_Proto="gopher") == \
        ("198.51.100.7", None)


def test_forwarded_header_rfc7239() -> None:
    assert resolve("10.0.0.5", "10.0.0.5", Forwarded='for=6.6.6.6, for="[2001:db8::7]:4711";proto=https') == \
        ("2001:db8::7", "https")
    assert resolve("10.0.0.5", "10.0.0.5", Forwarded="for=198.51.100.7:1234;proto=http;by=10.0.0.5") == \
        ("198.51.100.7", "http")
    # Forwarded wins over X-Forwarded-For when both are there
    assert resolve("10.0.0.5", "10.0.0.5", Forwarded="for=198.51.100.7",
                   X_Forwarded_For="6.6.6.6") == ("198.51.100.7", None)
    assert resolve("10.0.0.5", "10.0.0.5", Forwarded="for=unknown") == (None, None)


def test_setting_is_validated() -> None:
    assert load_settings(trusted_proxies=" 10.0.0.1 ; 192.168.0.0/16,::1 ").trusted_proxies == \
        "10.0.0.1, 192.168.0.0/16, ::1"
    assert load_settings().trusted_proxies == ""
    with pytest.raises(SettingsError, match="SHOPDESK_TRUSTED_PROXIES"):
        load_settings(trusted_proxies="10.0.0.1, proxy.example")


# --------------------------------------------------------------------------- in the app


async def _echo_app(trusted: str) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"remote": request.remote, "scheme": request.scheme, "secure": request.secure})

    app = web.Application(middlewares=[trusted_proxies_middleware(TrustedProxies(parse_trusted(trusted)))])
    app.router.add_get("/", echo)
    return app


async def test_middleware_spoofed_header_from_untrusted_peer_is_ignored(aiohttp_client: Any) -> None:
    client = await aiohttp_client(await _echo_app("10.9.9.9"))
    seen = await (await client.get("/", headers={"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"})).json()
    assert seen == {"remote": "127.0.0.1", "scheme": "http", "secure": False}


async def test_middleware_trusted_proxy_is_honoured(aiohttp_client: Any) -> None:
    client = await aiohttp_client(await _echo_app(LOOPBACK_PROXY))
    seen = await (await client.get("/", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7",
                                                  "X-Forwarded-Proto": "https"})).json()
    assert seen == {"remote": "198.51.100.7", "scheme": "https", "secure": True}


async def _fail_logins(client: Any, address: str, email: str, times: int) -> list[int]:
    page = await client.get("/login", headers={"X-Forwarded-For": address})
    token = csrf_from(await page.text())
    statuses = []
    for _ in range(times):
        resp = await client.post("/login", headers={"X-Forwarded-For": address},
                                 data={"email": email, "password": "guess-guess", "csrf_token": token})
        statuses.append(resp.status)
    return statuses


async def _sign_in(client: Any, address: str, email: str) -> int:
    page = await client.get("/login", headers={"X-Forwarded-For": address})
    token = csrf_from(await page.text())
    resp = await client.post("/login", headers={"X-Forwarded-For": address}, allow_redirects=False,
                             data={"email": email, "password": PASSWORD, "csrf_token": token})
    return resp.status


async def test_failed_logins_behind_the_proxy_do_not_lock_out_other_clients(aiohttp_client: Any,
                                                                          sessions: Any) -> None:
    await add_agent(sessions, "bo@shop.test", name="Bo")
    web_app = build_web_app(sessions, config=make_config(trusted_proxies=LOOPBACK_PROXY))
    client = await aiohttp_client(web_app.app)
    # five failures from one client behind the proxy (different emails: the address key counts)
    assert await _fail_logins(client, "198.51.100.7", "spray@shop.test", 1) == [401]
    for i in range(4):
        await _fail_logins(client, "198.51.100.7", f"spray{i}@shop.test", 1)
    assert await _sign_in(client, "198.51.100.7", "bo@shop.test") == 429  # that client is throttled
    # another client behind the same proxy signs in
    assert await _sign_in(client, "198.51.100.8", "bo@shop.test") == 303


async def test_without_trusted_proxies_a_spoofed_header_does_not_escape_the_throttle(aiohttp_client: Any,
                                                                                    sessions: Any) -> None:
    await add_agent(sessions, "bo@shop.test", name="Bo")
    client = await aiohttp_client(build_web_app(sessions).app)  # SHOPDESK_TRUSTED_PROXIES unset
    for i in range(5):
        await _fail_logins(client, f"198.51.100.{i}", f"spray{i}@shop.test", 1)
    assert await _sign_in(client, "198.51.100.99", "bo@shop.test") == 429


async def test_session_cookie_is_secure_when_the_trusted_proxy_says_https(aiohttp_client: Any, sessions: Any) -> None:
    await add_agent(sessions, "bo@shop.test", name="Bo")
    client = await aiohttp_client(build_web_app(sessions, config=make_config(trusted_proxies=LOOPBACK_PROXY)).app)
    page = await client.get("/login", headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
    assert "secure" in page.headers.get("Set-Cookie", "").lower()
    plain = await aiohttp_client(build_web_app(sessions).app)
    page = await plain.get("/login", headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
    assert "secure" not in page.headers.get("Set-Cookie", "").lower()


async def test_websockets_work_through_the_middleware(aiohttp_client: Any) -> None:
    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(str(request.remote))
        await ws.close()
        return ws

    app = web.Application(middlewares=[trusted_proxies_middleware(TrustedProxies(parse_trusted(LOOPBACK_PROXY)))])
    app.router.add_get("/ws", socket)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws", headers={"X-Forwarded-For": "198.51.100.7"}) as ws:
        assert await ws.receive_str() == "198.51.100.7"
