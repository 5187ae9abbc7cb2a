# Shared by the bench-*.sh scripts (sourced, not run).

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs the Debian packages that are missing, in one apt-get run. Each argument is a package,
# checked with dpkg, or package:command, checked by finding the command:
#   bench_require wrk:wrk nginx:nginx varnish:varnishd libdeflate-dev
bench_require() {
    local missing=() entry package command
    for entry in "$@"; do
        package="${entry%%:*}"
        if [ "$entry" != "$package" ]; then
            command="${entry#*:}"
            command -v "$command" >/dev/null 2>&1 || missing+=("$package")
        else
            dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
        fi
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# With PIN=1, sets server_pin=(taskset -c 1) and load_pin=(taskset -c 0), to put the servers and
# the load (generator, origin) on separate CPUs; both empty otherwise. taskset execs the command,
# so a server started through it keeps its own pid.
bench_pins() {
    server_pin=()
    load_pin=()
    if [ "${PIN:-0}" = 1 ]; then
        server_pin=(taskset -c 1)
        load_pin=(taskset -c 0)
    fi
}

# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Prints "requests_per_second p99_milliseconds" from wrk --latency output on standard input.
wrk_figures() {
    awk '/Requests\/sec/ {rps = $2}
        $1 == "99%" {v = $2; if (v ~ /us$/) {sub("us", "", v); v = v / 1000} else if (v ~ /ms$/) {sub("ms", "", v)} else if (v ~ /s$/) {sub("s", "", v); v = v * 1000}; p99 = v}
        END {print rps, p99}'
}

# Writes a 64 KiB body and a wrk script that POSTs it, into folder $1 (body, post.lua).
write_post_script() {
    head -c 65536 /dev/zero | tr '\0' "${2:-a}" >"$1/body"
    cat >"$1/post.lua" <<LUA
local f = io.open("$1/body", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
}

# Installs wrk and redis-server when missing, starts a standalone redis-server ($REDIS_PORT),
# makes a work folder ($work) and a list of server pids ($pids): all stopped and removed on exit.
bench_start_redis() {
    bench_require wrk:wrk redis-server:redis-server redis-tools:redis-cli
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
