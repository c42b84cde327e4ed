"""Driving a CellarPass → VinSuite winery (e2e tests, the demo): the two simulated systems, as staff use them.

`Winery` books and edits reservations in CellarPass (its simulator's control API) and reads what
CellarPass shows of each (sync status, VinSuite's order id, the sync results posted). `Club`
reads the winery's VinSuite orders and members (its simulator's control API). `Hub` reads the
hub's records and acts as the tenant's operator through the services' gRPC APIs: intake records
with their rule failures and locked changes, pull cursors, sync now (and its dry run), journeys
and a retry in dispatch.
"""

from __future__ import annotations

from typing import Any

import grpc
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as admin_grpc
from ordersync.common.v1 import order_pb2
from ordersync.intake.v1 import intake_service_pb2 as intake_pb
from ordersync.intake.v1 import intake_service_pb2_grpc as intake_grpc

from libs.platform.testing import authorized
from tests.simulators.cellarpass import entry as cellarpass_entry
from tests.simulators.vinsuite import entry as vinsuite_entry
from tests.system.groupon_warehouse import eventually
from tests.system.journey import Journey, JourneyReader
from tests.system.stack import CLUB, READER, RESERVATIONS, Stack, TenantSpec

__all__ = ["Club", "Hub", "Winery", "eventually"]


class Winery:
    """One tenant's CellarPass account, simulated: reservations booked, edited and read back."""

    def __init__(self, stack: Stack, spec: TenantSpec):
        self.stack = stack
        self.spec = spec
        self.http = stack.http
        [account] = [a for a in stack.simulated_accounts("cellarpass") if a.tenant_id == spec.tenant_id]
        self.account_id = cellarpass_entry.account(account)["account_id"]
        self.base = f"{stack.sim_urls['cellarpass']}/_sim"
        self.api_key = spec.account(RESERVATIONS)["api_key"]

    async def book(self, **fields: Any) -> dict[str, Any]:
        """A reservation as CellarPass holds it (the simulator's defaults fill what is not given:
        a paid 2-guest Estate Tasting, SKU TAST-EST)."""
        [reservation] = await self.book_many([fields])
        return reservation

    async def book_many(self, reservations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = {"account_id": self.account_id, "reservations": reservations}
        response = await self.http.post(f"{self.base}/reservations", json=body)
        response.raise_for_status()
        return response.json()["reservations"]

    async def edit(self, reservation: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Change a reservation as CellarPass staff would (a refund, a cancellation)."""
        response = await self.http.patch(f"{self.base}/reservations/{reservation['reservationId']}", json=changes)
        response.raise_for_status()
        return response.json()

    async def mark_processed(self, reservation: dict[str, Any], external_order_id: str) -> None:
        """Mark a reservation Processed through CellarPass's API, as CellarPass's own VinSuite
        sync did for the reservations it sent before the hub took over."""
        response = await self.http.post(
            f"{self.stack.sim_urls['cellarpass']}/v1/reservations/{reservation['reservationId']}/sync-result",
            json={"success": True, "externalOrderId": external_order_id, "error": ""},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        response.raise_for_status()

    async def reservations(self) -> dict[str, dict[str, Any]]:
        """Every reservation of the account by id, with `syncStatus`, `externalOrderId`, `syncError`."""
        response = await self.http.get(f"{self.base}/reservations", params={"account_id": self.account_id})
        response.raise_for_status()
        return {r["reservationId"]: r for r in response.json()["reservations"]}

    async def shown(self, reservation: dict[str, Any]) -> dict[str, Any]:
        return (await self.reservations())[reservation["reservationId"]]

    async def synced(self, reservation: dict[str, Any], status: str = "Processed", timeout_s=90.0) -> dict[str, Any]:
        """The reservation once CellarPass shows the sync status `status`."""
        return await eventually(
            lambda: self.shown(reservation),
            lambda r: r["syncStatus"] == status,
            f"{reservation['reservationId']} {status} in CellarPass",
            timeout_s,
        )

    async def sync_results(self, reservation: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every sync-result call CellarPass received (of one reservation, when given), in order."""
        response = await self.http.get(f"{self.base}/sync-results", params={"account_id": self.account_id})
        response.raise_for_status()
        results = response.json()["sync_results"]
        if reservation is None:
            return results
        return [r for r in results if r["reservationId"] == reservation["reservationId"]]


class Club:
    """One tenant's VinSuite winery, simulated: its orders and members."""

    def __init__(self, stack: Stack, spec: TenantSpec):
        self.stack = stack
        self.spec = spec
        self.http = stack.http
        [account] = [a for a in stack.simulated_accounts("vinsuite") if a.tenant_id == spec.tenant_id]
        self.winery_id = vinsuite_entry.winery(account)["winery_id"]
        self.prefix = spec.account(CLUB).options.get("order_number_prefix", "CP-")
        self.base = f"{stack.sim_urls['vinsuite']}/_sim"

    def order_number(self, reservation: dict[str, Any]) -> str:
        """The VinSuite OrderNumber of a reservation: the prefix and its booking code."""
        return f"{self.prefix}{reservation['bookingCode']}"

    async def orders(self, reservation: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The winery's orders (under the reservation's order number, when given: more than one
        is a duplicate)."""
        params = {"winery_id": self.winery_id}
        if reservation is not None:
            params["order_number"] = self.order_number(reservation)
        response = await self.http.get(f"{self.base}/orders", params=params)
        response.raise_for_status()
        return response.json()["orders"]

    async def order(self, reservation: dict[str, Any], timeout_s: float = 90.0) -> dict[str, Any]:
        """The reservation's one VinSuite order, once it is there."""
        [created] = await eventually(
            lambda: self.orders(reservation),
            lambda found: len(found) == 1,
            f"{reservation['reservationId']} in VinSuite",
            timeout_s,
        )
        return created

    async def members(self) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.base}/wineries/{self.winery_id}/members")
        response.raise_for_status()
        return response.json()["members"]

    async def fault(self, method: str, **fault: Any) -> None:
        """A fault on one VinSuite method (`status`, `count`, `delay_s`, `after_create`)."""
        response = await self.http.post(f"{self.base}/faults", json={"route": method, **fault})
        response.raise_for_status()

    async def clear_faults(self) -> None:
        response = await self.http.delete(f"{self.base}/faults")
        response.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        response = await self.http.get(f"{self.base}/stats")
        response.raise_for_status()
        return response.json()


class Hub:
    """The hub's side of one CellarPass → VinSuite tenant, through the services' gRPC APIs.
    Use as an async context manager."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._reader = JourneyReader({name: stack.grpc_address(name) for name in stack.services}, stack.token(READER))

    def _channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            self._channels[service] = grpc.aio.insecure_channel(self.stack.grpc_address(service))
        return self._channels[service]

    async def __aenter__(self) -> Hub:
        await self._reader.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._reader.__aexit__(*exc)
        for channel in self._channels.values():
            await channel.close()

    def _intake(self, caller: str) -> intake_grpc.OrderIntakeServiceStub:
        stub = intake_grpc.OrderIntakeServiceStub(self._channel("order_intake"))
        return authorized(stub, self.stack.token(caller))

    async def journey(self, tenant_id: str, reservation: dict[str, Any]) -> Journey:
        return await self._reader.read(tenant_id, "cellarpass", str(reservation["reservationId"]))

    async def intake_record(self, tenant_id: str, reservation: dict[str, Any]) -> intake_pb.IntakeRecord | None:
        """Intake's record of the reservation, or None while intake has none."""
        ref = order_pb2.ChannelOrderRef(channel="cellarpass", external_id=str(reservation["reservationId"]))
        request = intake_pb.GetOrderRequest(tenant_id=tenant_id, channel_ref=ref)
        try:
            return (await self._intake(READER).GetOrder(request)).record
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def locked_changes(self, tenant_id: str) -> list[intake_pb.LockedChange]:
        """The tenant's locked changes, newest first (one page is plenty in a test)."""
        request = intake_pb.ListLockedChangesRequest(tenant_id=tenant_id, page_size=100)
        return list((await self._intake(READER).ListLockedChanges(request)).changes)

    async def cursor(self, tenant_id: str, account: str = RESERVATIONS) -> intake_pb.PullCursor:
        """The poll state of the tenant's CellarPass account."""
        request = intake_pb.ListPullCursorsRequest(tenant_id=tenant_id)
        [cursor] = [c for c in (await self._intake(READER).ListPullCursors(request)).cursors if c.account == account]
        return cursor

    async def sync_now(
        self, tenant_id: str, *, dry_run: bool = False, account: str = RESERVATIONS
    ) -> intake_pb.SyncNowResponse:
        """Sync now (as the tenant's operator) or its dry run (as a reader)."""
        caller = READER if dry_run else self.stack.operator(tenant_id)
        request = intake_pb.SyncNowRequest(tenant_id=tenant_id, account=account, dry_run=dry_run)
        return await self._intake(caller).SyncNow(request, timeout=60)

    async def retry(self, tenant_id: str, reservation: dict[str, Any], reason: str = "VinSuite fixed") -> None:
        """An operator's retry in dispatch of the reservation's order (by its booking code)."""
        stub = admin_grpc.OrderAdminServiceStub(self._channel("fulfillment_dispatch"))
        order = admin_pb.OrderSelector(tenant_id=tenant_id, channel_order_number=str(reservation["bookingCode"]))
        request = admin_pb.RetrySendRequest(order=order, action=admin_pb.OperatorAction(reason=reason))
        await authorized(stub, self.stack.token(self.stack.operator(tenant_id))).RetrySend(request, timeout=30)
