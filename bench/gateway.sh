#!/usr/bin/env bash
# What the gateway adds to a catalog read, and what its output cache gains: the same cached reads
# (a book by ID, a search page) through the gateway (output cache on), through a second gateway
# process with the output cache off (same environment as the first, OutputCache__Enabled=false),
# and straight at one book-service replica, in one run. Starts its own stack
# with eng/run.sh (own ports and data folder, the sample catalog, 2 replicas per service) and
# raises the gateway's anonymous rate limit through its configuration key.
#   bench/gateway.sh   (BENCH_SECONDS=15, BENCH_CONNECTIONS=16)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${BENCH_SECONDS:-15}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
export LIBRARY_DATA_DIR="$(mktemp -d /tmp/library-bench-gateway.XXXXXX)"
export LIBRARY_GATEWAY_PORT=8182 LIBRARY_USERSERVICE_PORT=5621 LIBRARY_BOOKSERVICE_PORT=5721 LIBRARY_LENDINGSERVICE_PORT=5821
export LIBRARY_PG_PORT=49432 LIBRARY_REDIS_PORT=49379 LIBRARY_RABBITMQ_PORT=49672
export RateLimiting__AnonymousPerMinute=100000000
NOCACHE_PORT=8183
NOCACHE_PID=
cleanup() {
  [[ -z "$NOCACHE_PID" ]] || kill "$NOCACHE_PID" 2>/dev/null || true
  "$ROOT/eng/run.sh" stop >/dev/null 2>&1 || true; rm -rf "$LIBRARY_DATA_DIR"
}
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

"$ROOT/eng/run.sh" start >/dev/null
G="http://127.0.0.1:$LIBRARY_GATEWAY_PORT"
S="http://127.0.0.1:$LIBRARY_BOOKSERVICE_PORT"
# The second gateway: the running one's environment, another port, no output cache.
GW_PID="$(cat "$LIBRARY_DATA_DIR/run/gateway-0.pid")"
mapfile -d '' GW_ENV <"/proc/$GW_PID/environ"
GW_CMD=(); mapfile -d '' GW_CMD <"/proc/$GW_PID/cmdline"
(cd "$(readlink "/proc/$GW_PID/cwd")" && exec env -i "${GW_ENV[@]}" "ASPNETCORE_URLS=http://127.0.0.1:$NOCACHE_PORT" OutputCache__Enabled=false "${GW_CMD[@]}") \
  >"$LIBRARY_DATA_DIR/logs/gateway-nocache.log" 2>&1 &
NOCACHE_PID=$!
N="http://127.0.0.1:$NOCACHE_PORT"
for _ in $(seq 1 120); do curl -sf "$N/health" >/dev/null && break; sleep 0.5; done
curl -sf "$N/health" >/dev/null || { echo "the second gateway did not start (see $LIBRARY_DATA_DIR/logs/gateway-nocache.log)" >&2; exit 1; }

BOOK="$(curl -sf "$G/api/books?search=darkness" | python3 -c "import json,sys; print(json.load(sys.stdin)['items'][0]['id'])")"

measure() { # LABEL URL
  wrk -t2 -c4 -d2s "$2" >/dev/null  # warm (fills the cache)
  wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency "$2" | awk -v label="$1" '
    /Requests\/sec/ { rps = $2 } /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 } /Non-2xx/ { e = $NF }
    END { printf "%-28s req/s=%-9s p50=%-9s p99=%-9s non2xx=%s\n", label, rps, p50, p99, (e == "" ? 0 : e) }'
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; wrk ${CONNECTIONS} connections, ${SECONDS_EACH} s each; sample catalog"
measure "book by id, gateway + cache" "$G/api/books/$BOOK"
measure "book by id, gateway no cache" "$N/api/books/$BOOK"
measure "book by id, service direct" "$S/api/books/$BOOK"
measure "search page, gateway + cache" "$G/api/books?search=history&sort=title"
measure "search page, gateway no cache" "$N/api/books?search=history&sort=title"
measure "search page, service direct" "$S/api/books?search=history&sort=title"
