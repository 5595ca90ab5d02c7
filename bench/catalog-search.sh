#!/usr/bin/env bash
# Catalog search latency on a large synthetic catalog, with and without the Redis cache, in one
# run: two book-service processes on the same database, one with Redis, one whose Redis is
# unreachable (reads go to PostgreSQL). Prints wrk's figures and the EXPLAIN plans of the main
# queries (which indexes they use).
#   bench/catalog-search.sh [titles, default 100000]   (BENCH_SECONDS=20, BENCH_CONNECTIONS=16)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/eng/lib/servers.sh"
COUNT="${1:-100000}"
SECONDS_EACH="${BENCH_SECONDS:-20}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
DATA="$(mktemp -d /tmp/library-bench.XXXXXX)"
PG=47432 REDIS=47379 RABBIT=47672 CACHED=5801 UNCACHED=5802
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  servers_stop_all "$DATA" || true
  rm -rf "$DATA"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
servers_install
servers_start_all "$DATA" "$PG" "$REDIS" "$RABBIT"
BOOKDB="$(pg_ensure_db "$DATA" "$PG" bookdb bookservice)"
echo "[bench] generating $COUNT titles" >&2
python3 "$ROOT/bench/generate-catalog.py" --count "$COUNT" --seed 42 --out "$DATA/catalog.json"
dotnet build "$ROOT/Library.BookService" -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
DLL="$ROOT/Library.BookService/bin/Release/net10.0/Library.BookService.dll"

start_book() { # PORT CACHE [SEEDFILE]
  env ASPNETCORE_URLS="http://127.0.0.1:$1" ASPNETCORE_ENVIRONMENT=Production Logging__LogLevel__Default=Warning \
    ConnectionStrings__bookdb="$BOOKDB" ConnectionStrings__cache="$2" \
    ConnectionStrings__messaging="$(rabbitmq_cs "$DATA" "$RABBIT")" Catalog__SeedFile="${3:-}" \
    dotnet "$DLL" >"$DATA/book-$1.log" 2>&1 &
  pids+=($!)
}
wait_health() { # PORT SECONDS
  local deadline=$((SECONDS + $2))
  until curl -sf "http://127.0.0.1:$1/alive" >/dev/null; do
    ((SECONDS < deadline)) || { tail -20 "$DATA/book-$1.log"; echo "book service on $1 did not start" >&2; exit 1; }
    sleep 1
  done
}

echo "[bench] importing (first start of the cached instance)" >&2
started=$SECONDS
start_book "$CACHED" "$(redis_cs "$DATA" "$REDIS")" "$DATA/catalog.json"
wait_health "$CACHED" 1800
import_seconds=$((SECONDS - started))
start_book "$UNCACHED" "127.0.0.1:1,password=none"
wait_health "$UNCACHED" 120
# A fresh planner view of the imported data.
pg_psql "$DATA" -d bookdb -qc "VACUUM ANALYZE" >/dev/null

run() { # PORT LABEL
  # one pass to warm (fills the cache for the cached instance)
  wrk -t2 -c4 -d3s -s "$ROOT/bench/search.lua" "http://127.0.0.1:$1" >/dev/null
  wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s "$ROOT/bench/search.lua" "http://127.0.0.1:$1" >"$DATA/wrk-$2.txt"
  awk -v label="$2" '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +90%/ { p90 = $2 } /^ +99%/ { p99 = $2 }
    /Non-2xx/ { errors = $NF }
    END { printf "%-10s req/s=%-9s p50=%-9s p90=%-9s p99=%-9s non2xx=%s\n", label, rps, p50, p90, p99, (errors == "" ? 0 : errors) }' "$DATA/wrk-$2.txt"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; catalog: $COUNT titles (import ${import_seconds} s); wrk ${CONNECTIONS} connections, ${SECONDS_EACH} s, 12 distinct searches"
run "$CACHED" cached
run "$UNCACHED" uncached

echo "EXPLAIN (ANALYZE) of the main queries at $COUNT titles:"
explain() { # LABEL SQL
  echo "-- $1"
  pg_psql "$DATA" -d bookdb -Atc "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) $2" | grep -E "Index|Bitmap|Seq Scan|Execution Time" | sed 's/^/   /'
}
explain "full text + typo: search=darkness" \
  "SELECT b.id FROM books b WHERE (b.search_vector @@ websearch_to_tsquery('library_english','darkness') OR lower(unaccent('darkness')) <% b.search_text) ORDER BY ts_rank_cd(b.search_vector, websearch_to_tsquery('library_english','darkness')) DESC, b.title, b.id LIMIT 20"
explain "count for the same search" \
  "SELECT count(*) FROM books b WHERE (b.search_vector @@ websearch_to_tsquery('library_english','darkness') OR lower(unaccent('darkness')) <% b.search_text)"
explain "title order, page 50" "SELECT b.id FROM books b ORDER BY b.title, b.id LIMIT 20 OFFSET 980"
explain "category by name, popular" \
  "SELECT b.id FROM books b WHERE EXISTS (SELECT 1 FROM book_categories bc JOIN categories c ON c.id = bc.categories_id WHERE bc.books_id = b.id AND c.normalized_name = 'science fiction') ORDER BY b.recent_loans DESC, b.title, b.id LIMIT 20"
explain "publisher" "SELECT count(*) FROM books b WHERE lower(b.publisher) = lower('Ace Books')"
