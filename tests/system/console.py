"""The operator console as a process on a Stack's services, with staff to sign in as.

Each tenant gets two staff members: an operator who may act and fix mappings
(`staff_operator(tenant)`, "jane@<tenant>.example") and a viewer who may only look
("viewer@<tenant>.example"). Passwords are fresh per stack (`password(name)`). The console calls
the services as the stack's `operator-console` caller, which has the delegate role.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from typing import TYPE_CHECKING

import httpx

from libs.cli.connect import ADDRESSES
from operator_console.staff import OPERATOR, WRITE, hash_password

if TYPE_CHECKING:
    from tests.system.stack import Stack


def staff_operator(tenant_id: str) -> str:
    return f"jane@{tenant_id}.example"


def staff_viewer(tenant_id: str) -> str:
    return f"viewer@{tenant_id}.example"


class ConsoleProcess:
    """`python -m operator_console` for one stack; `url` is where it answers once started."""

    def __init__(self, stack: Stack, *, frame_ancestors: str = "", port: int | None = None):
        from tests.system.stack import CONSOLE_CALLER, _base_env, _terminate, free_port

        self._stack = stack
        self._terminate = _terminate
        self._base_env = _base_env
        self.port = port or free_port()
        self.tenants = list(stack.tenants)
        self.url = f"http://127.0.0.1:{self.port}"
        self.embed_secret = secrets.token_urlsafe(32)
        self._passwords: dict[str, str] = {}
        self.log_path = stack.run_dir / "logs" / "operator_console.log"
        self.env = {
            "ORDERSYNC_HTTP_PORT": str(self.port),
            "ORDERSYNC_METRICS_PORT": str(free_port()),
            "ORDERSYNC_CONSOLE_STAFF_FILE": str(self._write_staff_file()),
            "ORDERSYNC_CONSOLE_SESSION_SECRET": "env:CONSOLE_SESSION_KEY",
            "CONSOLE_SESSION_KEY": secrets.token_urlsafe(32),
            "ORDERSYNC_CONSOLE_EMBED_SECRET": "env:CONSOLE_EMBED_KEY",
            "CONSOLE_EMBED_KEY": self.embed_secret,
            "ORDERSYNC_CONSOLE_GRPC_TOKEN": stack.token(CONSOLE_CALLER),
            "ORDERSYNC_CONSOLE_FRAME_ANCESTORS": frame_ancestors,
            "ORDERSYNC_CONSOLE_COOKIE_SECURE": "false",  # plain HTTP on loopback
            "PYTHONUNBUFFERED": "1",
            **{variable: stack.grpc_address(service.replace("-", "_")) for service, (variable, _) in ADDRESSES.items()},
        }
        if stack.trace_file:
            self.env["ORDERSYNC_TRACE_FILE"] = str(stack.trace_file)
        self._process: asyncio.subprocess.Process | None = None

    def password(self, name: str) -> str:
        return self._passwords[name]

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _write_staff_file(self):
        lines = []
        for tenant_id in self._stack.tenants:
            for name, roles in ((staff_operator(tenant_id), [OPERATOR, WRITE]), (staff_viewer(tenant_id), [])):
                self._passwords[name] = secrets.token_urlsafe(12)
                lines += [
                    f'[staff."{name}"]',
                    f'tenant = "{tenant_id}"',
                    f'password = "{hash_password(self._passwords[name])}"',
                    f"roles = {roles!r}".replace("'", '"'),
                    "",
                ]
        path = self._stack.run_dir / "console-staff.toml"
        path.write_text("\n".join(lines))
        return path

    async def start(self, timeout_s: float = 30.0) -> None:
        log = open(self.log_path, "ab")  # noqa: ASYNC230, SIM115 - handed to the child process
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "operator_console", env={**self._base_env(), **self.env}, stdout=log, stderr=log
        )
        log.close()
        deadline = asyncio.get_running_loop().time() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self._process.returncode is not None:
                    raise RuntimeError(f"the console exited with {self._process.returncode}; see {self.log_path}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"the console was not ready after {timeout_s} s; see {self.log_path}")
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self._process is not None:
            await self._terminate(self._process)
            self._process = None
