#!/usr/bin/env bash
# bench/replica-start.sh -- how long one service replica takes to start, from its launch to its
# /health answering Healthy (eng/processes.sh rolling-restart's "start to Healthy"), alone and
# beside busy sessions, with eng/processes.sh's start boost (LIBRARY_START_NICE, default -10: the
# starting process's autogroup at nice -10 until Healthy) and without it (LIBRARY_START_NICE=0),
# in alternating turns. Also the CPU the new process used until then (user + system, from /proc).
#
#   bench/replica-start.sh [rounds]      rounds of (boost, no boost) per machine state; default 2
#
# Busy sessions: BENCH_BUSY_SESSIONS (10) shells spinning, each in a session of its own (setsid),
# as the fault suite's stack is a dozen busy sessions (every replica, the gateways, PostgreSQL,
# RabbitMQ, the load) on two cores: Linux shares the CPU fairly between sessions (autogroups), so a
# starting replica got one share of about a dozen. Own stack: bench/lib.sh's (1 replica of each
# service here, BENCH_REPLICA=lendingservice-0 restarted).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS="${1:-2}"
BUSY="${BENCH_BUSY_SESSIONS:-10}"
INSTANCE="${BENCH_REPLICA:-lendingservice-0}"
SERVICE="${INSTANCE%-*}"
export LIBRARY_REPLICAS=1

HOGS=()
stop_hogs() { local p; for p in "${HOGS[@]+"${HOGS[@]}"}"; do kill "$p" 2>/dev/null || true; done; HOGS=(); }
trap 'stop_hogs; bench_cleanup' EXIT

bench_stack_up
trap 'stop_hogs; bench_cleanup' EXIT

# one_start NICE -> "start_to_healthy_s cpu_ms" of one restart of INSTANCE
one_start() {
  local out pid u s hz
  out="$(LIBRARY_START_NICE="$1" LIBRARY_NO_BUILD=1 "$BENCH_ROOT/eng/processes.sh" rolling-restart "$SERVICE" 2>&1)" \
    || { echo "$out" | tail -20 >&2; bench_die "rolling restart failed"; }
  pid="$(cat "$LIBRARY_DATA_DIR/run/$INSTANCE.pid")"
  read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
  hz="$(getconf CLK_TCK)"
  echo "$(echo "$out" | sed -n 's/.*start to Healthy \([0-9.]*\) s.*/\1/p' | head -n1) $(((u + s) * 1000 / hz))"
}

bench_log "machine: $(bench_machine)"
printf '%-26s %-9s %5s %18s %14s\n' "machine" "boost" "round" "start to Healthy" "CPU by the end"
for state in idle busy; do
  if [[ "$state" == busy ]]; then
    for ((i = 0; i < BUSY; i++)); do
      setsid bash -c 'while :; do :; done' & HOGS+=($!)
    done
    sleep 1
  fi
  for ((r = 1; r <= ROUNDS; r++)); do
    for nice in -10 0; do
      read -r secs cpu < <(one_start "$nice")
      label="$state"; [[ "$state" == busy ]] && label="beside $BUSY busy sessions"
      printf '%-26s %-9s %5d %16s s %11s ms\n' "$label" "$([[ $nice == 0 ]] && echo none || echo "nice $nice")" "$r" "$secs" "$cpu"
    done
  done
done
stop_hogs
