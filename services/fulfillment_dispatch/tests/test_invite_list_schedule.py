"""The invite-list mirror's schedule on real Postgres with two vendors over real HTTP: on by default
(an hour), off at 0; two replicas mirror each directory account once per interval; a vendor down
is kept as the account's last error and retried sooner, and the next pass completes the mirror."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from fulfillment_dispatch.config import DispatchSettings
from fulfillment_dispatch.invite_lists import InviteListMirror, InviteListScheduler
from libs.connectors.base.contract import ClientResources
from libs.platform.accounts import AccountClients
from services.fulfillment_dispatch.tests.directory_vendors import start_vendors
from services.fulfillment_dispatch.tests.test_config import env  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
HOUR = 3600.0


async def test_the_mirror_runs_hourly_unless_its_interval_is_changed_or_zero(env):  # noqa: F811
    assert DispatchSettings.from_env().invite_list_sync_s == HOUR
    env.setenv("ORDERSYNC_DISPATCH_INVITE_LIST_SYNC_S", "900")
    assert DispatchSettings.from_env().invite_list_sync_s == 900.0
    env.setenv("ORDERSYNC_DISPATCH_INVITE_LIST_SYNC_S", "0")
    assert DispatchSettings.from_env().invite_list_sync_s == 0.0


@pytest_asyncio.fixture
async def vendors():
    started = await start_vendors()
    started.directories["acme"].types.update({"T1": "Club Member", "T2": "Wine Club Gold"})
    started.directories["globex"].types.update({"G1": "Trade"})
    yield started
    await started.stop()


def replica(pool, vendors, owner: str, accounts: AccountClients | None = None) -> InviteListScheduler:
    mirror = InviteListMirror(pool, "fulfillment_dispatch", accounts or vendors.accounts)
    return InviteListScheduler(pool, vendors.tenants, mirror, vendors.registry, interval_s=HOUR, owner=owner)


async def schedules(pool) -> dict[str, tuple]:
    rows = await pool.fetch(
        "SELECT tenant_id, provider_account, provider, failures, last_error, last_synced_at IS NOT NULL AS synced,"
        " next_sync_at > now() + interval '50 minutes' AS next_in_an_hour FROM invite_list_schedules"
    )
    return {
        f"{r['tenant_id']}/{r['provider_account']}": (
            r["provider"], r["failures"], r["last_error"], r["synced"], r["next_in_an_hour"]
        )
        for r in rows
    }  # fmt: skip


@pytest.mark.integration
async def test_two_replicas_mirror_each_directory_account_once(pool, vendors):
    # The second replica has clients of its own, as another process would.
    other = AccountClients(vendors.tenants, vendors.registry, ClientResources(max_concurrency=4))
    try:
        passes = await asyncio.gather(
            replica(pool, vendors, "r1").run_once(), replica(pool, vendors, "r2", other).run_once()
        )
    finally:
        await other.stop()

    # acme/club and globex/club; tenant "plain" has no directory, so nothing of it is scheduled.
    assert sum(passes) == 2
    assert sorted(vendors.lists["acme"].writes) == ["put T1 Club Member", "put T2 Wine Club Gold"]
    assert vendors.lists["globex"].writes == ["put G1 Trade"]
    assert await schedules(pool) == {
        "acme/club": ("clubdirectory", 0, "", True, True),
        "globex/club": ("clubdirectory", 0, "", True, True),
    }

    assert await replica(pool, vendors, "r1").run_once() == 0  # nothing is due again before the interval
    assert len(vendors.lists["acme"].writes) == 2


@pytest.mark.integration
async def test_a_vendor_down_is_kept_as_the_accounts_error_and_the_next_pass_completes_the_mirror(pool, vendors):
    vendors.lists["globex"].down = True

    assert await replica(pool, vendors, "r1").run_once() == 2

    found = await schedules(pool)
    assert found["acme/club"] == ("clubdirectory", 0, "", True, True)
    provider, failures, error, synced, next_in_an_hour = found["globex/club"]
    assert (failures, synced, next_in_an_hour) == (1, False, False)  # retried sooner than the interval
    assert error.startswith(
        "invite lists of account 'store' from 'club' not mirrored: PROVIDER_UNAVAILABLE: listshop list_invite_lists: HTTP 503"
    )

    vendors.lists["globex"].down = False  # the outage ends; the retry comes due
    await pool.execute("UPDATE invite_list_schedules SET next_sync_at = now() WHERE tenant_id = 'globex'")

    assert await replica(pool, vendors, "r2").run_once() == 1
    assert vendors.lists["globex"].named() == {"Trade": "G1"}
    assert (await schedules(pool))["globex/club"] == ("clubdirectory", 0, "", True, True)
