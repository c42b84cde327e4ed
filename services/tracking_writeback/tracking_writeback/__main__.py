"""Run tracking writeback until SIGTERM: `python -m tracking_writeback`."""

import asyncio

from libs.platform.service import run_until_signalled
from tracking_writeback.app import build
from tracking_writeback.config import WritebackSettings


async def main() -> None:
    await run_until_signalled(await build(WritebackSettings.from_env()))


if __name__ == "__main__":
    asyncio.run(main())
