#!/usr/bin/env bash
# Borrow throughput through the gateway, and the same transaction run by pgbench straight in
# PostgreSQL as the ceiling, in one run on one machine. Starts its own stack with eng/run.sh
# (own ports and data folder, empty catalog, 2 replicas of each service), creates titles with
# plenty of copies and registers readers through the API, then:
#   - wrk: borrow/return cycles through the gateway (a librarian acting for the readers);
#   - pgbench: bench/borrow.sql (the borrow and return statements) on lendingdb.
#   bench/borrow.sh   (BENCH_SECONDS=20, BENCH_CONNECTIONS=16, BENCH_TITLES=20, BENCH_READERS=100)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/eng/lib/servers.sh"
SECONDS_EACH="${BENCH_SECONDS:-20}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
TITLES="${BENCH_TITLES:-20}"
READERS="${BENCH_READERS:-100}"
export LIBRARY_DATA_DIR="$(mktemp -d /tmp/library-bench-borrow.XXXXXX)"
export LIBRARY_GATEWAY_PORT=8181 LIBRARY_USERSERVICE_PORT=5611 LIBRARY_BOOKSERVICE_PORT=5711 LIBRARY_LENDINGSERVICE_PORT=5811
export LIBRARY_PG_PORT=48432 LIBRARY_REDIS_PORT=48379 LIBRARY_RABBITMQ_PORT=48672
export LIBRARY_CATALOG=none LIBRARY_ADMIN_EMAIL=bench-admin@library.local LIBRARY_ADMIN_PASSWORD="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
G="http://127.0.0.1:$LIBRARY_GATEWAY_PORT"
cleanup() { "$ROOT/eng/run.sh" stop >/dev/null 2>&1 || true; rm -rf "$LIBRARY_DATA_DIR"; }
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

"$ROOT/eng/run.sh" start >/dev/null
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
TOKEN="$(curl -sf -X POST "$G/api/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$LIBRARY_ADMIN_EMAIL\",\"password\":\"$LIBRARY_ADMIN_PASSWORD\"}" | json "['accessToken']")"

echo "[bench] creating $TITLES titles and $READERS readers" >&2
isbn() { python3 -c "
b='9798%08d' % $1; s=sum(int(c)*(1 if i%2==0 else 3) for i,c in enumerate(b)); print(b+str((10-s%10)%10))"; }
titles=() readers=()
for i in $(seq 1 "$TITLES"); do
  titles+=("$(curl -sf -X POST "$G/api/books" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"isbn\":\"$(isbn $((70000000 + i)))\",\"title\":\"Bench Title $i\",\"publisher\":\"Bench\",\"totalCopies\":1000}" | json "['id']")")
done
for i in $(seq 1 "$READERS"); do
  readers+=("$(curl -sf -X POST "$G/api/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"reader$i@bench.local\",\"firstName\":\"Bench\",\"lastName\":\"Reader $i\",\"password\":\"bench-password-$i\"}" | json "['id']")")
done
DATA_LUA="$LIBRARY_DATA_DIR/borrow-data.lua"
{
  echo "return { token = \"$TOKEN\","
  printf 'titles = {'; printf '"%s",' "${titles[@]}"; echo '},'
  printf 'readers = {'; printf '"%s",' "${readers[@]}"; echo '} }'
} >"$DATA_LUA"
# Let the replicas catch up (events), then warm the path.
sleep 3
BORROW_DATA="$DATA_LUA" wrk -t2 -c4 -d3s -s "$ROOT/bench/borrow.lua" "$G" >/dev/null

BORROW_DATA="$DATA_LUA" wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s "$ROOT/bench/borrow.lua" "$G" >"$LIBRARY_DATA_DIR/wrk.txt"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; 2 replicas per service; wrk ${CONNECTIONS} connections, ${SECONDS_EACH} s; $TITLES titles x 1000 copies, $READERS readers"
awk '
  /Requests\/sec/ { rps = $2 }
  /^ +50%/ { p50 = $2 } /^ +90%/ { p90 = $2 } /^ +99%/ { p99 = $2 }
  /Non-2xx/ { errors = $NF }
  END { printf "gateway   requests/s=%s (borrow+return, so %.0f borrows/s) p50=%s p90=%s p99=%s non2xx=%s\n", rps, rps / 2, p50, p90, p99, (errors == "" ? 0 : errors) }' "$LIBRARY_DATA_DIR/wrk.txt"

# The ceiling: the same statements straight in PostgreSQL.
pg_psql "$LIBRARY_DATA_DIR" -d lendingdb -qc "
  CREATE TABLE bench_readers AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM readers;
  CREATE TABLE bench_titles AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM titles;
  CREATE UNIQUE INDEX ON bench_readers (n); CREATE UNIQUE INDEX ON bench_titles (n);" >/dev/null
nr="$(pg_psql "$LIBRARY_DATA_DIR" -d lendingdb -Atc 'SELECT count(*) FROM bench_readers')"
nt="$(pg_psql "$LIBRARY_DATA_DIR" -d lendingdb -Atc 'SELECT count(*) FROM bench_titles')"
PGPASSWORD="$(cat "$LIBRARY_DATA_DIR/secrets/postgres.password")" pgbench -h 127.0.0.1 -p "$LIBRARY_PG_PORT" -U postgres -n \
  -M extended -c "$CONNECTIONS" -j 2 -T "$SECONDS_EACH" -D readers="$nr" -D titles="$nt" -f "$ROOT/bench/borrow.sql" --report-per-command lendingdb \
  >"$LIBRARY_DATA_DIR/pgbench.txt" 2>&1 || { tail -20 "$LIBRARY_DATA_DIR/pgbench.txt" >&2; exit 1; }
awk '/^tps/ { tps = $3 } /latency average/ { avg = $4 } END { printf "pgbench   borrow+return transactions/s=%.0f (so %.0f borrows/s) latency avg=%s ms\n", tps, tps, avg }' "$LIBRARY_DATA_DIR/pgbench.txt"
echo "lending truth after the run: $(pg_psql "$LIBRARY_DATA_DIR" -d lendingdb -Atc "SELECT 'titles with on_loan<0 or >total: ' || count(*) FILTER (WHERE on_loan < 0 OR on_loan > total_copies) || ', active loans: ' || (SELECT count(*) FROM loans WHERE returned_at IS NULL) || ', on_loan sum: ' || sum(on_loan) FROM titles")"
