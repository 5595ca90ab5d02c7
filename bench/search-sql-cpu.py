#!/usr/bin/env python3
"""Executor CPU of each path of bench/search.lua, in PostgreSQL alone, for the SQL `main` (e177fb4)
sent and the SQL this tree sends (CatalogQuery, written out here with the search's terms resolved
as the service resolves them), alternating statement by statement in one session. This tree's SQL
reads books.category_ids (migration SearchAtScale4): the database must have it.

    bench/search-sql-cpu.py DATA [ROUNDS=5]

DATA: a servers.sh data folder whose PostgreSQL holds the catalog in `bookdb` (e.g. a kept
bench/catalog-search.sh folder). The figure is getrusage's user + system time of the executor
(`log_executor_stats`, read back from DATA/postgres/postgres.log), not wall time: on this shared
2-core machine wall times swing several times over with the load, CPU time far less. Prints per
path the median over the rounds of the sum of its statements, in ms, and the sums. A parallel
worker's CPU is not the backend's, so the statements run serially (PARALLEL=1: as the server
would plan them; a plan with workers then shows less than it costs). Both variants
must give the same rows: run with CHECK=1 to compare them first. (The unranked orders' count is
one statement here in both; this tree sends it with the page, which saves a round trip, not
executor time.)
"""
import sys, subprocess, re, statistics, os
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 5
files = {}
variants = ["main", "this"]
for variant in variants:
    def psql(q):
        return subprocess.run(["bash","-c",f"source {ROOT}/eng/lib/servers.sh; pg_psql {DATA} -d bookdb -Atc \"{q}\""],capture_output=True,text=True).stdout.strip()
    def cat(name): return psql(f"SELECT id FROM categories WHERE normalized_name = '{name}'")
    def lit(s): return "'" + s.replace("'", "''") + "'"
    def resolve(q):
        return psql(f"SELECT websearch_to_tsquery('library_english', '{q}')::text || '|' || lower(unaccent('{q}'))").split("|")
    def where(search=None, category=None, language=None, available=None, reads_rows=False):
        w = "TRUE"; tsq = uq = None
        if search:
            tsq, uq = resolve(search)
            w += f" AND (b.search_vector @@ {lit(tsq)}::tsquery OR b.search_text %> {lit(uq)})"
        if category:
            # this tree: the row's category_ids when the statement reads the rows anyway (CatalogQuery.Where)
            if variant == "this" and (reads_rows or search or language or available is not None): w += f" AND b.category_ids @> ARRAY['{cat(category)}']::uuid[]"
            else: w += f" AND EXISTS (SELECT 1 FROM book_categories bc WHERE bc.books_id = b.id AND bc.categories_id = '{cat(category)}')"
        if language: w += f" AND b.language = {lit(language)}"
        if available is not None: w += " AND b.available_copies > 0" if available else " AND b.available_copies <= 0"
        return w, tsq, uq
    def ranked(w, tsq, uq, take=20, skip=0):
        end = skip + take; cand = max(100, 4 * end)
        return f"""WITH m AS MATERIALIZED (
        SELECT b.id, b.title, b.search_text, ts_rank_cd(b.search_vector, {lit(tsq)}::tsquery) AS rank
        FROM books b WHERE {w}),
    bound AS (
        SELECT s.rank + word_similarity({lit(uq)}, s.search_text) AS score FROM (
            SELECT m.rank, m.search_text FROM m ORDER BY m.rank DESC LIMIT {cand}) s
        ORDER BY score DESC OFFSET {end - 1} LIMIT 1)
    SELECT p.id, (SELECT count(*) FROM m) FROM (
        SELECT m.id, m.title, m.rank + word_similarity({lit(uq)}, m.search_text) AS score FROM m
        WHERE m.rank + 1::real >= coalesce((SELECT bound.score FROM bound), '-Infinity'::real)) p
    ORDER BY p.score DESC, p.title, p.id LIMIT {take} OFFSET {skip}"""
    orders = {"newest": "b.published_year DESC NULLS LAST, b.created_at DESC, b.id", "popular": "b.recent_loans DESC, b.title, b.id", "title": "b.title, b.id"}
    def plain(w, sort, take=20, skip=0):
        return [f"SELECT count(*) FROM books b WHERE {w}", f"SELECT b.id FROM books b WHERE {w} ORDER BY {orders[sort]} LIMIT {take} OFFSET {skip}"]
    def facets(w):
        if variant == "this": return f"""WITH f AS (SELECT b.id, b.publisher, b.language, b.category_ids FROM books b WHERE {w})
    SELECT 'category', c.id::text, c.name, count(*) FROM f
        CROSS JOIN LATERAL unnest(f.category_ids) AS fc(id) JOIN categories c ON c.id = fc.id
        GROUP BY c.id, c.name
    UNION ALL
    SELECT 'publisher', NULL, min(f.publisher), count(*) FROM f GROUP BY lower(f.publisher)
    UNION ALL
    SELECT 'language', NULL, f.language, count(*) FROM f WHERE f.language IS NOT NULL GROUP BY f.language"""
        return f"""WITH f AS (SELECT b.id, b.publisher, b.language FROM books b WHERE {w})
    SELECT 'category', c.id::text, c.name, count(*) FROM f
        JOIN book_categories bc ON bc.books_id = f.id JOIN categories c ON c.id = bc.categories_id
        GROUP BY c.id, c.name
    UNION ALL
    SELECT 'publisher', NULL, min(f.publisher), count(*) FROM f GROUP BY lower(f.publisher)
    UNION ALL
    SELECT 'language', NULL, f.language, count(*) FROM f WHERE f.language IS NOT NULL GROUP BY f.language"""
    paths = {
     "01-darkness": [ranked(*where("darkness"))],
     "02-history-garden": [ranked(*where("history garden"))],
     "03-river-newest": plain(where("river")[0], "newest"),
     "04-cafe": [ranked(*where("cafe"))],
     "05-hystory": [ranked(*where("hystory"))],
     "06-senor-es": [ranked(*where("senor", language="es"))],
     "07-scifi-popular": plain(where(category="science fiction")[0], "popular"),
     "08-garden-history-avail": [ranked(*where("garden", category="history", available=True))],
     "09-title-p50": plain("TRUE", "title", 20, 980),
     "10-dark-river-p2": [ranked(*where("dark river"), 20, 20)],
     "11-facets-darkness": [facets(where("darkness")[0])],
     "12-facets-fantasy": [facets(where(category="fantasy", reads_rows=True)[0])],
    }
    for k, qs in paths.items():
        for i, q in enumerate(qs):
            files[(variant, f"{k}-{i}")] = q.replace("\n", " ")

if os.environ.get("CHECK") == "1":
    def rows(q):
        return subprocess.run(["bash", "-c", f"source {ROOT}/eng/lib/servers.sh; pg_psql {DATA} -d bookdb -Atc \"$Q\""], env={**os.environ, "Q": q}, capture_output=True, text=True, check=True).stdout
    for (v, k), q in files.items():
        # the facets' groups come in hash order (the service sorts them): compared as sets
        norm = (lambda r: sorted(r.splitlines())) if "facets" in k else (lambda r: r)
        if v == "this" and norm(rows(q)) != norm(rows(files[("main", k)])): print(f"DIFFERENT ROWS: {k}")
keys = sorted({k for _, k in files})
order = []
for i in range(N):
    for k in keys:
        for v in variants:
            if (v, k) in files: order.append((v, k))
LOG = f"{DATA}/postgres/postgres.log"
start = sum(1 for _ in open(LOG, errors="replace"))
# Serial plans (PARALLEL=1 keeps the server's setting): a parallel worker's CPU is not the
# backend's, so a plan with a worker looked cheaper than it is; on 2 cores every ms counts.
serial = "" if os.environ.get("PARALLEL") == "1" else " SET max_parallel_workers_per_gather = 0;"
script = f"SET client_min_messages = warning; SET log_executor_stats = on;{serial}\n" + "".join(files[o] + " \\g /dev/null\n" for o in order)
open(f"{DATA}/search-sql-cpu.sql", "w").write(script)
subprocess.run(["bash", "-c", f"source {ROOT}/eng/lib/servers.sh; pg_psql {DATA} -d bookdb -q -f {DATA}/search-sql-cpu.sql >/dev/null"], check=True)
cpus = []; cpu = None
with open(LOG, errors="replace") as fh:
    for n, line in enumerate(fh):
        if n < start: continue
        m = re.search(r"([0-9.]+) s user, ([0-9.]+) s system, ([0-9.]+) s elapsed", line)
        if m: cpu = (float(m.group(1)) + float(m.group(2))) * 1000; continue
        if "STATEMENT:" in line and cpu is not None: cpus.append(cpu); cpu = None
assert len(cpus) == len(order), (len(cpus), len(order))
acc = {}
for (v, k), c in zip(order, cpus): acc.setdefault((v, k), []).append(c)
paths = sorted({k.rsplit("-", 1)[0] for k in keys})
tot = {v: 0 for v in variants}
print("path".ljust(28) + "".join(f"{v:>14}" for v in variants))
for p in paths:
    row = p.ljust(28)
    for v in variants:
        # per alternation: sum of the path's statements; then the median
        stmts = [k for k in keys if k.rsplit("-", 1)[0] == p and (v, k) in acc]
        sums = [sum(acc[(v, k)][i] for k in stmts) for i in range(N)]
        med = statistics.median(sums); tot[v] += med
        row += f"{med:14.1f}"
    print(row)
print("sum".ljust(28) + "".join(f"{tot[v]:14.1f}" for v in variants))
