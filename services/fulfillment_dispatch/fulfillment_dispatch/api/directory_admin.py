"""DirectoryAdminService: Test Login of a tenant's accounts and the invite-list mirror on demand.

Translation only (the checks in connection_checks.py, the mirror in invite_lists.py). Callers are
checked first, as on dispatch's other APIs: any caller granted the tenant may test its logins
(nothing changes); mirroring changes the channel's lists, so it needs the operator role. A
vendor's error keeps its reason code in the message, after the account it concerns.
"""

from __future__ import annotations

import logging

import asyncpg
import grpc
from ordersync.directory.v1 import directory_admin_service_pb2 as pb
from ordersync.directory.v1 import directory_admin_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.api.rates import status_of
from fulfillment_dispatch.connection_checks import AccountVerdict, ConnectionTester
from fulfillment_dispatch.invite_lists import InviteListMirror, MirrorFailed, MirrorResult, NothingToMirror
from libs.connectors.base.contract import ConnectionProblem
from libs.platform.accounts import AccountClients, AccountNotConfigured
from libs.platform.auth import OPERATOR, GrpcAccess
from libs.platform.grpc_server import ServiceBinding, abort, bind

log = logging.getLogger(__name__)
# What a lost or unreachable database raises (the mirror announces its changes through it).
_DATABASE_DOWN = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError, OSError)
_PROBLEMS = {
    ConnectionProblem.BAD_CREDENTIALS: pb.CONNECTION_PROBLEM_BAD_CREDENTIALS,
    ConnectionProblem.ACCOUNT_INACTIVE: pb.CONNECTION_PROBLEM_ACCOUNT_INACTIVE,
    ConnectionProblem.UNREACHABLE: pb.CONNECTION_PROBLEM_UNREACHABLE,
}


def directory_admin_binding(
    pool: asyncpg.Pool, schema: str, accounts: AccountClients, access: GrpcAccess
) -> ServiceBinding:
    """The service as the gRPC server registers it."""
    servicer = DirectoryAdminServicer(ConnectionTester(accounts), InviteListMirror(pool, schema, accounts), access)
    return bind(pb, pb_grpc, "DirectoryAdminService", servicer)


class DirectoryAdminServicer(pb_grpc.DirectoryAdminServiceServicer):
    """Thin: requests into tester and mirror calls, their outcomes into responses."""

    def __init__(self, tester: ConnectionTester, mirror: InviteListMirror, access: GrpcAccess):
        self._tester = tester
        self._mirror = mirror
        self._access = access

    async def TestLogin(self, request, context) -> pb.TestLoginResponse:
        await self._access.require(context, request.tenant_id)
        try:
            verdicts = await self._tester.test_login(request.tenant_id)
        except AccountNotConfigured as exc:
            await abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
        return pb.TestLoginResponse(checks=[_check(v) for v in verdicts], all_ok=all(v.ok for v in verdicts))

    async def SyncInviteLists(self, request, context) -> pb.SyncInviteListsResponse:
        await self._access.require(context, request.tenant_id, OPERATOR)
        try:
            results = await self._mirror.sync_tenant(request.tenant_id)
        except AccountNotConfigured as exc:
            await abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
        except NothingToMirror as exc:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except MirrorFailed as exc:
            await abort(context, status_of(exc.error), str(exc))
        except _DATABASE_DOWN as exc:
            log.warning("invite lists: the database could not be used", extra={"fields": {"error": type(exc).__name__}})
            await abort(context, grpc.StatusCode.UNAVAILABLE, "dispatch's database could not be reached; try again")
        return pb.SyncInviteListsResponse(mirrors=[_mirror(r) for r in results])


def _check(verdict: AccountVerdict) -> pb.AccountCheck:
    return pb.AccountCheck(
        account=verdict.account,
        connector=verdict.connector,
        connector_label=verdict.label,
        ok=verdict.ok,
        problem=_PROBLEMS[verdict.problem] if verdict.problem else pb.CONNECTION_PROBLEM_UNSPECIFIED,
        detail=verdict.detail,
    )


def _mirror(result: MirrorResult) -> pb.InviteListMirror:
    return pb.InviteListMirror(
        channel_account=result.pair.channel_account,
        provider_account=result.pair.provider_account,
        created=result.created,
        renamed=[pb.RenamedInviteList(old_name=old, new_name=new) for old, new in result.renamed],
        removed=result.removed,
        unchanged=result.unchanged,
    )
