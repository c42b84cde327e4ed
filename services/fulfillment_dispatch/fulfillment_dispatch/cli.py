"""Operator CLI for orders' sync with their provider, on the admin gRPC API.

    python -m fulfillment_dispatch.cli --addr HOST:PORT --tenant acme show 1042
    python -m fulfillment_dispatch.cli --tenant acme list --status failed --since 24h
    python -m fulfillment_dispatch.cli --tenant acme retry 1042 --reason "SKU added at the provider"
    python -m fulfillment_dispatch.cli --tenant acme quote ord_123 --carrier ups --write ups_ground

The operator's bearer token is read from ORDERSYNC_ADMIN_TOKEN (another variable with
--token-env, or a file with --token-file), never from the command line. Its caller, as the
callers file names it, is who acted in the order's activity log; actions need the operator role
and a --reason. An ORDER is ordersync's id ("ord_…") or the channel's order number. With
ORDERSYNC_GRPC_CA_FILE set (and ORDERSYNC_GRPC_CLIENT_CERT_FILE/KEY_FILE for mTLS) the channel
is TLS. Exit codes: 0 done, 1 refused (the message says why), 2 bad usage, 3 unavailable (try again).
`quote` prices an order (ordersync's id, or a JSON Order with --order-file) through the tenant's
rate-quoting account with its markup; --write puts the quote of that service code onto the
order in its channel as the freight (operator role).

The tenant's product map (for warehouse providers; changes need the operator role) and product
sync take the tenant as an argument, not --tenant:

    python -m fulfillment_dispatch.cli product-map list acme
    python -m fulfillment_dispatch.cli product-map add acme GRP-GIFT-SET MUG-BLUE TEA-EARLGREY*3 \
        --name "Blue mug" --name "Earl Grey tea (20 bags)"
    python -m fulfillment_dispatch.cli product-map remove acme GRP-GIFT-SET
    python -m fulfillment_dispatch.cli product-map import map.csv     (all rows or none)
    python -m fulfillment_dispatch.cli product-map export acme > map.csv
    python -m fulfillment_dispatch.cli sync-products acme warehouse [--dry-run]

Customers in the tenant's directory (VinSuite), by e-mail or by last name, with their clubs:

    python -m fulfillment_dispatch.cli find-customer acme ana@example.com [--account vinsuite]
    python -m fulfillment_dispatch.cli find-customer acme Reyes

`add` takes components as SKU or SKU*QTY; one --name per component, in their order, names the
products sync creates. The CSV shape is in `fulfillment_dispatch.product_map_csv`.

Test Login (every account that can check its credentials; exit 1 when one fails) and the
invite-list mirror (the directory's member types into the channel's invite lists, now):

    python -m fulfillment_dispatch.cli --tenant acme test-login
    python -m fulfillment_dispatch.cli --tenant acme sync-invite-lists
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict, Parse, ParseError
from ordersync.admin.v1 import order_admin_service_pb2 as pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as pb_grpc
from ordersync.common.v1 import order_pb2, shipment_pb2
from ordersync.directory.v1 import directory_admin_service_pb2 as directory_admin_pb
from ordersync.directory.v1 import directory_admin_service_pb2_grpc as directory_admin_grpc
from ordersync.directory.v1 import directory_service_pb2 as directory_pb
from ordersync.directory.v1 import directory_service_pb2_grpc as directory_grpc
from ordersync.dispatch.v1 import product_map_service_pb2 as map_pb
from ordersync.dispatch.v1 import product_map_service_pb2_grpc as map_grpc
from ordersync.dispatch.v1 import rates_service_pb2 as rates_pb
from ordersync.dispatch.v1 import rates_service_pb2_grpc as rates_grpc

from fulfillment_dispatch.domain.rate_markup import minor_unit_decimals
from fulfillment_dispatch.product_map_csv import CsvError, parse_csv, write_csv
from libs.platform.auth import bearer, cli_token
from libs.platform.config import ConfigError, grpc_client_tls_from_env
from libs.platform.grpc_server import channel_credentials

DEFAULT_ADDR = "127.0.0.1:50053"
# "--status retry-wait" -> "SYNC_STATUS_RETRY_WAIT"; the request takes the enum by its name.
STATUS_NAMES = {
    name.removeprefix("SYNC_STATUS_").lower().replace("_", "-"): name for name, value in pb.SyncStatus.items() if value
}
ACTIONS = {
    "retry": ("RetrySend", pb.RetrySendRequest, "send a Failed to Send order again"),
    "dont-send": ("DontSend", pb.DontSendRequest, "keep a Failed to Send order in the channel for good"),
    "void": ("VoidSync", pb.VoidSyncRequest, "cancel a sent order at the provider (before refunding it)"),
    "check": ("CheckFulfillment", pb.CheckFulfillmentRequest, "read the order's fulfilment from the provider now"),
}
_REFUSALS = {
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.needs_tenant and not args.tenant:
        return _usage(f"{args.command}: --tenant is required")
    try:
        args.metadata = bearer(cli_token(args.token_env, args.token_file, os.environ))
        with _channel(args.addr) as channel:
            stub = pb_grpc.OrderAdminServiceStub(channel)
            args.channel = channel  # `quote` calls the RateQuoteService on the same channel
            try:
                return args.run(stub, args)
            except grpc.RpcError as exc:
                print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
                return 1 if exc.code() in _REFUSALS else 3
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _channel(address: str) -> grpc.Channel:
    tls = grpc_client_tls_from_env()
    return grpc.secure_channel(address, channel_credentials(tls)) if tls else grpc.insecure_channel(address)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fulfillment_dispatch.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--addr", default=os.environ.get("ORDERSYNC_ADMIN_ADDR", DEFAULT_ADDR))
    parser.add_argument("--tenant", help="tenant id (the orders' commands)")
    parser.add_argument("--token-env", default="ORDERSYNC_ADMIN_TOKEN",
                        help="environment variable holding the bearer token (never pass a token itself)")  # fmt: skip
    parser.add_argument("--token-file", help="file holding the bearer token, instead of --token-env")
    parser.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    show = commands.add_parser("show", help="an order's status, per-service view and activity log")
    show.add_argument("order")
    show.set_defaults(run=_show)

    listing = commands.add_parser("list", help="orders by status, newest order first")
    listing.add_argument("--status", action="append", choices=sorted(STATUS_NAMES), default=[])
    listing.add_argument("--since", help="only orders changed in this window, e.g. 24h, 90m, 7d")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_list)

    for command, (_, _, help_text) in ACTIONS.items():
        action = commands.add_parser(command, help=help_text)
        action.add_argument("order")
        action.add_argument("--reason", required=True)
        action.set_defaults(run=_act)

    quote = commands.add_parser("quote", help="shipping quotes for an order, with the tenant's markup")
    quote.add_argument("order", nargs="?", help="ordersync's order id (ord_…); or give --order-file")
    quote.add_argument("--order-file", help="a JSON file holding the order to quote (ordersync.common.v1.Order)")
    quote.add_argument("--account", default="", help="the rate-quoting account (default: the tenant's only one)")
    quote.add_argument("--carrier", action="append", default=[], help="a carrier code to quote with (repeatable)")
    quote.add_argument("--write", metavar="SERVICE_CODE", help="write this service's quote onto the order's channel")
    quote.set_defaults(run=_quote)
    parser.set_defaults(needs_tenant=True)
    _product_commands(commands)
    _directory_commands(commands)
    _directory_admin_commands(commands)
    return parser


def _product_commands(commands) -> None:
    products = commands.add_parser("product-map", help="the tenant's product map (warehouse SKUs and bundles)")
    products.set_defaults(needs_tenant=False)
    verbs = products.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="the tenant's mappings")
    listing.add_argument("tenant")
    listing.set_defaults(run=_map_list)
    add = verbs.add_parser("add", help="map a channel SKU to a warehouse SKU, or to a bundle (replaces it)")
    add.add_argument("tenant")
    add.add_argument("channel_sku")
    add.add_argument("components", nargs="+", metavar="SKU[*QTY]")
    add.add_argument("--name", action="append", default=[], help="a component's product name; one per component")
    add.set_defaults(run=_map_add)
    remove = verbs.add_parser("remove", help="remove a channel SKU's mapping (it is sent as it is again)")
    remove.add_argument("tenant")
    remove.add_argument("channel_sku")
    remove.set_defaults(run=_map_remove)
    importing = verbs.add_parser("import", help="create or replace mappings from CSV, all or nothing")
    importing.add_argument("file")
    importing.set_defaults(run=_map_import)
    export = verbs.add_parser("export", help="write the tenant's map as CSV to stdout (what import reads)")
    export.add_argument("tenant")
    export.set_defaults(run=_map_export)

    sync = commands.add_parser("sync-products", help="create the map's missing products in the provider's catalog")
    sync.add_argument("tenant")
    sync.add_argument("provider_account")
    sync.add_argument("--dry-run", action="store_true", help="list what would be created; create nothing")
    sync.set_defaults(run=_sync_products, needs_tenant=False)


def _directory_commands(commands) -> None:
    find = commands.add_parser("find-customer", help="the tenant's customers in its directory, with their clubs")
    find.add_argument("tenant")
    find.add_argument("query", help="an e-mail address (an exact match), or a last name")
    find.add_argument("--account", default="", help="the directory account (default: the tenant's only one)")
    find.set_defaults(run=_find_customer, needs_tenant=False)


def _selector(args) -> pb.OrderSelector:
    if args.order.startswith("ord_"):
        return pb.OrderSelector(tenant_id=args.tenant, order_id=args.order)
    return pb.OrderSelector(tenant_id=args.tenant, channel_order_number=args.order)


def _show(stub, args) -> int:
    answer = stub.GetOrder(pb.GetOrderRequest(order=_selector(args)), timeout=10, metadata=args.metadata)
    if args.json:
        return _print_json(answer)
    print(_describe(answer.sync))
    if answer.guidance.meaning:
        print(f"  meaning:  {answer.guidance.meaning}\n  next:     {answer.guidance.what_to_do}")
    print("\nservices:")
    for view in answer.services:
        print(f"  {view.service:<20} {view.status}" + (f" — {view.reason}" if view.reason else ""))
    print("\nactivity:")
    for entry in answer.activity:
        when = entry.time.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"  {when}  {entry.actor:<12} {entry.kind:<22} {entry.message}")
    return 0


def _list(stub, args) -> int:
    request = pb.ListOrdersRequest(
        tenant_id=args.tenant, statuses=[STATUS_NAMES[s] for s in args.status], page_size=min(args.limit, 500)
    )
    if args.since:
        request.updated_after.FromDatetime(datetime.now(UTC) - _window(args.since))
    answer = stub.ListOrders(request, timeout=10, metadata=args.metadata)
    if args.json:
        return _print_json(answer)
    for sync in answer.orders:
        number = sync.channel_ref.external_number or sync.order_id
        print(f"{number:<10} {sync.status_title:<34} {sync.reason_code:<26} {sync.reason}")
    print(f"({len(answer.orders)} order(s){'; more: narrow the filter' if answer.next_page_token else ''})")
    return 0


def _act(stub, args) -> int:
    method, request_type, _ = ACTIONS[args.command]
    request = request_type(order=_selector(args), action=pb.OperatorAction(reason=args.reason))
    answer = getattr(stub, method)(request, timeout=30, metadata=args.metadata)
    if args.json:
        return _print_json(answer)
    print(_describe(answer.sync))
    return 0


def _quote(_, args) -> int:
    stub = rates_grpc.RateQuoteServiceStub(args.channel)
    request = rates_pb.QuoteRatesRequest(tenant_id=args.tenant, provider_account=args.account, carriers=args.carrier)
    if bool(args.order) == bool(args.order_file):
        return _usage("quote: give an order id or --order-file, not both")
    if args.order_file:
        try:
            request.inline_order.CopyFrom(Parse(Path(args.order_file).read_text(), order_pb2.Order()))
        except (OSError, ParseError) as exc:
            return _usage(f"--order-file {args.order_file}: {exc}")
    elif args.order.startswith("ord_"):
        request.order_id = args.order
    else:
        return _usage(f"quote: {args.order!r} is not an ordersync order id (ord_…)")
    if args.write and not request.order_id:
        return _usage("quote --write needs the order's ordersync id")
    answer = stub.QuoteRates(request, timeout=60, metadata=args.metadata)
    if args.json and not args.write:
        return _print_json(answer)
    print(f"quotes from {answer.provider_account}, markup {answer.markup_percent}%:")
    for q in answer.quotes:
        print(
            f"  {q.carrier:<6} {q.service_code:<24} {q.service_name:<34} base {q.base_amount.value:>9}"
            f"  markup {q.markup_amount.value:>10}  total {_money(q.total)}"
        )
    if not args.write:
        return 0
    chosen = next((q for q in answer.quotes if q.service_code == args.write), None)
    if chosen is None:
        print(f"error: no quote for service {args.write!r}", file=sys.stderr)
        return 1
    done = stub.WriteFreight(
        rates_pb.WriteFreightRequest(
            tenant_id=args.tenant, order_id=request.order_id, total=chosen.total, service_name=chosen.service_name
        ),
        timeout=30,
        metadata=args.metadata,
    )
    if args.json:
        return _print_json(done)
    outcome = "written to" if done.written else "already on"
    print(
        f"freight {_money(chosen.total)} ({chosen.service_name}) {outcome} {done.channel_account} order {done.channel_order_id}"
    )
    return 0


def _map_stub(args) -> map_grpc.ProductMapServiceStub:
    return map_grpc.ProductMapServiceStub(args.channel)


def _map_list(_, args) -> int:
    answer = _map_stub(args).ListProductMappings(
        map_pb.ListProductMappingsRequest(tenant_id=args.tenant), timeout=30, metadata=args.metadata
    )
    if args.json:
        return _print_json(answer)
    for mapping in answer.mappings:
        parts = ", ".join(f"{c.sku} x{c.quantity}" + (f" ({c.name})" if c.name else "") for c in mapping.components)
        kind = "bundle" if len(mapping.components) > 1 or mapping.components[0].quantity != 1 else "alternative"
        print(f"{mapping.channel_sku:<24} {kind:<11} -> {parts}")
    print(f"({len(answer.mappings)} mapping(s))")
    return 0


def _map_add(_, args) -> int:
    if args.name and len(args.name) != len(args.components):
        return _usage(f"give one --name per component ({len(args.components)}), or none")
    components = []
    for position, text in enumerate(args.components):
        sku, star, quantity = text.rpartition("*")
        if not star or not quantity.isdigit():
            sku, quantity = text, "1"
        name = args.name[position] if args.name else ""
        components.append(map_pb.ProductComponent(sku=sku, quantity=int(quantity), name=name))
    mapping = map_pb.ProductMapping(channel_sku=args.channel_sku, components=components)
    answer = _map_stub(args).PutProductMapping(
        map_pb.PutProductMappingRequest(tenant_id=args.tenant, mapping=mapping), timeout=30, metadata=args.metadata
    )
    print(f"{'added' if answer.created else 'replaced'} the mapping of {args.channel_sku!r} for tenant {args.tenant!r}")
    return 0


def _map_remove(_, args) -> int:
    request = map_pb.DeleteProductMappingRequest(tenant_id=args.tenant, channel_sku=args.channel_sku)
    _map_stub(args).DeleteProductMapping(request, timeout=30, metadata=args.metadata)
    print(f"removed the mapping of {args.channel_sku!r} of tenant {args.tenant!r}")
    return 0


def _map_import(_, args) -> int:
    try:
        rows = parse_csv(Path(args.file).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        return _usage(f"cannot read {args.file}: {exc.strerror}")
    except CsvError as exc:
        return _usage(f"{args.file}: {exc}; nothing imported")
    request = map_pb.ImportProductMappingsRequest(rows=rows)
    answer = _map_stub(args).ImportProductMappings(request, timeout=60, metadata=args.metadata)
    print(f"imported {len(rows)} row(s): {answer.created} mapping(s) created, {answer.replaced} replaced")
    return 0


def _map_export(_, args) -> int:
    answer = _map_stub(args).ListProductMappings(
        map_pb.ListProductMappingsRequest(tenant_id=args.tenant), timeout=30, metadata=args.metadata
    )
    write_csv([(args.tenant, answer.mappings)], sys.stdout)
    return 0


def _sync_products(_, args) -> int:
    request = map_pb.SyncProductsRequest(
        tenant_id=args.tenant, provider_account=args.provider_account, dry_run=args.dry_run
    )
    answer = _map_stub(args).SyncProducts(request, timeout=300, metadata=args.metadata)
    if args.json:
        return _print_json(answer)
    verb = "would create" if answer.dry_run else "created"
    for product in answer.created:
        print(f"{verb:<13} {product.sku:<24} {product.name}")
    for sku in answer.present:
        print(f"{'present':<13} {sku}")
    for failure in answer.failed:
        print(f"{'failed':<13} {failure.sku:<24} {failure.reason}")
    print(f"({len(answer.created)} {verb}, {len(answer.present)} present, {len(answer.failed)} failed)")
    return 1 if answer.failed else 0


def _directory_admin_commands(commands) -> None:
    login = commands.add_parser("test-login", help="check each account's credentials at its vendor (exit 1: one fails)")
    login.set_defaults(run=_test_login)
    lists = commands.add_parser("sync-invite-lists", help="mirror the directory's member types into invite lists now")
    lists.set_defaults(run=_sync_invite_lists)


def _test_login(_, args) -> int:
    stub = directory_admin_grpc.DirectoryAdminServiceStub(args.channel)
    answer = stub.TestLogin(
        directory_admin_pb.TestLoginRequest(tenant_id=args.tenant), timeout=60, metadata=args.metadata
    )
    if args.json:
        _print_json(answer)
        return 0 if answer.all_ok else 1
    for check in answer.checks:
        problem = directory_admin_pb.ConnectionProblem.Name(check.problem).removeprefix("CONNECTION_PROBLEM_").lower()
        verdict = "ok" if check.ok else f"FAILED ({problem.replace('_', ' ')}): {check.detail}"
        print(f"{check.account:<20} {check.connector_label:<12} {verdict}")
    failed = sum(not check.ok for check in answer.checks)
    print(f"({len(answer.checks)} account(s) checked, {failed} failed)")
    return 0 if answer.all_ok else 1


def _sync_invite_lists(_, args) -> int:
    stub = directory_admin_grpc.DirectoryAdminServiceStub(args.channel)
    request = directory_admin_pb.SyncInviteListsRequest(tenant_id=args.tenant)
    answer = stub.SyncInviteLists(request, timeout=300, metadata=args.metadata)
    if args.json:
        return _print_json(answer)
    for mirror in answer.mirrors:
        print(f"invite lists of {mirror.channel_account} from {mirror.provider_account}:")
        for name in mirror.created:
            print(f"  {'created':<10} {name}")
        for renamed in mirror.renamed:
            print(f"  {'renamed':<10} {renamed.old_name} -> {renamed.new_name}")
        for name in mirror.removed:
            print(f"  {'removed':<10} {name}")
        print(
            f"  ({len(mirror.created)} created, {len(mirror.renamed)} renamed, {len(mirror.removed)} removed,"
            f" {len(mirror.unchanged)} unchanged)"
        )
    return 0


def _find_customer(_, args) -> int:
    by = {"email": args.query} if "@" in args.query else {"last_name": args.query}
    request = directory_pb.FindCustomersRequest(tenant_id=args.tenant, account=args.account, **by)
    answer = directory_grpc.CustomerDirectoryServiceStub(args.channel).FindCustomers(
        request, timeout=30, metadata=args.metadata
    )
    if args.json:
        return _print_json(answer)
    for customer in answer.customers:
        clubs = ", ".join(f"{c.club_name} ({c.status})" for c in customer.clubs) or "no clubs"
        types = ", ".join(customer.member_types) or "no member types"
        name = f"{customer.first_name} {customer.last_name}"
        print(f"{customer.member_id:<10} {name:<28} {customer.email:<32} {types}; {clubs}")
    print(f"({len(answer.customers)} customer(s) in {answer.account})")
    return 0


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _money(money) -> str:
    return f"{Decimal(money.minor_units).scaleb(-minor_unit_decimals(money.currency_code)):f} {money.currency_code}"


def _describe(sync: pb.OrderSync) -> str:
    lines = [
        f"order {sync.channel_ref.external_number} ({sync.order_id}) of {sync.tenant_id}",
        f"  status:   {sync.status_title}" + (f" [{sync.reason_code}]" if sync.reason_code else ""),
    ]
    if sync.reason:
        lines.append(f"  reason:   {sync.reason}")
    if sync.provider_order_number:
        their_id = f" (their id {sync.provider_reference})" if sync.provider_reference else ""
        lines.append(
            f"  provider: {sync.provider} order {sync.provider_order_number}{their_id}, {sync.attempts} attempt(s)"
        )
    if sync.shipment.status:
        status = shipment_pb2.ShipmentStatus.Name(sync.shipment.status).removeprefix("SHIPMENT_STATUS_").lower()
        tracking = ", ".join(sync.shipment.tracking_numbers)
        lines.append(f"  shipment: {status}" + (f", tracking {tracking}" if tracking else ""))
    return "\n".join(lines)


def _window(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if not match:
        raise SystemExit(f"error: --since {text!r}: use a number with m, h or d, e.g. 24h")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})


def _print_json(message) -> int:
    print(json.dumps(MessageToDict(message), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
