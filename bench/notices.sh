#!/usr/bin/env bash
# Notices: BENCH_NOTICES (2000) notices due at once in lendingdb (fine-charged, each to its own
# reader) -> all of them in MailDev, through the lending service's senders (2 replicas sharing the
# rows with FOR UPDATE SKIP LOCKED, one SMTP connection per batch of Notices:BatchSize). The
# notices are written parked an hour ahead, MailDev is emptied, then one UPDATE makes them all due:
# the figures are the mails per second between the first and the last mail MailDev received, and
# the UPDATE -> every notice marked sent (that one includes the senders' poll interval,
# Notices:PollInterval, 5 s: nothing wakes them for rows written by hand). Checks that every
# notice arrived exactly once (N mails to N addresses, none left unsent).
#   bench/notices.sh   (BENCH_USE_RUNNING=1: see bench/lib.sh; MailDev's web port is
#                       LIBRARY_RABBITMQ_PORT + 4 unless SERVERS_MAIL_WEB_PORT says)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N="${BENCH_NOTICES:-2000}"
bench_stack_up
read -r _ MAIL_WEB < <(mail_ports "$LIBRARY_RABBITMQ_PORT")
MAIL_API="http://127.0.0.1:$MAIL_WEB"
curl -sf -m 5 "$MAIL_API/api/email" >/dev/null || bench_die "no MailDev at $MAIL_API"
ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
RUN="bench$(od -An -vtx1 -N4 /dev/urandom | tr -d ' \n')"

bench_log "notices: writing $N parked notices ($RUN)"
bench_psql -d lendingdb -q -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE bench_readers AS
  SELECT gen_random_uuid() AS id, i FROM generate_series(1, $N) AS i;
INSERT INTO readers (id, email, first_name, last_name, active, version)
  SELECT id, '$RUN-' || i || '@library.test', 'Bench', 'Reader ' || i, TRUE, 1 FROM bench_readers;
INSERT INTO notices (id, user_id, kind, key, book_id, fine_id, sequence, deadline, amount, currency, fine_kind,
                     created_at, channel, sent_at, attempts, next_attempt_at)
  SELECT gen_random_uuid(), id, 'fine-charged', '$RUN:' || i, gen_random_uuid(), gen_random_uuid(), 1, now(), 100 + i, 'EUR', 'overdue',
         now(), 'email', NULL, 0, now() + interval '1 hour'
  FROM bench_readers;
SQL
curl -sf -m 30 -X DELETE "$MAIL_API/api/email/all" >/dev/null || bench_die "could not empty MailDev"

t0="$(ms)"
bench_psql -d lendingdb -q -c "UPDATE notices SET next_attempt_at = now() WHERE key LIKE '$RUN:%'"
deadline=$((SECONDS + 600))
while :; do
  left="$(bench_psql -d lendingdb -Atc "SELECT count(*) FROM notices WHERE key LIKE '$RUN:%' AND sent_at IS NULL")"
  ((left == 0)) && break
  ((SECONDS < deadline)) || bench_die "$left notices still unsent after 600 s"
  sleep 0.2
done
t1="$(ms)"

read -r mails addresses span < <(curl -sf -m 120 "$MAIL_API/api/email" | python3 -c "
import json, sys
from datetime import datetime
run = sys.argv[1]
mine = [m for m in json.load(sys.stdin) if m['to'][0]['address'].startswith(run + '-')]
times = sorted(datetime.fromisoformat(m['time'].replace('Z', '+00:00')) for m in mine)
span = int((times[-1] - times[0]).total_seconds() * 1000) if len(times) > 1 else 0
print(len(mine), len({m['to'][0]['address'] for m in mine}), span)" "$RUN")
errors="$(bench_psql -d lendingdb -Atc "SELECT count(*) FROM notices WHERE key LIKE '$RUN:%' AND attempts > 0")"
verdict=FAIL
((mails == N && addresses == N)) && verdict=OK
rate="$(awk -v n="$mails" -v ms="$span" 'BEGIN { if (ms > 0) printf "%.0f/s\n", (n - 1) * 1000 / ms; else print "-" }')"
e2e="$(awk -v n="$N" -v ms="$((t1 - t0))" 'BEGIN { printf "%.0f/s\n", n * 1000 / ms }')"
bench_row notices "$N notices -> MailDev, first to last mail" "$rate" "" "" "$verdict: $mails mails to $addresses addresses, $errors retried; $(fmt_ms "$span") first->last"
bench_row notices "due (UPDATE) -> all marked sent" "$e2e" "" "" "$(fmt_ms "$((t1 - t0))") incl. the senders' poll (5 s)"
bench_psql -d lendingdb -q -c "DELETE FROM notices WHERE key LIKE '$RUN:%'; DELETE FROM readers WHERE email LIKE '$RUN-%'"
bench_finish
[[ "$verdict" == OK ]]
