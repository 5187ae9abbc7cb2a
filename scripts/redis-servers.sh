#!/usr/bin/env bash
# Sourced by test.sh and bench-redis.sh: starts Debian's redis-server on free loopback ports
# (no persistence) and stops every server it started on exit, also when the caller fails.
#   start_redis_standalone    -> sets REDIS_PORT
#   start_redis_cluster       -> sets REDIS_CLUSTER_PORTS (3 masters, no replicas)
REDIS_DIR=$(mktemp -d /tmp/strata-redis.XXXXXX)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_redis_servers() {
    for pidfile in "$REDIS_DIR"/*.pid; do
        [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$REDIS_DIR"
}
trap stop_redis_servers EXIT

start_redis_server() { # port [extra args...]
    local port=$1
    shift
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
        --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/$port.pid" --logfile "$REDIS_DIR/$port.log" "$@"
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "redis-server on $port did not start:" >&2
    cat "$REDIS_DIR/$port.log" >&2
    return 1
}

start_redis_standalone() {
    REDIS_PORT=$(free_port)
    start_redis_server "$REDIS_PORT"
}

start_redis_cluster() {
    REDIS_CLUSTER_PORTS=()
    local nodes=()
    for _ in 1 2 3; do
        local port
        port=$(free_port)
        # The cluster bus listens on port + 10000: pick again if that is taken.
        while [ "$port" -gt 55535 ] || ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',$port+10000))" 2>/dev/null; do
            port=$(free_port)
        done
        start_redis_server "$port" --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
            --cluster-node-timeout 5000
        REDIS_CLUSTER_PORTS+=("$port")
        nodes+=("127.0.0.1:$port")
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-yes >/dev/null
    for _ in $(seq 200); do
        local ok=1
        for port in "${REDIS_CLUSTER_PORTS[@]}"; do
            redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
        done
        [ $ok -eq 1 ] && return 0
        sleep 0.05
    done
    echo "the Redis cluster did not become ready" >&2
    return 1
}
