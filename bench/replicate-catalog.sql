-- Multiplies an imported catalog in place (bench/catalog-search.sh, BENCH_SEARCH_COPIES=N): every
-- book N-1 more times with a new ID and ISBN and the same texts, authors, categories, search
-- columns (category_ids included) and counters, so N x the generated catalog with the same word frequencies per title
-- (a search matches N times as many books). Importing 1,000,000 titles through the service takes
-- over an hour on 2 shared cores; this takes minutes. The secondary indexes are dropped first and
-- rebuilt after (as CREATE INDEX, the same definitions), as a bulk load would.
--   psql -v copies=10 -f bench/replicate-catalog.sql
\set ON_ERROR_STOP on
SET maintenance_work_mem = '256MB';
CREATE TEMP TABLE replicate_indexes AS
    SELECT i.indexname, i.indexdef FROM pg_indexes i
    WHERE i.schemaname = 'public' AND i.tablename IN ('books', 'book_authors', 'book_categories')
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname);
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT indexname FROM replicate_indexes LOOP EXECUTE format('DROP INDEX %I', r.indexname); END LOOP;
END $$;
-- A copy's ID: derived from the original's and the copy number, so its links follow without a map.
CREATE TEMP TABLE replicate_copies AS SELECT k FROM generate_series(1, :copies - 1) k;
INSERT INTO books (id, isbn, title, subtitle, description, publisher, published_year, language, page_count,
                   total_copies, available_copies, next_available_at, created_at, updated_at,
                   availability_version, recent_loans, version, search_vector, search_text, category_ids)
SELECT md5(b.id::text || ':' || k)::uuid, '99' || lpad((k::bigint * 100000000 + row_number() OVER (PARTITION BY k ORDER BY b.id))::text, 11, '0'),
       b.title, b.subtitle, b.description, b.publisher, b.published_year, b.language, b.page_count,
       b.total_copies, b.available_copies, b.next_available_at, b.created_at + make_interval(secs => k), b.updated_at,
       b.availability_version, b.recent_loans, b.version, b.search_vector, b.search_text, b.category_ids
FROM books b CROSS JOIN replicate_copies;
INSERT INTO book_authors (authors_id, books_id)
SELECT ba.authors_id, md5(ba.books_id::text || ':' || k)::uuid FROM book_authors ba CROSS JOIN replicate_copies;
INSERT INTO book_categories (books_id, categories_id)
SELECT md5(bc.books_id::text || ':' || k)::uuid, bc.categories_id FROM book_categories bc CROSS JOIN replicate_copies;
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT indexdef FROM replicate_indexes LOOP EXECUTE r.indexdef; END LOOP;
END $$;
