"""Waits until a Kafka broker answers a metadata request; infra.sh's readiness probe."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError


async def wait_for_kafka(
    bootstrap: str,
    pid: int | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> dict:
    """Retry describe_cluster until it lists a broker; return the cluster description.

    Retries forever: bound it with asyncio.timeout. Each failed attempt's error goes to
    `on_error`. Raises RuntimeError at once if the broker process `pid` has exited (no point
    waiting a minute for a dead JVM).
    """
    while True:
        if pid is not None and not _alive(pid):
            raise RuntimeError(f"Kafka process {pid} exited before it answered")
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            if cluster.get("brokers"):
                return cluster
        except (KafkaError, OSError) as exc:
            if on_error is not None:
                on_error(exc)
        finally:
            await admin.close()
        await asyncio.sleep(0.5)


def _alive(pid: int) -> bool:
    # A dead JVM can stay an unreaped zombie for a while, and kill(pid, 0) succeeds on zombies.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        if os.path.isdir("/proc"):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _wait(bootstrap: str, seconds: float, pid: int | None) -> dict:
    errors: list[Exception] = []
    try:
        async with asyncio.timeout(seconds):
            return await wait_for_kafka(bootstrap, pid, errors.append)
    except TimeoutError:
        last = repr(errors[-1]) if errors else "none"
        raise TimeoutError(
            f"Kafka at {bootstrap} gave no metadata within {seconds:.0f} s (last error: {last})"
        ) from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--pid", type=int, help="broker process id: stop waiting if it exits")
    args = parser.parse_args()
    # Connection refusals are expected while the broker boots; the final error is printed below.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    try:
        cluster = asyncio.run(_wait(args.bootstrap, args.timeout, args.pid))
    except (TimeoutError, RuntimeError) as exc:
        print(f"wait_kafka: {exc}", file=sys.stderr)
        return 1
    print(f"wait_kafka: {args.bootstrap} answers, cluster {cluster.get('cluster_id')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
