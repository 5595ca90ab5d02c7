#!/usr/bin/env bash
# Borrow throughput through the gateway, and the same transaction run by pgbench straight in
# PostgreSQL as the ceiling, in one run on one machine (bench/run.sh scenario 3):
#   - wrk: borrow/return cycles through the gateway (bench/borrow.lua: a librarian lending to
#     BENCH_READERS readers over BENCH_TITLES titles of BENCH_COPIES copies, each borrow followed
#     by its return on the same connection);
#   - pgbench: bench/borrow.sql (the borrow and return statements) on lendingdb, same titles and
#     readers, same number of clients;
# then checks the copy counts.
#   bench/borrow.sh   (BENCH_SECONDS=20, BENCH_BORROW_CONNECTIONS=16, BENCH_TITLES=100,
#                      BENCH_COPIES=1000, BENCH_READERS=500; BENCH_USE_RUNNING=1: see bench/lib.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECONDS_EACH="${BENCH_SECONDS:-20}"
CONNECTIONS="${BENCH_BORROW_CONNECTIONS:-16}"
bench_need_tools
bench_stack_up
BENCH_TOKEN="$(bench_token)"
export BENCH_TOKEN
bench_lending_data
OUT="$BENCH_WORK/borrow"
mkdir -p "$OUT"
nt="$(wc -l <"$BENCH_LENDING/titles")" nr="$(wc -l <"$BENCH_LENDING/readers")"

# Deadlocks PostgreSQL broke in lendingdb (each costs its transaction deadlock_timeout, 1 s).
deadlocks() { bench_psql -d lendingdb -Atc "SELECT deadlocks FROM pg_stat_database WHERE datname = 'lendingdb'"; }

# Warm the path (JIT, pools), then measure.
BORROW_DATA="$BENCH_LENDING/borrow-data.lua" wrk -t2 -c4 -d3s -s "$BENCH_DIR/borrow.lua" "$BENCH_URL" >/dev/null
bench_log "borrow/return through the gateway: $CONNECTIONS connections, ${SECONDS_EACH} s"
d0="$(deadlocks)"
BORROW_DATA="$BENCH_LENDING/borrow-data.lua" bench_wrk "$OUT/wrk.txt" "$CONNECTIONS" "$SECONDS_EACH" "$BENCH_URL" "$BENCH_DIR/borrow.lua"
d1="$(deadlocks)"
read -r rps _ < <(bench_wrk_fields "$OUT/wrk.txt")
bench_wrk_row borrow "borrow+return requests: gateway" "$OUT/wrk.txt" \
  "$CONNECTIONS conns, ${SECONDS_EACH} s, $nt titles x ${BENCH_COPIES:-1000} copies, $nr readers; latency of either request" >/dev/null
borrows="$(awk -v r="$rps" 'BEGIN { print r / 2 }')"
bench_row borrow "borrows/s: gateway" "$(fmt_rate "$borrows")" "" "" "each borrow followed by its return: requests/s / 2; $((d1 - d0)) deadlocks in lendingdb"

# The ceiling: the same statements straight in PostgreSQL, over the same titles and readers
# (helper tables numbered 1..n for pgbench's random picks, dropped afterwards).
values() { sed "s/.*/('&'::uuid)/" "$1" | paste -sd,; }
bench_psql -d lendingdb -qc "
  SET client_min_messages = warning;
  DROP TABLE IF EXISTS bench_readers, bench_titles;
  CREATE TABLE bench_readers AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM (VALUES $(values "$BENCH_LENDING/readers")) v(id);
  CREATE TABLE bench_titles AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM (VALUES $(values "$BENCH_LENDING/titles")) v(id);
  CREATE UNIQUE INDEX ON bench_readers (n); CREATE UNIQUE INDEX ON bench_titles (n);" >/dev/null
bench_log "the same transaction in pgbench: $CONNECTIONS clients, ${SECONDS_EACH} s"
PGPASSWORD="$(cat "$LIBRARY_DATA_DIR/secrets/postgres.password")" pgbench -h 127.0.0.1 -p "$(_srv_pg_port "$(_srv_pg_primary_root "$LIBRARY_DATA_DIR")")" -U postgres -n \
  -M extended -c "$CONNECTIONS" -j 2 -T "$SECONDS_EACH" -D readers="$nr" -D titles="$nt" -f "$BENCH_DIR/borrow.sql" \
  --report-per-command lendingdb >"$OUT/pgbench.txt" 2>&1 || { tail -20 "$OUT/pgbench.txt" >&2; exit 1; }
d2="$(deadlocks)"
bench_psql -d lendingdb -qc "DROP TABLE bench_readers, bench_titles" >/dev/null
read -r tps avg < <(awk '/^tps/ { tps = $3 } /latency average/ { avg = $4 } END { print tps, avg }' "$OUT/pgbench.txt")
bench_row borrow "borrows/s: pgbench, same SQL" "$(fmt_rate "$tps")" "" "" \
  "$CONNECTIONS clients, ${SECONDS_EACH} s; borrow+return per script (2 transactions), avg $(fmt_ms "$avg") per script; $((d2 - d1)) deadlocks"
bench_row borrow "borrows/s: gateway / pgbench" "$(ratio "$borrows" "$tps")x" "" "" "the service path's share of what PostgreSQL alone allows"

truth="$(bench_psql -d lendingdb -Atc "
  SELECT (SELECT count(*) FROM copies c WHERE c.status = 'checked-out'
            AND (SELECT count(*) FROM loans l WHERE l.copy_id = c.id AND l.returned_at IS NULL) <> 1) || ' bad copies, '
      || (SELECT count(*) FROM copies WHERE status = 'checked-out') || ' copies on loan, '
      || (SELECT count(*) FROM loans WHERE returned_at IS NULL) || ' active loans'")"
bench_row borrow "consistency after the runs" "$(awk '{ print ($1 == 0 && $4 == $8) ? "OK" : "FAIL" }' <<<"$truth")" "" "" "lendingdb: $truth"
bench_finish
