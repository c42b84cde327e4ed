"""Operator CLI for what intake received and how it judged it, on intake's gRPC API.

    python -m order_intake.cli --addr HOST:PORT --tenant acme list --status not-imported
    python -m order_intake.cli --tenant acme list --code NOT_FULLY_PICKED
    python -m order_intake.cli --tenant acme show cin7 41872
    python -m order_intake.cli --tenant acme accounts
    python -m order_intake.cli --tenant acme locked [ACCOUNT]
    python -m order_intake.cli --tenant acme sync-now ACCOUNT [--dry-run]

`list` pages newest first through the tenant's orders, optionally of one status and failing one
import rule (its code); `show` prints one order's intake record by its channel and channel id;
`accounts` prints each pulled channel account's poll state: cursor, next poll, failures, last
error, and the acknowledgements it still owes the channel (after commit, or after handover: the
orders awaiting the provider and those handed over but not yet acknowledged) and the sync
results it has yet to tell; `locked` lists the changes of synced orders that were recorded and
not sent on (channels locked after sync), newest first, each with its message; `sync-now` brings
an account's poll forward (the caller must be an operator of the tenant) or, with --dry-run (a
reader suffices), prints what a poll would do with each record, committing nothing.
The caller's bearer token is read from ORDERSYNC_INTAKE_TOKEN (another variable with
--token-env, or a file with --token-file), never from the command line; it must be a reader of
the tenant. TLS as the admin CLI (ORDERSYNC_GRPC_CA_FILE ...). Exit codes: 0 done, 1 refused (the
message says why), 2 bad usage, 3 unavailable (try again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import grpc
from google.protobuf.json_format import MessageToDict
from ordersync.common.v1 import order_pb2
from ordersync.intake.v1 import intake_service_pb2 as pb
from ordersync.intake.v1 import intake_service_pb2_grpc as pb_grpc

from libs.platform.auth import bearer, cli_token
from libs.platform.config import ConfigError, grpc_client_tls_from_env
from libs.platform.grpc_server import channel_credentials

DEFAULT_ADDR = "127.0.0.1:50051"
# "--status not-imported" -> "INTAKE_STATUS_NOT_IMPORTED"; the request takes the enum by its name.
STATUSES = {
    name.removeprefix("INTAKE_STATUS_").lower().replace("_", "-"): name
    for name, value in pb.IntakeStatus.items()
    if value
}
_REFUSALS = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.metadata = bearer(cli_token(args.token_env, args.token_file, os.environ))
        tls = grpc_client_tls_from_env()
        channel = grpc.secure_channel(args.addr, channel_credentials(tls)) if tls else grpc.insecure_channel(args.addr)
        with channel:
            try:
                return args.run(pb_grpc.OrderIntakeServiceStub(channel), args)
            except grpc.RpcError as exc:
                print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
                return 1 if exc.code() in _REFUSALS else 3
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="order_intake.cli", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--addr", default=os.environ.get("ORDERSYNC_INTAKE_ADDR", DEFAULT_ADDR))
    parser.add_argument("--tenant", required=True, help="tenant id")
    parser.add_argument("--token-env", default="ORDERSYNC_INTAKE_TOKEN",
                        help="environment variable holding the bearer token (never pass a token itself)")  # fmt: skip
    parser.add_argument("--token-file", help="file holding the bearer token, instead of --token-env")
    parser.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="orders, newest first, by status and failed import rule")
    listing.add_argument("--status", choices=sorted(STATUSES))
    listing.add_argument("--code", default="", help="only orders failing this import rule, e.g. TOO_OLD")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_list)

    show = commands.add_parser("show", help="one order's intake record")
    show.add_argument("channel", help="the channel's connector id, e.g. cin7")
    show.add_argument("external_id", help="the order's id in the channel")
    show.set_defaults(run=_show)

    accounts = commands.add_parser("accounts", help="pulled channel accounts: polling and acknowledgements owed")
    accounts.set_defaults(run=_accounts)

    locked = commands.add_parser("locked", help="changes of synced orders recorded and not sent on")
    locked.add_argument("account", nargs="?", default="", help="only this channel account's")
    locked.add_argument("--limit", type=int, default=50)
    locked.set_defaults(run=_locked)

    sync = commands.add_parser("sync-now", help="poll a pulled account now, or list what a poll would do")
    sync.add_argument("account", help="the tenant's name for the pulled channel account")
    sync.add_argument("--dry-run", action="store_true", help="list what would be sent; commit and send nothing")
    sync.set_defaults(run=_sync_now)
    return parser


def _list(stub, args) -> int:
    request = pb.ListOrdersRequest(
        tenant_id=args.tenant,
        page_size=min(args.limit, 500),
        status=STATUSES.get(args.status or "", "INTAKE_STATUS_UNSPECIFIED"),
        rule_code=args.code,
    )
    answer = stub.ListOrders(request, timeout=10, metadata=args.metadata)
    if args.json:
        return _print_json(answer)
    for record in answer.records:
        number = record.order.external_number or record.order.external_id
        codes = ",".join(f.code for f in record.rule_failures)
        print(f"{number:<12} {_status(record):<13} {codes:<40} {record.order.order_id}")
    print(f"({len(answer.records)} order(s){'; more: narrow the filter' if answer.next_page_token else ''})")
    return 0


def _show(stub, args) -> int:
    ref = order_pb2.ChannelOrderRef(channel=args.channel, external_id=args.external_id)
    answer = stub.GetOrder(
        pb.GetOrderRequest(tenant_id=args.tenant, channel_ref=ref), timeout=10, metadata=args.metadata
    )
    if args.json:
        return _print_json(answer)
    record = answer.record
    print(f"order {record.order.external_number} ({record.order.order_id}) of {args.tenant}")
    print(f"  status:    {_status(record)}, {record.revision_count} revision(s)")
    if record.order.channel_status:
        print(f"  in {args.channel}: {record.order.channel_status}")
    if record.rule_failures:
        print("  not imported, fix in the channel:")
        for failure in record.rule_failures:
            print(f"    {failure.code:<22} {failure.sentence}")
    elif record.status_reason:
        print(f"  reason:    {record.status_reason}")
    if record.locked_changes:
        print(f"  locked after sync: {len(record.locked_changes)} change(s) not sent on:")
        for change in record.locked_changes:
            print(f"    {_time(change.received_time)} revision {change.revision}")
            print(f"      {change.message}")
    return 0


def _locked(stub, args) -> int:
    request = pb.ListLockedChangesRequest(tenant_id=args.tenant, account=args.account, page_size=min(args.limit, 500))
    answer = stub.ListLockedChanges(request, timeout=10, metadata=args.metadata)
    if args.json:
        return _print_json(answer)
    for change in answer.changes:
        number = change.external_number or change.external_id
        print(f"{_time(change.received_time)} {change.account} ({change.channel}) order {number} ({change.order_id})")
        print(f"  {change.message}")
    more = "; more: give --limit or an account" if answer.next_page_token else ""
    print(f"({len(answer.changes)} locked change(s){more})")
    return 0


def _sync_now(stub, args) -> int:
    request = pb.SyncNowRequest(tenant_id=args.tenant, account=args.account, dry_run=args.dry_run)
    # A dry run fetches up to its page limit from the channel: give it time.
    answer = stub.SyncNow(request, timeout=120 if args.dry_run else 10, metadata=args.metadata)
    if args.json:
        return _print_json(answer)
    for record in answer.records:
        action = pb.DryRunAction.Name(record.action).removeprefix("DRY_RUN_ACTION_").lower()
        number = record.external_number or record.external_id or "-"
        print(f"{number:<14} {action:<13} {record.detail}")
        for failure in record.rule_failures:
            print(f"    {failure.code:<22} {failure.sentence}")
    print(answer.message)
    return 0


def _time(stamp) -> str:
    return stamp.ToDatetime().isoformat(timespec="seconds") + "Z"


def _accounts(stub, args) -> int:
    answer = stub.ListPullCursors(pb.ListPullCursorsRequest(tenant_id=args.tenant), timeout=10, metadata=args.metadata)
    if args.json:
        return _print_json(answer)
    for cursor in answer.cursors:
        polling = f"polled by {cursor.lease_owner}" if cursor.lease_owner else "next poll"
        when = cursor.next_poll_time.ToDatetime().isoformat(timespec="seconds") + "Z"
        print(f"{cursor.account} ({cursor.connector}): {cursor.orders_pulled} revision(s) pulled, {polling} {when}")
        print(
            f"  to acknowledge: {cursor.unacknowledged_count} committed,"
            f" {cursor.awaiting_handover_count} awaiting handover,"
            f" {cursor.handed_over_unacknowledged_count} handed over not yet acknowledged"
        )
        if cursor.unreported_sync_results_count:
            print(f"  sync results to tell the channel: {cursor.unreported_sync_results_count}")
        if cursor.failures or cursor.last_error:
            print(f"  {cursor.failures} failed poll(s) in a row; last error: {cursor.last_error or '-'}")
    print(f"({len(answer.cursors)} pulled account(s))")
    return 0


def _status(record: pb.IntakeRecord) -> str:
    return pb.IntakeStatus.Name(record.status).removeprefix("INTAKE_STATUS_").lower().replace("_", "-")


def _print_json(message) -> int:
    print(json.dumps(MessageToDict(message), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
