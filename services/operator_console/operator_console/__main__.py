"""Placeholder for `python -m operator_console`: only /livez and /readyz on ORDERSYNC_HTTP_PORT."""

import asyncio
import os
import signal

from aiohttp import web

from libs.platform.http_server import HttpServer


async def main() -> None:
    server = HttpServer(web.Application(), port=int(os.environ.get("ORDERSYNC_HTTP_PORT", "8090")))
    await server.start()
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stopped.set)
    await stopped.wait()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
