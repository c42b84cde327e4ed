"""Fixtures: the real service on a real Postgres (a schema per test), and stubs for its callers."""

from __future__ import annotations

import grpc
import pytest_asyncio

from carrier_mapping.testing import CALLERS, Stubs, running_service

REFRESH_S = 5.0  # long on purpose: changes must arrive by NOTIFY, not by the periodic reload


@pytest_asyncio.fixture
async def service(infra):
    async with running_service(infra.pg_dsn, CALLERS, refresh_s=REFRESH_S) as running:
        yield running


@pytest_asyncio.fixture
async def stubs(service):
    async with grpc.aio.insecure_channel(service.address) as channel:
        yield Stubs(channel)
