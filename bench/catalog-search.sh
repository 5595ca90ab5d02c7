#!/usr/bin/env bash
# Catalog search latency on a large synthetic catalog, with and without the Redis cache, in one
# run (bench/run.sh scenario 6): two book-service processes on one database, one with Redis, one
# whose Redis is unreachable (every read in PostgreSQL), the same wrk load (bench/search.lua: 12
# distinct searches, filters, sorts, facets); their resident memory; then the EXPLAIN plans of
# the main queries (which indexes they use). Own PostgreSQL, Redis and RabbitMQ (bench/lib.sh's
# ports; nothing else of the stack runs), so it never touches a running stack.
#   bench/catalog-search.sh [titles, default 100000]   (BENCH_SECONDS=20, BENCH_CONNECTIONS=16,
#                                                       BENCH_SCALE_SETTLE=20: the RSS row's wait;
#                                                       the two processes on LIBRARY_BOOKSERVICE_PORT and +1)
# A/B: BENCH_SEARCH_BASELINE_DLL=<another build's Library.BookService.dll> (same schema) adds a third
# process, uncached, on the port +2, and measures it and the uncached one of this tree in turns
# (this, other, this, other), on the same database in the same run; the ratio is this / other.
# BENCH_SEARCH_BASELINE_PG_OPTIONS='-c random_page_cost=4 -c work_mem=4MB' gives that process's sessions other
# PostgreSQL settings (Npgsql's Options), to measure the servers' settings in the same A/B.
# It then runs bench/search-paths.sh on both (each of the 12 paths alone, alternating, with the
# answers' digests: the same digest = byte-identical answers).
# BENCH_SEARCH_COPIES=N multiplies the imported catalog N times in SQL (bench/replicate-catalog.sql):
# `BENCH_SEARCH_COPIES=10 bench/catalog-search.sh 100000` measures 1,000,000 titles without an
# hour-long import.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
COUNT="${1:-100000}"
SECONDS_EACH="${BENCH_SECONDS:-20}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
PG="$LIBRARY_PG_PORT" REDIS="$LIBRARY_REDIS_PORT" RABBIT="$LIBRARY_RABBITMQ_PORT"
CACHED="$LIBRARY_BOOKSERVICE_PORT" UNCACHED="$((LIBRARY_BOOKSERVICE_PORT + 1))"
bench_workdir
DATA="$BENCH_WORK/search-$COUNT"
mkdir -p "$DATA"
pids=()
cleanup() {
  local rc=$? p
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]+"${pids[@]}"}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  servers_stop_all "$DATA" >/dev/null 2>&1 || true
  rm -rf "$DATA/postgres" "$DATA/redis" "$DATA/rabbitmq" "$DATA/catalog.json"
  bench_cleanup_now
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_need_tools
servers_install
servers_start_all "$DATA" "$PG" "$REDIS" "$RABBIT" 2>"$DATA/servers.log"
BOOKDB="$(pg_ensure_db "$DATA" "$PG" bookdb bookservice 2>>"$DATA/servers.log")"
bench_log "search at $COUNT titles: generating the catalog"
python3 "$BENCH_DIR/generate-catalog.py" --count "$COUNT" --seed 42 --out "$DATA/catalog.json" 2>/dev/null
[[ "${BENCH_NO_BUILD:-0}" == 1 ]] || dotnet build "$BENCH_ROOT/Library.BookService" -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
DLL="$BENCH_ROOT/Library.BookService/bin/Release/net10.0/Library.BookService.dll"

start_book() { # PORT CACHE [SEEDFILE] [PG OPTIONS]   (DLL: which build)
  (cd "$(dirname "$DLL")" && exec env ASPNETCORE_URLS="http://127.0.0.1:$1" ASPNETCORE_ENVIRONMENT=Production Logging__LogLevel__Default=Warning \
    ConnectionStrings__bookdb="$BOOKDB${4:+;Options=\"$4\"}" ConnectionStrings__cache="$2" \
    ConnectionStrings__messaging="$(rabbitmq_cs "$DATA" "$RABBIT")" Catalog__SeedFile="${3:-}" \
    dotnet "$DLL" >"$DATA/book-$1.log" 2>&1) &
  pids+=($!)
}
wait_health() { # PORT SECONDS
  local deadline=$((SECONDS + $2))
  until curl -sf "http://127.0.0.1:$1/alive" >/dev/null; do
    ((SECONDS < deadline)) || { tail -20 "$DATA/book-$1.log" >&2; bench_die "book service on $1 did not start"; }
    sleep 1
  done
}

bench_log "importing (first start of the cached instance)"
started=$SECONDS
start_book "$CACHED" "$(redis_cs "$DATA" "$REDIS")" "$DATA/catalog.json"
wait_health "$CACHED" 1800
import_seconds=$((SECONDS - started))
start_book "$UNCACHED" "127.0.0.1:1,password=none"
wait_health "$UNCACHED" 120
if [[ -n "${BENCH_SEARCH_BASELINE_DLL:-}" ]]; then
  DLL="$BENCH_SEARCH_BASELINE_DLL" start_book "$((UNCACHED + 1))" "127.0.0.1:1,password=none" "" "${BENCH_SEARCH_BASELINE_PG_OPTIONS:-}"
  wait_health "$((UNCACHED + 1))" 120
fi
# A fresh planner view of the imported data.
COPIES="${BENCH_SEARCH_COPIES:-1}"
if ((COPIES > 1)); then
  bench_log "search: replicating the catalog $COPIES times in SQL"
  started=$SECONDS
  pg_psql "$DATA" -d bookdb -q -v copies="$COPIES" -f "$BENCH_DIR/replicate-catalog.sql" >/dev/null
  bench_log "search: $((COUNT * COPIES)) titles after $((SECONDS - started)) s"
  COUNT=$((COUNT * COPIES))
fi
pg_psql "$DATA" -d bookdb -qc "VACUUM ANALYZE" >/dev/null

declare -A RPS=()
rss_of() { echo $(($(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status") / 1024)); } # PID -> MiB
run() { # PORT LABEL PID
  bench_log "search at $COUNT titles: $2, ${SECONDS_EACH} s"
  # one pass to warm (fills the cache for the cached instance), at the measured connections: each
  # new pooled connection is a new PostgreSQL backend, slow for its first statements (bench/search-ab.sh)
  wrk -t2 -c"$CONNECTIONS" -d3s -s "$BENCH_DIR/search.lua" "http://127.0.0.1:$1" >/dev/null
  bench_wrk "$DATA/wrk-$2.txt" "$CONNECTIONS" "$SECONDS_EACH" "http://127.0.0.1:$1" "$BENCH_DIR/search.lua"
  RPS[$2]="$(bench_wrk_row scale "search, $COUNT titles: $2" "$DATA/wrk-$2.txt" \
    "$CONNECTIONS conns, ${SECONDS_EACH} s, 12 distinct searches + facets, one book-service process; RSS after: $(rss_of "$3") MiB")"
}
run "$CACHED" cached "${pids[0]}"
run "$UNCACHED" uncached "${pids[1]}"
bench_row scale "search, $COUNT titles: cached / uncached" "$(ratio "${RPS[cached]}" "${RPS[uncached]}")x" "" "" \
  "import of the catalog through the service: ${import_seconds} s"
# The cached process imported the catalog and went straight into its load: its RSS just after is
# the import's garbage, which the idle trim (ServiceDefaults' IdleMemoryTrim) gives back once the
# process is quiet. What each holds once settled:
SETTLE="${BENCH_SCALE_SETTLE:-20}"
sleep "$SETTLE"
bench_row scale "search, $COUNT titles: RSS settled, cached / uncached" "$(rss_of "${pids[0]}") / $(rss_of "${pids[1]}") MiB" "" "" \
  "${SETTLE} s after the last load (the cached process, which imported the catalog, idle since its own); the rows above: just after each load"
if [[ -n "${BENCH_SEARCH_BASELINE_DLL:-}" ]]; then
  this="${RPS[uncached]}"
  run "$((UNCACHED + 1))" "uncached, baseline build" "${pids[2]}"; other="${RPS[uncached, baseline build]}"
  run "$UNCACHED" "uncached (2)" "${pids[1]}"; this="$(awk -v a="$this" -v b="${RPS[uncached (2)]}" 'BEGIN { print a + b }')"
  run "$((UNCACHED + 1))" "uncached, baseline build (2)" "${pids[2]}"; other="$(awk -v a="$other" -v b="${RPS[uncached, baseline build (2)]}" 'BEGIN { print a + b }')"
  bench_row scale "search, $COUNT titles: uncached, this / baseline build" "$(ratio "$this" "$other")x" "" "" \
    "req/s summed over 2 turns each, alternating; baseline: $BENCH_SEARCH_BASELINE_DLL"
  # Each path alone, one request at a time, the two builds alternating; equal digests = the same bytes.
  bench_log "search at $COUNT titles: each path alone (bench/search-paths.sh)"
  "$BENCH_DIR/search-paths.sh" "http://127.0.0.1:$UNCACHED" "http://127.0.0.1:$((UNCACHED + 1))" >"$BENCH_WORK/paths-$COUNT.txt"
  [[ -n "${BENCH_PRINTS_TABLE:-}" ]] && cat "$BENCH_WORK/paths-$COUNT.txt"
fi

explain() { # LABEL SQL
  echo "-- $1"
  pg_psql "$DATA" -d bookdb -Atc "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) $2" | grep -E "Index|Bitmap|Seq Scan|Removed by Filter|Execution Time" | sed 's/^/   /'
}
SCIFI="$(pg_psql "$DATA" -d bookdb -Atc "SELECT id FROM categories WHERE normalized_name = 'science fiction'")"
{
echo "EXPLAIN (ANALYZE) of the main queries at $COUNT titles:"
# The SQL CatalogQuery sends (the search's tsquery, unaccented text and a category's ID resolved
# first, then passed as constants).
explain "ranked page of a broad search, search=darkness: its headline matches first, bounded (CatalogQuery.BoundedRankedPage, Catalog:SearchBound 1000)" \
  "WITH t AS MATERIALIZED (SELECT b.id, b.title, b.search_text, 0 AS tier, ts_rank_cd(b.search_vector, '''dark'''::tsquery) AS rank FROM books b WHERE ts_filter(b.search_vector, '{a,b}') @@ '''dark'''::tsquery AND TRUE AND ((b.search_vector @@ '''dark'''::tsquery) IS TRUE) LIMIT (SELECT 1001)), f AS MATERIALIZED (SELECT b.id, b.title, b.search_text, b.search_vector FROM books b WHERE TRUE AND (b.search_vector @@ '''dark'''::tsquery) LIMIT (CASE WHEN (SELECT count(*) FROM t) = 1001 THEN 0 ELSE 1001 END)), r AS MATERIALIZED (SELECT * FROM t UNION ALL (SELECT f.id, f.title, f.search_text, 0 AS tier, ts_rank_cd(f.search_vector, '''dark'''::tsquery) AS rank FROM f WHERE f.id NOT IN (SELECT t.id FROM t) LIMIT (SELECT 1001 - count(*) FROM t))), bound AS (SELECT s.tier, s.rank + word_similarity('darkness', s.search_text) AS score FROM (SELECT r.tier, r.rank, r.search_text FROM r ORDER BY r.tier DESC, r.rank DESC LIMIT 100) s ORDER BY s.tier DESC, score DESC OFFSET 19 LIMIT 1) SELECT p.id, (SELECT count(*) FROM r) FROM (SELECT r.id, r.title, r.tier, r.rank + word_similarity('darkness', r.search_text) AS score FROM r WHERE (r.tier, r.rank + 1::real) >= (coalesce((SELECT bound.tier FROM bound), -1), coalesce((SELECT bound.score FROM bound), '-Infinity'::real))) p ORDER BY p.tier DESC, p.score DESC, p.title, p.id LIMIT 20"
explain "search=river&sort=newest" \
  "SELECT b.id FROM books b WHERE (b.search_vector @@ '''river'''::tsquery) ORDER BY b.published_year DESC NULLS LAST, b.created_at DESC, b.id LIMIT 20"
explain "title order, page 50" "SELECT b.id FROM books b ORDER BY b.title, b.id LIMIT 20 OFFSET 980"
explain "category (its ID looked up by name first), popular" \
  "SELECT b.id FROM books b WHERE EXISTS (SELECT 1 FROM book_categories bc WHERE bc.books_id = b.id AND bc.categories_id = '$SCIFI') ORDER BY b.recent_loans DESC, b.title, b.id LIMIT 20"
explain "publisher" "SELECT count(*) FROM books b WHERE lower(b.publisher) = lower('Ace Books')"
FANTASY="$(pg_psql "$DATA" -d bookdb -Atc "SELECT id FROM categories WHERE normalized_name = 'fantasy'")"
explain "facets of a category (its titles from ix_books_category_ids, their categories from their rows)" \
  "WITH f AS (SELECT b.id, b.publisher, b.language, b.category_ids FROM books b WHERE b.category_ids @> ARRAY['$FANTASY']::uuid[]) SELECT 'category', c.id::text, c.name, count(*) FROM f CROSS JOIN LATERAL unnest(f.category_ids) AS fc(id) JOIN categories c ON c.id = fc.id GROUP BY c.id, c.name UNION ALL SELECT 'publisher', NULL, min(f.publisher), count(*) FROM f GROUP BY lower(f.publisher) UNION ALL SELECT 'language', NULL, f.language, count(*) FROM f WHERE f.language IS NOT NULL GROUP BY f.language"
} >"$BENCH_WORK/explain-$COUNT.txt"
[[ -n "${BENCH_PRINTS_TABLE:-}" ]] && cat "$BENCH_WORK/explain-$COUNT.txt"
bench_finish
