#!/usr/bin/env bash
# bench/run.sh -- the Library's benchmarks in one run, one table at the end.
#
#   bench/run.sh [scenario...]      default: all, in this order
#
#   start       cold start of the whole stack: eng/processes.sh start on an empty data folder (built
#               tree: the build is done before and not timed), then again with the data kept;
#               wall time and time to the first healthy process, all services, the gateway, the
#               first /api answer
#   catalog     scenarios 1+2 (bench/gateway.sh): book by ID and a search page, warm cache, 64
#               connections, through the gateway, an empty YARP hop, a bare endpoint and the book
#               service directly; ratios
#   contention  scenario 4 (bench/contention.sh): 500 readers borrow 5 copies at once
#   borrow      scenario 3 (bench/borrow.sh): borrow/return cycles through the gateway vs the same
#               SQL in pgbench
#   lag         scenario 5 (bench/event-lag.sh stack): loan commit -> availableCopies, idle and
#               under the borrow load
#   notices     bench/notices.sh: 2,000 notices due at once -> all mailed to MailDev, per second
#   scale       scenario 6 (bench/catalog-search.sh): search at 10,000 and 100,000 titles, cached
#               and uncached, on own servers (the stack is stopped first)
#   After each scenario that uses the stack: resident memory (VmRSS) of every process.
#
# The stack: eng/processes.sh with bench/lib.sh's ports (gateway 8182, services 5621/5721/5821, PostgreSQL
# 49432, Redis 49379, RabbitMQ 49672-49674, MailDev 49675/49676; baselines 8191/8192), 2 replicas, the sample catalog,
# the gateway's rate limits raised through their keys (RateLimiting__*). Or a running one:
#   BENCH_USE_RUNNING=1 BENCH_URL=http://127.0.0.1:8080 LIBRARY_DATA_DIR=/path/.local bench/run.sh
#   (it must run with raised limits; "start" is skipped; "scale" needs BENCH_SCALE_PG_PORT,
#   BENCH_SCALE_REDIS_PORT, BENCH_SCALE_RABBITMQ_PORT and BENCH_SCALE_BOOK_PORT free ports).
#
# Durations (defaults, about 15 minutes in all on 2 cores): BENCH_CATALOG_SECONDS 10,
# BENCH_CONNECTIONS 64, BENCH_BORROW_SECONDS 20, BENCH_BORROW_CONNECTIONS 16, BENCH_LAG_SAMPLES 30,
# BENCH_LAG_SECONDS 30, BENCH_SCALE_SIZES "10000 100000", BENCH_SCALE_SECONDS 20,
# BENCH_SCALE_CONNECTIONS 16. BENCH_KEEP=1 keeps the work folder (every wrk/pgbench output).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(start catalog contention borrow lag notices scale)
SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=("${ALL[@]}")
for s in "${SCENARIOS[@]}"; do
  [[ " ${ALL[*]} " == *" $s "* ]] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; bench_die "unknown scenario '$s'"; }
done
wants() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }
RUNNING="${BENCH_USE_RUNNING:-0}"

bench_workdir
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
bench_need_tools
T0=$SECONDS
bench_log "work folder: $BENCH_WORK; scenarios: ${SCENARIOS[*]}"

ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
secs() { awk -v v="$1" 'BEGIN { printf "%.1f s\n", v / 1000 }'; }

# watch_start T0 FILE -- notes, in ms since T0, when each process first answers /health Healthy
# and when the gateway first answers /api/books (polls every 100 ms; ends when both are seen).
watch_start() {
  local t0=$1 out=$2 inst port s i deadline=$((SECONDS + 600))
  local -A seen=()
  local -a insts=()
  for s in userservice:$LIBRARY_USERSERVICE_PORT bookservice:$LIBRARY_BOOKSERVICE_PORT lendingservice:$LIBRARY_LENDINGSERVICE_PORT; do
    for ((i = 0; i < ${LIBRARY_REPLICAS:-2}; i++)); do insts+=("${s%%:*}-$i:$((${s##*:} + i))"); done
  done
  insts+=("gateway-0:$LIBRARY_GATEWAY_PORT")
  : >"$out"
  while ((SECONDS < deadline)); do
    for inst in "${insts[@]}"; do
      [[ -n "${seen[$inst]:-}" ]] && continue
      if curl -s -m 1 "http://127.0.0.1:${inst##*:}/health" 2>/dev/null | grep -q '^{"status":"Healthy"'; then
        seen[$inst]=1; echo "${inst%%:*} $(($(ms) - t0))" >>"$out"
      fi
    done
    if [[ -n "${seen[gateway-0:$LIBRARY_GATEWAY_PORT]:-}" ]] && curl -sf -m 1 "$BENCH_URL/api/books?pageSize=1" >/dev/null 2>&1; then
      echo "api $(($(ms) - t0))" >>"$out"; return 0
    fi
    sleep 0.1
  done
}

# timed_start LABEL WHAT NOTE -- eng/processes.sh start with the watcher; one row
timed_start() {
  local t0 wall w first svcs gw api
  t0="$(ms)"
  watch_start "$t0" "$BENCH_WORK/start-$1.times" &
  local watcher=$!
  BENCH_CHILD_PIDS+=("$watcher")
  BENCH_STACK_OWN=1   # from now on, the exit stops it (servers included), even after a failed start
  LIBRARY_NO_BUILD=1 "$BENCH_ROOT/eng/processes.sh" start >"$BENCH_WORK/start-$1.log" 2>&1 \
    || { tail -30 "$BENCH_WORK/start-$1.log" >&2; bench_die "eng/processes.sh start failed"; }
  wall=$(($(ms) - t0))
  wait "$watcher" || true
  w="$BENCH_WORK/start-$1.times"
  first="$(awk '$1 != "api" && $1 != "gateway-0" { print $2 }' "$w" | sort -n | head -n1)"
  svcs="$(awk '$1 != "api" && $1 != "gateway-0" { print $2 }' "$w" | sort -n | tail -n1)"
  gw="$(awk '$1 == "gateway-0" { print $2 }' "$w")"
  api="$(awk '$1 == "api" { print $2 }' "$w")"
  bench_row start "$2" "$(secs "$wall")" "" "" \
    "first process healthy $(secs "${first:-0}"), every service replica $(secs "${svcs:-0}"), gateway $(secs "${gw:-0}"), first /api/books answer $(secs "${api:-0}")${3:+; $3}"
}

if [[ "$RUNNING" == 1 ]]; then
  bench_stack_up    # checks it
  wants start && bench_row start "cold start" "skipped" "" "" "BENCH_USE_RUNNING=1"
else
  bench_limits
  export LIBRARY_DATA_DIR="$BENCH_WORK/stack"
  export LIBRARY_ADMIN_EMAIL="${LIBRARY_ADMIN_EMAIL:-bench-admin@library.local}"
  export LIBRARY_ADMIN_PASSWORD="${LIBRARY_ADMIN_PASSWORD:-bench-$(od -An -vtx1 -N8 /dev/urandom | tr -d ' \n')}"
  if [[ " ${SCENARIOS[*]} " != " scale " ]]; then
    bench_build
    export BENCH_NO_BUILD=1
    if wants start; then
      bench_log "cold start: eng/processes.sh start on an empty data folder"
      timed_start first "first start, empty data folder" "initdb, migrations, 322-title sample catalog"
      bench_rss "first start"
      "$BENCH_ROOT/eng/processes.sh" stop >/dev/null 2>&1
      BENCH_STACK_OWN=""
      bench_log "cold start: eng/processes.sh start with the data kept"
      timed_start restart "restart, data kept" "servers and 7 processes"
    else
      bench_stack_up
    fi
    bench_rss "start"
  fi
fi
export BENCH_USE_RUNNING=1 BENCH_NO_BUILD=1

run_scenario() { # NAME COMMAND...
  local name=$1 t=$SECONDS
  shift
  bench_log "=== $name"
  "$@" || bench_row "$name" "FAILED (exit $?)" "" "" "" "see the messages above"
  bench_log "=== $name done in $((SECONDS - t)) s"
}

if wants catalog; then
  run_scenario catalog env BENCH_SECONDS="${BENCH_CATALOG_SECONDS:-10}" BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}" "$BENCH_DIR/gateway.sh"
  bench_rss catalog
fi
if wants contention; then
  run_scenario contention "$BENCH_DIR/contention.sh"
  bench_rss contention
fi
if wants borrow; then
  run_scenario borrow env BENCH_SECONDS="${BENCH_BORROW_SECONDS:-20}" "$BENCH_DIR/borrow.sh"
  bench_rss borrow
fi
if wants lag; then
  run_scenario lag "$BENCH_DIR/event-lag.sh" stack
  bench_rss lag
fi
if wants notices; then
  run_scenario notices "$BENCH_DIR/notices.sh"
  bench_rss notices
fi
if wants scale; then
  scale_env=(BENCH_SECONDS="${BENCH_SCALE_SECONDS:-20}" BENCH_CONNECTIONS="${BENCH_SCALE_CONNECTIONS:-16}")
  if [[ "$RUNNING" == 1 ]]; then
    scale_env+=(LIBRARY_PG_PORT="${BENCH_SCALE_PG_PORT:-}" LIBRARY_REDIS_PORT="${BENCH_SCALE_REDIS_PORT:-}"
                LIBRARY_RABBITMQ_PORT="${BENCH_SCALE_RABBITMQ_PORT:-}" LIBRARY_BOOKSERVICE_PORT="${BENCH_SCALE_BOOK_PORT:-}")
  elif [[ -n "$BENCH_STACK_OWN" ]]; then
    bench_log "stopping the stack: the scale scenario runs on its own servers"
    "$BENCH_ROOT/eng/processes.sh" stop >/dev/null 2>&1
    BENCH_STACK_OWN=""
  fi
  if [[ "$RUNNING" == 1 && -z "${BENCH_SCALE_PG_PORT:-}${BENCH_SCALE_BOOK_PORT:-}" ]]; then
    bench_row scale "search at scale" "skipped" "" "" "BENCH_USE_RUNNING=1 needs BENCH_SCALE_*_PORT"
  else
    [[ " ${SCENARIOS[*]} " == " scale " && "$RUNNING" != 1 ]] && BENCH_NO_BUILD=0
    for n in ${BENCH_SCALE_SIZES:-10000 100000}; do
      run_scenario scale env "${scale_env[@]}" BENCH_NO_BUILD="$BENCH_NO_BUILD" "$BENCH_DIR/catalog-search.sh" "$n"
    done
  fi
fi

echo
echo "Library benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$BENCH_ROOT" rev-parse --short HEAD)$(git -C "$BENCH_ROOT" diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo '+changes'), in $(((SECONDS - T0) / 60)) min $(((SECONDS - T0) % 60)) s"
echo "machine: $(bench_machine)"
echo "stack: eng/processes.sh, 2 replicas per service, PostgreSQL/Redis/RabbitMQ/wrk on the same cores; rate limits raised by RateLimiting__* keys"
echo
bench_table
if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo; echo "outputs: $BENCH_WORK"; fi
