-- A year of circulation history straight into a migrated lendingdb (bench/reports.sh):
-- :titles titles, :readers readers, :loans loans over the 365 days before now (popularity skewed:
-- a few titles lent a lot), a third renewed once, returns within 3 weeks (the last ones still out),
-- holds placed and 60% of them fulfilled.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO titles (id, name, availability_version, catalog_version, deleted)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'Bench title ' || i, 0, 1, FALSE
FROM generate_series(1, :titles) i;
INSERT INTO readers (id, email, first_name, last_name, active, version, keep_loan_history)
SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(i), 12, '0'))::uuid, 'bench' || i || '@library.test', 'Bench', 'Reader ' || i, TRUE, 1, TRUE
FROM generate_series(1, :readers) i;
INSERT INTO loans (id, book_id, user_id, days, borrowed_at, due_at, returned_at, renewals)
SELECT gen_random_uuid(),
       ('00000000-0000-4000-8000-' || lpad(to_hex(1 + floor(:titles * random() ^ 3)::int), 12, '0'))::uuid,
       ('00000000-0000-4000-9000-' || lpad(to_hex(1 + floor(:readers * random())::int), 12, '0'))::uuid,
       14, b, b + interval '14 days',
       CASE WHEN b + r < now() THEN b + r END, 0
FROM (SELECT now() - interval '365 days' * random() AS b, interval '21 days' * random() AS r FROM generate_series(1, :loans)) g;
INSERT INTO loan_renewals (loan_id, book_id, renewed_at, due_at)
SELECT id, book_id, borrowed_at + interval '10 days', due_at + interval '14 days'
FROM loans WHERE random() < 0.33 AND borrowed_at + interval '10 days' < now() AND (returned_at IS NULL OR returned_at > borrowed_at + interval '10 days');
UPDATE loans l SET renewals = 1, due_at = r.due_at FROM loan_renewals r WHERE r.loan_id = l.id;
INSERT INTO holds (id, book_id, user_id, status, placed_at, closed_at)
SELECT gen_random_uuid(), book_id, user_id, CASE WHEN f THEN 'fulfilled' ELSE 'cancelled' END, p, p + interval '5 days'
FROM (SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(1 + floor(:titles * random() ^ 3)::int), 12, '0'))::uuid AS book_id,
             ('00000000-0000-4000-9000-' || lpad(to_hex(1 + floor(:readers * random())::int), 12, '0'))::uuid AS user_id,
             now() - interval '370 days' * random() AS p, random() < 0.6 AS f
      FROM generate_series(1, :holds)) g
WHERE p + interval '5 days' < now();
COMMIT;
ANALYZE;
