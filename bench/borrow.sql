-- pgbench: the borrow transaction, then the return, as the lending service runs them (the
-- statements of Circulation.BorrowAsync/ReturnAsync, minus the HTTP and EF layers), for the
-- ceiling of what PostgreSQL itself allows on this machine. Outbox rows are written already
-- marked sent, so the running relay leaves them alone.
\set r random(1, :readers)
\set t random(1, :titles)
SELECT id AS reader FROM bench_readers WHERE n = :r \gset
SELECT id AS title FROM bench_titles WHERE n = :t \gset
BEGIN;
SELECT active FROM readers WHERE id = :reader FOR UPDATE;
SELECT due_at FROM loans WHERE user_id = :reader AND returned_at IS NULL;
UPDATE holds SET status = 'fulfilled', closed_at = now() WHERE book_id = :title AND user_id = :reader AND status = 'ready';
UPDATE titles SET on_loan = on_loan + 1 WHERE id = :title AND NOT deleted AND total_copies - on_loan - held > 0;
UPDATE holds SET status = 'fulfilled', closed_at = now() WHERE book_id = :title AND user_id = :reader AND status = 'waiting';
INSERT INTO loans (id, book_id, user_id, days, borrowed_at, due_at, renewals) VALUES (gen_random_uuid(), :title, :reader, 14, now(), now() + interval '14 days', 0) RETURNING id AS loan \gset
INSERT INTO outbox_messages (id, event_name, payload, occurred_at, sent_at, attempts) VALUES (gen_random_uuid(), 'loan.created', '{}', now(), now(), 0);
UPDATE titles SET availability_version = availability_version + 1 WHERE id = :title;
SELECT total_copies, on_loan, held, availability_version FROM titles WHERE id = :title;
SELECT count(*) FROM holds WHERE book_id = :title AND status = 'waiting';
INSERT INTO outbox_messages (id, event_name, payload, occurred_at, sent_at, attempts) VALUES (gen_random_uuid(), 'book.availability-changed', '{}', now(), now(), 0);
COMMIT;
BEGIN;
UPDATE loans SET returned_at = now() WHERE id = :loan AND returned_at IS NULL;
UPDATE titles SET on_loan = on_loan - 1 WHERE id = :title;
INSERT INTO outbox_messages (id, event_name, payload, occurred_at, sent_at, attempts) VALUES (gen_random_uuid(), 'loan.returned', '{}', now(), now(), 0);
SELECT h.id FROM holds h WHERE h.book_id = :title AND h.status = 'waiting' ORDER BY h.sequence LIMIT 1 FOR UPDATE OF h;
UPDATE titles SET availability_version = availability_version + 1 WHERE id = :title;
SELECT total_copies, on_loan, held, availability_version FROM titles WHERE id = :title;
INSERT INTO outbox_messages (id, event_name, payload, occurred_at, sent_at, attempts) VALUES (gen_random_uuid(), 'book.availability-changed', '{}', now(), now(), 0);
COMMIT;
