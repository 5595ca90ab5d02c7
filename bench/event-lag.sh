#!/usr/bin/env bash
# Event lag, two ways.
#
#   bench/event-lag.sh [runs]          the bus alone: a burst of 1,000 events committed by 10
#                                      writers in one service, consumed by another through RabbitMQ;
#                                      p50/p90/p99 of (event raised -> consumer's transaction). Runs
#                                      the real test (tests/Library.EventBus.Tests) on servers
#                                      eng/test.sh starts (default 3 runs).
#   bench/event-lag.sh stack [samples] the whole stack (bench/run.sh scenario 5): a loan's commit (its
#                                      201) -> availableCopies changed in GET /api/books/{id} through
#                                      the gateway, for borrows and returns (bench/availability-lag.py),
#                                      idle and then under bench/borrow.sh's load (wrk with
#                                      bench/borrow.lua). BENCH_LAG_SAMPLES (30), BENCH_LAG_SECONDS (30,
#                                      the cap of each half), BENCH_BORROW_CONNECTIONS (16);
#                                      BENCH_USE_RUNNING=1: see bench/lib.sh. Then the same hop for
#                                      every availability event the load raised (lendingdb's
#                                      outbox occurred_at -> bookdb's inbox handled_at, thousands).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ "${1:-}" != stack ]]; then
  runs="${1:-3}"
  out="$(mktemp)"
  trap 'rm -f "$out"' EXIT
  for _ in $(seq "$runs"); do
    LIBRARY_BENCH_OUT="$out" "$ROOT/eng/test.sh" --filter "FullyQualifiedName~A_burst_of_1000_events" >/dev/null 2>&1 \
      || { echo "the lag test failed; run eng/test.sh to see why" >&2; exit 1; }
  done
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
  cat "$out"
  exit 0
fi

source "$ROOT/bench/lib.sh"
SAMPLES="${2:-${BENCH_LAG_SAMPLES:-30}}"
MAX_SECONDS="${BENCH_LAG_SECONDS:-30}"
CONNECTIONS="${BENCH_BORROW_CONNECTIONS:-16}"
bench_need_tools
bench_stack_up
BENCH_TOKEN="$(bench_token)"
export BENCH_TOKEN
bench_lending_data
OUT="$BENCH_WORK/lag"
mkdir -p "$OUT"
# Own titles (not the load's), so the probe knows what availableCopies must become; one reader
# of the shared ones who borrows one copy at a time.
bench_titles "$BENCH_TOKEN" 5 100 "Lag Title" >"$OUT/titles"
bench_replicated titles "$OUT/titles"
reader="$(tail -n 1 "$BENCH_LENDING/readers")"

probe() { # LABEL NOTES
  python3 "$BENCH_DIR/availability-lag.py" "$BENCH_URL" "$BENCH_TOKEN" "$reader" "$OUT/titles" "$SAMPLES" "$MAX_SECONDS" >"$OUT/$1.json"
  read -r n missed p50 p90 p99 max < <(python3 -c "
import json,sys; r = json.load(open(sys.argv[1])); print(r['n'], r['missed'], r['p50_ms'], r['p90_ms'], r['p99_ms'], r['max_ms'])" "$OUT/$1.json")
  local notes="$2; $n changes (borrows and returns), p90 $(fmt_ms "$p90"), max $(fmt_ms "$max")"
  ((missed > 0)) && notes+="; $missed NOT SEEN within 30 s"
  bench_row lag "loan commit -> availableCopies: $1" "" "$(fmt_ms "$p50")" "$(fmt_ms "$p99")" "$notes"
}

bench_log "event lag, idle: up to $SAMPLES samples"
probe idle "no other load; polled through the gateway"
bench_log "event lag under the borrow load ($CONNECTIONS connections)"
t0="$(bench_psql -d lendingdb -Atc "SELECT now()")"
BORROW_DATA="$BENCH_LENDING/borrow-data.lua" wrk -t2 -c"$CONNECTIONS" -d"$((MAX_SECONDS + 30))s" --timeout 30s --latency \
  -s "$BENCH_DIR/borrow.lua" "$BENCH_URL" >"$OUT/load.txt" &
load=$!
BENCH_CHILD_PIDS+=("$load")
sleep 2
probe "under borrow load" "while wrk runs bench/borrow.sh's load"
kill -INT "$load" 2>/dev/null || true   # wrk prints its figures on SIGINT
wait "$load" 2>/dev/null || true
read -r rps _ < <(bench_wrk_fields "$OUT/load.txt")
bench_row lag "borrow load during the probe" "$(fmt_rate "$rps")" "" "" "borrow+return requests/s through the gateway, $CONNECTIONS conns"

# Every availability event the load raised, not only the probe's: thousands of samples, so the
# p99 is not the worst of 60. From the outbox row's occurred_at (in the use case's transaction,
# before its commit) to the book service's inbox handled_at (in the consumer's transaction, before
# its commit and the caches' invalidation), and the relay's part: to sent_at (marked once the broker confirmed the whole batch; before session 32, each row at its own confirm).
t1="$(bench_psql -d lendingdb -Atc "SELECT now()")"
hops_out() { bench_psql -d lendingdb -AtF, -c "SELECT id, extract(epoch FROM occurred_at), extract(epoch FROM sent_at) FROM outbox_messages
  WHERE event_name = 'book.availability-changed' AND occurred_at BETWEEN '$t0' AND '$t1' AND payload <> '{}'"; }   # pgbench's rows are '{}'
hops_in() { bench_psql -d bookdb -AtF, -c "SELECT event_id, extract(epoch FROM handled_at) FROM inbox_messages
  WHERE handler LIKE '%AvailabilityChangedHandler' AND handled_at >= '$t0'"; }
for _ in $(seq 40); do   # until the consumers have caught up (the last events of the load), 20 s at most
  hops_out >"$OUT/hops-out.csv"; hops_in >"$OUT/hops-in.csv"
  (($(wc -l <"$OUT/hops-in.csv") >= $(wc -l <"$OUT/hops-out.csv"))) && break
  sleep 0.5
done
read -r n missing p50 p90 p99 sp50 sp99 < <(python3 - "$OUT/hops-out.csv" "$OUT/hops-in.csv" <<'PY'
import csv, sys
out = {r[0]: (float(r[1]), float(r[2]) if r[2] else None) for r in csv.reader(open(sys.argv[1]))}
handled = {r[0]: float(r[1]) for r in csv.reader(open(sys.argv[2]))}
keys = [k for k in out if k in handled]
def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")
lag = [1000 * (handled[k] - out[k][0]) for k in keys]
sent = [1000 * (out[k][1] - out[k][0]) for k in keys if out[k][1] is not None]
print(len(keys), len(out) - len(keys), q(lag, .5), q(lag, .9), q(lag, .99), q(sent, .5), q(sent, .99))
PY
)
notes="$n events (every availability change of the load), p90 $(fmt_ms "$p90"); the relay's part (-> its batch confirmed and marked sent) p50 $(fmt_ms "$sp50"), p99 $(fmt_ms "$sp99")"
((missing > 0)) && notes+="; $missing not applied within 20 s of the load's end"
bench_row lag "every event under the load: occurred -> applied by the catalog" "" "$(fmt_ms "$p50")" "$(fmt_ms "$p99")" "$notes"
bench_finish
