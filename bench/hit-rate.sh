#!/usr/bin/env bash
# Issue 15, goal 2: does the gateway's cache stay warm under the borrow load? Anonymous reads of
# books by ID (bench/read-hits.lua, BENCH_READ_CONNECTIONS 8 connections, over every title of
# the catalog: the sample catalog and the BENCH_TITLES titles being lent) run alone, then at the
# same time as the borrow/return load of bench/borrow.sh (BENCH_BORROW_CONNECTIONS 16); an
# answer carrying Age came from the gateway's cache. Prints the hit rate of each run, the read
# and borrow rates, and the gateway's own counters are in its metrics
# (library.gateway.catalog_cache.hits/misses).
#   bench/hit-rate.sh   (BENCH_SECONDS=20; BENCH_USE_RUNNING=1: see bench/lib.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECONDS_EACH="${BENCH_SECONDS:-20}"
CONNECTIONS="${BENCH_BORROW_CONNECTIONS:-16}"
READERS="${BENCH_READ_CONNECTIONS:-8}"
bench_need_tools
bench_stack_up
BENCH_TOKEN="$(bench_token)"
export BENCH_TOKEN
bench_lending_data
OUT="$BENCH_WORK/hit-rate"
mkdir -p "$OUT"
# Every title of the catalog, page by page.
: >"$OUT/ids"
for page in $(seq 1 100); do
  curl -sf "$BENCH_URL/api/books?pageSize=100&page=$page" | python3 -c "
import json, sys
items = json.load(sys.stdin)['items']
for b in items: print(b['id'])
sys.exit(0 if items else 3)" >>"$OUT/ids" || break
done
n="$(wc -l <"$OUT/ids")"
lent="$(wc -l <"$BENCH_LENDING/titles")"
export READ_IDS="$OUT/ids" BORROW_DATA="$BENCH_LENDING/borrow-data.lua"

reads() { # KEY LABEL -> rows: read rate, hit rate
  local hits total
  read -r _ hits _ total _ < <(grep '^hits' "$OUT/reads-$1.txt")
  bench_wrk_row hits "anonymous book by id, $2: reads" "$OUT/reads-$1.txt" "$READERS conns, ${SECONDS_EACH} s, $n titles ($lent of them lent)" >/dev/null
  bench_row hits "anonymous book by id, $2: gateway hit rate" "$(awk -v h="$hits" -v t="$total" 'BEGIN { printf "%.1f %%", t ? 100 * h / t : 0 }')" "" "" "$hits of $total answers carried Age"
}

# Warm: every title read once or more.
wrk -t2 -c4 -d5s -s "$BENCH_DIR/read-hits.lua" "$BENCH_URL" >/dev/null
bench_log "anonymous reads alone: $READERS connections, ${SECONDS_EACH} s"
bench_wrk "$OUT/reads-idle.txt" "$READERS" "$SECONDS_EACH" "$BENCH_URL" "$BENCH_DIR/read-hits.lua"
reads idle idle
bench_log "anonymous reads under the borrow load ($CONNECTIONS connections), ${SECONDS_EACH} s"
bench_wrk "$OUT/borrow.txt" "$CONNECTIONS" "$SECONDS_EACH" "$BENCH_URL" "$BENCH_DIR/borrow.lua" &
borrow_pid=$!
bench_wrk "$OUT/reads-borrowing.txt" "$READERS" "$SECONDS_EACH" "$BENCH_URL" "$BENCH_DIR/read-hits.lua"
wait "$borrow_pid"
reads borrowing "under the borrow load"
read -r rps _ < <(bench_wrk_fields "$OUT/borrow.txt")
bench_wrk_row hits "borrow+return requests alongside" "$OUT/borrow.txt" "$CONNECTIONS conns, ${SECONDS_EACH} s" >/dev/null
bench_row hits "borrows/s alongside" "$(fmt_rate "$(awk -v r="$rps" 'BEGIN { print r / 2 }')")" "" "" "each borrow followed by its return"
bench_finish
