# shellcheck shell=bash
# eng/lib/backup.sh -- backup and restore of the Library's service databases (process mode: the
# AppHost's PostgreSQL in <data>/postgres). Sourced by eng/run.sh after servers.sh, which gives
# _srv_pg_bindir, _srv_pid_in and _srv_first_line.
#
#   backup_run DATA DEST      one pg_dump (custom format, compressed) per service database into
#                             DEST (a new or empty folder), then SHA256SUMS and manifest.json
#                             (written last: a folder without manifest.json is not a backup)
#   restore_run DATA SRC [--replace]
#                             a backup onto DATA's PostgreSQL folder, which must not hold a
#                             Library yet (postgres/, redis/, rabbitmq/) unless --replace (they are
#                             deleted first); the AppHost must not run on DATA. Exits 3 on refusal.
#
# One point in time for all databases. A pg_dump is one snapshot of one database, and a snapshot
# cannot be shared across databases (pg_dump --snapshot / SET TRANSACTION SNAPSHOT work within
# one database only). Dumping userdb, bookdb and lendingdb one after the other would give three
# moments: an event applied by one service between two dumps would then be in the consumer's dump
# but its cause not in the publisher's (a catalog counting a loan that the restored lending
# database does not have). So the backup pauses writes for a moment: one session per database
# takes SHARE locks on every table (reads go on; writes wait; lock_timeout bounds the wait), and
# once all three hold them, one snapshot per database is exported (pg_export_snapshot), the locks
# are released, and each pg_dump reads its database's exported snapshot. No write can commit
# between the snapshots, so the dumps are mutually consistent. The pause (milliseconds here) is
# written to the manifest.
#
# Events. The outboxes and inboxes are tables in the same dumps. Events sent before the backup
# but still in RabbitMQ then are not in any dump (the broker's state is not backed up: a restored
# Library starts with an empty broker and an empty Redis cache). So a restore marks the outbox
# rows sent during the LIBRARY_RESTORE_RESEND_MINUTES (60) before the snapshot as unsent: the
# relays send them again, and each consumer's inbox drops the ones it had already applied.
# Roles are not dumped (their passwords are the AppHost's parameters): restore makes each
# database's owner login without a password, and the AppHost's next start sets the passwords.

_bk_log() { printf '[backup] %s\n' "$*" >&2; }
_bk_err() { printf '[backup] ERROR: %s\n' "$*" >&2; }

_bk_bin() {
  _srv_pg_bindir && return 0
  _bk_err "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (eng/run.sh installs them)"
  return 1
}

# _bk_as_postgres CMD... -- a PostgreSQL client as the postgres OS user when root (the socket's
# folder is 0700, postgres's), with a clean environment. Redirections stay the caller's (root's).
_bk_as_postgres() {
  if ((EUID == 0)); then
    runuser -u postgres -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
  else
    env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
  fi
}

# _bk_live_postmaster ROOT -> pid of a postmaster running on ROOT/data (none: fails)
_bk_live_postmaster() {
  local pid
  pid="$(_srv_first_line "$1/data/postmaster.pid")"
  _srv_pid_in "$1/data" "$pid" && printf '%s\n' "$pid"
}

# ----------------------------------------------------------------------------- psql sessions
# A session is a psql reading from a FIFO that this shell keeps open, writing to a file: SQL is
# sent to it while it keeps its transaction open, and `_bk_await` waits for a marker line.
declare -A _BK_FD=() _BK_PID=()
_BK_TMP=""

_bk_open() { # NAME DATABASE
  local fd
  mkfifo "$_BK_TMP/$1.in"
  (
    # Not the other sessions' FIFOs: a copy of their writing end here would keep them from EOF.
    for fd in "${_BK_FD[@]}"; do exec {fd}>&-; done
    _bk_as_postgres "$_BK_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$_BK_SOCK" -p "$_BK_PORT" -U postgres -d "$2" \
      <"$_BK_TMP/$1.in" >"$_BK_TMP/$1.out" 2>"$_BK_TMP/$1.err"
  ) &
  _BK_PID[$1]=$!
  exec {fd}>"$_BK_TMP/$1.in"
  _BK_FD[$1]=$fd
}

_bk_send() { printf '%s\n' "$2" >&"${_BK_FD[$1]}"; }   # NAME SQL

_bk_await() { # NAME MARKER SECONDS -> 0 once the marker is out; 1 if psql ended or time ran out
  local i
  for ((i = 0; i < $3 * 50; i++)); do
    grep -qx -- "$2" "$_BK_TMP/$1.out" 2>/dev/null && return 0
    kill -0 "${_BK_PID[$1]}" 2>/dev/null || { grep -qx -- "$2" "$_BK_TMP/$1.out" 2>/dev/null && return 0; return 1; }
    sleep 0.02
  done
  return 1
}

_bk_close() { # NAME -- ends the session (its transaction, if still open, rolls back)
  local fd="${_BK_FD[$1]:-}"
  if [[ -n "$fd" ]]; then exec {fd}>&-; fi
  wait "${_BK_PID[$1]}" 2>/dev/null || true
  rm -f "$_BK_TMP/$1.in" "$_BK_TMP/$1.out" "$_BK_TMP/$1.err"
  unset '_BK_FD[$1]' '_BK_PID[$1]'
}

_bk_close_all() { local n; for n in "${!_BK_FD[@]}"; do _bk_close "$n"; done; }

# _bk_snapshot DB... -- the coordinated snapshots (see the header): sets _BK_SNAP[db], _BK_LSN,
# _BK_SNAPSHOT_AT and _BK_PAUSE_MS; fails (sessions closed) when the locks were not all taken.
declare -A _BK_SNAP=()
_bk_snapshot() {
  local db t0 t1
  t0="$(date +%s%3N)"
  for db in "$@"; do
    _bk_open "lock_$db" "$db"
    _bk_send "lock_$db" "SET lock_timeout = '${LIBRARY_BACKUP_LOCK_TIMEOUT:-5s}';
BEGIN;
SELECT 'LOCK TABLE ' || string_agg(format('%I.%I', n.nspname, c.relname), ', ') || ' IN SHARE MODE'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
\\gexec
\\echo locked"
  done
  for db in "$@"; do
    _bk_await "lock_$db" locked 30 || { _bk_log "could not lock $db's tables: $(tr '\n' ' ' <"$_BK_TMP/lock_$db.err")"; _bk_close_all; return 1; }
  done
  t1="$(date +%s%3N)"
  # Nothing can commit in any of the databases now: one snapshot each.
  for db in "$@"; do
    _bk_open "snap_$db" "$db"
    _bk_send "snap_$db" "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT 'snapshot=' || pg_export_snapshot() || ' lsn=' || pg_current_wal_lsn() || ' at=' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"');
\\echo exported"
  done
  for db in "$@"; do
    _bk_await "snap_$db" exported 30 || { _bk_log "could not export $db's snapshot: $(tr '\n' ' ' <"$_BK_TMP/snap_$db.err")"; _bk_close_all; return 1; }
  done
  for db in "$@"; do _bk_send "lock_$db" "COMMIT;"; _bk_close "lock_$db"; done
  _BK_PAUSE_MS=$(($(date +%s%3N) - t1))
  _BK_LOCK_MS=$((t1 - t0))
  local line
  for db in "$@"; do
    line="$(grep '^snapshot=' "$_BK_TMP/snap_$db.out")"
    _BK_SNAP[$db]="$(sed 's/^snapshot=\([^ ]*\) .*/\1/' <<<"$line")"
  done
  _BK_LSN="$(sed 's/.* lsn=\([^ ]*\) .*/\1/' <<<"$line")"
  _BK_SNAPSHOT_AT="$(sed 's/.* at=//' <<<"$line")"
}

# ----------------------------------------------------------------------------- backup

# backup_run DATA DEST
backup_run() {
  local data="$1" dest="$2" root bin pid started=$SECONDS temporary=0 db
  root="$data/postgres"
  bin="$(_bk_bin)" || return 1
  _BK_BIN="$bin"
  if [[ ! -s "$root/data/PG_VERSION" ]]; then
    _bk_err "no PostgreSQL data in $root/data (LIBRARY_DATA_DIR=$data): nothing to back up"; return 1
  fi
  dest="$(realpath -m "$dest")"
  case "$dest/" in "$data"/*) _bk_err "the backup folder must be outside the servers' data folder ($data)"; return 1 ;; esac
  if [[ -e "$dest" ]] && [[ -n "$(ls -A "$dest")" ]]; then
    _bk_err "$dest exists and is not empty: give a new folder"; return 1
  fi
  mkdir -p "$dest"
  _BK_TMP="$(mktemp -d)"
  chmod 0711 "$_BK_TMP"
  _BK_SOCK="$root/run"
  if pid="$(_bk_live_postmaster "$root")"; then
    _BK_PORT="$(sed -n 4p "$root/data/postmaster.pid")"
    _bk_log "PostgreSQL (pid $pid, port $_BK_PORT) of $data"
  else
    # The Library is stopped: a temporary server on the data folder, on its private socket only.
    _bk_pg_start_temporary "$root" || { rm -rf "$_BK_TMP"; return 1; }
    temporary=1
  fi
  # In a subshell of its own (not in an || list, where set -e would not hold), waited for.
  (
    set -e
    trap '_bk_close_all' EXIT
    mapfile -t rows < <(_bk_as_postgres "$bin/psql" -X -q -At -F ' ' -h "$_BK_SOCK" -p "$_BK_PORT" -U postgres -d postgres -c \
      "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres' ORDER BY datname")
    ((${#rows[@]} > 0)) || { _bk_err "no service database on this server"; exit 1; }
    dbs=() owners=()
    for r in "${rows[@]}"; do dbs+=("${r%% *}"); owners+=("${r#* }"); done
    version="$(_bk_as_postgres "$bin/psql" -X -q -At -h "$_BK_SOCK" -p "$_BK_PORT" -U postgres -d postgres -c 'SHOW server_version')"
    tries=0
    until _bk_snapshot "${dbs[@]}"; do
      ((++tries < 3)) || { _bk_err "the databases' tables could not all be locked for a consistent snapshot (3 tries)"; exit 1; }
      _bk_log "retrying the snapshot ($tries)"
      sleep 1
    done
    _bk_log "one snapshot of ${dbs[*]} at $_BK_SNAPSHOT_AT (WAL $_BK_LSN); writes paused ${_BK_PAUSE_MS} ms (locks taken in ${_BK_LOCK_MS} ms)"
    for db in "${dbs[@]}"; do
      _bk_as_postgres "$bin/pg_dump" -Fc -Z "${LIBRARY_BACKUP_COMPRESS:-6}" --snapshot="${_BK_SNAP[$db]}" \
        -h "$_BK_SOCK" -p "$_BK_PORT" -U postgres -d "$db" >"$dest/$db.dump"
      _bk_log "  $db.dump $(stat -c %s "$dest/$db.dump") bytes"
    done
    _bk_close_all
    (cd "$dest" && sha256sum -- *.dump >SHA256SUMS)
    # The manifest last: its presence says the backup is complete.
    python3 - "$dest" "$version" "$_BK_SNAPSHOT_AT" "$_BK_LSN" "$_BK_PAUSE_MS" "$data" "${rows[@]}" <<'PY'
import datetime, hashlib, json, os, sys
dest, version, snapshot_at, lsn, pause_ms, data = sys.argv[1:7]
databases = []
for row in sys.argv[7:]:
    name, owner = row.split(" ", 1)
    path = os.path.join(dest, name + ".dump")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    databases.append({"name": name, "owner": owner, "file": name + ".dump", "bytes": os.path.getsize(path), "sha256": digest})
manifest = {
    "format": "library-backup/1",
    "createdAt": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "snapshotAt": snapshot_at,
    "walLsn": lsn,
    "serverVersion": version,
    "dumpFormat": "pg_dump custom (-Fc), compressed",
    "consistency": "one point in time across all databases (writes paused while the snapshots were exported)",
    "writesPausedMs": int(pause_ms),
    "source": data,
    "databases": databases,
}
with open(os.path.join(dest, "manifest.json.tmp"), "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
os.rename(os.path.join(dest, "manifest.json.tmp"), os.path.join(dest, "manifest.json"))
PY
  ) &
  local status=0
  wait $! || status=$?
  if ((temporary)); then _bk_pg_stop_temporary "$root" || status=1; fi
  rm -rf "$_BK_TMP"
  if ((status != 0)); then _bk_err "backup failed (the incomplete folder $dest has no manifest.json)"; return 1; fi
  _bk_log "backup complete in $((SECONDS - started)) s: $dest"
  printf '%s\n' "$dest"
}

# ----------------------------------------------------------------------------- restore

_bk_pg_start_temporary() { # ROOT -- a server on ROOT/data reachable only on its private socket
  _BK_PORT=5432
  _BK_SOCK="$1/run"
  _bk_log "starting a temporary PostgreSQL on $1/data (socket only)"
  _bk_as_postgres "$_BK_BIN/pg_ctl" -D "$1/data" -l "$1/restore.log" -w -t 120 \
    -o "-c listen_addresses='' -k $_BK_SOCK -p $_BK_PORT" start >/dev/null \
    || { _bk_err "the temporary PostgreSQL did not start (log: $1/restore.log)"; return 1; }
}

_bk_pg_stop_temporary() { # ROOT
  _bk_as_postgres "$_BK_BIN/pg_ctl" -D "$1/data" -m fast -w -t 120 stop >/dev/null \
    || { _bk_err "the temporary PostgreSQL did not stop (log: $1/restore.log)"; return 1; }
}

# _bk_owned_folder PATH -- 0700, the postgres user's (as the AppHost's Os.OwnedFolderAsync)
_bk_owned_folder() {
  mkdir -p "$1"
  chmod 0700 "$1"
  if ((EUID == 0)); then chown -R postgres:postgres "$1"; fi
}

_bk_private_file() { # PATH CONTENT
  printf '%s\n' "$2" >"$1"
  chmod 0600 "$1"
  if ((EUID == 0)); then chown postgres:postgres "$1"; fi
}

# restore_run DATA SRC [--replace]
restore_run() {
  local data="$1" src="$2" replace="${3:-}" root bin started=$SECONDS d held=() status=0 pid dir
  root="$data/postgres"
  bin="$(_bk_bin)" || return 1
  _BK_BIN="$bin"
  src="$(realpath -e "$src" 2>/dev/null)" || { _bk_err "no backup folder $2"; return 2; }
  [[ -s "$src/manifest.json" ]] || { _bk_err "$src has no manifest.json: not a complete backup"; return 2; }
  (cd "$src" && sha256sum --quiet -c SHA256SUMS) || { _bk_err "$src: a dump does not match its checksum"; return 2; }
  if pid="$(_bk_live_postmaster "$root")"; then
    _bk_err "PostgreSQL runs on $root/data (pid $pid): stop the Library first (eng/run.sh stop)"; return 3
  fi
  for d in postgres redis rabbitmq; do
    if [[ -d "$data/$d" ]] && [[ -n "$(ls -A "$data/$d")" ]]; then held+=("$d/"); fi
  done
  if ((${#held[@]} > 0)); then
    if [[ "$replace" != --replace ]]; then
      _bk_err "refusing to restore onto $data: it already holds ${held[*]}; restore onto an empty data folder (LIBRARY_DATA_DIR), or add --replace to delete them"
      return 3
    fi
    _bk_log "--replace: deleting ${held[*]} in $data"
    for d in postgres redis rabbitmq; do rm -rf "${data:?}/$d"; done
  fi

  # A new data folder as the AppHost makes one (Servers/PostgresProcess.cs, PrepareAsync): its
  # initdb options and the include of library.conf, which the AppHost rewrites at every start
  # (as it does pg_hba.conf; both are written here only for the temporary server).
  mkdir -p "$data"
  if ((EUID == 0)); then   # every parent traversable by the server's user (Os.MakeTraversable)
    dir="$data"
    while [[ "$dir" != / ]]; do chmod o+x "$dir"; dir="$(dirname "$dir")"; done
  fi
  _bk_owned_folder "$root"
  _bk_owned_folder "$root/run"
  _bk_log "initdb $root/data"
  _bk_as_postgres "$bin/initdb" -D "$root/data" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >"$root/initdb.log" 2>&1 \
    || { _bk_err "initdb failed: $(tail -n 5 "$root/initdb.log")"; return 1; }
  printf "\n# Library.AppHost's settings (rewritten at every start)\ninclude 'library.conf'\n" >>"$root/data/postgresql.conf"
  _bk_private_file "$root/data/library.conf" "# Written by eng/lib/backup.sh for a restore; Library.AppHost rewrites it at its next start.
unix_socket_permissions = 0700"
  _bk_private_file "$root/data/pg_hba.conf" "# Written by eng/lib/backup.sh for a restore; Library.AppHost rewrites it at its next start.
local   all          postgres                 trust"
  _bk_pg_start_temporary "$root" || return 1
  (
    set -e
    psql() { _bk_as_postgres "$bin/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$_BK_SOCK" -p "$_BK_PORT" -U postgres "$@"; }
    mapfile -t rows < <(python3 -c 'import json,sys
for d in json.load(open(sys.argv[1]))["databases"]: print(d["name"], d["owner"], d["file"])' "$src/manifest.json")
    snapshot_at="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshotAt"])' "$src/manifest.json")"
    resend="${LIBRARY_RESTORE_RESEND_MINUTES:-60}"
    for r in "${rows[@]}"; do
      read -r db owner file <<<"$r"
      # As Servers/LibraryDatabase.cs makes them (its EnsureAsync sets the password at the next start).
      psql -d postgres -v db="$db" -v login="$owner" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', :'login')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'login') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'db', :'login') \gexec
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'db', :'login') \gexec
SQL
      _bk_as_postgres "$bin/pg_restore" --exit-on-error --single-transaction -h "$_BK_SOCK" -p "$_BK_PORT" -U postgres -d "$db" <"$src/$file"
      # Events the broker held at the backup are not in it: send the recent ones again (the
      # consumers' inboxes drop those already applied).
      resent="$(psql -d "$db" -v minutes="$resend" -v at="$snapshot_at" <<'SQL'
SELECT CASE WHEN to_regclass('public.outbox_messages') IS NULL THEN 'SELECT 0'
  ELSE format($q$WITH r AS (UPDATE public.outbox_messages SET sent_at = NULL, attempts = 0, next_attempt_at = NULL, last_error = NULL
    WHERE sent_at >= %L::timestamptz - make_interval(mins => %s) AND (last_error IS NULL OR last_error NOT LIKE 'unroutable%%') RETURNING 1)
    SELECT count(*) FROM r$q$, :'at', :'minutes') END \gexec
SQL
)"
      psql -d "$db" -c 'ANALYZE'
      _bk_log "  $db restored (owner $owner); ${resent:-0} outbox events to send again"
    done
  ) &
  wait $! || status=$?
  _bk_pg_stop_temporary "$root" || status=1
  if ((status != 0)); then _bk_err "restore failed: the data folder $root is incomplete (restore again with --replace)"; return 1; fi
  _bk_log "restored $src onto $data in $((SECONDS - started)) s; start the Library on it (eng/run.sh start): the AppHost sets the logins' passwords"
}
