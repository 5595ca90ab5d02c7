#!/usr/bin/env bash
# The librarians' reports on a year of history (issue 14):
#   - generates a year of circulation straight into the stack's lendingdb with SQL generate_series
#     (bench/reports-data.sql: BENCH_REPORT_LOANS loans (120,000) over BENCH_REPORT_TITLES titles
#     (2,000, popularity skewed), 5,000 readers, a third renewed once, 20,000 holds);
#   - times GET /api/reports/circulation (a year, and a month) and /api/reports/popular (a year)
#     through the gateway, JSON and CSV: one warm-up, then BENCH_REPORT_RUNS (7) requests each,
#     median and slowest;
#   - waits for the service's clock to anonymise the loans returned over 30 days ago: how long,
#     and the year's report the same after it;
#   - EXPLAIN ANALYZE of both queries (bench/reports-queries.sql, the SQL of ReportsApi.cs) in
#     $BENCH_WORK/reports-explain.txt (printed with BENCH_REPORT_EXPLAIN=1).
#   bench/reports.sh   (BENCH_USE_RUNNING=1: see bench/lib.sh; its lendingdb gets the history added)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOANS="${BENCH_REPORT_LOANS:-120000}"
TITLES="${BENCH_REPORT_TITLES:-2000}"
RUNS="${BENCH_REPORT_RUNS:-7}"
bench_stack_up
TOKEN="$(bench_token)"

cp "$BENCH_DIR/reports-data.sql" "$BENCH_DIR/reports-queries.sql" "$BENCH_WORK/"
chmod 644 "$BENCH_WORK"/reports-*.sql
bench_log "a year of history: $LOANS loans over $TITLES titles"
started=$(date +%s.%N)
bench_psql -d lendingdb -q -v titles="$TITLES" -v readers=5000 -v loans="$LOANS" -v holds=20000 -f "$BENCH_WORK/reports-data.sql" >/dev/null
generated=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
counts="$(bench_psql -d lendingdb -At -c "SELECT (SELECT count(*) FROM loans) || ' loans, ' || (SELECT count(*) FROM loan_renewals) || ' renewals, ' || (SELECT count(*) FROM holds) || ' holds'")"
bench_log "generated in ${generated} s: $counts"

to="$(date -u +%F)"
year="$(date -u -d "$to - 364 days" +%F)"
month="$(date -u -d "$to - 29 days" +%F)"

# time_report WHAT PATH ACCEPT -- one warm-up, then RUNS timed requests; a row with median and max
time_report() {
  local what=$1 path=$2 accept=$3 out="$BENCH_WORK/reports-times.txt" code t i
  : >"$out"
  for ((i = 0; i <= RUNS; i++)); do
    read -r code t < <(curl -s -o "$BENCH_WORK/reports-body" -w '%{http_code} %{time_total}\n' -H "authorization: Bearer $TOKEN" -H "accept: $accept" "$BENCH_URL$path")
    [[ "$code" == 200 ]] || bench_die "$path ($accept): HTTP $code $(head -c 300 "$BENCH_WORK/reports-body")"
    ((i > 0)) && echo "$t" >>"$out"
  done
  local p50 max
  p50="$(sort -n "$out" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] * 1000 }')"
  max="$(sort -n "$out" | tail -n1 | awk '{ print $1 * 1000 }')"
  bench_row reports "$what" "" "$(fmt_ms "$p50")" "$(fmt_ms "$max")" "$RUNS requests through the gateway, $accept, $(wc -c <"$BENCH_WORK/reports-body") bytes; p99 column: slowest"
}

time_report "circulation, a year" "/api/reports/circulation?from=$year&to=$to" application/json
time_report "circulation, a year, CSV" "/api/reports/circulation?from=$year&to=$to" text/csv
time_report "circulation, a month" "/api/reports/circulation?from=$month&to=$to" application/json
time_report "popular, a year, top 10" "/api/reports/popular?from=$year&to=$to&limit=10" application/json
time_report "popular, a year, top 100, CSV" "/api/reports/popular?from=$year&to=$to&limit=100" text/csv
time_report "popular, a month, top 10" "/api/reports/popular?from=$month&to=$to&limit=10" application/json
bench_row reports "history generated" "${generated} s" "" "" "$counts (SQL generate_series into lendingdb)"

cat >"$BENCH_WORK/reports-explain.sql" <<SQL
\i $BENCH_WORK/reports-queries.sql
-- With PostgreSQL's JIT (the default: a year costs over jit_above_cost), then as the service runs it.
EXPLAIN (ANALYZE, COSTS OFF) EXECUTE circulation('$year', '$to', 'UTC', '$year', '$to'::date + 1, now());
SET jit = off;
EXPLAIN (ANALYZE, COSTS OFF) EXECUTE circulation('$year', '$to', 'UTC', '$year', '$to'::date + 1, now());
EXPLAIN (ANALYZE, COSTS OFF) EXECUTE circulation('$month', '$to', 'UTC', '$month', '$to'::date + 1, now());
EXPLAIN (ANALYZE, COSTS OFF) EXECUTE popular('$year', '$to'::date + 1, 10);
SQL
chmod 644 "$BENCH_WORK/reports-explain.sql"
bench_psql -d lendingdb -f "$BENCH_WORK/reports-explain.sql" >"$BENCH_WORK/reports-explain.txt" 2>&1
[[ "${BENCH_REPORT_EXPLAIN:-0}" == 1 ]] && cat "$BENCH_WORK/reports-explain.txt" >&2
# The lending service's clock (every minute) anonymises the loans returned over 30 days ago: how
# long it takes, and the report's counts after it (overdue aside: it moves with the clock).
curl -sf -H "authorization: Bearer $TOKEN" "$BENCH_URL/api/reports/circulation?from=$year&to=$to" >"$BENCH_WORK/reports-before.json"
due="SELECT count(*) FROM loans WHERE returned_at < now() - interval '30 days' AND anonymised_at IS NULL"
initial="$(bench_psql -d lendingdb -At -c "$due")"
bench_log "waiting for the clock to anonymise $initial loans (it ticks every minute)"
deadline=$(($(date +%s) + 300)) first="" last=""
while :; do
  left="$(bench_psql -d lendingdb -At -c "$due")"
  now=$(date +%s.%N)
  [[ -z "$first" && "$left" -lt "$initial" ]] && first=$now
  [[ "$left" == 0 ]] && { last=$now; break; }
  (($(date +%s) < deadline)) || bench_die "$left loans still to anonymise after 5 minutes"
  sleep 0.2
done
[[ -n "$first" ]] || first=$last
curl -sf -H "authorization: Bearer $TOKEN" "$BENCH_URL/api/reports/circulation?from=$year&to=$to" >"$BENCH_WORK/reports-after.json"
same="$(python3 - "$BENCH_WORK/reports-before.json" "$BENCH_WORK/reports-after.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
keys = ["loans", "returns", "renewals", "holdsPlaced", "holdsFilled"]
print("the same" if [[d[k] for k in keys] for d in a["days"]] == [[d[k] for k in keys] for d in b["days"]] else "DIFFERENT")
PY
)"
bench_row reports "anonymised by the clock" "$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.1f s", b - a }')" "" "" \
  "$initial loans in batches of 500 (first seen to last, polled every 0.2 s, ~ a tick); the year's report after it: $same"
time_report "circulation, a year, just after anonymisation" "/api/reports/circulation?from=$year&to=$to" application/json
# Every loan row was rewritten: until (auto)vacuum, the scans read the dead versions too.
bench_psql -d lendingdb -qc "VACUUM ANALYZE loans, holds, outbox_messages"
time_report "circulation, a year, anonymised and vacuumed" "/api/reports/circulation?from=$year&to=$to" application/json

bench_finish
