#!/usr/bin/env bash
# Uncached search A/B of two running book-service processes on one database (e.g. a kept
# bench/catalog-search.sh catalog, each process with its Redis unreachable): each of the 12 paths
# alone first (bench/search-paths.sh: medians and the answers' digests), then bench/search.lua at
# 16 connections in alternating turns A, B, A, B..., with the load average before and after each.
#   bench/search-ab.sh URL_A URL_B      (BENCH_TURNS=2 per process, BENCH_SECONDS=15, BENCH_ROUNDS=3)
# Prints one row per turn and the ratio of A's summed req/s to B's.
# A side may be several processes, comma-separated (URL1,URL2: replicas of one configuration, as
# the AppHost runs them): its connections are split evenly among them, one wrk each at the same
# time; the row sums their req/s and shows the worst p50 and p99 (the paths' digests: the first URL).
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
(($# == 2)) || { echo "usage: $0 URL_A URL_B" >&2; exit 2; }
TURNS="${BENCH_TURNS:-2}" SECS="${BENCH_SECONDS:-15}" CONNS="${BENCH_CONNECTIONS:-16}"
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT
echo "== each path alone (load $(cut -d' ' -f1-3 /proc/loadavg))"
BENCH_ROUNDS="${BENCH_ROUNDS:-3}" "$DIR/search-paths.sh" "${1%%,*}" "${2%%,*}"
declare -A SUM=([A]=0 [B]=0)
echo "== bench/search.lua, $CONNS connections, ${SECS} s per turn (after 3 s to warm at as many)"
for ((t = 1; t <= TURNS; t++)); do
  for side in A B; do
    url="$1"; [[ $side == B ]] && url="$2"
    # Warm at the measured connections: each new pooled connection is a new PostgreSQL backend,
    # whose first statements load its catalog caches and plan from scratch (5 custom plans per
    # prepared statement); warmed with 4, 12 cold backends weighed on the first turn's p99.
    IFS=, read -r -a urls <<<"$url"
    each=$((CONNS / ${#urls[@]}))
    for u in "${urls[@]}"; do wrk -t2 -c"$each" -d3s -s "$DIR/search.lua" "$u" >/dev/null & done
    wait
    l1="$(cut -d' ' -f1 /proc/loadavg)"
    for i in "${!urls[@]}"; do
      wrk -t2 -c"$each" -d"${SECS}s" --timeout 30s --latency -s "$DIR/search.lua" "${urls[$i]}" >"$OUT/wrk-$i.txt" &
    done
    wait
    l2="$(cut -d' ' -f1 /proc/loadavg)"
    read -r rps p50 p99 non2xx < <(awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v + 0 }
      /Requests\/sec/ { rps += $2 } /^ +50%/ && ms($2) > p50 { p50 = ms($2) } /^ +99%/ && ms($2) > p99 { p99 = ms($2) } /Non-2xx/ { n += $NF }
      END { printf "%.1f %.0f %.0f %d\n", rps, p50, p99, n }' "$OUT"/wrk-*.txt)
    rm -f "$OUT"/wrk-*.txt
    SUM[$side]="$(awk -v a="${SUM[$side]}" -v b="$rps" 'BEGIN { print a + b }')"
    printf 'turn %s%d (%s): %6.1f req/s  p50 %5d ms  p99 %5d ms  non-2xx %d  load %s-%s\n' "$side" "$t" "$url" "$rps" "$p50" "$p99" "$non2xx" "$l1" "$l2"
  done
done
printf 'A / B (req/s summed over %d turns each): %.1f / %.1f = %.2fx\n' "$TURNS" "${SUM[A]}" "${SUM[B]}" "$(awk -v a="${SUM[A]}" -v b="${SUM[B]}" 'BEGIN { print a / b }')"
