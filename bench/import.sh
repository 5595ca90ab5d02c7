#!/usr/bin/env bash
# Catalog import and export (issue 14): a BENCH_IMPORT_ROWS-row CSV (10,000; bench/generate-catalog.py's
# synthetic titles, authors and categories, converted to the import's columns) POSTed to
# /api/books/import through the gateway by a librarian, timed from the first byte sent to the
# answer; checks the answer (every row created, none rejected) and the book database. Then the
# same file again (every row an update that changes nothing), then GET /api/books/export (the
# whole catalog, streamed) and its row count against the database.
#   bench/import.sh   (BENCH_USE_RUNNING=1: see bench/lib.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROWS="${BENCH_IMPORT_ROWS:-10000}"
bench_stack_up
TOKEN="$(bench_token)"
OUT="$BENCH_WORK/import"
mkdir -p "$OUT"

# ISBNs from the stack's counter (as bench_titles does), so a running stack can be measured twice.
f="$LIBRARY_DATA_DIR/bench-isbn.next"
[[ -s "$f" ]] || echo $((10000000 + (RANDOM * 32768 + RANDOM) % 80000000)) >"$f"
read -r start <"$f"
echo $((start + ROWS)) >"$f"
python3 "$BENCH_DIR/generate-catalog.py" --count "$ROWS" --format jsonl --isbn-start "$start" --seed "$start" | python3 -c '
import csv, json, sys
def names(xs): return ";".join(x.replace("\\", "\\\\").replace(";", "\\;") for x in xs)
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["isbn", "title", "subtitle", "authors", "categories", "publisher", "publishedYear", "language", "copies"])
for line in sys.stdin:
    b = json.loads(line)
    w.writerow([b["isbn"], b["title"], b["subtitle"] or "", names(b["authors"]), names(b["categories"]), b["publisher"], b["publishedYear"] or "", b["language"] or "", b["totalCopies"]])
' >"$OUT/catalog.csv"
bytes="$(stat -c %s "$OUT/catalog.csv")"
before="$(bench_psql -d bookdb -Atc "SELECT count(*) FROM books")"
bench_log "import: $ROWS rows, $bytes bytes ($before titles in the catalog before)"

# import NAME -> posts the file, prints "seconds created updated rejected"
import() {
  local seconds
  seconds="$(curl -s -o "$OUT/$1.json" -w '%{time_total}' -X POST "$BENCH_URL/api/books/import" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' --data-binary "@$OUT/catalog.csv" -m 300)"
  python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); print(sys.argv[2], r["created"], r["updated"], len(r["rejected"]))' "$OUT/$1.json" "$seconds" \
    || { cat "$OUT/$1.json" >&2; bench_die "the $1 import did not answer 200"; }
}

read -r s1 created updated rejected < <(import first)
after="$(bench_psql -d bookdb -Atc "SELECT count(*) FROM books")"
verdict=FAIL
((created == ROWS && updated == 0 && rejected == 0 && after == before + ROWS)) && verdict=OK
bench_row import "$ROWS new titles, $((bytes / 1024)) KiB CSV" "$(awk -v s="$s1" -v n="$ROWS" 'BEGIN { printf "%.0f rows/s", n / s }')" "" "" \
  "$verdict: $(printf '%.1f' "$s1") s; created $created, updated $updated, rejected $rejected; bookdb $before -> $after"

read -r s2 created updated rejected < <(import again)
verdict=FAIL
((created == 0 && updated == ROWS && rejected == 0)) && verdict=OK
bench_row import "the same file again (updates, nothing changed)" "$(awk -v s="$s2" -v n="$ROWS" 'BEGIN { printf "%.0f rows/s", n / s }')" "" "" \
  "$verdict: $(printf '%.1f' "$s2") s; created $created, updated $updated, rejected $rejected"

s3="$(curl -s -o "$OUT/export.csv" -w '%{time_total}' "$BENCH_URL/api/books/export" -H "Authorization: Bearer $TOKEN" -m 300)"
lines="$(python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], encoding="utf-8", newline=""))) - 1)' "$OUT/export.csv")"
verdict=FAIL
((lines == after)) && verdict=OK
bench_row export "the whole catalog ($after titles)" "$(awk -v s="$s3" -v n="$lines" 'BEGIN { printf "%.0f rows/s", n / s }')" "" "" \
  "$verdict: $(printf '%.2f' "$s3") s, $(($(stat -c %s "$OUT/export.csv") / 1024)) KiB, $lines rows"
bench_rss "import and export"
bench_finish
