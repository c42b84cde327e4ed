"""AiohttpTransport against a real local HTTP server: what goes on the wire, what comes back,
and, for each way a call can fail, whether HttpTransport may send it again."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from libs.connectors.base.aiohttp_transport import AiohttpTransport, httpx_errors
from libs.connectors.base.errors import Timeout, Unavailable
from libs.connectors.base.http import HttpTransport, RetryPolicy

pytestmark = pytest.mark.asyncio


class Server:
    """A vendor stand-in counting the requests it received, by path."""

    def __init__(self) -> None:
        self.received: dict[str, list[web.Request]] = {}
        self.bodies: dict[str, list[bytes]] = {}
        self.peers: dict[str, list[tuple]] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.setdefault(request.path, []).append(request)
        self.bodies.setdefault(request.path, []).append(body)
        assert request.transport is not None
        self.peers.setdefault(request.path, []).append(request.transport.get_extra_info("peername"))
        if request.path == "/orders":
            return web.json_response(
                {"id": 7, "echo": json.loads(body or b"null")}, status=201, headers={"Set-Cookie": "s=1"}
            )
        if request.path == "/slow":
            await asyncio.sleep(2)
            return web.json_response({})
        if request.path == "/hang-up":
            request.transport.close()  # read the request, then close without answering
            await asyncio.sleep(1)
            return web.json_response({})
        if request.path == "/gzip":
            return web.Response(body=gzip.compress(b'{"zipped": true}'), headers={"Content-Encoding": "gzip"})
        if request.path == "/redirect":
            raise web.HTTPFound("/orders")
        return web.json_response({"message": "no such thing"}, status=404)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    vendor = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", vendor.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as probe:  # a free port, as the simulators' tests take one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    vendor.url = f"http://127.0.0.1:{port}"
    yield vendor
    await runner.cleanup()


def client(url: str, **options) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=4)
    return httpx.AsyncClient(base_url=url, transport=AiohttpTransport(limits=limits), limits=limits, **options)


async def test_a_json_post_arrives_as_httpx_built_it_and_its_answer_reads_as_httpx_response(server):
    async with client(server.url, auth=httpx.BasicAuth("user", "secret"), headers={"tenant": "t1"}) as http:
        response = await http.post("/orders", json={"orderNumber": "A-1"}, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 201
    assert response.json() == {"id": 7, "echo": {"orderNumber": "A-1"}}
    assert response.reason_phrase == "Created"
    sent = server.received["/orders"][0]
    assert sent.headers["Authorization"] == httpx.BasicAuth("user", "secret")._auth_header
    assert sent.headers["tenant"] == "t1"
    assert sent.headers["Idempotency-Key"] == "k1"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(server.bodies["/orders"][0]) == {"orderNumber": "A-1"}


async def test_connections_are_reused_and_no_cookie_is_kept_by_the_transport(server):
    async with client(server.url) as http:
        for _ in range(3):
            assert (await http.post("/orders", json={})).status_code == 201
    assert len(set(server.peers["/orders"])) == 1  # one keep-alive connection for three sequential calls
    # httpx's own jar took the cookie and sends it back, exactly once: the session keeps none.
    assert [r.headers.get("Cookie") for r in server.received["/orders"]] == [None, "s=1", "s=1"]


async def test_a_gzipped_answer_is_decoded_once(server):
    async with client(server.url) as http:
        response = await http.get("/gzip")
    assert response.json() == {"zipped": True}


async def test_a_redirect_is_returned_not_followed_unless_httpx_is_told_to(server):
    async with client(server.url) as http:
        assert (await http.get("/redirect")).status_code == 302
        assert (await http.get("/redirect", follow_redirects=True)).status_code == 201


async def test_4xx_is_an_answer_not_an_error(server):
    async with client(server.url) as http:
        response = await http.get("/missing")
    assert response.status_code == 404
    assert response.json() == {"message": "no such thing"}


async def test_no_answer_within_the_read_timeout_is_a_read_timeout(server):
    async with client(server.url, timeout=httpx.Timeout(0.3)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/slow")


async def test_a_server_that_hangs_up_after_reading_the_request_is_a_protocol_error(server):
    async with client(server.url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/hang-up", json={})


async def test_a_refused_connection_is_a_connect_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here
    async with client(f"http://127.0.0.1:{port}") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("truncated"), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.InvalidURL("ftp://x"), httpx.UnsupportedProtocol),
        (TimeoutError(), httpx.ReadTimeout),
    ],
)
async def test_only_a_failure_to_connect_says_the_request_was_not_sent(failure, expected):
    request = httpx.Request("POST", "http://vendor.test/orders")
    with pytest.raises(httpx.HTTPError) as raised, httpx_errors(request):
        raise failure
    assert type(raised.value) is expected
    not_sent = isinstance(raised.value, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    assert not_sent == isinstance(failure, aiohttp.ConnectionTimeoutError)


# Through HttpTransport, which now sends with AiohttpTransport when no transport is given.


async def test_a_post_whose_answer_times_out_is_sent_once_and_raised(server):
    transport = HttpTransport(
        connector="vendor", base_url=server.url, timeout=httpx.Timeout(0.3), retry=RetryPolicy(base_delay_s=0)
    )
    async with transport:
        with pytest.raises(Timeout):
            await transport.request("POST", "/slow", json={}, operation="create_order")
    assert len(server.received["/slow"]) == 1  # the outcome is unknown: never sent twice


async def test_a_post_the_server_hung_up_on_is_sent_once_and_raised(server):
    async with HttpTransport(connector="vendor", base_url=server.url, retry=RetryPolicy(base_delay_s=0)) as transport:
        with pytest.raises(Unavailable, match="connection failed"):
            await transport.request("POST", "/hang-up", json={}, operation="create_order")
    assert len(server.received["/hang-up"]) == 1


async def test_a_get_whose_answer_times_out_is_retried(server):
    transport = HttpTransport(
        connector="vendor",
        base_url=server.url,
        timeout=httpx.Timeout(0.3),
        retry=RetryPolicy(max_attempts=2, base_delay_s=0),
    )
    async with transport:
        with pytest.raises(Timeout, match="after 2 attempt"):
            await transport.request("GET", "/slow", operation="get_order")
    assert len(server.received["/slow"]) == 2
