#!/usr/bin/env python3
"""Executor CPU of each path of bench/search.lua, in PostgreSQL alone, for the SQL `main` (40763f8,
the fifth pass) sent and the SQL this tree sends (CatalogQuery, BooksApi.FacetCountsScope, written
out here with the search's terms resolved as the service resolves them), alternating statement by
statement in one session. Each variant's first statement per path is its resolving round trip
(both expand typos through search_words: migration SearchAtScale5; `main` by the 5 most similar
words, this tree by the most similar only). This tree's facets of a category alone read
catalog_facet_counts (migration SearchAtScale6, which the database must have; `main` ignores it).

    bench/search-sql-cpu.py DATA [ROUNDS=5]

DATA: a servers.sh data folder whose PostgreSQL holds the catalog in `bookdb` (e.g. a kept
bench/catalog-search.sh folder). The figure is getrusage's user + system time of the executor
(`log_executor_stats`, read back from DATA/postgres/postgres.log), not wall time: on this shared
2-core machine wall times swing several times over with the load, CPU time far less. Prints per
path the median over the rounds of the sum of its statements, in ms, and the sums. A parallel
worker's CPU is not the backend's, so the statements run serially (PARALLEL=1: as the server
would plan them; a plan with workers then shows less than it costs). CHECK=1 compares the rows
of both variants first and names the paths whose rows differ (the typo rule changes `hystory`:
see bench/README.md, search at scale, sixth pass). (The unranked orders' count is one statement
here in both; the service sends it with the page, which saves a round trip, not executor time.)
"""
import sys, subprocess, re, statistics, os
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 5
files = {}
variants = ["main", "this"]
def rows(q):
    return subprocess.run(["bash", "-c", f"source {ROOT}/eng/lib/servers.sh; pg_psql {DATA} -d bookdb -AtF \"$SEP\" -c \"$Q\""], env={**os.environ, "Q": q, "SEP": "\x1f"}, capture_output=True, text=True, check=True).stdout.strip()
# CatalogQuery.ResolveSql of main (TypoSimilarity 0.4, TypoAlternatives 5), its parameters written in place.
RESOLVE_MAIN = """WITH RECURSIVE
    input AS (SELECT websearch_to_tsquery('library_english', @q) AS tsq, lower(unaccent(@q)) AS uq),
    typos AS (
        SELECT row_number() OVER (ORDER BY w.word) AS n, w.lexeme, e.alternatives
        FROM (SELECT DISTINCT q.word, plainto_tsquery('library_english', q.word) AS lexeme
              FROM input, regexp_split_to_table(input.uq, '[^[:alnum:]]+') AS q(word)
              WHERE length(q.word) >= 3 AND q.word !~ '[0-9]'
                AND NOT EXISTS (SELECT 1 FROM search_words v WHERE v.word = q.word)) w
        CROSS JOIN LATERAL (
            SELECT string_agg(format('%s:AB', x.lexeme::text), ' | ' ORDER BY x.sim DESC, x.word)::tsquery AS alternatives
            FROM (SELECT v.word, similarity(v.word, w.word) AS sim, plainto_tsquery('library_english', v.word) AS lexeme
                  FROM search_words v WHERE v.word % w.word AND similarity(v.word, w.word) >= 0.4
                  ORDER BY 2 DESC, 1 LIMIT 5) x
            WHERE numnode(x.lexeme) = 1 AND x.lexeme <> w.lexeme) e
        WHERE numnode(w.lexeme) = 1 AND e.alternatives IS NOT NULL),
    expanded AS (
        SELECT 0::bigint AS n, input.tsq FROM input
        UNION ALL
        SELECT t.n, ts_rewrite(x.tsq, t.lexeme, t.lexeme || t.alternatives) FROM expanded x JOIN typos t ON t.n = x.n + 1)
SELECT input.tsq::text, (SELECT x.tsq::text FROM expanded x ORDER BY x.n DESC LIMIT 1), input.uq,
       (SELECT c.id FROM categories c WHERE c.normalized_name = @category_name)
FROM input"""
# CatalogQuery.ResolveSql of this tree (the most similar words only, of the 5 most similar).
RESOLVE_THIS = """WITH RECURSIVE
    input AS (SELECT websearch_to_tsquery('library_english', @q) AS tsq, lower(unaccent(@q)) AS uq),
    typos AS (
        SELECT row_number() OVER (ORDER BY w.word) AS n, w.lexeme, e.alternatives
        FROM (SELECT DISTINCT q.word, plainto_tsquery('library_english', q.word) AS lexeme
              FROM input, regexp_split_to_table(input.uq, '[^[:alnum:]]+') AS q(word)
              WHERE length(q.word) >= 3 AND q.word !~ '[0-9]'
                AND NOT EXISTS (SELECT 1 FROM search_words v WHERE v.word = q.word)) w
        CROSS JOIN LATERAL (
            SELECT string_agg(format('%s:AB', x.lexeme::text), ' | ' ORDER BY x.word)::tsquery AS alternatives
            FROM (SELECT y.word, y.lexeme, y.sim, max(y.sim) OVER () AS best
                  FROM (SELECT v.word, similarity(v.word, w.word) AS sim, plainto_tsquery('library_english', v.word) AS lexeme
                        FROM search_words v WHERE v.word % w.word AND similarity(v.word, w.word) >= 0.4
                        ORDER BY 2 DESC, 1 LIMIT 5) y
                  WHERE numnode(y.lexeme) = 1 AND y.lexeme <> w.lexeme) x
            WHERE x.sim = x.best) e
        WHERE numnode(w.lexeme) = 1 AND e.alternatives IS NOT NULL),
    expanded AS (
        SELECT 0::bigint AS n, input.tsq FROM input
        UNION ALL
        SELECT t.n, ts_rewrite(x.tsq, t.lexeme, t.lexeme || t.alternatives) FROM expanded x JOIN typos t ON t.n = x.n + 1)
SELECT input.tsq::text, (SELECT x.tsq::text FROM expanded x ORDER BY x.n DESC LIMIT 1), input.uq,
       (SELECT c.id FROM categories c WHERE c.normalized_name = @category_name)
FROM input"""
# BooksApi.FacetCountsScope for a category by name.
KEPT = """WITH k AS (SELECT f.kind, f.value, f.count FROM catalog_facet_counts f WHERE f.scope = (SELECT c.id FROM categories c WHERE c.normalized_name = @category_name) AND f.count > 0)
SELECT 'category', c.id::text, c.name, k.count FROM k JOIN categories c ON c.id::text = k.value WHERE k.kind = 'c'
UNION ALL
SELECT 'publisher', NULL, min(k.value), sum(k.count)::bigint FROM k WHERE k.kind = 'p' GROUP BY lower(k.value)
UNION ALL
SELECT 'language', NULL, k.value, k.count FROM k WHERE k.kind = 'l'"""
for variant in variants:
    def psql(q):
        return subprocess.run(["bash","-c",f"source {ROOT}/eng/lib/servers.sh; pg_psql {DATA} -d bookdb -Atc \"{q}\""],capture_output=True,text=True).stdout.strip()
    def cat(name): return psql(f"SELECT id FROM categories WHERE normalized_name = '{name}'")
    def lit(s): return "'" + s.replace("'", "''") + "'"
    resolves = []
    def resolve(q):
        """(the query as written, with typos expanded, unaccented lower case) and the SQL that resolved them."""
        sql = (RESOLVE_MAIN if variant == "main" else RESOLVE_THIS).replace("@q", lit(q)).replace("@category_name", "''")
        resolves.append(sql)
        exact, tsq, uq = rows(sql).split("\x1f")[:3]
        return exact, tsq, uq
    def where(search=None, category=None, language=None, available=None, reads_rows=False):
        w = "TRUE"; tsq = uq = exact = None
        if search:
            exact, tsq, uq = resolve(search)
            w += f" AND (b.search_vector @@ {lit(tsq)}::tsquery)"
        if category:
            # the row's category_ids when the statement reads the rows anyway (CatalogQuery.Where)
            if reads_rows or search or language or available is not None: w += f" AND b.category_ids @> ARRAY['{cat(category)}']::uuid[]"
            else: w += f" AND EXISTS (SELECT 1 FROM book_categories bc WHERE bc.books_id = b.id AND bc.categories_id = '{cat(category)}')"
        if language: w += f" AND b.language = {lit(language)}"
        if available is not None: w += " AND b.available_copies > 0" if available else " AND b.available_copies <= 0"
        return w, tsq, uq, exact
    def ranked(w, tsq, uq, exact, take=20, skip=0):
        end = skip + take; cand = max(100, 4 * end)
        if exact != tsq: return f"""WITH m AS MATERIALIZED (
        SELECT b.id, b.title, b.search_text, (b.search_vector @@ {lit(exact)}::tsquery)::int AS tier,
               ts_rank_cd(b.search_vector, {lit(tsq)}::tsquery) AS rank
        FROM books b WHERE {w}),
    bound AS (
        SELECT s.tier, s.rank + word_similarity({lit(uq)}, s.search_text) AS score FROM (
            SELECT m.tier, m.rank, m.search_text FROM m ORDER BY m.tier DESC, m.rank DESC LIMIT {cand}) s
        ORDER BY s.tier DESC, score DESC OFFSET {end - 1} LIMIT 1)
    SELECT p.id, (SELECT count(*) FROM m) FROM (
        SELECT m.id, m.title, m.tier, m.rank + word_similarity({lit(uq)}, m.search_text) AS score FROM m
        WHERE (m.tier, m.rank + 1::real) >= (coalesce((SELECT bound.tier FROM bound), -1),
                                             coalesce((SELECT bound.score FROM bound), '-Infinity'::real))) p
    ORDER BY p.tier DESC, p.score DESC, p.title, p.id LIMIT {take} OFFSET {skip}"""
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
        return f"""WITH f AS (SELECT b.id, b.publisher, b.language, b.category_ids FROM books b WHERE {w})
    SELECT 'category', c.id::text, c.name, count(*) FROM f
        CROSS JOIN LATERAL unnest(f.category_ids) AS fc(id) JOIN categories c ON c.id = fc.id
        GROUP BY c.id, c.name
    UNION ALL
    SELECT 'publisher', NULL, min(f.publisher), count(*) FROM f GROUP BY lower(f.publisher)
    UNION ALL
    SELECT 'language', NULL, f.language, count(*) FROM f WHERE f.language IS NOT NULL GROUP BY f.language"""
    def r(q, **kw):
        """A search path's statements: its resolving round trip first, then the path's own."""
        resolves.clear(); w = where(q, **kw); return [resolves[0]], w
    def ranked_path(q, take=20, skip=0, **kw):
        res, w = r(q, **kw); return res + [ranked(*w, take, skip)]
    paths = {
     "01-darkness": ranked_path("darkness"),
     "02-history-garden": ranked_path("history garden"),
     "03-river-newest": (lambda res, w: res + plain(w[0], "newest"))(*r("river")),
     "04-cafe": ranked_path("cafe"),
     "05-hystory": ranked_path("hystory"),
     "06-senor-es": ranked_path("senor", language="es"),
     "07-scifi-popular": plain(where(category="science fiction")[0], "popular"),
     "08-garden-history-avail": ranked_path("garden", category="history", available=True),
     "09-title-p50": plain("TRUE", "title", 20, 980),
     "10-dark-river-p2": ranked_path("dark river", 20, 20),
     "11-facets-darkness": (lambda res, w: res + [facets(w[0])])(*r("darkness")),
     # main: the query over the category's titles' rows and its resolving round trip (the name);
     # this tree: the kept counts, the name looked up in the same statement (BooksApi.FacetCountsScope).
     "12-facets-fantasy": ([facets(where(category="fantasy", reads_rows=True)[0]),
                            RESOLVE_MAIN.replace("@q", "''").replace("@category_name", "'fantasy'")] if variant == "main"
                           else [KEPT.replace("@category_name", "'fantasy'")]),
    }
    for k, qs in paths.items():
        for i, q in enumerate(qs):
            files[(variant, f"{k}-{i}")] = q.replace("\n", " ")

if os.environ.get("CHECK") == "1":
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
