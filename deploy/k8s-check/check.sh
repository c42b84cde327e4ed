#!/usr/bin/env bash
# Validates a Helm chart with no cluster: helm lint, helm template with the chart's default
# values and with each values file given, kubeconform -strict on what was rendered (offline
# schemas, the CRDs' kinds included), then a server-side dry-run of every rendered object
# against a real kube-apiserver on etcd, started here on loopback and stopped on exit.
#
#   deploy/k8s-check/check.sh CHART [VALUES_FILE...]
#
# `make k8s-check` runs it with the tools it builds and fetches into .tools; run alone, it
# needs the same, named by these variables:
#   HELM KUBECONFORM KUBE_APISERVER ETCD  the binaries
#   K8S_SCHEMAS         kubeconform's schema directory (deploy/k8s-check/schemas.py)
#   K8S_SCHEMA_VERSION  the Kubernetes version of those schemas (1.37.0)
#   K8S_CRDS            a folder of CRD YAML files to install before the dry-run
#   PYTHON              a Python with httpx and PyYAML (the venv's)
#   K8S_CHECK_NAMESPACE the release's namespace (ordersync); K8S_CHECK_RELEASE its name (ordersync)
# Exits non-zero at the first step that finds a problem, naming each object it refused.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
HERE="$ROOT/deploy/k8s-check"
: "${HELM:?set HELM}" "${KUBECONFORM:?set KUBECONFORM}" "${KUBE_APISERVER:?set KUBE_APISERVER}" "${ETCD:?set ETCD}"
: "${K8S_SCHEMAS:?set K8S_SCHEMAS}" "${K8S_SCHEMA_VERSION:?set K8S_SCHEMA_VERSION}" "${K8S_CRDS:?set K8S_CRDS}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
NAMESPACE="${K8S_CHECK_NAMESPACE:-ordersync}"
RELEASE="${K8S_CHECK_RELEASE:-ordersync}"

if [[ $# -lt 1 ]]; then
    echo "usage: $0 CHART [VALUES_FILE...]" >&2
    exit 2
fi
CHART="$1"
shift
VALUES=("$@")
if [[ ! -f "$CHART/Chart.yaml" ]]; then
    echo "k8s-check: no chart at $CHART (no Chart.yaml)" >&2
    exit 1
fi
for values in "${VALUES[@]}"; do
    if [[ ! -f "$values" ]]; then
        echo "k8s-check: no values file $values" >&2
        exit 1
    fi
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/k8s-check.XXXXXX")"
etcd_pid=""
apiserver_pid=""
server_logs=0  # 1 while a failure would be the servers' own: their logs are shown then
stop() {  # SIGTERM, then SIGKILL if it has not exited within 20 s
    local pid="$1" tries=0
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [[ $tries -lt 100 ]]; do
        sleep 0.2
        tries=$((tries + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$?
    stop "$apiserver_pid"
    stop "$etcd_pid"
    if [[ $status -ne 0 && $server_logs -eq 1 ]]; then
        for log in "$WORK"/logs/*.log; do
            [[ -s "$log" ]] || continue
            echo "--- last lines of $(basename "$log") ---" >&2
            tail -n 15 "$log" >&2
        done
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. helm lint, once with the chart's defaults and once per values file.
echo "== helm lint $CHART"
"$HELM" lint "$CHART"
for values in "${VALUES[@]}"; do
    echo "== helm lint $CHART -f $values"
    "$HELM" lint "$CHART" -f "$values"
done

# 2. helm template: one rendered file per values set (default, then each file).
mkdir -p "$WORK/rendered"
rendered=("$WORK/rendered/default.yaml")
"$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" > "$WORK/rendered/default.yaml"
for values in "${VALUES[@]}"; do
    out="$WORK/rendered/$(basename "${values%.*}").yaml"
    "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" -f "$values" > "$out"
    rendered+=("$out")
done
for file in "${rendered[@]}"; do
    echo "== rendered $(basename "$file"): $(grep -c '^kind:' "$file" || true) objects"
done

# 3. kubeconform -strict, offline: every kind must have a schema (no -ignore-missing-schemas).
echo "== kubeconform -strict (Kubernetes $K8S_SCHEMA_VERSION schemas and the CRDs')"
"$KUBECONFORM" -strict -summary -output text \
    -kubernetes-version "$K8S_SCHEMA_VERSION" \
    -schema-location "$K8S_SCHEMAS" \
    "${rendered[@]}"

# 4. Server-side dry-run against a kube-apiserver on etcd, both on loopback in $WORK.
echo "== server-side dry-run ($("$KUBE_APISERVER" --version))"
mkdir -p "$WORK/logs" "$WORK/etcd" "$WORK/certs"
# Three free loopback ports, held open together while chosen so that they differ.
read -r etcd_client_port etcd_peer_port apiserver_port < <("$PYTHON" -c '
import socket
held = [socket.socket() for _ in range(3)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))
')

token="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')"
printf '%s\n' "$token" > "$WORK/token"
# The one user, in system:masters, so RBAC allows it everything.
printf '%s,k8s-check,k8s-check,"system:masters"\n' "$token" > "$WORK/tokens.csv"
openssl genrsa -out "$WORK/sa.key" 2048 2>/dev/null
openssl rsa -in "$WORK/sa.key" -pubout -out "$WORK/sa.pub" 2>/dev/null

"$ETCD" --name k8s-check --data-dir "$WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_client_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "k8s-check=http://127.0.0.1:$etcd_peer_port" \
    --logger zap --log-level error \
    > "$WORK/logs/etcd.log" 2>&1 &
etcd_pid=$!

"$KUBE_APISERVER" \
    --etcd-servers "http://127.0.0.1:$etcd_client_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$apiserver_port" \
    --cert-dir "$WORK/certs" \
    --token-auth-file "$WORK/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$WORK/sa.pub" \
    --service-account-signing-key-file "$WORK/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --endpoint-reconciler-type none \
    --enable-priority-and-fairness=false \
    --profiling=false \
    > "$WORK/logs/kube-apiserver.log" 2>&1 &
apiserver_pid=$!

client=("$PYTHON" "$HERE/dry_run.py" --server "https://127.0.0.1:$apiserver_port"
        --token-file "$WORK/token" --ca "$WORK/certs/apiserver.crt")
server_logs=1
"${client[@]}" wait --timeout 180 --watch "etcd=$etcd_pid" --watch "kube-apiserver=$apiserver_pid"
shopt -s nullglob
crds=("$K8S_CRDS"/*.yaml)
shopt -u nullglob
if [[ ${#crds[@]} -gt 0 ]]; then
    "${client[@]}" crds "${crds[@]}"
fi
server_logs=0
"${client[@]}" apply --namespace "$NAMESPACE" "${rendered[@]}"
echo "== k8s-check: $CHART passed (helm lint, helm template, kubeconform -strict, server-side dry-run)"
