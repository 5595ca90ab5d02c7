#!/usr/bin/env bash
# Where a service replica's allocations go under the borrow load (issue 15, goal 1: what a
# borrow costs besides its SQL). The borrow/return load of bench/borrow.sh runs through the
# gateway; meanwhile bench/AllocationProfile listens to one replica's allocation samples (EventPipe)
# and prints MiB/s, KB per request, the top types, which components allocate (EF's SaveChanges, a
# FromSql query, the outbox relay, JWT validation, Kestrel, ...) and the top stacks of one type.
#   bench/allocations.sh [SECONDS]   (15; BENCH_ALLOC_SERVICE=lendingservice (the default),
#                                      bookservice, userservice or gateway: its replica 0;
#                                      BENCH_ALLOC_TYPE: the type whose stacks are printed,
#                                      System.String, * for all; BENCH_BORROW_CONNECTIONS=16;
#                                      BENCH_USE_RUNNING=1: see bench/lib.sh)
# The trace stays in the work folder with BENCH_KEEP=1 (open it in PerfView or dotnet-trace).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SAMPLE_SECONDS="${1:-15}"
SERVICE="${BENCH_ALLOC_SERVICE:-lendingservice}"
CONNECTIONS="${BENCH_BORROW_CONNECTIONS:-16}"
bench_need_tools
dotnet build "$BENCH_DIR/AllocationProfile" -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
bench_stack_up
BENCH_TOKEN="$(bench_token)"
export BENCH_TOKEN
bench_lending_data
OUT="$BENCH_WORK/allocations"
mkdir -p "$OUT"

bench_profile_load "$SERVICE" "$SAMPLE_SECONDS" "$CONNECTIONS" "$OUT" "allocation samples of"
trace="$OUT/$SERVICE-0.nettrace"
dotnet "$BENCH_DIR/AllocationProfile/bin/Release/net10.0/AllocationProfile.dll" "$PROFILE_PID" "$SAMPLE_SECONDS" "$trace" "${BENCH_ALLOC_TYPE:-System.String}" >"$OUT/profile.txt" \
  || bench_die "the profile failed (see $OUT/profile.txt)"
wait "$PROFILE_LOAD"
per_replica="$(bench_profile_requests "$OUT" "$SAMPLE_SECONDS")"
mib="$(sed -n '1s/.*(sampled) \([0-9.]*\) MiB.*/\1/p' "$OUT/profile.txt")"
kb="$(awk -v m="$mib" -v n="$per_replica" 'BEGIN { if (n > 0) printf "%.0f", m * 1024 / n }')"
echo
cat "$OUT/profile.txt"
bench_wrk_row allocations "borrow+return requests: gateway" "$OUT/wrk.txt" "$CONNECTIONS conns, $((SAMPLE_SECONDS + 10)) s; the load beside the sampling" >/dev/null
bench_row allocations "allocated by $SERVICE-0" "$(fmt_rate "$(awk -v m="$mib" -v s="$SAMPLE_SECONDS" 'BEGIN { print m / s }')" " MiB/s")" "" "" \
  "${kb} KB per request (about $per_replica of the load's requests reached it: $PROFILE_REPLICAS replicas); sampled ${SAMPLE_SECONDS} s"
bench_finish
