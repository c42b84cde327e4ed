"""Stack: runs the simulators and the five services as real processes against real Kafka and Postgres.

Each stack gets its own database and topic prefix, so test runs, the demo and the benchmark never
see each other's data. As in production, the migration role migrates the database first and each
service logs in as its own role with migrations off. Services are started in dependency order and are ready when their gRPC
health check answers SERVING. Every process started here is stopped by stop(), even on failure.

Tenants (TenantSpec) have connector accounts and routes. The stack starts one simulator per
connector its tenants' accounts use, found in the simulator registry (tests/simulators/registry.py)
by connector id, tells each simulator its accounts and the webhook URLs of our endpoints, and
writes the tenants file (accounts and [[routes]], secrets as `env:` references given to the
services by environment) with each account's `base_url` pointing at its simulator.

Every service's gRPC API admits the callers of one callers file (see _plan_grpc_callers): the
services' own identities, a reader of every tenant for journeys, and per tenant its operators
(TenantSpec.operators, "ops@<tenant>" by default) and a read-only "viewer@<tenant>". Tests and
the demo call with `stack.token(name)`; libs.platform.testing's `authorized(stub, token)` adds it
to every call. `stack.operator_env()` is the environment the `ordersync` command needs.

`replicas={"fulfillment_dispatch": 2}` runs more processes of a service, as a Deployment with more
replicas would: the same environment, their own ports, sharing the consumer group and the leases.
`stack.processes()` names every process started, for the bench's CPU meter.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import secrets
import signal
import socket
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import httpx
import tomli_w
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.create_topics import create_topics, read_topic_file
from libs.cli.connect import ADDRESSES, TOKEN_VARIABLE
from libs.platform.migrate import MIGRATOR_ROLE, bootstrap_roles, role_dsn
from tests.simulators.registry import (
    AccountSpec,
    SimulatedAccount,
    SimulatorEntry,
    SimulatorRegistry,
    default_simulators,
)

if TYPE_CHECKING:
    from tests.system.console import ConsoleProcess

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("carrier_mapping", "order_intake", "compliance_routing", "fulfillment_dispatch", "tracking_writeback")
# Roles are cluster-wide and shared by every stack on the cluster (each stack has its database),
# so their passwords are fixed: a stack setting fresh ones would lock out the others' services.
# Local and test clusters only; production passwords come from the secret store.
LOCAL_ROLE_PASSWORDS = {role: f"{role}-local" for role in (*SERVICES, MIGRATOR_ROLE)}


# The console's caller name: activity logs read "<staff member> via operator-console".
CONSOLE_CALLER = "operator-console"
# The accounts and route of TenantSpec.commerce7_vinoshipper, as the demo's tenants file names them.
STORE, WINE_SHIPPING, SHIPPING_ROUTE = "store", "wine-shipping", "wine-clubs-and-web"
# The accounts and route of TenantSpec.cin7_shipstation.
OMNI, LABELS, LABELS_ROUTE = "omni", "labels", "omni-to-labels"
# The accounts and route of TenantSpec.groupon_mintsoft.
DEALS, WAREHOUSE, WAREHOUSE_ROUTE = "deals", "warehouse", "deals-to-warehouse"
# A CellarPass winery whose paid reservations go to VinSuite as Customer Pickup orders.
RESERVATIONS, CLUB, PICKUP_ROUTE = "reservations", "club", "reservations-to-vinsuite"


@dataclass(frozen=True)
class RouteSpec:
    """One route of a test tenant, as its `[[tenants.X.routes]]` table (libs/platform/tenants.py)."""

    name: str
    channel: str  # a channel account's name
    provider: str  # a provider account's name
    order_kinds: tuple[str, ...] = ("shipping",)
    ship_to_states: tuple[str, ...] | None = None  # None: any state
    ship_to_countries: tuple[str, ...] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TenantSpec:
    """One demo or test merchant: its connector accounts and routes, and its operators.

    Accounts are AccountSpecs (tests/simulators/registry.py); the stack writes them into the
    tenants file and tells each connector's simulator of them. `commerce7_vinoshipper` builds
    today's usual tenant: a Commerce7 store sending shipping orders to one Vinoshipper account.
    """

    tenant_id: str
    accounts: tuple[AccountSpec, ...]
    routes: tuple[RouteSpec, ...] = ()
    operators: tuple[str, ...] = ()  # callers with the operator role; ("ops@<tenant>",) when empty
    # the tenant's automated discounts, each a [[tenants.<id>.discount_rules]] table (docs/tenants.md)
    discount_rules: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def commerce7_vinoshipper(
        cls,
        tenant_id: str,
        *,
        chosen_states: Sequence[str],
        products: Sequence[str],
        licensed_states: Sequence[str],
        order_number_prefix: str = "",
        compliance_precheck: bool = False,
        provider_timeout_s: float = 10.0,
        operators: tuple[str, ...] = (),
    ) -> TenantSpec:
        """A Commerce7 store ("store") whose shipping orders to `chosen_states` go to a Vinoshipper
        account ("wine-shipping") knowing `products` and licensed for `licensed_states`."""
        simulators = default_simulators()
        store = simulators.get("commerce7").new_account(STORE, tenant_id)
        wine_shipping = simulators.get("vinoshipper").new_account(
            WINE_SHIPPING,
            tenant_id,
            order_number_prefix=order_number_prefix or tenant_id.upper(),
            compliance_precheck=compliance_precheck,
            timeout_s=provider_timeout_s,
            products=list(products),
            licensed_states=list(licensed_states),
        )
        route = RouteSpec(SHIPPING_ROUTE, STORE, WINE_SHIPPING, ship_to_states=tuple(chosen_states))
        return cls(tenant_id, (store, wine_shipping), (route,), operators)

    @classmethod
    def cin7_shipstation(
        cls,
        tenant_id: str,
        *,
        cin7: Mapping[str, Any] | None = None,
        shipstation: Mapping[str, Any] | None = None,
        route_options: Mapping[str, Any] | None = None,
        operators: tuple[str, ...] = (),
    ) -> TenantSpec:
        """A Cin7 Omni connection ("omni") whose shipping orders go to a ShipStation account
        ("labels") by one route, anywhere; `cin7`/`shipstation` are the accounts' options."""
        simulators = default_simulators()
        omni = simulators.get("cin7").new_account(OMNI, tenant_id, **dict(cin7 or {}))
        labels = simulators.get("shipstation").new_account(LABELS, tenant_id, **dict(shipstation or {}))
        route = RouteSpec(LABELS_ROUTE, OMNI, LABELS, ship_to_states=None, options=dict(route_options or {}))
        return cls(tenant_id, (omni, labels), (route,), operators)

    @classmethod
    def groupon_mintsoft(
        cls,
        tenant_id: str,
        *,
        groupon: Mapping[str, Any] | None = None,
        mintsoft: Mapping[str, Any] | None = None,
        route_options: Mapping[str, Any] | None = None,
        operators: tuple[str, ...] = (),
    ) -> TenantSpec:
        """A Groupon supplier account ("deals", read through CommerceInterface) whose orders go
        to a Mintsoft warehouse ("warehouse") by one route, anywhere; `groupon`/`mintsoft` are
        the accounts' options (e.g. `mark_exported`, `products`)."""
        simulators = default_simulators()
        deals = simulators.get("groupon").new_account(DEALS, tenant_id, **dict(groupon or {}))
        warehouse = simulators.get("mintsoft").new_account(WAREHOUSE, tenant_id, **dict(mintsoft or {}))
        route = RouteSpec(WAREHOUSE_ROUTE, DEALS, WAREHOUSE, ship_to_states=None, options=dict(route_options or {}))
        return cls(tenant_id, (deals, warehouse), (route,), operators)

    @classmethod
    def cellarpass_vinsuite(
        cls,
        tenant_id: str,
        *,
        cellarpass: Mapping[str, Any] | None = None,
        vinsuite: Mapping[str, Any] | None = None,
        discount_rules: Sequence[Mapping[str, Any]] = (),
        operators: tuple[str, ...] = (),
    ) -> TenantSpec:
        """A CellarPass winery ("reservations") whose paid reservations become Customer Pickup
        orders in VinSuite ("club") by one route; VinSuite is also the tenant's customer
        directory. `cellarpass`/`vinsuite` are the accounts' options (e.g. `order_date`)."""
        simulators = default_simulators()
        reservations = simulators.get("cellarpass").new_account(RESERVATIONS, tenant_id, **dict(cellarpass or {}))
        club = simulators.get("vinsuite").new_account(CLUB, tenant_id, **dict(vinsuite or {}))
        route = RouteSpec(PICKUP_ROUTE, RESERVATIONS, CLUB, order_kinds=("reservation",), ship_to_states=None)
        return cls(tenant_id, (reservations, club), (route,), operators, tuple(discount_rules))

    def account(self, name: str) -> AccountSpec:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(f"tenant {self.tenant_id!r} has no account {name!r}")

    def route(self, name: str) -> RouteSpec:
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(f"tenant {self.tenant_id!r} has no route {name!r}")

    def with_account(self, name: str, **options: Any) -> TenantSpec:
        """A copy with some options (or secrets) of one account changed."""
        self.account(name)  # it must exist
        accounts = tuple(a.with_options(**options) if a.name == name else a for a in self.accounts)
        return replace(self, accounts=accounts)

    def with_route(self, name: str, **changes: Any) -> TenantSpec:
        """A copy with some fields of one route changed, e.g. `ship_to_states=("CA",)`."""
        self.route(name)
        return replace(self, routes=tuple(replace(r, **changes) if r.name == name else r for r in self.routes))

    def env_name(self, account: str, secret: str) -> str:
        """The environment variable giving the services one secret of one account."""
        return "ORDERSYNC_SECRET_" + "_".join(
            re.sub(r"[^A-Z0-9]", "_", part.upper()) for part in (self.tenant_id, account, secret)
        )


READER = "journey-reader"  # reads every tenant from every service: the tests' and the demo's eyes
OPERATOR = "operator"  # operates every tenant at every service: the `ordersync` command's (operator_env)


@dataclass(frozen=True)
class CallerSpec:
    """One entry of the stack's gRPC callers file, with its token (given to the services by env)."""

    name: str
    tenants: tuple[str, ...]
    roles: tuple[str, ...] = ("read",)
    services: tuple[str, ...] = ()  # every service when empty
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    variable: str = ""  # the environment variable holding the token; derived from the name when empty

    @property
    def env_name(self) -> str:
        return self.variable or f"ORDERSYNC_CALLER_TOKEN_{re.sub(r'[^A-Z0-9]', '_', self.name.upper())}"


# Ports for the processes a stack starts. Each pytest-xdist worker (and a process outside
# pytest: the demo, a bench) takes them from a block of its own, below the kernel's ephemeral
# range, in turn: a port is free between this check and the service's own bind only if no
# other stack can be handed it meanwhile, which port 0 (any free port) cannot promise.
_PORT_BLOCK_SIZE = 1000
_PORT_BLOCKS_START = 21000  # blocks 21000-23999; infra's defaults (25432, 29092) lie above


def _port_block() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist
    index = int(worker.removeprefix("gw")) + 1 if worker.startswith("gw") else 0
    start = _PORT_BLOCKS_START + index * _PORT_BLOCK_SIZE
    return range(start, start + _PORT_BLOCK_SIZE)


_next_ports = itertools.cycle(_port_block())


def free_port() -> int:
    """A port no process listens on, from this process's block (never one another worker uses)."""
    for _ in range(_PORT_BLOCK_SIZE):
        port = next(_next_ports)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_port_block()}")


@dataclass
class ServiceProcess:
    name: str
    grpc_port: int
    http_port: int | None
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None


class Stack:
    """Start with `async with Stack(...) as stack`; see the module docstring."""

    def __init__(
        self,
        tenants: list[TenantSpec],
        *,
        run_dir: Path,
        pg_dsn: str | None = None,
        kafka_bootstrap: str | None = None,
        external_simulators: Mapping[str, str] | None = None,
        simulators: SimulatorRegistry | None = None,
        service_env: dict[str, str] | None = None,
        trace_file: Path | None = None,
        replicas: Mapping[str, int] | None = None,
    ):
        self.tenants = {t.tenant_id: t for t in tenants}
        self.run_dir = run_dir
        self.admin_dsn = pg_dsn or _required_env("ORDERSYNC_PG_DSN")
        self.kafka_bootstrap = kafka_bootstrap or _required_env("ORDERSYNC_KAFKA_BOOTSTRAP")
        self.run_id = "s" + uuid.uuid4().hex[:10]
        self.database = f"ordersync_{self.run_id}"
        self.topic_prefix = f"{self.run_id}."
        self.trace_file = trace_file
        self.simulators = simulators or default_simulators()
        self._external_simulators = dict(external_simulators or {})
        self._service_env = service_env or {}
        self._sims: dict[str, asyncio.subprocess.Process] = {}
        self.sim_urls: dict[str, str] = {}  # connector id -> its simulator's address
        self.services: dict[str, ServiceProcess] = {}
        self._replica_counts = dict(replicas or {})
        self.replicas: list[ServiceProcess] = []  # the second and later process of a service
        self.callers: dict[str, CallerSpec] = {}
        self.console: ConsoleProcess | None = None
        self.http = httpx.AsyncClient(timeout=30.0)

    # ---- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Stack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        await self._create_database()
        await create_topics(self.kafka_bootstrap, read_topic_file(REPO / "deploy" / "topics.txt"), self.topic_prefix)
        self._plan_services()
        await self._migrate_database()
        await self.start_simulators()
        await self._start_mail_sink()
        self._write_tenants_file()
        for name in SERVICES:
            await self.start_service(name)
        for replica in self.replicas:
            await self._start_process(replica)

    async def stop(self) -> None:
        if self.console is not None:
            await self.console.stop()
        for replica in self.replicas:
            if replica.process is not None:
                await _terminate(replica.process)
                replica.process = None
        for name in reversed(SERVICES):
            if name in self.services:
                await self.stop_service(name)
        await self.stop_simulators()
        await self.http.aclose()
        if os.environ.get("ORDERSYNC_KEEP_DATABASE") != "1":
            await self._drop_database()

    # ---- services --------------------------------------------------------------------------

    def _plan_services(self) -> None:
        common = {
            "ORDERSYNC_MIGRATE": "off",  # _migrate_database ran them, as a Kubernetes Job would
            "ORDERSYNC_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "ORDERSYNC_TOPIC_PREFIX": self.topic_prefix,
            "ORDERSYNC_TENANTS_FILE": str(self.run_dir / "tenants.toml"),
            "ORDERSYNC_TENANTS_RELOAD_S": "0.5",  # tenant settings changes take effect within a second
            "PYTHONUNBUFFERED": "1",
        }
        if self.trace_file:
            common["ORDERSYNC_TRACE_FILE"] = str(self.trace_file)
        common.update(self.secret_env())
        mapping_port = free_port()
        for name in SERVICES:
            http_port = free_port() if name in ("order_intake", "fulfillment_dispatch") else None
            grpc_port = mapping_port if name == "carrier_mapping" else free_port()
            env = {**common, "ORDERSYNC_GRPC_PORT": str(grpc_port), "CARRIER_MAPPING_ADDR": f"127.0.0.1:{mapping_port}"}
            env["ORDERSYNC_PG_DSN"] = self._role_dsn(name)  # each service logs in as its own role
            env["ORDERSYNC_METRICS_PORT"] = str(free_port())  # scraped by tests via metrics_url
            env["ORDERSYNC_METRICS_SAMPLE_S"] = "1"  # sampled gauges follow a test's traffic quickly
            if http_port:
                env["ORDERSYNC_HTTP_PORT"] = str(http_port)
            self.services[name] = ServiceProcess(name, grpc_port, http_port, env, self.run_dir / "logs" / f"{name}.log")
        self._plan_admin_api()
        self._plan_grpc_callers()
        for service in self.services.values():
            service.env.update(self._service_env)
        self._plan_replicas()

    def _plan_replicas(self) -> None:
        for name, count in self._replica_counts.items():
            first = self.services[name]
            for number in range(2, count + 1):
                ports = {"ORDERSYNC_GRPC_PORT": str(free_port()), "ORDERSYNC_METRICS_PORT": str(free_port())}
                if first.http_port:
                    ports["ORDERSYNC_HTTP_PORT"] = str(free_port())
                self.replicas.append(
                    ServiceProcess(
                        f"{name}-{number}",
                        int(ports["ORDERSYNC_GRPC_PORT"]),
                        int(ports["ORDERSYNC_HTTP_PORT"]) if first.http_port else None,
                        {**first.env, **ports},
                        self.run_dir / "logs" / f"{name}-{number}.log",
                    )
                )

    def processes(self) -> dict[str, int]:
        """The pid of every process this stack runs, by name: services (replicas as
        `<service>-<n>`), simulators as `sim:<connector>`, the console."""
        running = {s.name: s.process.pid for s in (*self.services.values(), *self.replicas) if s.process}
        running.update({f"sim:{connector}": process.pid for connector, process in self._sims.items()})
        if self.console is not None and self.console.pid is not None:
            running["operator_console"] = self.console.pid
        return running

    def secret_env(self) -> dict[str, str]:
        """Every account secret by the environment variable the tenants file names for it."""
        return {
            tenant.env_name(account.name, key): value
            for tenant in self.tenants.values()
            for account in tenant.accounts
            for key, value in account.secrets.items()
        }

    def _plan_grpc_callers(self) -> None:
        """One callers file for every service's gRPC API, tokens in each service's environment."""
        peers = ("order-intake", "compliance-routing", "tracking-writeback")
        callers = [
            # dispatch and writeback translate codes for every tenant
            CallerSpec("ordersync", ("*",), services=("carrier-mapping",), variable="CARRIER_MAPPING_TOKEN"),
            # dispatch's admin API shows what its peers say of an order
            CallerSpec("fulfillment-dispatch", ("*",), services=peers, variable="ORDERSYNC_PEERS_TOKEN"),
            CallerSpec(READER, ("*",)),
            # the operator's `ordersync` command, which asks every service (operator_env)
            CallerSpec(OPERATOR, ("*",), roles=("operator", "write")),
            # the operator console, acting for the staff member it signed in (start_console)
            CallerSpec(CONSOLE_CALLER, ("*",), roles=("operator", "write", "delegate")),
        ]
        for tenant in self.tenants.values():
            for name in tenant.operators or (f"ops@{tenant.tenant_id}",):
                callers.append(CallerSpec(name, (tenant.tenant_id,), roles=("operator", "write")))
            callers.append(CallerSpec(f"viewer@{tenant.tenant_id}", (tenant.tenant_id,)))
        self.callers = {caller.name: caller for caller in callers}
        path = self.run_dir / "grpc-callers.toml"
        path.write_text("\n".join(_caller_entry(caller) for caller in callers))
        for name, service in self.services.items():
            admitted = [c for c in callers if not c.services or name.replace("_", "-") in c.services]
            service.env.update({c.env_name: c.token for c in admitted}, ORDERSYNC_GRPC_CALLERS_FILE=str(path))
        # The clients' side: what dispatch and writeback present to carrier mapping and the peers.
        for name in ("fulfillment_dispatch", "tracking_writeback"):
            self.services[name].env["CARRIER_MAPPING_TOKEN"] = self.callers["ordersync"].token
        self.services["fulfillment_dispatch"].env["ORDERSYNC_PEERS_TOKEN"] = self.callers["fulfillment-dispatch"].token

    def token(self, caller: str) -> str:
        """The bearer token of the caller named `caller` (see the module docstring)."""
        return self.callers[caller].token

    def operator(self, tenant_id: str) -> str:
        """The name of the tenant's first operator."""
        return self.tenants[tenant_id].operators[0] if self.tenants[tenant_id].operators else f"ops@{tenant_id}"

    def operator_env(self, tenant_id: str | None = None) -> dict[str, str]:
        """The environment `ordersync` needs to operate this stack: ORDERSYNC_TOKEN (the tenant's
        first operator, or the operator of every tenant when none is named) and every service's
        ORDERSYNC_*_ADDR (libs.cli.connect.ADDRESSES)."""
        caller = self.operator(tenant_id) if tenant_id else OPERATOR
        env = {TOKEN_VARIABLE: self.token(caller)}
        for service, (variable, _) in ADDRESSES.items():
            env[variable] = self.grpc_address(service.replace("-", "_"))
        return env

    def _plan_admin_api(self) -> None:
        """Dispatch serves the admin API: it reads the other services, and checks sent orders often."""
        env = self.services["fulfillment_dispatch"].env
        env["ORDERSYNC_STATUS_CHECK_S"] = "3"  # a lost provider webhook shows up within seconds
        for peer, variable in (
            ("order_intake", "ORDER_INTAKE_ADDR"),
            ("compliance_routing", "COMPLIANCE_ROUTING_ADDR"),
            ("tracking_writeback", "TRACKING_WRITEBACK_ADDR"),
        ):
            env[variable] = f"127.0.0.1:{self.services[peer].grpc_port}"

    async def start_service(self, name: str) -> None:
        """Start (or restart) one service process and wait until its health check is SERVING."""
        await self._start_process(self.services[name])

    async def _start_process(self, service: ServiceProcess) -> None:
        log = open(service.log_path, "ab")  # noqa: ASYNC230, SIM115 - handed to the child process
        env = {**_base_env(), **service.env}
        module = service.name if service.name in SERVICES else service.name.rsplit("-", 1)[0]
        service.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, cwd=REPO, env=env, stdout=log, stderr=log
        )
        log.close()
        await self._wait_healthy(service)

    async def stop_service(self, name: str) -> None:
        service = self.services[name]
        if service.process is not None:
            await _terminate(service.process)
            service.process = None

    async def kill_service(self, name: str) -> None:
        """SIGKILL a service: no clean shutdown, as in a crash."""
        service = self.services[name]
        if service.process is not None and service.process.returncode is None:
            service.process.kill()
            await service.process.wait()
        service.process = None

    async def _wait_healthy(self, service: ServiceProcess, timeout_s: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if service.process.returncode is not None:
                    raise RuntimeError(
                        f"{service.name} exited with {service.process.returncode}; see {service.log_path}"
                    )
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{service.name} not healthy after {timeout_s} s; see {service.log_path}")
                await asyncio.sleep(0.2)

    async def start_console(self, *, frame_ancestors: str = "", port: int | None = None) -> ConsoleProcess:
        """Start the operator console (tests/system/console.py) on this stack's services."""
        from tests.system.console import ConsoleProcess

        if self.console is None:
            self.console = ConsoleProcess(self, frame_ancestors=frame_ancestors, port=port)
            await self.console.start()
        return self.console

    def grpc_address(self, name: str) -> str:
        return f"127.0.0.1:{self.services[name].grpc_port}"

    def http_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.services[name].http_port}"

    def metrics_url(self, name: str) -> str:
        """The service's Prometheus /metrics address."""
        return f"http://127.0.0.1:{self.services[name].env['ORDERSYNC_METRICS_PORT']}/metrics"

    def metrics_urls(self) -> list[str]:
        """The /metrics address of every service process, replicas included."""
        return [
            f"http://127.0.0.1:{service.env['ORDERSYNC_METRICS_PORT']}/metrics"
            for service in (*self.services.values(), *self.replicas)
        ]

    # ---- simulators ------------------------------------------------------------------------

    def connectors_in_use(self) -> list[str]:
        """The connector ids of every tenant's accounts: the simulators this stack needs."""
        return sorted({account.connector for tenant in self.tenants.values() for account in tenant.accounts})

    def simulated_accounts(self, connector: str) -> list[SimulatedAccount]:
        """Every tenant's accounts of one connector, with the webhook URLs of our endpoints."""
        return [
            self._simulated_account(tenant, account)
            for tenant in self.tenants.values()
            for account in tenant.accounts
            if account.connector == connector
        ]

    def _simulated_account(self, tenant: TenantSpec, account: AccountSpec) -> SimulatedAccount:
        # The two webhook URL shapes the services serve: intake for channels, dispatch for providers.
        path = f"/webhooks/{account.connector}/{tenant.tenant_id}"
        notice_url = f"{self.http_url('fulfillment_dispatch')}{path}"
        token = self.simulators.get(account.connector).notice_token
        if token:
            notice_url += f"/{account.secrets[token]}"
        store_url = (
            f"{self.http_url('fulfillment_dispatch')}/stores/{account.connector}/{tenant.tenant_id}/{account.name}"
        )
        push_url = f"{self.http_url('order_intake')}{path}"
        return SimulatedAccount(tenant.tenant_id, account, push_url, notice_url, store_url)

    async def start_simulators(self) -> None:
        """Start one simulator per connector in use, or tell an external one of its accounts.

        Part of start(); the services' ports must be planned, since simulators post to them.
        """
        for connector in self.connectors_in_use():
            entry = self.simulators.get(connector)
            accounts = self.simulated_accounts(connector)
            if connector in self._external_simulators:
                self.sim_urls[connector] = self._external_simulators[connector]
                for account in accounts:
                    await self._put_account(entry, account)
            else:
                self.sim_urls[connector] = await self._start_simulator(connector, entry.build_config(accounts))

    async def stop_simulators(self) -> None:
        for connector, process in list(self._sims.items()):
            await _terminate(process)
            self._sims.pop(connector)

    async def _start_simulator(self, connector: str, config: dict) -> str:
        config_path = self.run_dir / f"{connector}-sim.json"
        config_path.write_text(json.dumps(config, indent=2))
        log = open(self.run_dir / "logs" / f"{connector}-sim.log", "ab")  # noqa: ASYNC230, SIM115 - handed to the child process
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.simulators",
            connector,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--config",
            str(config_path),
            cwd=REPO,
            env=_base_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        log.close()
        self._sims[connector] = process
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        match = re.search(rb"listening on (http://\S+)", line)
        if not match:
            raise RuntimeError(f"{connector} simulator did not report its address: {line!r}")
        return match.group(1).decode()

    async def _start_mail_sink(self) -> None:
        """When an account names a failed-import mail recipient, run the mail sink and point
        intake's SMTP at it; its HTTP address is `sim_urls["mailsink"]`, stopped with the simulators."""
        if not any("import_errors_to" in a.options for t in self.tenants.values() for a in t.accounts):
            return
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.simulators.mailsink", "--port", "0"),
            cwd=REPO,
            env=_base_env(),
            stdout=asyncio.subprocess.PIPE,
        )
        self._sims["mailsink"] = process
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        match = re.search(rb"listening on (http://\S+) smtp [^:]+:(\d+)", line)
        if not match:
            raise RuntimeError(f"the mail sink did not report its addresses: {line!r}")
        self.sim_urls["mailsink"] = match.group(1).decode()
        self.services["order_intake"].env.update(
            ORDERSYNC_SMTP_HOST="127.0.0.1",
            ORDERSYNC_SMTP_PORT=match.group(2).decode(),
            ORDERSYNC_SMTP_FROM="ordersync@hub.example",
            ORDERSYNC_SMTP_STARTTLS="off",
            ORDERSYNC_INTAKE_MAIL_BACKOFF_BASE_S="1",
        )

    async def _put_account(self, entry: SimulatorEntry, account: SimulatedAccount) -> None:
        if entry.put_account is None:
            raise RuntimeError(f"the {entry.connector} simulator cannot change an account while it runs")
        await entry.put_account(self.http, self.sim_urls[entry.connector], account)

    async def update_account(self, tenant_id: str, account_name: str, **options: Any) -> AccountSpec:
        """Change one account while running, at its vendor (the simulator) and in the tenants file.

        E.g. `update_account("acme", "wine-shipping", products=[...])` adds SKUs at Vinoshipper.
        """
        spec = self.tenants[tenant_id].with_account(account_name, **options)
        self.tenants[tenant_id] = spec
        account = spec.account(account_name)
        await self._put_account(self.simulators.get(account.connector), self._simulated_account(spec, account))
        self._write_tenants_file()
        return account

    def tenants_document(self) -> dict[str, Any]:
        """The tenants file's content (libs/platform/tenants.py format): accounts, then routes."""
        return {"tenants": {t.tenant_id: self._tenant_section(t) for t in self.tenants.values()}}

    def _tenant_section(self, tenant: TenantSpec) -> dict[str, Any]:
        accounts = {}
        for account in tenant.accounts:
            entry = self.simulators.get(account.connector)
            section: dict[str, Any] = {"connector": account.connector, **entry.file_options(account)}
            section.update({key: f"env:{tenant.env_name(account.name, key)}" for key in account.secrets})
            if account.connector not in self.sim_urls:
                # Never let a test account fall back to the vendor's real address.
                raise RuntimeError(f"no {account.connector} simulator is running for account {account.name!r}")
            section["base_url"] = entry.base_url(self.sim_urls[account.connector])
            if entry.callback_base_option and entry.callback_base_option not in section:
                section[entry.callback_base_option] = self.http_url("fulfillment_dispatch")
            accounts[account.name] = section
        section = {"accounts": accounts, "routes": [_route_section(route) for route in tenant.routes]}
        if tenant.discount_rules:
            section["discount_rules"] = [dict(rule) for rule in tenant.discount_rules]
        return section

    def _write_tenants_file(self) -> None:
        # Written whole, then renamed: a service reloading the file never reads half of it.
        partial = self.run_dir / "tenants.toml.partial"
        partial.write_text(tomli_w.dumps(self.tenants_document()))
        partial.replace(self.run_dir / "tenants.toml")

    def update_tenant(self, spec: TenantSpec) -> None:
        """Change a tenant's settings while the services run; they pick it up within a second.

        Only the tenants file changes: what a simulator knows of an account changes with
        update_account.
        """
        self.tenants[spec.tenant_id] = spec
        self._write_tenants_file()

    # ---- databases -------------------------------------------------------------------------

    def _role_dsn(self, role: str) -> str:
        return role_dsn(self.admin_dsn, role, LOCAL_ROLE_PASSWORDS[role], database=self.database)

    async def _migrate_database(self) -> None:
        """Create the roles (idempotent) and grant them this database, then run the migrate
        command as the migration role, before any service starts."""
        await bootstrap_roles(self.admin_dsn, database=self.database, passwords=LOCAL_ROLE_PASSWORDS)
        log_path = self.run_dir / "logs" / "migrate.log"
        log = open(log_path, "ab")  # noqa: ASYNC230, SIM115 - handed to the child process
        env = {**_base_env(), "ORDERSYNC_PG_MIGRATION_DSN": self._role_dsn(MIGRATOR_ROLE)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "libs.platform.migrate", "up", cwd=REPO, env=env, stdout=log, stderr=log
        )
        log.close()
        if await process.wait() != 0:
            raise RuntimeError(f"migrations failed with {process.returncode}; see {log_path}")

    async def _create_database(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()

    async def _drop_database(self) -> None:
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await conn.close()

    async def connect_service_db(self) -> asyncpg.Connection:
        """A connection to this stack's database (for assertions on each service's schema)."""
        return await asyncpg.connect(_with_database(self.admin_dsn, self.database))


def _route_section(route: RouteSpec) -> dict[str, Any]:
    section: dict[str, Any] = {
        "name": route.name,
        "channel": route.channel,
        "provider": route.provider,
        "order_kinds": list(route.order_kinds),
    }
    for key in ("ship_to_states", "ship_to_countries"):
        if getattr(route, key) is not None:
            section[key] = list(getattr(route, key))
    if route.options:
        section["options"] = dict(route.options)
    return section


def _caller_entry(caller: CallerSpec) -> str:
    lines = [
        f"[callers.{json.dumps(caller.name)}]",
        f'token = "env:{caller.env_name}"',
        f"tenants = {json.dumps(list(caller.tenants))}",
        f"roles = {json.dumps(list(caller.roles))}",
    ]
    if caller.services:
        lines.append(f"services = {json.dumps(list(caller.services))}")
    return "\n".join(lines) + "\n"


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set: start the infrastructure with `make infra-up` and source .run/infra.env"
        )
    return value


def _with_database(dsn: str, database: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}"


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


async def _terminate(process: asyncio.subprocess.Process, timeout_s: float = 15.0) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
