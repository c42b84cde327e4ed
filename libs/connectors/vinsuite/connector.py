"""The VinSuite connector: Customer Pickup orders from reservations, and the winery's members.

VinSuite (eWinery) takes one order per `AddOrder` call and has no upsert: a second call makes a
second order. So an order that may already have reached VinSuite (an earlier attempt crashed or
timed out) is looked up by its OrderNumber (`SearchOrders`, ours) before it is created, and
AddOrder itself is never repeated by the client. The guest notes follow as `AddOrderNote`; a
note that fails leaves the order in VinSuite and is said so, never a reason to send again.

The customer directory (members, member types, clubs) answers the hub's look-ups; its upsert
matches on e-mail, so a retried upsert never creates two members. `check_connection` is
VinSuite's TestConnection, classified from its FailureReason. See the README for the stand-in
parts (ours).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from ordersync.common.v1 import order_pb2, postal_address_pb2

from ..base.contract import (
    Capability,
    ClientResources,
    ConnectionCheck,
    ConnectionProblem,
    ConnectorInfo,
    DirectoryMember,
    Limits,
    MemberType,
    Notice,
    ProviderConnector,
    Role,
    SecretResolver,
    Submission,
    SubmitResult,
    Submitted,
    UpsertedMember,
    provider_titles,
    submit_one_by_one,
)
from ..base.errors import ConnectorError, InvalidRequest, InvalidResponse
from ..base.settings import SectionReader
from .client import BURST, NotAuthorized, VinSuiteApi, VinSuiteClient
from .orders import (
    DateSource,
    build_add_order,
    created_products,
    found_order_id,
    member_fields,
    new_order_id,
    order_date,
    parse_member_types,
    parse_members,
    today_utc,
)

DEFAULT_BASE_URL = "https://ws.ewinerysolutions.com/2.00/"
# VinSuite's FailureReason for a web-service account switched off (the simulator's words; the
# classification also accepts any reason naming the account inactive or disabled).
_INACTIVE_WORDS = ("inactive", "disabled", "not active")


@dataclass(frozen=True)
class VinSuiteAccount:
    """One winery's VinSuite account as a tenant configures it (see the README for each key)."""

    api: VinSuiteApi
    order_number_prefix: str = ""
    order_date: DateSource = DateSource.BOOKED
    pickup_date: DateSource = DateSource.EVENT
    # Today's date in UTC, for `sync_day`; injectable so tests need no clock.
    today: Callable[[], date] = field(default=today_utc, compare=False, repr=False)


class VinSuiteConnector(ProviderConnector):
    info = ConnectorInfo(
        id="vinsuite",
        label="VinSuite",
        roles=frozenset({Role.PROVIDER}),
        capabilities=frozenset(
            {Capability.SUBMIT, Capability.READ_BACK, Capability.CUSTOMER_DIRECTORY, Capability.CONNECTION_CHECK}
        ),
        # AddOrder takes one order. VinSuite publishes no limit: 60 a minute is the pace the
        # simulator enforces and a winery's shared web service tolerates (see the README).
        limits=Limits(batch_size=1, requests_per_minute=60, concurrency=4),
        status_titles=provider_titles("VinSuite"),
    )

    # -- settings and client

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> VinSuiteAccount:
        read = SectionReader(section, resolve, where)
        base_url = read.text("base_url", DEFAULT_BASE_URL)
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise read.error("base_url", "must be an http(s) URL")
        winery_id = read.text("winery_id")
        username = read.secret("username")
        password = read.secret("password")
        prefix = read.text("order_number_prefix")
        order_day = _date_source(
            read, "order_date", "booked", (DateSource.BOOKED, DateSource.EVENT, DateSource.SYNC_DAY)
        )
        pickup_day = _date_source(read, "pickup_date", "event", (DateSource.BOOKED, DateSource.EVENT))
        rpm = read.positive_int("requests_per_minute", 60)
        timeout_s = read.positive_number("timeout_s", 30.0)
        read.finish()
        api = VinSuiteApi(base_url, winery_id, username, password, requests_per_minute=rpm, timeout_s=timeout_s)
        return VinSuiteAccount(api, order_number_prefix=prefix, order_date=order_day, pickup_date=pickup_day)

    def unique_keys(self, settings: VinSuiteAccount) -> Sequence[str]:
        # OrderNumber is what the never-twice look-up searches: two tenants on one winery with
        # one prefix would find each other's orders as their own.
        who = hashlib.sha256(f"{settings.api.base_url}|{settings.api.winery_id}".encode()).hexdigest()[:12]
        return (f"winery {who} order_number_prefix {settings.order_number_prefix!r}",)

    def open_client(self, settings: VinSuiteAccount, resources: ClientResources) -> VinSuiteClient:
        api = dataclasses.replace(
            settings.api, max_concurrency=min(resources.max_concurrency, self.info.limits.concurrency)
        )
        limiter = resources.limiter_for(self.info.id, api.requests_per_minute, BURST)
        return VinSuiteClient(api, rate_limiter=limiter)

    # -- submit and read back

    def order_number(self, settings: VinSuiteAccount, order: order_pb2.Order) -> str:
        """The prefix and the reservation's booking code (its id when it has none), e.g. "CP-B1001"."""
        number = order.external_number.strip() or order.external_id.strip()
        if not number:
            raise InvalidRequest("vinsuite order number: the order has no external number or id")
        return f"{settings.order_number_prefix}{number}"

    async def submit(
        self, client: VinSuiteClient, settings: VinSuiteAccount, batch: Sequence[Submission]
    ) -> list[SubmitResult]:
        return await submit_one_by_one(batch, lambda item: self._submit_one(client, settings, item))

    async def _submit_one(self, client: VinSuiteClient, settings: VinSuiteAccount, item: Submission) -> Submitted:
        number = item.order_number
        if item.may_exist:
            found = await _search(client, number)
            if found is not None:
                activity = (
                    f"already in VinSuite as order {found} ({number}) after an interrupted attempt; not sent again"
                )
                if item.order.customer_notes.strip():
                    # SearchOrders does not show notes, and a second AddOrderNote could double one.
                    activity += "; the guest notes may NOT be attached: check the order in VinSuite"
                return Submitted(activity, provider_reference=found)
        today = settings.today()
        body = build_add_order(
            item.order,
            order_number=number,
            order_day=order_date(item.order, settings.order_date, today),
            pickup_day=order_date(item.order, settings.pickup_date, today),
        )
        answer = await client.call("AddOrder", body, creates=True)
        order_id = new_order_id(answer)
        activity = f"sent to VinSuite as order {order_id} ({number}), Customer Pickup"
        created = created_products(answer)
        if created:
            activity += f"; VinSuite created inactive product(s) for unknown SKU(s) {', '.join(created[:10])}"
        activity += await _attach_note(client, order_id, item.order.customer_notes.strip())
        return Submitted(activity, provider_reference=order_id)

    async def read_back(self, client: VinSuiteClient, settings: VinSuiteAccount, order_number: str) -> Notice | None:
        found = await _search(client, order_number)
        if found is None:
            return None
        return Notice(order_number, None, "found", provider_reference=found)

    # -- customer directory

    async def find_members(
        self, client: VinSuiteClient, settings: VinSuiteAccount, *, email: str = "", last_name: str = ""
    ) -> list[DirectoryMember]:
        email, last_name = email.strip(), last_name.strip()
        if not email and not last_name:
            raise InvalidRequest("vinsuite find_members: give an e-mail or a last name")
        query = {"Email": email} if email else {"LastName": last_name}
        members = parse_members(await client.call("GetMembers", query))
        if email:  # VinSuite matches on e-mail; the contract's match is exact, case-insensitive
            members = [m for m in members if m.email.strip().lower() == email.lower()]
        return members

    async def upsert_member(
        self,
        client: VinSuiteClient,
        settings: VinSuiteAccount,
        customer: order_pb2.Customer,
        address: postal_address_pb2.PostalAddress | None = None,
    ) -> UpsertedMember:
        member = member_fields(customer, address)
        if not member["Email"]:
            raise InvalidRequest("vinsuite upsert_member: the customer has no e-mail to match on")
        existing = await self.find_members(client, settings, email=member["Email"])
        if existing:
            member["MemberID"] = existing[0].member_id
        answer = await client.call("AddUpdateMember", {"Member": member})
        member_id = answer.get("MemberID") or member.get("MemberID")
        if not member_id:
            raise InvalidResponse("vinsuite AddUpdateMember: the answer carries no MemberID")
        return UpsertedMember(str(member_id), created=bool(answer.get("IsNew")) and not existing)

    async def member_types(self, client: VinSuiteClient, settings: VinSuiteAccount) -> list[MemberType]:
        return parse_member_types(await client.call("GetMemberTypes"))

    # -- connection check

    async def check_connection(self, client: VinSuiteClient, settings: VinSuiteAccount) -> ConnectionCheck:
        try:
            await client.call("TestConnection")
        except NotAuthorized as exc:
            reason = exc.failure_reason
            inactive = any(word in reason.lower() for word in _INACTIVE_WORDS)
            problem = ConnectionProblem.ACCOUNT_INACTIVE if inactive else ConnectionProblem.BAD_CREDENTIALS
            return ConnectionCheck(False, problem, reason)
        except ConnectorError as exc:
            return ConnectionCheck(False, ConnectionProblem.UNREACHABLE, f"{exc.reason_code}: {exc.message}")
        return ConnectionCheck(True)


def _date_source(read: SectionReader, key: str, default: str, allowed: tuple[DateSource, ...]) -> DateSource:
    value = read.text(key, default)
    for source in allowed:
        if source.value == value:
            return source
    raise read.error(key, f"must be one of {', '.join(s.value for s in allowed)}, not {value!r}")


async def _search(client: VinSuiteClient, order_number: str) -> str | None:
    """VinSuite's OrderID of the order with exactly this OrderNumber, or None."""
    return found_order_id(await client.call("SearchOrders", {"OrderNumber": order_number}), order_number)


async def _attach_note(client: VinSuiteClient, order_id: str, note: str) -> str:
    """Attach the guest notes; the words to add to the activity.

    The order exists whatever happens here: a retryable failure (5xx, timeout, 429) is tried
    once more, then said; never a reason to send the order again. A note whose first answer was
    lost may so appear twice, which staff can tidy; a missing note they would not know of.
    """
    if not note:
        return ""
    last: ConnectorError | None = None
    for _ in range(2):
        try:
            await client.call("AddOrderNote", {"OrderID": order_id, "Note": note}, creates=True)
            return "; guest notes attached"
        except ConnectorError as exc:
            last = exc
            if not exc.retryable:
                break
    assert last is not None
    return f"; the guest notes were NOT attached ({last.reason_code}: {last.message}): add them in VinSuite by hand"


CONNECTOR = VinSuiteConnector()
