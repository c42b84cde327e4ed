"""DirectoryAdminService over real gRPC on real Postgres, with two vendors over real HTTP (a channel
with invite lists, a directory with member types; both check their connection): Test Login's
verdict and words for each problem, never a credential in the answer or the log; the invite-list
mirror creating, renaming and removing lists, leaving the staff's alone, idempotent, announcing
its changes; every answer code; and the CLI's commands with their exit codes."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import asyncpg
import grpc
import pytest
import pytest_asyncio
from ordersync.directory.v1 import directory_admin_service_pb2 as pb
from ordersync.directory.v1 import directory_admin_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.api.directory_admin import directory_admin_binding
from libs.platform.auth import OPERATOR, Caller, CallerDirectory, GrpcAccess, bearer
from libs.platform.grpc_server import GrpcServer, insecure_channel
from libs.platform.testing import ACME_OPERATOR, ACME_READER, GLOBEX_OPERATOR, TEST_CALLERS
from services.fulfillment_dispatch.tests.directory_vendors import DIRECTORY_PASSWORD, LISTS_KEY, start_vendors

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
REPO = Path(__file__).resolve().parents[3]
SCHEMA = "fulfillment_dispatch"
ALL_OPERATOR = "all-tenants-operator-token"  # an operator of every tenant, to ask for unknown ones


class Api:
    def __init__(self, stub, address: str, vendors, database: str):
        self.stub = stub
        self.address = address
        self.vendors = vendors
        self.database = database

    def call(self, rpc: str, tenant_id: str = "acme", token: str | None = ACME_OPERATOR):
        request = {"TestLogin": pb.TestLoginRequest, "SyncInviteLists": pb.SyncInviteListsRequest}[rpc]
        return getattr(self.stub, rpc)(request(tenant_id=tenant_id), metadata=bearer(token), timeout=30)


@pytest_asyncio.fixture
async def api(pool, database):
    vendors = await start_vendors()
    callers = [*TEST_CALLERS.items(), (ALL_OPERATOR, Caller("ops-all", frozenset({"*"}), frozenset({OPERATOR})))]
    access = GrpcAccess(CallerDirectory(callers))
    server = GrpcServer([directory_admin_binding(pool, SCHEMA, vendors.accounts, access)], host="127.0.0.1", port=0)
    await server.start()
    try:
        async with insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Api(pb_grpc.DirectoryAdminServiceStub(channel), f"127.0.0.1:{server.port}", vendors, database)
    finally:
        await server.stop(0)
        await vendors.stop()


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


def verdicts(answer: pb.TestLoginResponse) -> list[tuple]:
    return [
        (c.account, c.connector, c.connector_label, c.ok, pb.ConnectionProblem.Name(c.problem), c.detail)
        for c in answer.checks
    ]


# ---- Test Login


async def test_every_checkable_account_of_the_tenant_passes_test_login(api):
    answer = await api.call("TestLogin", token=ACME_READER)  # a reader may test: nothing changes

    assert answer.all_ok is True
    assert verdicts(answer) == [
        ("store", "listshop", "ListShop", True, "CONNECTION_PROBLEM_UNSPECIFIED", ""),
        ("club", "clubdirectory", "ClubDirectory", True, "CONNECTION_PROBLEM_UNSPECIFIED", ""),
    ]


async def test_bad_credentials_say_which_account_and_what_to_check_and_never_the_password(api, caplog):
    api.vendors.directories["acme"].password = "the-password-the-vendor-now-wants"
    caplog.set_level(logging.DEBUG)

    answer = await api.call("TestLogin")

    assert answer.all_ok is False
    store, club = verdicts(answer)
    assert store[3] is True
    assert club[:5] == ("club", "clubdirectory", "ClubDirectory", False, "CONNECTION_PROBLEM_BAD_CREDENTIALS")
    # The vendor echoed the password it was sent: its words come back without it.
    assert club[5] == (
        "ClubDirectory refused the credentials of account 'club': check the web-service username and password"
        " (or API key) ClubDirectory gave you, and the secrets the account's section of the tenants file"
        " references (ClubDirectory said: Invalid username or password (password '[redacted]' refused))"
    )
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "test login" in logged
    assert DIRECTORY_PASSWORD not in logged and LISTS_KEY not in logged


async def test_an_inactive_web_service_account_is_told_apart_from_bad_credentials(api):
    api.vendors.directories["acme"].active = False
    api.vendors.lists["acme"].active = False

    answer = await api.call("TestLogin")

    assert verdicts(answer) == [
        (
            "store", "listshop", "ListShop", False, "CONNECTION_PROBLEM_ACCOUNT_INACTIVE",
            "the web-service account of 'store' is not active with ListShop: ask ListShop to activate it"
            " (ListShop said: this API account is disabled)",
        ),
        (
            "club", "clubdirectory", "ClubDirectory", False, "CONNECTION_PROBLEM_ACCOUNT_INACTIVE",
            "the web-service account of 'club' is not active with ClubDirectory: ask ClubDirectory to activate it"
            " (ClubDirectory said: Web service account is not active)",
        ),
    ]  # fmt: skip


async def test_a_vendor_that_does_not_answer_is_unreachable_and_the_other_is_still_checked(api):
    await api.vendors.servers["acme/club"].stop()

    answer = await api.call("TestLogin")

    store, club = verdicts(answer)
    assert store[3] is True
    assert club[3:5] == (False, "CONNECTION_PROBLEM_UNREACHABLE")
    assert club[5].startswith(
        "ClubDirectory did not answer for account 'club': check the account's address and ClubDirectory's service"
        " status, then test again (ClubDirectory said: clubdirectory TestConnection: connection failed (ConnectError)"
    )


async def test_a_tenant_with_nothing_to_check_has_no_checks(api):
    answer = await api.call("TestLogin", "empty", ALL_OPERATOR)

    assert (list(answer.checks), answer.all_ok) == ([], True)


# ---- the invite-list mirror


def staffed(api) -> None:
    """acme's directory has three types; its channel a list of the staff's, one mirroring a type
    since renamed, and one mirroring a type since removed."""
    api.vendors.directories["acme"].types.update({"T1": "Club Member", "T2": "Wine Club Gold", "T3": "Trade"})
    shop = api.vendors.lists["acme"]
    shop.add("VIP staff picks")  # the staff's own: no source id
    shop.add("Club Members (old name)", "T1")
    shop.add("Industry", "T9")  # its type is gone


async def test_a_pass_creates_renames_and_removes_mirrored_lists_and_leaves_the_staffs_alone(api):
    staffed(api)

    answer = await api.call("SyncInviteLists")

    [mirror] = answer.mirrors
    assert (mirror.channel_account, mirror.provider_account) == ("store", "club")
    assert list(mirror.created) == ["Wine Club Gold", "Trade"]
    assert [(r.old_name, r.new_name) for r in mirror.renamed] == [("Club Members (old name)", "Club Member")]
    assert list(mirror.removed) == ["Industry"]
    assert list(mirror.unchanged) == []
    assert api.vendors.lists["acme"].named() == {
        "VIP staff picks": "",
        "Club Member": "T1",
        "Wine Club Gold": "T2",
        "Trade": "T3",
    }
    assert api.vendors.lists["globex"].named() == {}  # another tenant's channel is its own


async def test_a_second_pass_finds_everything_unchanged_and_writes_nothing(api):
    staffed(api)
    await api.call("SyncInviteLists")
    writes = list(api.vendors.lists["acme"].writes)

    answer = await api.call("SyncInviteLists")

    [mirror] = answer.mirrors
    assert (list(mirror.created), list(mirror.renamed), list(mirror.removed)) == ([], [], [])
    assert sorted(mirror.unchanged) == ["Club Member", "Trade", "Wine Club Gold"]
    assert api.vendors.lists["acme"].writes == writes


async def test_a_changing_pass_announces_the_tenant_and_an_unchanged_one_does_not(api):
    staffed(api)
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(api.database)
    await listener.add_listener(f"{SCHEMA}_directory", lambda *args: heard.put_nowait(args[3]))
    try:
        await api.call("SyncInviteLists")
        assert await asyncio.wait_for(heard.get(), 10) == "acme"

        await api.call("SyncInviteLists")  # unchanged: no announcement
        api.vendors.directories["globex"].types["G1"] = "Club Member"
        await api.call("SyncInviteLists", "globex", GLOBEX_OPERATOR)
        # Notifications arrive in commit order: the next one is globex's, so acme's second pass sent none.
        assert await asyncio.wait_for(heard.get(), 10) == "globex"
        assert heard.empty()
    finally:
        await listener.close()


@pytest.mark.parametrize("down", ["acme/club", "acme/store"])
async def test_either_vendor_down_is_unavailable_naming_the_account(api, down):
    staffed(api)
    await api.vendors.servers[down].stop()

    error = await refusal(api.call("SyncInviteLists"))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details().startswith(
        "invite lists of account 'store' from 'club' not mirrored: PROVIDER_UNAVAILABLE: "
    )
    assert "connection failed (ConnectError)" in error.details()


async def test_a_directory_refusing_its_credentials_is_a_failed_precondition(api):
    api.vendors.directories["acme"].password = "changed"

    error = await refusal(api.call("SyncInviteLists"))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details().startswith("invite lists of account 'store' from 'club' not mirrored: UNAUTHORIZED: ")
    assert DIRECTORY_PASSWORD not in error.details()


# ---- answer codes


async def test_a_tenant_without_a_channel_and_directory_pair_has_nothing_to_mirror(api):
    error = await refusal(api.call("SyncInviteLists", "plain", ALL_OPERATOR))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == (
        "tenant 'plain' has no channel account with invite lists paired with a provider account with a"
        " customer directory"
    )


@pytest.mark.parametrize("rpc", ["TestLogin", "SyncInviteLists"])
async def test_an_unknown_tenant_is_not_found(api, rpc):
    error = await refusal(api.call(rpc, "nobody", ALL_OPERATOR))

    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "tenant 'nobody' is not configured")


@pytest.mark.parametrize("rpc", ["TestLogin", "SyncInviteLists"])
async def test_another_tenants_caller_is_refused_naming_the_tenant(api, rpc):
    error = await refusal(api.call(rpc, "acme", GLOBEX_OPERATOR))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'ops@globex.example' is not granted tenant 'acme'"


async def test_a_reader_may_test_logins_but_not_mirror(api):
    staffed(api)

    error = await refusal(api.call("SyncInviteLists", "acme", ACME_READER))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'acme-viewer' may read but not act on orders of tenant 'acme'"
    assert api.vendors.lists["acme"].writes == []


@pytest.mark.parametrize("rpc", ["TestLogin", "SyncInviteLists"])
async def test_a_call_without_a_known_token_is_unauthenticated_and_one_without_a_tenant_invalid(api, rpc):
    for token in (None, "guessed-token"):
        error = await refusal(api.call(rpc, "acme", token))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "guessed-token" not in error.details()
    error = await refusal(api.call(rpc, ""))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "tenant_id is required")


# ---- the CLI


async def cli(api: Api, *args: str, token: str = ACME_OPERATOR, addr: str | None = None) -> tuple[str, str, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fulfillment_dispatch.cli", "--addr", addr or api.address, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
        env={**os.environ, "ORDERSYNC_ADMIN_TOKEN": token},
    )  # fmt: skip
    out, err = await process.communicate()
    return out.decode(), err.decode(), process.returncode or 0


async def test_the_cli_test_login_exits_zero_when_every_account_works_and_one_when_one_fails(api):
    out, err, code = await cli(api, "--tenant", "acme", "test-login")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "store                ListShop     ok",
        "club                 ClubDirectory ok",
        "(2 account(s) checked, 0 failed)",
    ]

    api.vendors.lists["acme"].key = "rotated-at-the-vendor"
    out, err, code = await cli(api, "--tenant", "acme", "test-login")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(
        "store                ListShop     FAILED (bad credentials): ListShop refused the credentials of account 'store'"
    )
    assert lines[0].endswith("(ListShop said: invalid API key)")
    assert lines[1:] == ["club                 ClubDirectory ok", "(2 account(s) checked, 1 failed)"]
    assert LISTS_KEY not in out + err


async def test_the_cli_test_login_of_an_unknown_tenant_is_refused_and_no_server_is_unavailable(api, unused_tcp_port):
    out, err, code = await cli(api, "--tenant", "nobody", "test-login", token=ALL_OPERATOR)
    assert (code, err.strip()) == (1, "error: NOT_FOUND: tenant 'nobody' is not configured")

    _, err, code = await cli(api, "--tenant", "acme", "test-login", addr=f"127.0.0.1:{unused_tcp_port}")
    assert code == 3 and err.startswith("error: UNAVAILABLE")


async def test_the_cli_mirrors_invite_lists_and_says_unavailable_with_exit_three(api):
    staffed(api)
    out, err, code = await cli(api, "--tenant", "acme", "sync-invite-lists")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "invite lists of store from club:",
        "  created    Wine Club Gold",
        "  created    Trade",
        "  renamed    Club Members (old name) -> Club Member",
        "  removed    Industry",
        "  (2 created, 1 renamed, 1 removed, 0 unchanged)",
    ]

    await api.vendors.servers["acme/club"].stop()
    out, err, code = await cli(api, "--tenant", "acme", "sync-invite-lists")
    assert code == 3
    assert err.startswith("error: UNAVAILABLE: invite lists of account 'store' from 'club' not mirrored:")
