"""Run carrier mapping until SIGTERM: `python -m carrier_mapping`."""

import asyncio

from carrier_mapping.app import build
from carrier_mapping.config import CarrierMappingSettings
from libs.platform.service import run_until_signalled


async def main() -> None:
    await run_until_signalled(await build(CarrierMappingSettings.from_env()))


if __name__ == "__main__":
    asyncio.run(main())
