"""Run the mail sink: `python -m tests.simulators.mailsink --port N [--http-port M] [--host H]`.

Prints `listening on http://<host>:<http port> smtp <host>:<smtp port>` once both are bound and
serves until SIGTERM or SIGINT. Port 0 picks a free one.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from tests.simulators.mailsink.sink import MailSink


async def _serve(host: str, port: int, http_port: int) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with MailSink(host, port, http_port) as sink:
        print(f"listening on {sink.http_url} smtp {host}:{sink.smtp_port}", flush=True)
        await stopping.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mailsink", description="Run the SMTP mail sink.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="SMTP port; 0 picks a free one")
    parser.add_argument("--http-port", type=int, default=0, help="HTTP port of /_sim/messages; 0 picks a free one")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.http_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
