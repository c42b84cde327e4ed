"""Run compliance routing until SIGTERM: `python -m compliance_routing`."""

import asyncio

from compliance_routing.app import build
from compliance_routing.config import RoutingSettings
from libs.platform.service import run_until_signalled


async def main() -> None:
    await run_until_signalled(await build(RoutingSettings.from_env()))


if __name__ == "__main__":
    asyncio.run(main())
