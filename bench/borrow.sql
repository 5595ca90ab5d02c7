-- pgbench: the borrow transaction, then the return, as the lending service runs them (the
-- statements of CirculationDesk.BorrowTitleAsync and TakeBackAsync with WaitingList.ReleaseAsync
-- and Shelf.PublishAvailabilityAsync, minus the HTTP and EF layers), for the ceiling of what
-- PostgreSQL itself allows on this machine. Outbox rows are written already marked sent, so the
-- running relay leaves them alone. The borrow key-share locks the title before it takes a copy,
-- as the service does (a return locks the title, then the copy): without it this script
-- deadlocked with itself about once per 370 cycles, a second of deadlock_timeout each. The copies'
-- trigger keeps the title's counts, which the availability UPDATE returns (Shelf.CountsTriggerSql).
\set r random(1, :readers)
\set t random(1, :titles)
SELECT id AS reader FROM bench_readers WHERE n = :r \gset
SELECT id AS title FROM bench_titles WHERE n = :t \gset
BEGIN;
SELECT active, patron_group_id FROM readers WHERE id = :reader FOR UPDATE;
SELECT EXISTS (SELECT 1 FROM loans WHERE user_id = :reader AND returned_at IS NULL AND due_at < now());
SELECT name, deleted FROM titles WHERE id = :title FOR KEY SHARE;
SELECT DISTINCT ON (kind) * FROM circulation_settings ORDER BY kind, version DESC;
SELECT * FROM holds WHERE book_id = :title AND user_id = :reader AND status = 'ready' FOR UPDATE;
-- (NULL when every copy is out, as the service's 409: the rest then changes nothing.)
SELECT coalesce((SELECT id::text FROM copies WHERE book_id = :title AND status = 'available' AND loan_type = ANY('{standard,short-loan}')
  ORDER BY loan_type = 'standard' DESC, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED), '') AS copy \gset
SELECT count(*) FROM loans WHERE user_id = :reader AND returned_at IS NULL;
UPDATE holds SET status = 'fulfilled', closed_at = now() WHERE book_id = :title AND user_id = :reader AND status = 'waiting';
UPDATE copies SET status = 'checked-out', updated_at = now() WHERE id = NULLIF(:copy, '')::uuid;
INSERT INTO loans (id, book_id, user_id, copy_id, days, borrowed_at, due_at, renewals, rule_version, rule_index) VALUES (gen_random_uuid(), :title, :reader, NULLIF(:copy, '')::uuid, 14, now(), now() + interval '14 days', 0, 0, 1) RETURNING id AS loan \gset
INSERT INTO outbox_messages (id, event_name, payload, occurred_at, sent_at, attempts) VALUES (gen_random_uuid(), 'loan.created', '{}', now(), now(), 0);
UPDATE titles SET availability_version = availability_version + 1 WHERE id = :title RETURNING availability_version, loanable_copies, copies_on_shelf;
SELECT count(*) FROM holds WHERE book_id = :title AND status = 'waiting';
INSERT INTO outbox_messages (id, event_name, payload, occurred_at, sent_at, attempts) VALUES (gen_random_uuid(), 'book.availability-changed', '{}', now(), now(), 0);
COMMIT;
BEGIN;
SELECT * FROM titles WHERE id = :title FOR UPDATE;
UPDATE loans SET returned_at = now() WHERE id = :loan AND returned_at IS NULL;
INSERT INTO outbox_messages (id, event_name, payload, occurred_at, sent_at, attempts) VALUES (gen_random_uuid(), 'loan.returned', '{}', now(), now(), 0);
SELECT * FROM copies WHERE id = NULLIF(:copy, '')::uuid FOR UPDATE;
SELECT h.id FROM holds h WHERE h.book_id = :title AND h.status = 'waiting' ORDER BY h.sequence LIMIT 1 FOR UPDATE;
SELECT DISTINCT ON (kind) * FROM circulation_settings ORDER BY kind, version DESC;
UPDATE copies SET status = 'available', updated_at = now() WHERE id = NULLIF(:copy, '')::uuid;
UPDATE titles SET availability_version = availability_version + 1 WHERE id = :title RETURNING availability_version, loanable_copies, copies_on_shelf;
INSERT INTO outbox_messages (id, event_name, payload, occurred_at, sent_at, attempts) VALUES (gen_random_uuid(), 'book.availability-changed', '{}', now(), now(), 0);
COMMIT;
