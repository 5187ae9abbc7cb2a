# Shared by the bench-*.sh scripts (sourced, not run).

# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Installs wrk and redis-server when missing, starts a standalone redis-server ($REDIS_PORT),
# makes a work folder ($work) and a list of server pids ($pids): all stopped and removed on exit.
bench_start_redis() {
    command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    command -v redis-server >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq redis-server redis-tools >/dev/null; }
    source scripts/redis-servers.sh
    start_redis_standalone
    work="$(mktemp -d)"
    pids=()
    trap bench_stop EXIT
}

bench_stop() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
    stop_redis_servers
}
