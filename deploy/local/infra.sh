#!/usr/bin/env bash
# Runs ordersync's Kafka (KRaft, jars from Maven Central) and PostgreSQL 15 on this machine, without Docker.
#
#   deploy/local/infra.sh up | down [--wipe] | status | env | restart-pg [S] | restart-kafka [S]
#
# Environment (all optional):
#   ORDERSYNC_PG_PORT (25432)  ORDERSYNC_KAFKA_PORT (29092)  ORDERSYNC_KAFKA_CONTROLLER_PORT (29093)
#   (below Linux's ephemeral range, 32768-60999: a default there can be taken, now and then, by
#   the local end of some outgoing connection, and the server then cannot bind it)
#   ORDERSYNC_PG_FSYNC (on|off, default on)  ORDERSYNC_RUN_DIR (default <repo>/.run)
#   ORDERSYNC_PYTHON (default <repo>/.venv/bin/python; needs aiokafka)
# `up` writes <run dir>/infra.env with ORDERSYNC_PG_DSN and ORDERSYNC_KAFKA_BOOTSTRAP exports.
# PostgreSQL admits the postgres superuser without a password and every other role (the services'
# and the migration role) only with its password over TCP (scram-sha-256).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
HERE="$ROOT/deploy/local"

PG_PORT="${ORDERSYNC_PG_PORT:-25432}"
KAFKA_PORT="${ORDERSYNC_KAFKA_PORT:-29092}"
CTRL_PORT="${ORDERSYNC_KAFKA_CONTROLLER_PORT:-29093}"
PG_FSYNC="${ORDERSYNC_PG_FSYNC:-on}"
PYTHON="${ORDERSYNC_PYTHON:-$ROOT/.venv/bin/python}"
# Relative values are taken from the caller's directory; everything below needs absolute paths
# because postgres and the JVM run from other working directories.
RUN_DIR="$(realpath -m "${ORDERSYNC_RUN_DIR:-$ROOT/.run}")"

PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR="$RUN_DIR/pg"            # owned by the postgres OS user
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
KAFKA_DIR="$RUN_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
JARS="$ROOT/.cache/kafka-jars"
POM="$HERE/kafka/pom.xml"
ENV_FILE="$RUN_DIR/infra.env"

log() { echo "infra: $*"; }
die() { echo "infra: error: $*" >&2; exit 1; }

# PostgreSQL refuses to run as root; a non-root developer runs it as themselves.
as_postgres() {
    if [[ $EUID -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Process $1 exists and is not a zombie: this machine's init reaps late, and kill -0 counts zombies.
alive() {
    local state
    state="$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null)" && [[ -n "$state" && "$state" != Z ]]
}

# Something accepts connections on 127.0.0.1:$1 (ours or not).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Run a Python helper with its output prefixed like ours; pipefail keeps its exit status.
run_py() { "$PYTHON" "$@" 2>&1 | sed 's/^/infra: /'; }

ensure_tools() {
    local missing=()
    [[ -x "$PG_BIN/initdb" ]] || missing+=(postgresql)
    command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null || missing+=(maven)
    if ((${#missing[@]})); then
        [[ $EUID -eq 0 ]] || die "missing ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}'"
        log "installing ${missing[*]} with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    [[ -x "$PYTHON" ]] || die "no Python at $PYTHON: create .venv or set ORDERSYNC_PYTHON"
}

# Kafka's jars, resolved by Maven into .cache/kafka-jars. The marker holds the pom's hash, so a
# half-finished download or an edited pom triggers a fresh fetch.
fetch_jars() {
    local want
    want="$(sha256sum "$POM" | cut -d' ' -f1)"
    if [[ "$(cat "$JARS/.complete" 2>/dev/null)" == "$want" ]]; then
        return
    fi
    log "fetching Kafka jars into .cache/kafka-jars (first run only, ~50 MB)"
    local tmp="$JARS.partial" attempt
    mkdir -p "$(dirname "$JARS")"
    for attempt in 1 2 3; do
        rm -rf "$tmp"
        if mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$JARS.mvn.log" 2>&1; then
            echo "$want" >"$tmp/.complete"
            rm -rf "$JARS"
            mv "$tmp" "$JARS"
            return
        fi
        tail -n 20 "$JARS.mvn.log" >&2
        log "maven failed (attempt $attempt of 3)"
        sleep $((attempt * 5))
    done
    die "could not fetch Kafka jars with maven"
}

# ---- PostgreSQL ---------------------------------------------------------------------------

pg_pid() { sed -n 1p "$PG_DATA/postmaster.pid" 2>/dev/null; }
pg_port() { sed -n 4p "$PG_DATA/postmaster.pid"; }   # line 4 of postmaster.pid is the port
# Not `pg_ctl status`: it uses kill -0, which counts a zombie postmaster as running.
pg_running() {
    local pid
    pid="$(pg_pid)" && [[ -n "$pid" ]] && alive "$pid" && grep -qa postgres "/proc/$pid/cmdline"
}
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres; }
pg_fsync() { "$PG_BIN/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atc 'show fsync' 2>/dev/null || echo '?'; }

# runuser postgres must reach the data dir through every parent (the repo may sit in a root-owned dir).
make_traversable() {
    local dir="" part parts
    IFS=/ read -ra parts <<<"${1#/}"
    for part in "${parts[@]}"; do   # from the top down: a blocked parent hides its children
        dir+="/$part"
        if ! as_postgres test -x "$dir"; then
            log "chmod o+x $dir (so the postgres user can reach its data dir)"
            chmod o+x "$dir"
        fi
    done
}

start_pg() {
    if pg_running; then
        [[ "$(pg_port)" == "$PG_PORT" ]] || die "PostgreSQL already runs on port $(pg_port), not $PG_PORT: run 'down' first"
        pg_ready "$PG_PORT" || die "PostgreSQL (pid $(pg_pid)) runs but does not answer on $PG_PORT; see $PG_LOG"
        log "postgres already running on 127.0.0.1:$PG_PORT (fsync=$(pg_fsync "$PG_PORT"))"
        return
    fi

    if [[ -f "$PG_DATA/postmaster.pid" ]]; then
        # Left by a crash. postgres checks these pids with kill -0 and would refuse to start
        # while the dead postmaster is still an unreaped zombie.
        local stale sock_lock="/tmp/.s.PGSQL.$PG_PORT.lock"
        stale="$(pg_pid)"
        log "removing the lock files of a crashed postgres (pid $stale)"
        rm -f "$PG_DATA/postmaster.pid"
        [[ "$(sed -n 1p "$sock_lock" 2>/dev/null)" == "$stale" ]] && rm -f "$sock_lock"
    fi
    mkdir -p "$PG_DIR"
    [[ $EUID -ne 0 ]] || chown -R postgres:postgres "$PG_DIR"
    make_traversable "$PG_DIR"
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        rm -rf "$PG_DATA"   # leftovers of an interrupted initdb
        log "initdb $PG_DATA"
        as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
            || { tail -n 20 "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    fi

    write_pg_hba
    log "starting postgres on 127.0.0.1:$PG_PORT (fsync=$PG_FSYNC)"
    local opts="-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300"
    opts+=" -c shared_buffers=256MB -c fsync=$PG_FSYNC"
    # 9>&-: the server must not inherit (and so hold) our lock file.
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -o "$opts" -w -t 60 start >/dev/null 9>&- \
        || { tail -n 20 "$PG_LOG" >&2; die "postgres did not start; log: $PG_LOG"; }
    for _ in $(seq 1 60); do
        pg_ready "$PG_PORT" && return
        sleep 0.5
    done
    die "postgres started but does not answer on $PG_PORT; log: $PG_LOG"
}

# Rewritten on every start, like Kafka's properties. The postgres superuser keeps trust (tests,
# the stack's bootstrap); every other role (the services' and the migration role) must give its
# password over TCP, so a service's credentials really are what admits it.
write_pg_hba() {
    as_postgres tee "$PG_DATA/pg_hba.conf" >/dev/null <<EOF
# Written by deploy/local/infra.sh on every start; edit the script, not this file.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 trust
host    all       postgres  127.0.0.1/32   trust
host    all       all       127.0.0.1/32   scram-sha-256
EOF
}

stop_pg() {
    if pg_running; then
        log "stopping postgres (pid $(pg_pid))"
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
    fi
}

# ---- Kafka --------------------------------------------------------------------------------

# Prints the broker's pid if the pid file names a live kafka.Kafka process (not a reused pid).
kafka_pid() {
    local pid
    pid="$(cat "$KAFKA_PIDFILE" 2>/dev/null)" || return 1
    [[ -n "$pid" ]] && alive "$pid" && grep -qa 'kafka\.Kafka' "/proc/$pid/cmdline" && echo "$pid"
}
kafka_port() { sed -n 's|^advertised.listeners=PLAINTEXT://127.0.0.1:||p' "$KAFKA_PROPS"; }
kafka_ctrl_port() { sed -n 's|^controller.quorum.voters=1@127.0.0.1:||p' "$KAFKA_PROPS"; }

write_kafka_props() {
    cat >"$KAFKA_PROPS" <<EOF
# Written by deploy/local/infra.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DATA
# One node: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Fewer internal partitions than the default 50: the first consumer group and the first
# transactional producer create them, which takes seconds on 2 cores.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
# Tests start consumers often; do not hold the first rebalance back 3 s.
group.initial.rebalance.delay.ms=0
# Topics come from deploy/topics.txt only; a typo must fail, not create a topic.
auto.create.topics.enable=false
num.partitions=4
EOF
}

start_kafka() {
    local pid
    if pid="$(kafka_pid)"; then
        [[ "$(kafka_port)" == "$KAFKA_PORT" ]] || die "Kafka already runs on port $(kafka_port), not $KAFKA_PORT: run 'down' first"
        run_py "$HERE/wait_kafka.py" --bootstrap "127.0.0.1:$KAFKA_PORT" --timeout 10 --pid "$pid" >/dev/null \
            || die "Kafka (pid $pid) runs but does not answer on $KAFKA_PORT; see $KAFKA_LOG"
        log "kafka already running on 127.0.0.1:$KAFKA_PORT (pid $pid)"
        return
    fi
    rm -f "$KAFKA_PIDFILE"
    mkdir -p "$KAFKA_DATA"
    write_kafka_props

    local java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
        "-Dlog4j.configuration=file:$HERE/kafka/log4j.properties")
    if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
        [[ -s "$KAFKA_DIR/cluster-id" ]] \
            || java "${java_opts[@]}" -cp "$JARS/*" kafka.tools.StorageTool random-uuid >"$KAFKA_DIR/cluster-id"
        log "formatting Kafka storage (cluster $(cat "$KAFKA_DIR/cluster-id"))"
        java "${java_opts[@]}" -cp "$JARS/*" kafka.tools.StorageTool format \
            -t "$(cat "$KAFKA_DIR/cluster-id")" -c "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1 \
            || { tail -n 20 "$KAFKA_LOG" >&2; die "kafka storage format failed"; }
    fi

    log "starting kafka on 127.0.0.1:$KAFKA_PORT (controller $CTRL_PORT)"
    # setsid + nohup: the broker outlives this script and a Ctrl-C or process-group kill aimed at
    # the caller; all output goes to the log so callers that capture our output do not hang;
    # 9>&- so that it does not hold our lock file for its whole life.
    setsid nohup java "${java_opts[@]}" -cp "$JARS/*" kafka.Kafka "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1 </dev/null 9>&- &
    echo $! >"$KAFKA_PIDFILE"
    run_py "$HERE/wait_kafka.py" --bootstrap "127.0.0.1:$KAFKA_PORT" --timeout 120 --pid "$!" \
        || { tail -n 30 "$KAFKA_LOG" >&2; die "kafka did not become ready; log: $KAFKA_LOG"; }
}

stop_kafka() {
    local pid
    if pid="$(kafka_pid)"; then
        log "stopping kafka (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        # A clean shutdown flushes logs and skips recovery on the next start; 20 s is plenty.
        for _ in $(seq 1 100); do
            alive "$pid" || break
            sleep 0.2
        done
        if alive "$pid"; then
            log "kafka still alive after 20 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            while alive "$pid"; do sleep 0.1; done
        fi
    fi
    rm -f "$KAFKA_PIDFILE"
}

# ---- subcommands --------------------------------------------------------------------------

lock() {
    mkdir -p "$RUN_DIR"
    exec 9>"$RUN_DIR/.lock"
    # Parallel `up`s (several test sessions) must not both initdb or start a broker.
    flock -w 120 9 || die "another infra.sh holds $RUN_DIR/.lock"
}

# Fail before starting anything: a half-started pair is worse than a clear message.
preflight() {
    [[ "$PG_FSYNC" == on || "$PG_FSYNC" == off ]] || die "ORDERSYNC_PG_FSYNC must be on or off, not '$PG_FSYNC'"
    if ! pg_running; then
        port_open "$PG_PORT" && die "port $PG_PORT is taken by another process: set ORDERSYNC_PG_PORT"
    fi
    if ! kafka_pid >/dev/null; then
        local port
        for port in "$KAFKA_PORT" "$CTRL_PORT"; do
            port_open "$port" && die "port $port is taken by another process: set ORDERSYNC_KAFKA_PORT / ORDERSYNC_KAFKA_CONTROLLER_PORT"
        done
    fi
    return 0
}

cmd_up() {
    lock
    ensure_tools
    preflight
    fetch_jars
    start_pg
    start_kafka
    run_py "$HERE/create_topics.py" --bootstrap "127.0.0.1:$KAFKA_PORT" --file "$ROOT/deploy/topics.txt"
    cat >"$ENV_FILE" <<EOF
# Written by deploy/local/infra.sh up; removed by down. Valid for both bash 'source' and make 'include'.
export ORDERSYNC_PG_DSN=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
export ORDERSYNC_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
EOF
    log "ready in ${SECONDS}s; environment in $ENV_FILE"
}

cmd_down() {
    local wipe=false
    case "${1:-}" in
        "") ;;
        --wipe) wipe=true ;;
        *) die "usage: infra.sh down [--wipe]" ;;
    esac
    if [[ ! -d "$RUN_DIR" ]]; then
        log "nothing to stop ($RUN_DIR does not exist)"
        return
    fi
    lock
    stop_kafka
    stop_pg
    rm -f "$ENV_FILE"
    if $wipe; then
        log "wiping $PG_DIR and $KAFKA_DIR"
        rm -rf "$PG_DIR" "$KAFKA_DIR"
    fi
    log "down"
}

cmd_status() {
    local all=0 pid
    if pg_running; then
        log "postgres running on 127.0.0.1:$(pg_port) (pid $(pg_pid), fsync=$(pg_fsync "$(pg_port)"))"
    else
        log "postgres stopped"; all=3
    fi
    if pid="$(kafka_pid)"; then
        log "kafka    running on 127.0.0.1:$(kafka_port) (controller $(kafka_ctrl_port), pid $pid)"
    else
        log "kafka    stopped"; all=3
    fi
    return "$all"
}

# Stop one component, keep it down S seconds (default 0), start it again, while the other keeps
# running (the fault suite's outage drill): its clients see their connections drop and must reconnect.
cmd_restart() {
    local component="$1" down_s="${2:-0}"
    [[ "$down_s" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "usage: infra.sh restart-$component [SECONDS_DOWN]"
    [[ -d "$RUN_DIR" ]] || die "$RUN_DIR does not exist: run 'up' first"
    lock
    case "$component" in
        pg) pg_running || die "postgres is not running"; stop_pg; sleep "$down_s"; start_pg ;;
        kafka) kafka_pid >/dev/null || die "kafka is not running"; stop_kafka; sleep "$down_s"; start_kafka ;;
    esac
    log "$component restarted"
}

cmd_env() {
    [[ -f "$ENV_FILE" ]] || die "$ENV_FILE not found: run 'deploy/local/infra.sh up' first"
    cat "$ENV_FILE"
}

case "${1:-}" in
    up) cmd_up ;;
    down) shift; cmd_down "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    restart-pg) shift; cmd_restart pg "$@" ;;
    restart-kafka) shift; cmd_restart kafka "$@" ;;
    *) echo "usage: $0 up | down [--wipe] | status | env | restart-pg [S] | restart-kafka [S]" >&2; exit 2 ;;
esac
