"""Run fulfillment dispatch until SIGTERM: `python -m fulfillment_dispatch`."""

import asyncio

from fulfillment_dispatch.app import build
from fulfillment_dispatch.config import DispatchSettings
from libs.platform.service import run_until_signalled


async def main() -> None:
    await run_until_signalled(await build(DispatchSettings.from_env()))


if __name__ == "__main__":
    asyncio.run(main())
