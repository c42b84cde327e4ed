"""Run order intake until SIGTERM: `python -m order_intake`."""

import asyncio

from libs.platform.service import run_until_signalled
from order_intake.app import build
from order_intake.config import IntakeSettings


async def main() -> None:
    await run_until_signalled(await build(IntakeSettings.from_env()))


if __name__ == "__main__":
    asyncio.run(main())
