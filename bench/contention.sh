#!/usr/bin/env bash
# Contention (bench/run.sh scenario 4): BENCH_CONTENTION_READERS readers (500) want the
# BENCH_CONTENTION_COPIES copies (5) of one new title at once: that many concurrent
# POST /api/loans through the gateway (a librarian lending to each reader, bench/contention.py).
# Exactly 5 must be created (201) and every other refused with the contract's 409 ("no copy
# left"); the lending database must agree. Prints the time to drain the burst.
#   bench/contention.sh   (BENCH_USE_RUNNING=1: see bench/lib.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
READERS="${BENCH_CONTENTION_READERS:-500}"
COPIES="${BENCH_CONTENTION_COPIES:-5}"
bench_stack_up
BENCH_TOKEN="$(bench_token)"
export BENCH_TOKEN
BENCH_READERS="$(( ${BENCH_READERS:-500} > READERS ? ${BENCH_READERS:-500} : READERS ))" bench_lending_data
OUT="$BENCH_WORK/contention"
mkdir -p "$OUT"
head -n "$READERS" "$BENCH_LENDING/readers" >"$OUT/readers"
((READERS <= $(wc -l <"$OUT/readers"))) || bench_die "only $(wc -l <"$OUT/readers") readers for $READERS"
bench_titles "$BENCH_TOKEN" 1 "$COPIES" "Contention Title" >"$OUT/title"
bench_replicated titles "$OUT/title"
book="$(cat "$OUT/title")"
# Each reader is made known to the lending service beforehand (bench_lending_data waited for
# their events), so the race is only for the copies.
bench_log "contention: $READERS concurrent borrows of $COPIES copies"
python3 "$BENCH_DIR/contention.py" "$BENCH_URL" "$BENCH_TOKEN" "$book" "$OUT/readers" >"$OUT/result.json"
read -r created refused other drain p50 p99 < <(python3 -c "
import json,sys; r = json.load(open(sys.argv[1])); s = r['statuses']
print(s.get('201', 0), s.get('409', 0), sum(v for k, v in s.items() if k not in ('201', '409')), r['drain_ms'], r['p50_ms'], r['p99_ms'])" "$OUT/result.json")
on_loan="$(bench_psql -d lendingdb -Atc "SELECT count(*) FROM copies WHERE book_id = '$book' AND status = 'checked-out'")"
loans="$(bench_psql -d lendingdb -Atc "SELECT count(*) FROM loans WHERE book_id = '$book' AND returned_at IS NULL")"
verdict=FAIL
((created == COPIES && refused == READERS - COPIES && other == 0 && on_loan == COPIES && loans == COPIES)) && verdict=OK
bench_row contention "$READERS readers, $COPIES copies: 201 / 409 / other" "$created / $refused / $other" "$(fmt_ms "$p50")" "$(fmt_ms "$p99")" \
  "$verdict: lendingdb on_loan=$on_loan, active loans=$loans"
bench_row contention "time to drain the burst" "$(fmt_ms "$drain")" "" "" "first request written -> last answer read ($READERS connections opened beforehand)"
bench_finish
