"""The callers file and the caller checks every gRPC API shares (pure: files and env only)."""

import grpc
import pytest

from libs.platform.auth import (
    DELEGATE,
    OPERATOR,
    READ,
    WRITE,
    Caller,
    CallerDirectory,
    GrpcAccess,
    PermissionDenied,
    Unauthenticated,
    bearer,
    cli_token,
    load_callers,
    on_behalf_of,
)
from libs.platform.config import ConfigError

FILE = """
[callers.fulfillment-dispatch]
token = "env:TEST_PEERS_TOKEN"
tenants = ["*"]
services = ["order-intake", "tracking-writeback"]

[callers."jane@acme.example"]
token = "env:TEST_JANE_TOKEN"
tenants = ["acme"]
roles = ["operator"]

[callers.mapping-admin]
token = "file:{secret}"
tenants = ["acme", "globex"]
write = true
services = ["carrier-mapping"]
"""


@pytest.fixture
def callers_file(tmp_path, monkeypatch):
    secret = tmp_path / "mapping-admin.token"
    secret.write_text("mapping-admin-token\n")
    monkeypatch.setenv("TEST_PEERS_TOKEN", "peers-token")
    monkeypatch.setenv("TEST_JANE_TOKEN", "jane-token")
    path = tmp_path / "callers.toml"
    path.write_text(FILE.format(secret=secret))
    return path


def test_each_service_admits_the_callers_the_file_names_for_it(callers_file):
    intake = load_callers(callers_file, "order-intake")
    mapping = load_callers(callers_file, "carrier-mapping")

    assert intake.find("peers-token") == Caller("fulfillment-dispatch", frozenset({"*"}), frozenset({READ}))
    assert intake.find("jane-token").roles == frozenset({READ, OPERATOR})
    assert mapping.find("mapping-admin-token") == Caller(
        "mapping-admin", frozenset({"acme", "globex"}), frozenset({READ, WRITE})
    )
    with pytest.raises(Unauthenticated, match="unknown bearer token"):
        mapping.find("peers-token")
    with pytest.raises(Unauthenticated, match="unknown bearer token"):
        intake.find("mapping-admin-token")


def test_a_service_resolves_only_the_tokens_of_its_own_callers(callers_file, monkeypatch):
    monkeypatch.delenv("TEST_PEERS_TOKEN")

    assert len(load_callers(callers_file, "fulfillment-dispatch")) == 1  # jane only
    with pytest.raises(ConfigError, match="caller 'fulfillment-dispatch': environment variable TEST_PEERS_TOKEN"):
        load_callers(callers_file, "order-intake")


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ('tenants = ["acme"]', "missing key 'token'"),
        ('token = "literal-token"\ntenants = ["acme"]', "not a literal value"),
        ('token = "env:TEST_JANE_TOKEN"\ntenants = []', "'tenants' must be a non-empty list"),
        ('token = "env:TEST_JANE_TOKEN"\ntenants = ["acme"]\nroles = ["admin"]', "'roles' must list some of"),
        ('token = "env:TEST_JANE_TOKEN"\ntenants = ["acme"]\nservices = ["intake"]', "'services' must list some of"),
    ],
)
def test_a_wrong_entry_is_refused_naming_the_caller(tmp_path, monkeypatch, entry, complaint):
    monkeypatch.setenv("TEST_JANE_TOKEN", "jane-token")
    path = tmp_path / "callers.toml"
    path.write_text(f"[callers.jane]\n{entry}\n")

    with pytest.raises(ConfigError, match=complaint) as refused:
        load_callers(path, "order-intake")
    assert "jane-token" not in str(refused.value)


def test_an_operator_may_not_pose_as_the_system_in_activity_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_TOKEN", "a-token")
    path = tmp_path / "callers.toml"
    path.write_text('[callers.ordersync]\ntoken = "env:TEST_TOKEN"\ntenants = ["*"]\nroles = ["operator"]\n')

    with pytest.raises(ConfigError, match="an operator may not be named 'ordersync'"):
        load_callers(path, "fulfillment-dispatch")


def test_a_file_admitting_no_caller_to_the_service_is_refused(tmp_path):
    path = tmp_path / "callers.toml"
    path.write_text('[callers.peers]\ntoken = "env:UNSET"\ntenants = ["*"]\nservices = ["order-intake"]\n')

    with pytest.raises(ConfigError, match="admits no caller to compliance-routing"):
        load_callers(path, "compliance-routing")


def test_two_callers_sharing_a_token_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JANE_TOKEN", "jane-token")
    path = tmp_path / "callers.toml"
    entry = 'token = "env:TEST_JANE_TOKEN"\ntenants = ["acme"]\n'
    path.write_text(f"[callers.a]\n{entry}\n[callers.b]\n{entry}")

    with pytest.raises(ConfigError, match="callers 'a' and 'b' share a token"):
        load_callers(path, "order-intake")


def test_roles_grant_actions_only_on_the_callers_tenants():
    operator = Caller("jane", frozenset({"acme"}), frozenset({READ, OPERATOR}))
    reader = Caller("viewer", frozenset({"*"}))

    operator.require("acme", OPERATOR)
    reader.require("globex", READ)
    with pytest.raises(PermissionDenied, match="caller 'jane' is not granted tenant 'globex'"):
        operator.require("globex", OPERATOR)
    with pytest.raises(PermissionDenied, match="caller 'viewer' may read but not act on orders of tenant 'acme'"):
        reader.require("acme", OPERATOR)
    with pytest.raises(PermissionDenied, match="may read but not change mappings of tenant 'acme'"):
        operator.require_write("acme")


def test_a_cli_reads_its_token_from_a_file_or_a_variable_never_an_argument(tmp_path):
    path = tmp_path / "token"
    path.write_text("file-token\n")

    assert cli_token("ADMIN_TOKEN", str(path), {"ADMIN_TOKEN": "env-token"}) == "file-token"
    assert cli_token("ADMIN_TOKEN", None, {"ADMIN_TOKEN": "env-token"}) == "env-token"
    with pytest.raises(ConfigError, match="ADMIN_TOKEN"):
        cli_token("ADMIN_TOKEN", None, {})


# ---- delegation ------------------------------------------------------------------------------

CONSOLE = Caller("operator-console", frozenset({"acme", "globex"}), frozenset({READ, OPERATOR, DELEGATE}))
PEERS = Caller("fulfillment-dispatch", frozenset({"*"}), frozenset({READ, OPERATOR}))
ACCESS = GrpcAccess(CallerDirectory([("console-token", CONSOLE), ("peers-token", PEERS)]))


class Call:
    """The little of a grpc.aio ServicerContext the caller check reads, and its abort."""

    def __init__(self, *metadata: tuple[str, str]):
        self._metadata = metadata
        self.aborted: tuple | None = None

    def invocation_metadata(self):
        return self._metadata

    async def abort(self, code, details):
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


def for_jane(tenant_id="acme", roles=("operator", "write"), token="console-token", name="jane@acme.example"):
    return Call(("user-agent", "grpc-python"), *bearer(token), *on_behalf_of(name, tenant_id, roles))


def test_delegated_call_runs_as_the_staff_member_through_the_console():
    caller = ACCESS.caller(for_jane())

    # write is declared but the console lacks it: dropped, as is any delegate role
    assert caller == Caller("jane@acme.example via operator-console", frozenset({"acme"}), frozenset({READ, OPERATOR}))


def test_staff_declaring_no_roles_may_only_read():
    assert ACCESS.caller(for_jane(roles=())).roles == frozenset({READ})
    assert ACCESS.caller(for_jane(roles=["delegate"])).roles == frozenset({READ})


def test_call_without_on_behalf_of_metadata_runs_as_the_token_holder():
    assert ACCESS.caller(Call(*bearer("console-token"))) == CONSOLE


@pytest.mark.parametrize(
    ("call", "refusal"),
    [
        (for_jane(token="peers-token"), "caller 'fulfillment-dispatch' may not act on behalf of others"),
        (for_jane(tenant_id=""), "caller 'operator-console' acts on behalf of 'jane@acme.example' without"),
        (
            Call(*bearer("console-token"), ("ordersync-on-behalf-of", "jane@acme.example")),
            "caller 'operator-console' acts on behalf of 'jane@acme.example' without ordersync-on-behalf-of-tenant",
        ),
        (for_jane(name=""), "caller 'operator-console' sent on-behalf-of metadata without ordersync-on-behalf-of"),
        (for_jane(tenant_id="initech"), "caller 'operator-console' is not granted tenant 'initech'"),
        (for_jane(name="ordersync"), "caller 'operator-console' may not act on behalf of 'ordersync'"),
    ],
)
def test_a_delegation_the_caller_may_not_make_is_permission_denied(call, refusal):
    with pytest.raises(PermissionDenied, match=refusal):
        ACCESS.caller(call)
    denied = ACCESS.denial(call, "acme")
    assert denied is not None
    assert denied[0] == grpc.StatusCode.PERMISSION_DENIED
    assert denied[1].startswith(refusal)


def test_staff_of_one_tenant_are_refused_the_other_tenants_of_the_console():
    assert ACCESS.denial(for_jane(), "acme", OPERATOR) is None
    assert ACCESS.denial(for_jane(), "globex") == (
        grpc.StatusCode.PERMISSION_DENIED,
        "caller 'jane@acme.example via operator-console' is not granted tenant 'globex'",
    )
    assert ACCESS.denial(for_jane(roles=()), "acme", OPERATOR) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "caller 'jane@acme.example via operator-console' may read but not act on orders of tenant 'acme'",
    )


def test_on_behalf_of_metadata_without_a_token_is_unauthenticated():
    call = Call(*on_behalf_of("jane@acme.example", "acme"))

    assert ACCESS.denial(call, "acme") == (
        grpc.StatusCode.UNAUTHENTICATED,
        "missing bearer token: send metadata 'authorization: Bearer <token>'",
    )


@pytest.mark.asyncio
async def test_require_returns_the_delegated_caller_or_aborts_with_the_refusal():
    refused = for_jane(tenant_id="initech")

    assert (await ACCESS.require(for_jane(), "acme", OPERATOR)).name == "jane@acme.example via operator-console"
    with pytest.raises(grpc.aio.AbortError):
        await ACCESS.require(refused, "acme")
    assert refused.aborted == (
        grpc.StatusCode.PERMISSION_DENIED,
        "caller 'operator-console' is not granted tenant 'initech'",
    )


def test_a_callers_file_may_grant_the_delegate_role(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_CONSOLE_TOKEN", "console-token")
    path = tmp_path / "callers.toml"
    path.write_text(
        '[callers.operator-console]\ntoken = "env:TEST_CONSOLE_TOKEN"\ntenants = ["*"]\nroles = ["operator", "delegate"]\n'
    )

    assert load_callers(path, "fulfillment-dispatch").find("console-token").roles == {READ, OPERATOR, DELEGATE}
