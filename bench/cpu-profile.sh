#!/usr/bin/env bash
# Where a service replica's CPU goes under the borrow load (issue 15, goal 1), as
# bench/allocations.sh shows its allocations: fewer bytes are not less CPU (bench/README.md,
# session 40), so a change to the write path is chosen by this and by an A/B, not by allocations.
# The stack's processes run with the runtime's perf map on (DOTNET_PerfMapEnabled=1, and
# DOTNET_EnableWriteXorExecute=0: with W^X the JIT's code is mapped twice and perf cannot name
# it); `perf record -g` samples one replica while bench/borrow.sh's load runs through the gateway,
# and bench/AllocationProfile attributes each sample to the innermost piece of work on its stack
# (the components of the allocation profile). Prints CPU ms per request of that replica.
#   bench/cpu-profile.sh [SECONDS]   (15; BENCH_CPU_SERVICE=lendingservice (the default),
#                                      bookservice, userservice or gateway: its replica 0;
#                                      BENCH_CPU_HZ=999; BENCH_BORROW_CONNECTIONS=16;
#                                      BENCH_USE_RUNNING=1: see bench/lib.sh, the running stack
#                                      must have been started with the two variables above)
# Needs perf (Debian: linux-perf) and the right to sample the process (root, or
# kernel.perf_event_paranoid <= 1). BENCH_KEEP=1 keeps perf.data and its `perf script` text.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SAMPLE_SECONDS="${1:-15}"
SERVICE="${BENCH_CPU_SERVICE:-lendingservice}"
HZ="${BENCH_CPU_HZ:-999}"
CONNECTIONS="${BENCH_BORROW_CONNECTIONS:-16}"
command -v perf >/dev/null || bench_die "perf not found (Debian: apt-get install linux-perf)"
bench_need_tools
bench_workdir
OUT="$BENCH_WORK/cpu-profile"
mkdir -p "$OUT"
dotnet build "$BENCH_DIR/AllocationProfile" -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
bench_build
# Only the stack's processes get the perf map (not MSBuild's nodes, which outlive the build).
# Each writes /tmp/perf-PID.map and perfinfo-PID.map; once the stack has stopped (bench/lib.sh's
# BENCH_AFTER_STOP), the maps of processes started since the marker and gone are removed (a
# running stack's stay).
marker="$(mktemp /tmp/cpu-profile.XXXXXX)"
clean_maps() {
  local f p
  for f in /tmp/perf-*.map /tmp/perfinfo-*.map; do
    [[ -f "$f" && "$f" -nt "$marker" ]] || continue
    p="${f##*-}"; p="${p%.map}"
    kill -0 "$p" 2>/dev/null || rm -f "$f"
  done
  rm -f "$marker"
}
BENCH_AFTER_STOP=clean_maps
export BENCH_NO_BUILD=1 DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0
bench_stack_up
BENCH_TOKEN="$(bench_token)"
export BENCH_TOKEN
bench_lending_data

bench_profile_load "$SERVICE" "$SAMPLE_SECONDS" "$CONNECTIONS" "$OUT" "perf at $HZ Hz on"
[[ -s "/tmp/perf-$PROFILE_PID.map" ]] || bench_die "$SERVICE-0 (pid $PROFILE_PID) writes no perf map: start its stack with DOTNET_PerfMapEnabled=1"
perf record -F "$HZ" -g -p "$PROFILE_PID" -o "$OUT/perf.data" -- sleep "$SAMPLE_SECONDS" >"$OUT/perf-record.txt" 2>&1 \
  || bench_die "perf record failed (see $OUT/perf-record.txt)"
wait "$PROFILE_LOAD"
perf script -i "$OUT/perf.data" >"$OUT/perf.txt" 2>/dev/null
dotnet "$BENCH_DIR/AllocationProfile/bin/Release/net10.0/AllocationProfile.dll" perf "$OUT/perf.txt" "$HZ" >"$OUT/profile.txt" \
  || bench_die "the attribution failed (see $OUT/profile.txt)"
per_replica="$(bench_profile_requests "$OUT" "$SAMPLE_SECONDS")"
cpu="$(sed -n '1s/.*: \([0-9.]*\) CPU s.*/\1/p' "$OUT/profile.txt")"
echo
cat "$OUT/profile.txt"
bench_wrk_row cpu "borrow+return requests: gateway" "$OUT/wrk.txt" "$CONNECTIONS conns, $((SAMPLE_SECONDS + 10)) s; the load beside the sampling" >/dev/null
bench_row cpu "CPU of $SERVICE-0 per request" "$(awk -v c="$cpu" -v n="$per_replica" 'BEGIN { if (n > 0) printf "%.2f ms", c * 1000 / n }')" "" "" \
  "$cpu CPU s in ${SAMPLE_SECONDS} s (perf samples); about $per_replica of the load's requests reached it ($PROFILE_REPLICAS replicas)"
bench_finish
