#!/usr/bin/env bash
# Runs a command with local PostgreSQL and Kafka available, starting them if needed and stopping
# afterwards (even on failure) only what this call started.
#
#   deploy/local/with-infra.sh COMMAND [ARGS...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
INFRA="$ROOT/deploy/local/infra.sh"
RUN_DIR="$(realpath -m "${ORDERSYNC_RUN_DIR:-$ROOT/.run}")"

started=0
if [[ -n "${ORDERSYNC_PG_DSN:-}" && -n "${ORDERSYNC_KAFKA_BOOTSTRAP:-}" ]]; then
    echo "infra: using PostgreSQL and Kafka named in the environment"
elif bash "$INFRA" status >/dev/null 2>&1; then
    echo "infra: using the local PostgreSQL and Kafka already running"
    # shellcheck disable=SC1091
    source "$RUN_DIR/infra.env"
else
    started=1
    trap 'bash "$INFRA" down' EXIT
    bash "$INFRA" up
    # shellcheck disable=SC1091
    source "$RUN_DIR/infra.env"
fi
export ORDERSYNC_PG_DSN ORDERSYNC_KAFKA_BOOTSTRAP
"$@"
