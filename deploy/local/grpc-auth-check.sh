#!/usr/bin/env bash
# Show, with grpcurl, that a running stack's gRPC APIs check their callers: a call without a token
# is UNAUTHENTICATED, one with a token not granted the tenant is PERMISSION_DENIED (naming the
# tenant, never the token), and, given a granted token, the call gets past the check.
#
#   make grpcurl
#   OTHER_TOKEN=... [TOKEN=...] [TENANT=cedar-ridge] deploy/local/grpc-auth-check.sh
#
# OTHER_TOKEN is a token whose caller is not granted TENANT; TOKEN (optional) one that is.
# Addresses: ORDERSYNC_ADMIN_ADDR (dispatch, 127.0.0.1:50053), ORDERSYNC_INTAKE_ADDR
# (127.0.0.1:50051). With ORDERSYNC_GRPC_CA_FILE set the calls use TLS (and, for mTLS,
# ORDERSYNC_GRPC_CLIENT_CERT_FILE and ORDERSYNC_GRPC_CLIENT_KEY_FILE). Tokens stay in the
# environment: grpcurl expands them itself, so they never appear on a command line.
# Exit status: 0 when every answer is the expected one, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
grpcurl=${GRPCURL:-$here/.tools/bin/grpcurl}
tenant=${TENANT:-cedar-ridge}
admin=${ORDERSYNC_ADMIN_ADDR:-127.0.0.1:50053}
intake=${ORDERSYNC_INTAKE_ADDR:-127.0.0.1:50051}
: "${OTHER_TOKEN:?set OTHER_TOKEN to a token whose caller is not granted $tenant}"
[[ -x $grpcurl ]] || { echo "grpcurl not found at $grpcurl: run make grpcurl" >&2; exit 1; }

transport=(-plaintext)
if [[ -n ${ORDERSYNC_GRPC_CA_FILE:-} ]]; then
  transport=(-cacert "$ORDERSYNC_GRPC_CA_FILE")
  if [[ -n ${ORDERSYNC_GRPC_CLIENT_CERT_FILE:-} ]]; then
    transport+=(-cert "$ORDERSYNC_GRPC_CLIENT_CERT_FILE" -key "$ORDERSYNC_GRPC_CLIENT_KEY_FILE")
  fi
fi
failures=0

# call EXPECTED TOKEN_VARIABLE ADDRESS METHOD JSON: one call, its status shown beside the expected one.
call() {
  local expected=$1 variable=$2 address=$3 method=$4 body=$5 headers=() answer code
  if [[ -n $variable ]]; then
    # Single quotes on purpose: grpcurl -expand-headers reads the variable, not the shell.
    # shellcheck disable=SC2016
    headers=(-expand-headers -H "authorization: Bearer \${$variable}")
  fi
  answer=$("$grpcurl" "${transport[@]}" "${headers[@]}" -d "$body" "$address" "$method" 2>&1) || true
  code=$(sed -n 's/^ *Code: //p' <<<"$answer")
  code=${code:-OK}
  printf '%-50s %-22s %-18s %s\n' "$method" "${variable:-(no token)}" "$code" "$(sed -n 's/^ *Message: //p' <<<"$answer")"
  if [[ $code != "$expected" && ! ($expected == PAST_CHECK && $code != Unauthenticated && $code != PermissionDenied) ]]; then
    echo "  expected $expected" >&2
    failures=$((failures + 1))
  fi
}

order="{\"order\": {\"tenant_id\": \"$tenant\", \"channel_order_number\": \"1\"}}"
listing="{\"tenant_id\": \"$tenant\"}"
printf '%-50s %-22s %-18s %s\n' method token status message
call Unauthenticated "" "$admin" ordersync.admin.v1.OrderAdminService/GetOrder "$order"
call PermissionDenied OTHER_TOKEN "$admin" ordersync.admin.v1.OrderAdminService/GetOrder "$order"
call PermissionDenied OTHER_TOKEN "$admin" ordersync.admin.v1.OrderAdminService/ListOrders "$listing"
call Unauthenticated "" "$intake" ordersync.intake.v1.OrderIntakeService/ListOrders "$listing"
call PermissionDenied OTHER_TOKEN "$intake" ordersync.intake.v1.OrderIntakeService/ListOrders "$listing"
if [[ -n ${TOKEN:-} ]]; then
  call PAST_CHECK TOKEN "$admin" ordersync.admin.v1.OrderAdminService/ListOrders "$listing"
  call PAST_CHECK TOKEN "$intake" ordersync.intake.v1.OrderIntakeService/ListOrders "$listing"
fi
call OK "" "$admin" grpc.health.v1.Health/Check "{}"   # probes need no token

if ((failures)); then
  echo "grpc-auth-check: $failures answer(s) not as expected" >&2
  exit 1
fi
echo "grpc-auth-check: every answer as expected"
