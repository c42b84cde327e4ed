"""CustomerDirectoryService: requests into CustomerLookups calls, their outcomes into responses.

Callers are checked first (any caller granted the tenant may look up and upsert: the booking
engine and the back office both place reservations). A directory that could not answer
(retryable ConnectorErrors: down, timed out, rate limited) is UNAVAILABLE, never an empty
answer; one that refused our credentials is FAILED_PRECONDITION with its reason.
"""

from __future__ import annotations

import grpc
from ordersync.directory.v1 import directory_service_pb2 as pb
from ordersync.directory.v1 import directory_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.directory.discounts import Booking
from fulfillment_dispatch.directory.lookups import (
    CustomerLookups,
    LookupBadRequest,
    LookupNotFound,
    LookupUnsupported,
)
from libs.connectors.base.contract import ClubMembership, DirectoryMember
from libs.connectors.base.errors import ConnectorError, InvalidRequest, InvalidResponse
from libs.platform.auth import GrpcAccess
from libs.platform.grpc_server import ServiceBinding, abort, bind


def directory_binding(lookups: CustomerLookups, access: GrpcAccess) -> ServiceBinding:
    """The service as the gRPC server registers it."""
    return bind(pb, pb_grpc, "CustomerDirectoryService", CustomerDirectoryServicer(lookups, access))


class CustomerDirectoryServicer(pb_grpc.CustomerDirectoryServiceServicer):
    """Thin: see the module docstring."""

    def __init__(self, lookups: CustomerLookups, access: GrpcAccess):
        self._lookups = lookups
        self._access = access

    async def FindCustomers(self, request, context: grpc.aio.ServicerContext) -> pb.FindCustomersResponse:
        await self._access.require(context, request.tenant_id)
        found = await _answer(
            context,
            self._lookups.find(request.tenant_id, request.account, email=request.email, last_name=request.last_name),
        )
        return pb.FindCustomersResponse(account=found.account, customers=[_customer(m) for m in found.members])

    async def GetClubMembership(self, request, context: grpc.aio.ServicerContext) -> pb.GetClubMembershipResponse:
        await self._access.require(context, request.tenant_id)
        if not request.email:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "email is required")
        found = await _answer(context, self._lookups.find(request.tenant_id, request.account, email=request.email))
        clubs = {c.club_id: c for m in found.members for c in m.active_clubs}
        return pb.GetClubMembershipResponse(
            account=found.account,
            known=bool(found.members),
            is_club_member=bool(clubs),
            active_clubs=[_club(c) for c in clubs.values()],
        )

    async def ResolveDiscount(self, request, context: grpc.aio.ServicerContext) -> pb.ResolveDiscountResponse:
        await self._access.require(context, request.tenant_id)
        booking = Booking(
            email=request.email.strip(),
            experience_id=request.experience_id,
            experience_sku=request.experience_sku,
            promo_code=request.promo_code,
            customer_types=tuple(request.customer_types),
        )
        resolution = await _answer(context, self._lookups.discount(request.tenant_id, request.account, booking))
        rule = resolution.rule
        if rule is None:
            return pb.ResolveDiscountResponse(applies=False, why=resolution.why)
        response = pb.ResolveDiscountResponse(applies=True, rule_name=rule.name, why=resolution.why)
        if rule.percent_off is not None:
            response.percent_off = f"{rule.percent_off:f}"
        elif rule.amount_off is not None:
            response.amount_off = f"{rule.amount_off:f}"
        return response

    async def UpsertCustomer(self, request, context: grpc.aio.ServicerContext) -> pb.UpsertCustomerResponse:
        await self._access.require(context, request.tenant_id)
        address = request.address if request.HasField("address") else None
        account, upserted = await _answer(
            context, self._lookups.upsert(request.tenant_id, request.account, request.customer, address)
        )
        return pb.UpsertCustomerResponse(account=account, member_id=upserted.member_id, created=upserted.created)


def _customer(member: DirectoryMember) -> pb.DirectoryCustomer:
    return pb.DirectoryCustomer(
        member_id=member.member_id,
        first_name=member.first_name,
        last_name=member.last_name,
        email=member.email,
        phone=member.phone,
        member_types=list(member.member_types),
        clubs=[_club(c) for c in member.clubs],
        is_club_member=member.is_club_member,
    )


def _club(club: ClubMembership) -> pb.ClubMembership:
    return pb.ClubMembership(club_id=club.club_id, club_name=club.club_name, status=club.status)


async def _answer(context: grpc.aio.ServicerContext, call):
    """Await the work, turning its refusals into status codes with their messages."""
    try:
        return await call
    except LookupBadRequest as exc:
        await abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except LookupNotFound as exc:
        await abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
    except LookupUnsupported as exc:
        await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except ConnectorError as exc:
        await abort(context, status_of(exc), str(exc))


def status_of(error: ConnectorError) -> grpc.StatusCode:
    """What the caller can do about a directory's error: retry later (UNAVAILABLE: the
    directory could not answer), fix our request, or have an operator fix the account."""
    if error.retryable:
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(error, InvalidResponse):
        return grpc.StatusCode.INTERNAL
    if isinstance(error, InvalidRequest) and error.status_code is None:
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.FAILED_PRECONDITION
