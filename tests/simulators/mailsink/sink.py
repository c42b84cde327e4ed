"""The mail sink: an SMTP server (aiosmtpd) keeping every message, and a small HTTP API over them.

Tests and the demo check mails the way a person would read them: to whom, subject, body. SMTP
is real (aiosmtpd on a TCP port, plain, no STARTTLS), so the sender's SMTP client, its
envelope and its message all go through the protocol. Kept in memory, in arrival order.

HTTP (aiohttp, like the other simulators):

| route | what |
| --- | --- |
| `GET /_sim/messages[?to=ADDRESS]` | `{"messages": [{"mail_from", "rcpt_tos", "from", "to", "subject", "message_id", "body", "received_at"}]}` |
| `DELETE /_sim/messages` | forget every message |
| `POST /_sim/faults` | `{"count": N, "code": 451}`: refuse the next N messages with that SMTP code (4xx: try later, 5xx: never) |
| `GET /livez` | 200 |
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.simulators.common import SimulatorServer


@dataclass
class _Fault:
    count: int
    code: int


@dataclass
class SinkState:
    """What the sink received, and the refusals queued for the next messages."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    refused: int = 0

    def take_fault(self) -> int | None:
        while self.faults and self.faults[0].count <= 0:
            self.faults.pop(0)
        if not self.faults:
            return None
        self.faults[0].count -= 1
        return self.faults[0].code


class _Handler:
    """aiosmtpd's handler: each message's DATA, kept or refused."""

    def __init__(self, state: SinkState):
        self._state = state

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        code = self._state.take_fault()
        if code is not None:
            self._state.refused += 1
            return f"{code} {'4.3.0 try again later' if code < 500 else '5.7.1 refused'} (mail sink fault)"
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        self._state.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "from": str(message.get("From", "")),
                "to": str(message.get("To", "")),
                "subject": str(message.get("Subject", "")),
                "message_id": str(message.get("Message-ID", "")),
                # Line ends as the sender wrote them; SMTP carries CRLF.
                "body": body.get_content().replace("\r\n", "\n") if body is not None else "",
                "received_at": datetime.now(UTC).isoformat(),
            }
        )
        return "250 Message accepted for delivery"


def create_app(state: SinkState) -> web.Application:
    async def messages(request: web.Request) -> web.Response:
        to = request.query.get("to")
        found = [m for m in state.messages if to is None or to in m["rcpt_tos"]]
        return web.json_response({"messages": found})

    async def forget(request: web.Request) -> web.Response:
        state.messages.clear()
        return web.json_response({"messages": []})

    async def faults(request: web.Request) -> web.Response:
        body = await request.json()
        count, code = body.get("count", 1), body.get("code", 451)
        if not isinstance(count, int) or not isinstance(code, int) or not 400 <= code <= 599:
            return web.json_response({"message": "count must be a number, code an SMTP code 400-599"}, status=400)
        state.faults.append(_Fault(count, code))
        return web.json_response({"queued": count, "code": code})

    async def livez(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/_sim/messages", messages)
    app.router.add_delete("/_sim/messages", forget)
    app.router.add_post("/_sim/faults", faults)
    app.router.add_get("/livez", livez)
    return app


class MailSink:
    """The SMTP server and its HTTP API in this event loop; an async context manager.

    `smtp_port` and `http_url` are valid once started; `messages` is what arrived.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, http_port: int = 0):
        self.state = SinkState()
        self._host, self._port = host, port
        self._smtp: asyncio.Server | None = None
        self._http = SimulatorServer(create_app(self.state), host, http_port)
        self.smtp_port = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.state.messages

    @property
    def http_url(self) -> str:
        return self._http.base_url

    def fail_next(self, count: int, code: int = 451) -> None:
        """Refuse the next `count` messages with SMTP `code`."""
        self.state.faults.append(_Fault(count, code))

    async def start(self) -> MailSink:
        handler = _Handler(self.state)
        loop = asyncio.get_running_loop()
        self._smtp = await loop.create_server(lambda: SMTP(handler, hostname="mailsink"), self._host, self._port)
        self.smtp_port = self._smtp.sockets[0].getsockname()[1]
        await self._http.start()
        return self

    async def stop(self) -> None:
        """Stop both servers; safe twice."""
        await self._http.stop()
        server, self._smtp = self._smtp, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> MailSink:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
