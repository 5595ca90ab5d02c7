-- The two reports' SQL as Library.LendingService/Reports/ReportsApi.cs sends it (keep in step),
-- for a year (:from .. :to) in :tz, fines included.
\set ON_ERROR_STOP on
PREPARE circulation(date, date, text, timestamptz, timestamptz, timestamptz) AS
WITH days AS (SELECT g::date AS day FROM generate_series($1::date, $2::date, interval '1 day') g),
loans_out AS (SELECT (borrowed_at AT TIME ZONE $3)::date AS day, count(*) AS n FROM loans
    WHERE borrowed_at >= $4 AND borrowed_at < $5 GROUP BY 1),
loans_back AS (SELECT (returned_at AT TIME ZONE $3)::date AS day, count(*) AS n FROM loans
    WHERE returned_at >= $4 AND returned_at < $5 GROUP BY 1),
renewals AS (SELECT (renewed_at AT TIME ZONE $3)::date AS day, count(*) AS n FROM loan_renewals
    WHERE renewed_at >= $4 AND renewed_at < $5 GROUP BY 1),
holds_placed AS (SELECT (placed_at AT TIME ZONE $3)::date AS day, count(*) AS n FROM holds
    WHERE placed_at >= $4 AND placed_at < $5 GROUP BY 1),
holds_filled AS (SELECT (closed_at AT TIME ZONE $3)::date AS day, count(*) AS n FROM holds
    WHERE status = 'fulfilled' AND closed_at >= $4 AND closed_at < $5 GROUP BY 1),
overdue AS (SELECT (due_at AT TIME ZONE $3)::date AS day, count(*) AS n FROM loans
    WHERE due_at >= $4 AND due_at < $5 AND due_at < $6 AND (returned_at IS NULL OR returned_at > due_at) GROUP BY 1),
fines_charged AS (SELECT (created_at AT TIME ZONE $3)::date AS day, sum(amount) AS n FROM fines
    WHERE created_at >= $4 AND created_at < $5 GROUP BY 1),
fines_paid AS (SELECT (created_at AT TIME ZONE $3)::date AS day, sum(amount) AS n FROM fine_transactions
    WHERE kind = 'payment' AND created_at >= $4 AND created_at < $5 GROUP BY 1)
SELECT d.day AS date,
    coalesce(lo.n, 0) AS loans, coalesce(lb.n, 0) AS returns, coalesce(rn.n, 0) AS renewals,
    coalesce(hp.n, 0) AS holds_placed, coalesce(hf.n, 0) AS holds_filled, coalesce(od.n, 0) AS overdue,
    coalesce(fc.n, 0)::bigint AS fines_charged, coalesce(fp.n, 0)::bigint AS fines_paid
FROM days d
LEFT JOIN loans_out lo ON lo.day = d.day
LEFT JOIN loans_back lb ON lb.day = d.day
LEFT JOIN renewals rn ON rn.day = d.day
LEFT JOIN holds_placed hp ON hp.day = d.day
LEFT JOIN holds_filled hf ON hf.day = d.day
LEFT JOIN overdue od ON od.day = d.day
LEFT JOIN fines_charged fc ON fc.day = d.day
LEFT JOIN fines_paid fp ON fp.day = d.day
ORDER BY d.day;
PREPARE popular(timestamptz, timestamptz, int) AS
SELECT p.book_id, t.name AS title, p.loans
FROM (SELECT book_id, count(*) AS loans FROM loans WHERE borrowed_at >= $1 AND borrowed_at < $2
      GROUP BY book_id ORDER BY count(*) DESC, book_id LIMIT $3) p
JOIN titles t ON t.id = p.book_id
ORDER BY p.loans DESC, p.book_id;
