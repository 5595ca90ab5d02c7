#!/usr/bin/env bash
# Catalog reads and what the gateway adds to them (bench/run.sh scenarios 1 and 2), in one run:
# the same wrk (BENCH_CONNECTIONS connections, warm cache) on a book by ID and a search page
#   - through the gateway (the real path: anonymous reads answered first in its pipeline from its own memory);
#   - through the same gateway with its output cache off (a second gateway process: the running
#     gateway's own environment and command line, another port, OutputCache__Enabled=false), i.e.
#     forwarded to 2 book-service replicas answering from their Redis cache;
#   - through an empty YARP hop (bench/Baseline: one route, no auth, no limits) to a bare endpoint;
#   - at that bare endpoint (Kestrel, a JSON document of the same size as the real answer);
#   - at one book-service replica directly;
# then the ratios gateway/empty hop, gateway/bare, service/bare and output cache on/off.
#   bench/gateway.sh   (BENCH_SECONDS=10, BENCH_CONNECTIONS=64; BENCH_USE_RUNNING=1: see bench/lib.sh)
# Baseline ports: BENCH_BARE_PORT 8191, BENCH_HOP_PORT 8192; the second gateway BENCH_NOCACHE_PORT 8193.
# A/B: BENCH_GATEWAY_BASELINE_DLL=<another build's Library.Gateway.dll> adds a third gateway (the
# running gateway's environment, that build, port BENCH_BASEGW_PORT 8194) and a fourth (this
# build, launched the same way, BENCH_THISGW_PORT 8195) in front of the same services, and
# measures both gateways' cached reads in turns (this, bare, other, ...); the ratio is this /
# other, and each against the bare endpoint measured in between.
# BENCH_AB_TURNS (2): turns of that A/B; more of them (shorter: BENCH_SECONDS) when the machine is
# shared and one turn can be swamped by another process.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECONDS_EACH="${BENCH_SECONDS:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BARE_PORT="${BENCH_BARE_PORT:-8191}"
HOP_PORT="${BENCH_HOP_PORT:-8192}"
NOCACHE_PORT="${BENCH_NOCACHE_PORT:-8193}"
bench_need_tools
bench_stack_up

G="$BENCH_URL" S="$BENCH_SERVICE_URL"
BARE="http://127.0.0.1:$BARE_PORT" HOP="http://127.0.0.1:$HOP_PORT"
SEARCH="/api/books?search=history&sort=title"
BOOK="$(curl -sf "$G/api/books?search=darkness" | bench_json "['items'][0]['id']" 2>/dev/null)" \
  || BOOK="$(curl -sf "$G/api/books?pageSize=1" | bench_json "['items'][0]['id']")"

# The baselines answer documents captured from the real catalog: same bytes on the wire.
OUT="$BENCH_WORK/catalog"
mkdir -p "$OUT"
curl -sf "$G/api/books/$BOOK" >"$OUT/book.json"
curl -sf "$G$SEARCH" >"$OUT/search.json"
book_bytes="$(wc -c <"$OUT/book.json")" search_bytes="$(wc -c <"$OUT/search.json")"
for p in "$BARE_PORT" "$HOP_PORT" "$NOCACHE_PORT"; do
  timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$p" 2>/dev/null && bench_die "port $p (baseline) is in use; set BENCH_BARE_PORT / BENCH_HOP_PORT"
done
dotnet build "$BENCH_DIR/Baseline" -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
BASELINE="$BENCH_DIR/Baseline/bin/Release/net10.0/Baseline.dll"
dotnet "$BASELINE" bare "$BARE" "$OUT/book.json" "$OUT/search.json" >"$OUT/bare.log" 2>&1 &
BENCH_CHILD_PIDS+=($!)
dotnet "$BASELINE" hop "$HOP" "$BARE" >"$OUT/hop.log" 2>&1 &
BENCH_CHILD_PIDS+=($!)
# The gateway without its output cache: the running gateway's environment, another port.
GW_PID="$(cat "$LIBRARY_DATA_DIR/run/gateway-0.pid")"
mapfile -d '' GW_ENV <"/proc/$GW_PID/environ"
mapfile -d '' GW_CMD <"/proc/$GW_PID/cmdline"
(cd "$(readlink "/proc/$GW_PID/cwd")" && exec env -i "${GW_ENV[@]}" "ASPNETCORE_URLS=http://127.0.0.1:$NOCACHE_PORT" \
  OutputCache__Enabled=false "${GW_CMD[@]}") >"$OUT/gateway-nocache.log" 2>&1 &
BENCH_CHILD_PIDS+=($!)
N="http://127.0.0.1:$NOCACHE_PORT"
BASEGW_PORT="${BENCH_BASEGW_PORT:-8194}" B="" T=""
if [[ -n "${BENCH_GATEWAY_BASELINE_DLL:-}" ]]; then
  # This build for the A/B: a side process launched as the baseline is (same environment, same
  # session). The stack's own gateway runs in a session of its own (eng/processes.sh: setsid), so
  # with the kernel's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled) it shares
  # the CPU with wrk and the side processes as one group among all the machine's sessions: on this
  # shared machine it got 2-3x fewer requests through than the same build launched beside the
  # baseline, whatever the build (bench/README.md, issue 15 goal 3).
  THISGW_PORT="${BENCH_THISGW_PORT:-8195}"
  (cd "$(readlink "/proc/$GW_PID/cwd")" && exec env -i "${GW_ENV[@]}" "ASPNETCORE_URLS=http://127.0.0.1:$THISGW_PORT" \
    "${GW_CMD[@]}") >"$OUT/gateway-this.log" 2>&1 &
  BENCH_CHILD_PIDS+=($!)
  T="http://127.0.0.1:$THISGW_PORT"
  (cd "$(dirname "$BENCH_GATEWAY_BASELINE_DLL")" && exec env -i "${GW_ENV[@]}" "ASPNETCORE_URLS=http://127.0.0.1:$BASEGW_PORT" \
    dotnet "$BENCH_GATEWAY_BASELINE_DLL") >"$OUT/gateway-baseline.log" 2>&1 &
  BENCH_CHILD_PIDS+=($!)
  B="http://127.0.0.1:$BASEGW_PORT"
fi
for u in "$BARE/health" "$HOP/health" "$N/health" ${B:+"$B/health"} ${T:+"$T/health"}; do
  for _ in $(seq 100); do curl -sf -m 1 "$u" >/dev/null && break; sleep 0.1; done
  curl -sf -m 1 "$u" >/dev/null || bench_die "baseline $u did not start (logs in $OUT)"
done

declare -A RPS=()
measure() { # KEY WHAT URL NOTES
  wrk -t2 -c4 -d3s "$3" >/dev/null   # warm: JIT, connection pools, and the cache for this answer
  bench_wrk "$OUT/$1.txt" "$CONNECTIONS" "$SECONDS_EACH" "$3"
  RPS[$1]="$(bench_wrk_row catalog "$2" "$OUT/$1.txt" "$4")"
}
note="$CONNECTIONS conns, ${SECONDS_EACH} s"
bench_log "catalog reads: 5 targets x 2 answers, ${SECONDS_EACH} s each"
measure book-gateway "book by id: gateway (real path)" "$G/api/books/$BOOK" "$note, $book_bytes B, output cache"
measure book-nocache "book by id: gateway, output cache off" "$N/api/books/$BOOK" "$note, forwarded, service's Redis cache"
measure book-hop "book by id: empty YARP hop -> bare" "$HOP/api/books/$BOOK" "$note"
measure book-bare "book by id: bare Kestrel endpoint" "$BARE/api/books/$BOOK" "$note, same bytes"
measure book-service "book by id: book service direct" "$S/api/books/$BOOK" "$note, one replica"
measure search-gateway "search page: gateway (real path)" "$G$SEARCH" "$note, $search_bytes B, output cache"
measure search-nocache "search page: gateway, output cache off" "$N$SEARCH" "$note, forwarded, service's Redis cache"
measure search-hop "search page: empty YARP hop -> bare" "$HOP$SEARCH" "$note"
measure search-bare "search page: bare Kestrel endpoint" "$BARE$SEARCH" "$note, same bytes"
measure search-service "search page: book service direct" "$S$SEARCH" "$note, one replica"

if [[ -n "$B" ]]; then
  TURNS="${BENCH_AB_TURNS:-2}"
  bench_log "A/B of the gateway builds: $TURNS turns each, alternating, with the bare endpoint in between"
  sum() { awk -v a="${1:-0}" -v b="$2" 'BEGIN { print a + b }'; }
  for k in book search; do
    path="/api/books/$BOOK"; [[ $k == search ]] && path="$SEARCH"
    this=0 other=0 bare=0
    for turn in $(seq "$TURNS"); do
      measure "$k-ab-this-$turn" "$k: gateway, this build (turn $turn)" "$T$path" "$note, A/B, side process"
      measure "$k-ab-bare-$turn" "$k: bare Kestrel endpoint (turn $turn)" "$BARE$path" "$note, A/B"
      measure "$k-ab-other-$turn" "$k: gateway, baseline build (turn $turn)" "$B$path" "$note, A/B"
      this="$(sum "$this" "${RPS[$k-ab-this-$turn]}")" other="$(sum "$other" "${RPS[$k-ab-other-$turn]}")" bare="$(sum "$bare" "${RPS[$k-ab-bare-$turn]}")"
    done
    bench_row baseline "$k: gateway, this / baseline build" "$(ratio "$this" "$other")x" "" "" "req/s summed over $TURNS alternating turns; baseline: $BENCH_GATEWAY_BASELINE_DLL"
    bench_row baseline "$k: gateway, this build / bare" "$(ratio "$this" "$bare")x" "" "" "the same turns"
    bench_row baseline "$k: gateway, baseline build / bare" "$(ratio "$other" "$bare")x" "" "" "the same turns"
  done
fi

for k in book search; do
  bench_row baseline "$k: gateway / empty hop" "$(ratio "${RPS[$k-gateway]}" "${RPS[$k-hop]}")x" "" "" "goal >= 0.8: what auth, limits, headers and the service cost over the cheapest proxy"
  bench_row baseline "$k: gateway / bare" "$(ratio "${RPS[$k-gateway]}" "${RPS[$k-bare]}")x" "" "" "the whole path against the cheapest answer"
  bench_row baseline "$k: service / bare" "$(ratio "${RPS[$k-service]}" "${RPS[$k-bare]}")x" "" "" "the service's own cost (Redis read, middleware) against Kestrel"
  bench_row baseline "$k: output cache on / off" "$(ratio "${RPS[$k-gateway]}" "${RPS[$k-nocache]}")x" "" "" "what answering at the door gains over forwarding"
  bench_row baseline "$k: gateway, cache off / empty hop" "$(ratio "${RPS[$k-nocache]}" "${RPS[$k-hop]}")x" "" "" "the forwarded path against the cheapest proxy"
  bench_row baseline "$k: empty hop / bare" "$(ratio "${RPS[$k-hop]}" "${RPS[$k-bare]}")x" "" "" "what any proxy hop costs here"
done
bench_finish
