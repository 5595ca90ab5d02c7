#!/usr/bin/env bash
# bench/lending-ab.sh -- A/B of the lending service alone, in one run on one stack: the lending
# replicas switch between a baseline build (A) and this tree (B) by a rolling restart, the other
# services stay as they are. The stack runs from a tree of symlinks to this one whose
# Library.LendingService link is flipped, so eng/processes.sh keeps recognising its processes.
#
#   BENCH_LENDING_BASELINE=/path/of/a/built/tree bench/lending-ab.sh up
#   bench/lending-ab.sh turn A1|B1|A2|B2...   (SCEN: bench/run.sh scenarios, default contention;
#                                              NOFLIP=1 keeps the replicas as they are, warm)
#   bench/lending-ab.sh hops FROM TO          event hops of book.availability-changed in that window
#   bench/lending-ab.sh cpu NAME              CPU ms per request of each process group in NAME's wrk part
#   bench/lending-ab.sh waits SECONDS [NAME]  what PostgreSQL's backends wait on, sampled every 50 ms for
#                                             SECONDS (run it beside a turn's borrow load): share of
#                                             the active samples per database and wait event
# BENCH_AB_SERVICES (default lendingservice): the services flipped, any of lendingservice bookservice
# userservice gateway (a change in Library.ServiceDefaults is in all four), restarted in that order.
#   bench/lending-ab.sh down
# Each turn writes to $BENCH_AB_OUT (/tmp/lending-ab/out): NAME.txt (run.sh's table), NAME-ccpu0/1
# (CPU ticks per process group around the scenarios), NAME-cpgss.tsv (pg_stat_statements of
# lendingdb over the scenarios), NAME-pgss.tsv and NAME-cpu0/1 over 15 s of borrow/return cycles
# (wrk, 8 connections: divide calls by the requests in NAME-pgss-wrk.txt for per-request figures).
# PostgreSQL is started once with pg_stat_statements preloaded. Ports: bench/lib.sh's variables.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="${BENCH_LENDING_BASELINE:-}"
WORK="${BENCH_AB_WORK:-/tmp/lending-ab}"
AB="$WORK/tree" OUT="${BENCH_AB_OUT:-$WORK/out}"
export LIBRARY_DATA_DIR="$WORK/stack" LIBRARY_GATEWAY_REPLICAS=1 LIBRARY_NO_BUILD=1 BENCH_NO_BUILD=1
export LIBRARY_ADMIN_EMAIL="${LIBRARY_ADMIN_EMAIL:-bench-admin@library.local}"
export LIBRARY_ADMIN_PASSWORD="${LIBRARY_ADMIN_PASSWORD:-bench-ab-$(cat "$WORK/password" 2>/dev/null || { mkdir -p "$WORK"; od -An -vtx1 -N8 /dev/urandom | tr -d ' \n' | tee "$WORK/password"; })}"
mkdir -p "$OUT" "$AB"
if [[ ! -e "$AB/eng" ]]; then
  for f in "$HERE"/* "$HERE"/.local; do [[ -e "$f" ]] && ln -sfn "$f" "$AB/$(basename "$f")"; done
fi
source "$AB/bench/lib.sh"
bench_limits
psql_l() { pg_psql "$LIBRARY_DATA_DIR" -d lendingdb "$@"; }
pgss() { psql_l -qAtF $'\t' -c "SELECT calls, round(mean_exec_time::numeric, 3), round(total_exec_time::numeric, 1), regexp_replace(left(query, 160), '\s+', ' ', 'g') FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'lendingdb') ORDER BY calls DESC LIMIT 60"; }
cpu_snap() { # "group ticks": utime+stime of the group's processes (PostgreSQL: postmaster and the backends alive now)
  local g f pid pm t
  for g in lendingservice bookservice gateway userservice; do
    t=0
    for f in "$LIBRARY_DATA_DIR"/run/$g-*.pid; do pid=$(cat "$f"); t=$((t + $(awk '{print $14 + $15}' /proc/"$pid"/stat 2>/dev/null || echo 0))); done
    echo "$g $t"
  done
  pm=$(head -1 "$LIBRARY_DATA_DIR/postgres/data/postmaster.pid"); t=0
  for pid in $pm $(ps -o pid= --ppid "$pm"); do t=$((t + $(awk '{print $14 + $15}' /proc/"$pid"/stat 2>/dev/null || echo 0))); done
  echo "postgres $t"
}
project_of() { case $1 in lendingservice) echo Library.LendingService ;; bookservice) echo Library.BookService ;;
  userservice) echo Library.UserService ;; gateway) echo Library.Gateway ;; *) bench_die "unknown service '$1'" ;; esac; }
flip() { # A|B
  local svc dir
  for svc in ${BENCH_AB_SERVICES:-lendingservice}; do
    dir=$(project_of "$svc")
    if [[ $1 == A ]]; then
      [[ -f "$BASE/$dir/bin/Release/net10.0/$dir.dll" ]] || bench_die "BENCH_LENDING_BASELINE: no built $dir in '$BASE'"
      ln -sfn "$BASE/$dir" "$AB/$dir"
    else ln -sfn "$HERE/$dir" "$AB/$dir"; fi
    "$AB/eng/processes.sh" rolling-restart "$svc" >"$OUT/restart-$1-$svc.log" 2>&1
  done
}
case "${1:-}" in
  up)
    if [[ ! -d "$LIBRARY_DATA_DIR/postgres/data" ]]; then
      pg_start "$LIBRARY_DATA_DIR" "$LIBRARY_PG_PORT"
      echo "shared_preload_libraries = 'pg_stat_statements'" >>"$LIBRARY_DATA_DIR/postgres/data/postgresql.conf"
      pg_stop "$LIBRARY_DATA_DIR"
    fi
    "$AB/eng/processes.sh" start >"$OUT/start.log" 2>&1
    psql_l -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" ;;
  turn)
    name=$2
    [[ "${NOFLIP:-0}" == 1 ]] || flip "${name:0:1}"
    echo "== $name $(date -u +%T) $(uptime)" | tee -a "$OUT/turns.log"
    cpu_snap >"$OUT/$name-ccpu0.txt"; psql_l -qAtc "SELECT pg_stat_statements_reset()" >/dev/null
    # shellcheck disable=SC2086
    BENCH_USE_RUNNING=1 "$AB/bench/run.sh" ${SCEN:-contention} >"$OUT/$name.txt" 2>"$OUT/$name.err" || echo "run.sh failed $name" >>"$OUT/turns.log"
    cpu_snap >"$OUT/$name-ccpu1.txt"; pgss >"$OUT/$name-cpgss.tsv"
    BENCH_TOKEN="$(bench_token)"; export BENCH_TOKEN
    bench_lending_data
    psql_l -qAtc "SELECT pg_stat_statements_reset()" >/dev/null; cpu_snap >"$OUT/$name-cpu0.txt"
    BORROW_DATA="$BENCH_LENDING/borrow-data.lua" wrk -t1 -c8 -d15s -s "$AB/bench/borrow.lua" "$BENCH_URL" >"$OUT/$name-pgss-wrk.txt"
    cpu_snap >"$OUT/$name-cpu1.txt"; pgss >"$OUT/$name-pgss.tsv"
    echo "== $name done $(date -u +%T)" | tee -a "$OUT/turns.log" ;;
  hops)
    pg_psql "$LIBRARY_DATA_DIR" -d lendingdb -AtF, -c "SELECT id, extract(epoch from occurred_at), extract(epoch from sent_at) FROM outbox_messages
      WHERE event_name LIKE '%availab%' AND occurred_at BETWEEN '$2'::timestamptz AND '$3'::timestamptz AND sent_at IS NOT NULL" >"$OUT/hops-out.csv"
    pg_psql "$LIBRARY_DATA_DIR" -d bookdb -AtF, -c "SELECT event_id, extract(epoch from handled_at) FROM inbox_messages
      WHERE handler LIKE '%AvailabilityChanged%' AND handled_at >= '$2'::timestamptz" >"$OUT/hops-in.csv"
    python3 - "$OUT/hops-out.csv" "$OUT/hops-in.csv" <<'PY'
import csv, sys
out = {r[0]: (float(r[1]), float(r[2])) for r in csv.reader(open(sys.argv[1]))}
inn = {r[0]: float(r[1]) for r in csv.reader(open(sys.argv[2]))}
keys = [k for k in out if k in inn]
def p(l, q): return l[min(len(l) - 1, int(q * len(l)))] if l else float('nan')
for name, l in (("occurred -> sent (rest of the use case, commit, relay, confirm)", [out[k][1] - out[k][0] for k in keys]),
                ("sent -> handled (broker, book-service consumer)", [inn[k] - out[k][1] for k in keys]),
                ("occurred -> handled", [inn[k] - out[k][0] for k in keys])):
    l = sorted(x * 1000 for x in l)
    print(f"{name}: n={len(l)} p50={p(l, .5):.1f} p90={p(l, .9):.1f} p99={p(l, .99):.1f} ms")
PY
    ;;
  cpu)
    req=$(awk '/requests in/ {print $1}' "$OUT/$2-pgss-wrk.txt")
    awk -v req="$req" -v hz="$(getconf CLK_TCK)" 'NR == FNR { t0[$1] = $2; next }
      { printf "%s %.2f ms/request\n", $1, ($2 - t0[$1]) * 1000 / hz / req }' "$OUT/$2-cpu0.txt" "$OUT/$2-cpu1.txt"
    echo "requests $req" ;;
  waits)
    # Lock waits (Lock:transactionid, Lock:tuple), WAL flushes (IO:WALSync, LWLock:WALWrite) and the
    # client's side (Client:ClientRead while in a transaction: the service between two statements).
    end=$(( $(date +%s%N) / 1000000 + ${2:-20} * 1000 ))
    : >"$OUT/${3:-waits}-waits.txt"
    while (( $(date +%s%N) / 1000000 < end )); do
      pg_psql "$LIBRARY_DATA_DIR" -d postgres -qAtF'|' -c "SELECT datname, state, coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle'" >>"$OUT/${3:-waits}-waits.txt"
      sleep 0.05
    done
    awk -F'|' '{ n[$1]++; k[$1 "|" $2 "|" $3]++ } END { for (x in k) { split(x, a, "|"); printf "%-10s %-20s %-24s %6d  %5.1f%%\n", a[1], a[2], a[3], k[x], 100 * k[x] / n[a[1]] } }' \
      "$OUT/${3:-waits}-waits.txt" | sort ;;
  down) "$AB/eng/processes.sh" stop ;;
  *) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2 ;;
esac
