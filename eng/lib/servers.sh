# shellcheck shell=bash
# eng/lib/servers.sh -- local PostgreSQL / Redis / RabbitMQ / MailDev as plain processes (no Docker).
#
# Source it from a bash script (set -euo pipefail safe); must run as root (servers drop to
# their own OS users: postgres, rabbitmq). Every function takes the data root DATA first:
#   $DATA/postgres/{data,run,postgres.log}  PGDATA, private unix socket dir, server log
#   $DATA/postgres-2/...                     the same for the standby node, if any (pg_ha_start)
#   $DATA/redis/{redis.conf,redis.pid,redis.log}
#   $DATA/rabbitmq/{mnesia,log,home,rabbitmq.conf,advanced.config,definitions.json,instance.env,...}
#   $DATA/maildev/{mail,maildev.pid,maildev.log}  the mail server's kept messages, pid, log
#   $DATA/secrets/*                          generated hex secrets (mode 600), reused on later runs
#
#   servers_install                          apt-get install whatever is missing (quiet otherwise),
#                                            and MailDev (npm) into $ROOT/.local/tools/maildev
#   servers_start_all DATA PG_PORT REDIS_PORT RABBIT_PORT [ha] / servers_stop_all DATA
#                                            (MailDev too: SMTP on RABBIT_PORT+3, web on +4 unless
#                                            SERVERS_MAIL_SMTP_PORT / SERVERS_MAIL_WEB_PORT say)
#   pg_start DATA PORT [NODE] | pg_stop DATA [NODE] | pg_running DATA [NODE] | pg_superuser_cs DATA PORT
#   pg_ensure_db DATA PORT DBNAME LOGIN      -> prints service connection string (PORT: the primary's)
#   pg_psql DATA [psql args...]              superuser psql over the primary's private unix socket
#   pg_ha_start DATA PORT | pg_failover DATA | pg_rebuild_standby DATA PORT | pg_sync DATA on|off
#   pg_primary_node DATA | pg_ha_status DATA  streaming standby (node 2 on PORT+1), see below
#   redis_start DATA PORT | redis_stop DATA | redis_running DATA | redis_cs DATA PORT
#   redis_cli DATA [redis-cli args...]       authenticated redis-cli
#   rabbitmq_start DATA PORT | rabbitmq_stop DATA | rabbitmq_running DATA | rabbitmq_cs DATA PORT
#   rabbitmq_ctl DATA args...                rabbitmqctl against this instance's node
#   maildev_install | maildev_start DATA SMTP_PORT WEB_PORT | maildev_stop DATA | maildev_running DATA
#   mail_cs SMTP_PORT                        Endpoint=smtp://127.0.0.1:PORT (Aspire's MailDev/Mailpit format)
#   mail_ports RABBIT_PORT                   prints "SMTP_PORT WEB_PORT" as servers_start_all picks them
#
# RabbitMQ ports: AMQP = PORT (127.0.0.1 only), Erlang distribution = PORT+1,
# private epmd = PORT+2 (each instance has its own epmd, so run/test instances never share or
# kill each other's epmd). Node name: library-<8 hex of sha256(realpath DATA)>@localhost,
# fixed at first start (kept in instance.env). Erlang cookie: $DATA/secrets/rabbitmq.cookie,
# copied to $DATA/rabbitmq/home/.erlang.cookie (HOME of both the server and rabbitmq_ctl).
# User/vhost/permissions come from definitions.json imported at boot (before AMQP opens), so
# a fresh node has only vhost "library" and user "library" (no guest, no "/"). rabbitmq_stop
# sends SIGTERM (RabbitMQ's graceful stop) and then kills the instance's private epmd.
# "Running" checks verify the pid file's process really belongs to DATA (cwd / command line),
# so stale pid files from killed builds are ignored and cleaned up on the next start.
# Optional env: SERVERS_PG_BINDIR (default: newest /usr/lib/postgresql/*/bin),
#               SERVERS_RABBITMQ_TIMEOUT (seconds, default 90).
# Progress goes to stderr ("[servers] ..."); stdout carries only the echoed values.

_srv_log() { printf '[servers] %s\n' "$*" >&2; }
_srv_err() { printf '[servers] ERROR: %s\n' "$*" >&2; return 1; }

# ---------------------------------------------------------------------------------- helpers

# _srv_data DATA [create] -> prints the absolute, physical DATA path. With "create" the folder
# is created and made traversable for the service users; otherwise it need not exist (the
# query/stop functions then simply find nothing running).
_srv_data() {
  local d="${1:-}"
  [[ -n "$d" ]] || { _srv_err "data root folder argument missing"; return 1; }
  [[ "$d" != *[[:space:]\'\"\\]* ]] || { _srv_err "data root must not contain spaces, quotes or backslashes: $d"; return 1; }
  [[ "$(id -u)" == 0 ]] || { _srv_err "servers.sh must run as root (servers drop to the postgres/rabbitmq users)"; return 1; }
  if [[ "${2:-}" == create ]]; then
    mkdir -p "$d" || { _srv_err "cannot create $d"; return 1; }
  fi
  if [[ -d "$d" ]]; then
    d="$(cd "$d" && pwd -P)" || return 1
  else
    d="$(realpath -m "$d")" || return 1
  fi
  # postgres/rabbitmq users must be able to traverse into DATA (mktemp -d makes it 0700).
  if [[ "${2:-}" == create && "$(stat -c %a "$d")" != *[1357] ]]; then
    _srv_log "chmod o+x $d (so the postgres/rabbitmq users can reach their subfolders)"
    chmod o+x "$d" || return 1
  fi
  printf '%s\n' "$d"
}

_srv_check_port() { # PORT
  [[ "${1:-}" =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65534)) || { _srv_err "invalid port '${1:-}'"; return 1; }
}

_srv_port_open() { # PORT -> 0 if something accepts TCP on 127.0.0.1:PORT
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

_srv_can_traverse() { # USER DIR
  runuser -u "$1" -- test -x "$2" 2>/dev/null || {
    _srv_err "user '$1' cannot reach $2 (make every parent folder world-executable, e.g. chmod o+x)"; return 1; }
}

# _srv_secret DATA NAME -> prints the secret (generated once: 24 random bytes as hex, mode 600)
_srv_secret() {
  local dir="$1/secrets" f="$1/secrets/$2" tmp
  if [[ ! -s "$f" ]]; then
    mkdir -p "$dir" && chmod 700 "$dir" || return 1
    tmp="$(mktemp "$f.XXXXXX")" || return 1
    od -An -vtx1 -N24 /dev/urandom | tr -d ' \n' >"$tmp" && chmod 600 "$tmp" || { rm -f "$tmp"; return 1; }
    # no-clobber: if a concurrent caller created it meanwhile, keep theirs
    ln "$tmp" "$f" 2>/dev/null || true
    rm -f "$tmp"
  fi
  tr -d '[:space:]' <"$f"
}

_srv_existing_secret() { # DATA NAME -> prints secret or fails (never generates)
  [[ -s "$1/secrets/$2" ]] || { _srv_err "secret $1/secrets/$2 not found (start the server first)"; return 1; }
  tr -d '[:space:]' <"$1/secrets/$2"
}

# _srv_pid_in DIR PID -> 0 if PID is a live process whose cwd is DIR (robust against stale
# pid files whose PID was reused by an unrelated process after a machine/build restart).
_srv_pid_in() {
  [[ "${2:-}" =~ ^[0-9]+$ ]] && [[ -e "/proc/$2" && "/proc/$2/cwd" -ef "$1" ]]
}

_srv_first_line() { # FILE -> first line ('' if missing; pid files may lack a trailing newline)
  local l=""
  if [[ -r "$1" ]]; then IFS= read -r l <"$1" || true; fi
  printf '%s' "$l"
}

_srv_wait_gone() { # PID SECONDS DIR
  local i
  for ((i = 0; i < $2 * 10; i++)); do _srv_pid_in "$3" "$1" || return 0; sleep 0.1; done
  return 1
}

# ---------------------------------------------------------------------------------- install

_srv_pg_bindir() {
  local d best=""
  if [[ -n "${SERVERS_PG_BINDIR:-}" ]]; then printf '%s\n' "$SERVERS_PG_BINDIR"; return 0; fi
  for d in /usr/lib/postgresql/*/bin; do   # glob sorts 13 < 14 < 15 ... -> highest wins
    [[ -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/psql" ]] && best="$d"
  done
  [[ -n "$best" ]] && printf '%s\n' "$best"
}

_srv_pg_has_contrib() { # BINDIR
  local share
  share="$("$1/pg_config" --sharedir 2>/dev/null)" \
    || share="/usr/share/postgresql/$(basename "$(dirname "$1")")"
  [[ -f "$share/extension/pg_trgm.control" && -f "$share/extension/unaccent.control" ]]
}

servers_install() {
  maildev_install || return 1
  local -a pkgs=()
  local bindir out
  if bindir="$(_srv_pg_bindir)"; then
    _srv_pg_has_contrib "$bindir" || pkgs+=(postgresql-contrib)
  else
    pkgs+=(postgresql postgresql-contrib)
  fi
  { command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 || pkgs+=(redis-server)
  [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server && -x /usr/lib/rabbitmq/bin/rabbitmqctl ]] || pkgs+=(rabbitmq-server)
  ((${#pkgs[@]} == 0)) && return 0
  _srv_log "installing: ${pkgs[*]} (apt-get)"
  if ! out="$(export DEBIAN_FRONTEND=noninteractive
              apt-get -q -o DPkg::Lock::Timeout=300 update 2>&1 &&
              apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold \
                install "${pkgs[@]}" 2>&1)"; then
    printf '%s\n' "$out" | tail -n 30 >&2
    _srv_err "apt-get install ${pkgs[*]} failed"; return 1
  fi
  _srv_log "installed: ${pkgs[*]}"
}

# ---------------------------------------------------------------------------------- postgres
#
# One node by default: $DATA/postgres on PORT. With a standby (pg_ha_start) a second node lives
# in $DATA/postgres-2 on PORT+1. Nodes keep their folder and port for life; the roles move:
# whichever node runs without data/standby.signal is the primary. A node that lost its primary
# role in a failover gets a `needs-rebuild` marker in its folder and is never started again as
# it is (it could be a second primary with a diverged history): pg_rebuild_standby replaces it.

_srv_pg_bin() {
  _srv_pg_bindir || { _srv_err "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (run servers_install)"; return 1; }
}

_srv_pg_root() { # DATA NODE -> folder of node 1 ($DATA/postgres) or 2 ($DATA/postgres-2)
  case "${2:-1}" in
    1) printf '%s\n' "$1/postgres" ;;
    2) printf '%s\n' "$1/postgres-2" ;;
    *) _srv_err "postgres node must be 1 or 2, not '${2:-}'"; return 1 ;;
  esac
}

_srv_pg_pid() { # ROOT -> postmaster pid if running
  local pid
  pid="$(_srv_first_line "$1/data/postmaster.pid")"
  _srv_pid_in "$1/data" "$pid" && printf '%s\n' "$pid"
}

_srv_pg_port() { # ROOT -> port of the running server (postmaster.pid line 4)
  sed -n 4p "$1/data/postmaster.pid" 2>/dev/null
}

_srv_pg_is_standby() { [[ -e "$1/data/standby.signal" ]]; }   # ROOT

# _srv_pg_primary_root DATA -> the folder of the node running as primary; node 1's folder when
# none runs (so errors name the usual place). Only a running node counts: a killed primary has
# no standby.signal either.
_srv_pg_primary_root() {
  local node root
  for node in 1 2; do
    root="$(_srv_pg_root "$1" "$node")"
    if _srv_pg_pid "$root" >/dev/null && ! _srv_pg_is_standby "$root" && [[ ! -e "$root/needs-rebuild" ]]; then
      printf '%s\n' "$root"; return 0
    fi
  done
  printf '%s\n' "$1/postgres"
}

_srv_pg_psql_root() { # ROOT [psql args...] -- superuser psql over that node's unix socket
  local root="$1" bin
  shift
  bin="$(_srv_pg_bin)" || return 1
  _srv_pg_pid "$root" >/dev/null || { _srv_err "postgres is not running in $root"; return 1; }
  (cd "$root" && runuser -u postgres -- "$bin/psql" -X -h "$root/run" -p "$(_srv_pg_port "$root")" -U postgres "$@")
}

# pg_running DATA [NODE] -- node 1 unless NODE is given
pg_running() {
  local data root
  data="$(_srv_data "${1:-}")" || return 1
  root="$(_srv_pg_root "$data" "${2:-1}")" || return 1
  _srv_pg_pid "$root" >/dev/null
}

_srv_pg_write_config() { # ROOT PORT
  local pgdata="$1/data"
  cat >"$pgdata/servers.conf" <<EOC
# Written by eng/lib/servers.sh on every pg_start -- edit the library, not this file.
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$1/run'
unix_socket_permissions = 0700
max_connections = 300
shared_buffers = 256MB
# Planner and executor settings for the catalog's searches (bench/README.md, search at scale;
# the same in Library.AppHost/Servers/PostgresProcess.cs): the data is in memory or on SSD, so a
# random page costs about a sequential one (at 4 the planner read every book for a category's
# facets instead of the category's IDs); 16 MB keeps the facets' hashes in memory (4 MB spilled
# them to temporary files).
random_page_cost = 1.1
work_mem = 16MB
fsync = on
synchronous_commit = on
full_page_writes = on
password_encryption = scram-sha-256
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
# Streaming replication (used only when a standby is attached; see pg_ha_start). A slot whose
# standby is away keeps at most this much WAL, so a dead standby cannot fill the disk.
max_slot_wal_keep_size = 2GB
wal_log_hints = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
# synchronous_standby_names, written by pg_sync (absent: no synchronous standby)
include_if_exists 'sync.conf'
EOC
  cat >"$pgdata/pg_hba.conf" <<'EOC'
# Written by eng/lib/servers.sh on every pg_start -- edit the library, not this file.
# TYPE  DATABASE     USER      ADDRESS        METHOD
local   all          postgres                 peer
local   all          all                      scram-sha-256
host    all          all       127.0.0.1/32   scram-sha-256
host    all          all       ::1/128        scram-sha-256
local   replication  postgres                 peer
host    replication  all       127.0.0.1/32   scram-sha-256
host    replication  all       ::1/128        scram-sha-256
EOC
  chown postgres:postgres "$pgdata/servers.conf" "$pgdata/pg_hba.conf"
  chmod 600 "$pgdata/servers.conf" "$pgdata/pg_hba.conf"
}

# pg_start DATA PORT [NODE] -- node 1 (default) is created with initdb when empty; node 2 only
# ever comes from a base backup (pg_ha_start / pg_rebuild_standby).
pg_start() {
  local data port node bin root pgdata pw out running_port
  data="$(_srv_data "${1:-}" create)" || return 1
  port="${2:-}"; _srv_check_port "$port" || return 1
  node="${3:-1}"
  bin="$(_srv_pg_bin)" || return 1
  root="$(_srv_pg_root "$data" "$node")" || return 1; pgdata="$root/data"

  if _srv_pg_pid "$root" >/dev/null; then
    running_port="$(_srv_pg_port "$root")"
    [[ "$running_port" == "$port" ]] || { _srv_err "postgres in $pgdata already runs on port $running_port, not $port"; return 1; }
    _srv_log "postgres already running (port $port, $pgdata)"
    return 0
  fi
  if [[ -e "$root/needs-rebuild" ]]; then
    _srv_err "postgres in $pgdata was the primary before a failover and may have diverged: it is not started again as it is (rebuild it as the standby: pg_rebuild_standby / eng/run.sh rebuild-standby)"
    return 1
  fi
  if _srv_port_open "$port"; then _srv_err "port $port is already in use by another process"; return 1; fi

  mkdir -p "$root/run" && chown postgres:postgres "$root" "$root/run" && chmod 700 "$root" "$root/run" || return 1
  _srv_can_traverse postgres "$root" || return 1
  pw="$(_srv_secret "$data" postgres.password)" || return 1

  if [[ ! -s "$pgdata/PG_VERSION" ]]; then
    [[ "$node" == 1 ]] || { _srv_err "postgres node $node has no data ($pgdata): it is made from the primary by pg_ha_start / pg_rebuild_standby"; return 1; }
    _srv_log "postgres: initdb $pgdata"
    rm -rf "$pgdata"
    (umask 077; printf '%s\n' "$pw" >"$root/.pwfile") && chown postgres:postgres "$root/.pwfile" || return 1
    if ! out="$(cd "$root" && runuser -u postgres -- "$bin/initdb" -D "$pgdata" -U postgres \
                  --pwfile="$root/.pwfile" -E UTF8 --locale=C.UTF-8 \
                  --auth-local=peer --auth-host=scram-sha-256 2>&1)"; then
      rm -f "$root/.pwfile"; printf '%s\n' "$out" | tail -n 20 >&2
      _srv_err "initdb failed for $pgdata"; return 1
    fi
    rm -f "$root/.pwfile"
    printf "\n# eng/lib/servers.sh settings (port, listen address, tuning)\ninclude 'servers.conf'\n" >>"$pgdata/postgresql.conf"
  fi
  _srv_pg_write_config "$root" "$port" || return 1
  # Leftovers of a killed previous run (pid may now belong to an unrelated process).
  rm -f "$pgdata/postmaster.pid" "$root/run/.s.PGSQL."*

  _srv_log "postgres: starting on 127.0.0.1:$port$([[ "$node" == 1 ]] || echo " (node $node)")$(_srv_pg_is_standby "$root" && echo ", as a standby")"
  if ! out="$(cd "$root" && runuser -u postgres -- "$bin/pg_ctl" start -D "$pgdata" -w -t 120 \
                -l "$root/postgres.log" 2>&1 </dev/null)"; then
    printf '%s\n' "$out" >&2
    tail -n 30 "$root/postgres.log" >&2 2>/dev/null || true
    _srv_err "postgres failed to start (log: $root/postgres.log)"; return 1
  fi
  _srv_log "postgres: ready on 127.0.0.1:$port"
}

_srv_pg_stop_root() { # ROOT
  local root="$1" bin pgdata="$1/data" out pid
  if ! pid="$(_srv_pg_pid "$root")"; then return 0; fi
  bin="$(_srv_pg_bin)" || return 1
  _srv_log "postgres: stopping ($pgdata)"
  if ! out="$(cd "$root" && runuser -u postgres -- "$bin/pg_ctl" stop -D "$pgdata" -m fast -w -t 60 2>&1)"; then
    printf '%s\n' "$out" >&2
    _srv_log "postgres: fast shutdown failed, sending SIGQUIT"
    kill -QUIT "$pid" 2>/dev/null || true
    _srv_wait_gone "$pid" 20 "$pgdata" || { _srv_err "postgres (pid $pid) does not stop"; return 1; }
  fi
}

# pg_stop DATA [NODE] -- without NODE: every node (the primary first: a primary's shutdown
# checkpoint reaches its standby before the primary exits).
pg_stop() {
  local data root rc=0
  data="$(_srv_data "${1:-}")" || return 1
  if [[ -n "${2:-}" ]]; then
    root="$(_srv_pg_root "$data" "$2")" || return 1
    _srv_pg_stop_root "$root"; return
  fi
  root="$(_srv_pg_primary_root "$data")"
  _srv_pg_stop_root "$root" || rc=1
  _srv_pg_stop_root "$data/postgres" || rc=1
  [[ ! -d "$data/postgres-2" ]] || _srv_pg_stop_root "$data/postgres-2" || rc=1
  return $rc
}

pg_superuser_cs() {
  local data port pw
  data="$(_srv_data "${1:-}")" || return 1
  port="${2:-}"; _srv_check_port "$port" || return 1
  pw="$(_srv_existing_secret "$data" postgres.password)" || return 1
  printf 'Host=127.0.0.1;Port=%s;Username=postgres;Password=%s\n' "$port" "$pw"
}

# pg_psql DATA [psql args...] -- psql as superuser over the primary's private unix socket (peer auth).
pg_psql() {
  local data
  data="$(_srv_data "${1:-}")" || return 1
  shift
  _srv_pg_psql_root "$(_srv_pg_primary_root "$data")" "$@"
}

pg_ensure_db() {
  local data port db login pw root running_port out
  data="$(_srv_data "${1:-}")" || return 1
  port="${2:-}"; _srv_check_port "$port" || return 1
  db="${3:-}"; login="${4:-}"
  [[ "$db" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || { _srv_err "invalid database name '$db' (use [a-z_][a-z0-9_]*)"; return 1; }
  [[ "$login" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || { _srv_err "invalid login name '$login' (use [a-z_][a-z0-9_]*)"; return 1; }
  [[ "$login" != postgres && ! "$login" =~ ^pg_ ]] || { _srv_err "login name '$login' is reserved"; return 1; }
  root="$(_srv_pg_primary_root "$data")"
  _srv_pg_pid "$root" >/dev/null || { _srv_err "postgres is not running in $data (call pg_start first)"; return 1; }
  running_port="$(_srv_pg_port "$root")"
  [[ "$running_port" == "$port" ]] || { _srv_err "the postgres primary in $data runs on port $running_port, not $port"; return 1; }
  pw="$(_srv_secret "$data" "$login.password")" || return 1
  # Password goes through stdin (\set), never on a command line.
  if ! out="$(pg_psql "$data" -q -v ON_ERROR_STOP=1 -v "db=$db" -v "login=$login" -d postgres 2>&1 <<EOS
\\set pw '$pw'
SELECT format('CREATE ROLE %I LOGIN', :'login') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'login') \\gexec
ALTER ROLE :"login" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'login', 'UTF8')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec
ALTER DATABASE :"db" OWNER TO :"login";
REVOKE CONNECT, TEMPORARY ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"login";
\\connect :"db"
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
EOS
)"; then
    printf '%s\n' "$out" >&2
    _srv_err "pg_ensure_db $db/$login failed"; return 1
  fi
  _srv_log "postgres: database $db (owner $login) ready"
  printf 'Host=127.0.0.1;Port=%s;Database=%s;Username=%s;Password=%s\n' "$port" "$db" "$login" "$pw"
}

# ---------------------------------------------------------------------------------- postgres standby
#
#   pg_ha_start DATA PORT        both nodes: node 1 on PORT, node 2 on PORT+1; whichever is the
#                                primary starts first; the other is (re)built as its synchronous
#                                standby when it has no data or is marked needs-rebuild
#   pg_primary_node DATA         -> 1 or 2 (the node running as primary), fails if none runs
#   pg_failover DATA             promotes the standby (stopping a still-running primary first);
#                                the old primary is marked needs-rebuild
#   pg_rebuild_standby DATA PORT the node that is not primary: fresh pg_basebackup from the primary
#                                (slot, -R), started as standby, then synchronous replication on
#   pg_sync DATA on|off          synchronous_standby_names on the primary (waits for a sync standby when on)
#   pg_ha_status DATA            nodes, roles, replication state
#
# Synchronous replication (synchronous_commit = on, a named synchronous standby): a commit is
# acknowledged once the standby has flushed its WAL, so a failover loses no acknowledged write.
# The price: while the standby is down or cut off, commits on the primary WAIT (they are durable
# on the primary but not acknowledged). That is deliberate (no silent downgrade to asynchronous);
# `pg_sync DATA off` (eng/run.sh sync off) trades it for availability, by an operator's choice.
# A freshly promoted primary runs without a synchronous standby (there is none) until
# pg_rebuild_standby attaches one.

_srv_pg_app_name() { printf 'library_node%s' "$1"; }   # NODE -> application_name / slot name

_srv_pg_ensure_replicator() { # DATA -> the replication login exists on the primary
  local data="$1" pw out
  pw="$(_srv_secret "$data" replicator.password)" || return 1
  if ! out="$(pg_psql "$data" -q -v ON_ERROR_STOP=1 -d postgres 2>&1 <<EOS
\\set pw '$pw'
SELECT 'CREATE ROLE replicator' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') \\gexec
ALTER ROLE replicator WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
EOS
)"; then
    printf '%s\n' "$out" >&2; _srv_err "cannot create the replication login"; return 1
  fi
}

_srv_pg_write_sync() { # ROOT STANDBY_NODE|"" -- sync.conf of that node (read on reload/start)
  local f="$1/data/sync.conf"
  if [[ -n "$2" ]]; then
    printf "# Written by eng/lib/servers.sh (pg_sync)\nsynchronous_standby_names = 'FIRST 1 (%s)'\n" "$(_srv_pg_app_name "$2")" >"$f"
  else
    printf "# Written by eng/lib/servers.sh (pg_sync): no synchronous standby\nsynchronous_standby_names = ''\n" >"$f"
  fi
  chown postgres:postgres "$f" && chmod 600 "$f"
}

_srv_pg_node_of_root() { [[ "$1" == */postgres-2 ]] && echo 2 || echo 1; }   # ROOT -> NODE

pg_primary_node() {
  local data root
  data="$(_srv_data "${1:-}")" || return 1
  root="$(_srv_pg_primary_root "$data")"
  _srv_pg_pid "$root" >/dev/null && ! _srv_pg_is_standby "$root" || { _srv_err "no postgres primary runs in $data"; return 1; }
  _srv_pg_node_of_root "$root"
}

# _srv_pg_build_standby DATA PORT NODE -- NODE's data replaced by a base backup of the primary.
_srv_pg_build_standby() {
  local data="$1" port="$2" node="$3" bin proot pport root pgdata app pw out
  bin="$(_srv_pg_bin)" || return 1
  proot="$(_srv_pg_primary_root "$data")"
  _srv_pg_pid "$proot" >/dev/null && ! _srv_pg_is_standby "$proot" || { _srv_err "no primary runs: cannot build a standby"; return 1; }
  [[ "$(_srv_pg_node_of_root "$proot")" != "$node" ]] || { _srv_err "node $node is the primary"; return 1; }
  pport="$(_srv_pg_port "$proot")"
  root="$(_srv_pg_root "$data" "$node")"; pgdata="$root/data"; app="$(_srv_pg_app_name "$node")"
  # Commits must not wait for the standby being rebuilt (pg_sync on again once it streams).
  if grep -qs "$app" "$proot/data/sync.conf"; then pg_sync "$data" off || return 1; fi
  _srv_pg_stop_root "$root" || return 1
  _srv_pg_ensure_replicator "$data" || return 1
  pw="$(_srv_existing_secret "$data" replicator.password)" || return 1
  # The node's old slot on the primary (an earlier standby life) would pin old WAL.
  pg_psql "$data" -q -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$app' AND NOT active" >/dev/null || return 1
  rm -rf "$pgdata"
  mkdir -p "$root/run" && chown postgres:postgres "$root" "$root/run" && chmod 700 "$root" "$root/run" || return 1
  _srv_log "postgres: base backup of node $(_srv_pg_node_of_root "$proot") (port $pport) into node $node ($pgdata), slot $app"
  if ! out="$(cd "$root" && runuser -u postgres -- env PGPASSWORD="$pw" "$bin/pg_basebackup" \
                -d "host=127.0.0.1 port=$pport user=replicator application_name=$app" \
                -D "$pgdata" -X stream -C -S "$app" -R --checkpoint=fast -w 2>&1)"; then
    printf '%s\n' "$out" | tail -n 20 >&2
    _srv_err "pg_basebackup into $pgdata failed"; return 1
  fi
  # -R wrote primary_conninfo (with the password: postgresql.auto.conf is mode 600, owner
  # postgres) and primary_slot_name; make sure the standby names itself for synchronous_standby_names.
  grep -q "application_name=$app" "$pgdata/postgresql.auto.conf" || {
    printf "primary_conninfo = 'host=127.0.0.1 port=%s user=replicator password=%s application_name=%s'\n" "$pport" "$pw" "$app" >>"$pgdata/postgresql.auto.conf"; }
  # A standby never waits for a standby of its own; after a promotion it must not either.
  _srv_pg_write_sync "$root" ""
  rm -f "$root/needs-rebuild" "$pgdata/postmaster.pid"
  pg_start "$data" "$port" "$node"
}

pg_sync() { # DATA on|off
  local data root node other i state
  data="$(_srv_data "${1:-}")" || return 1
  node="$(pg_primary_node "$data")" || return 1
  root="$(_srv_pg_root "$data" "$node")"; other=$((3 - node))
  case "${2:-}" in
    on) _srv_pg_write_sync "$root" "$other" ;;
    off) _srv_pg_write_sync "$root" "" ;;
    *) _srv_err "usage: pg_sync DATA on|off"; return 1 ;;
  esac
  _srv_pg_psql_root "$root" -qAt -d postgres -c "SELECT pg_reload_conf()" >/dev/null || return 1
  [[ "$2" == on ]] || { _srv_log "postgres: synchronous replication off (commits no longer wait for a standby)"; return 0; }
  for ((i = 0; i < 600; i++)); do
    state="$(_srv_pg_psql_root "$root" -qAt -d postgres -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = '$(_srv_pg_app_name "$other")' AND state = 'streaming'" 2>/dev/null)" || true
    if [[ "$state" == sync ]]; then _srv_log "postgres: node $other is the synchronous standby of node $node"; return 0; fi
    sleep 0.1
  done
  _srv_err "node $other did not become a synchronous standby within 60 s: commits on node $node wait for it (pg_sync DATA off to stop waiting)"
}

pg_ha_start() { # DATA PORT
  local data port node root primary="" other
  data="$(_srv_data "${1:-}" create)" || return 1
  port="${2:-}"; _srv_check_port "$port" && _srv_check_port "$((port + 1))" || return 1
  for node in 1 2; do
    root="$(_srv_pg_root "$data" "$node")"
    if [[ -s "$root/data/PG_VERSION" && ! -e "$root/needs-rebuild" ]] && ! _srv_pg_is_standby "$root"; then
      [[ -z "$primary" ]] || { _srv_err "both postgres nodes of $data claim to be the primary; keep one and remove the other's data folder"; return 1; }
      primary="$node"
    fi
  done
  if [[ -z "$primary" ]]; then
    [[ ! -s "$data/postgres/data/PG_VERSION" && ! -s "$data/postgres-2/data/PG_VERSION" ]] \
      || { _srv_err "no postgres node of $data can be the primary (both are standbys or need a rebuild)"; return 1; }
    primary=1   # a first start: node 1 is initdb'd
  fi
  other=$((3 - primary))
  # The primary starts without waiting for a standby (it has none yet); pg_sync on at the end.
  root="$(_srv_pg_root "$data" "$primary")"
  [[ ! -d "$root/data" ]] || _srv_pg_write_sync "$root" ""
  pg_start "$data" "$((port + primary - 1))" "$primary" || return 1
  _srv_pg_ensure_replicator "$data" || return 1
  root="$(_srv_pg_root "$data" "$other")"
  if [[ -s "$root/data/PG_VERSION" && ! -e "$root/needs-rebuild" ]] && _srv_pg_is_standby "$root"; then
    pg_start "$data" "$((port + other - 1))" "$other" || return 1
  else
    _srv_pg_build_standby "$data" "$((port + other - 1))" "$other" || return 1
  fi
  pg_sync "$data" on
}

pg_failover() { # DATA
  local data bin node root sroot pid proc out
  data="$(_srv_data "${1:-}")" || return 1
  bin="$(_srv_pg_bin)" || return 1
  sroot=""
  for node in 1 2; do
    root="$(_srv_pg_root "$data" "$node")"
    if _srv_pg_pid "$root" >/dev/null && _srv_pg_is_standby "$root" && [[ ! -e "$root/needs-rebuild" ]]; then sroot="$root"; fi
  done
  [[ -n "$sroot" ]] || { _srv_err "no running standby to promote in $data"; return 1; }
  root="$(_srv_pg_root "$data" "$((3 - $(_srv_pg_node_of_root "$sroot")))")"
  if pid="$(_srv_pg_pid "$root")"; then
    # A switchover: the old primary stops first (a fast shutdown sends its last WAL to the standby),
    # so there are never two primaries.
    _srv_log "postgres: the primary ($root) still runs: stopping it first"
    _srv_pg_stop_root "$root" || return 1
  fi
  # Anything left of a killed primary (backends of a SIGKILLed postmaster) must not serve.
  for proc in /proc/[0-9]*; do
    [[ "$proc/cwd" -ef "$root/data" ]] && kill -KILL "${proc#/proc/}" 2>/dev/null || true
  done
  if [[ -d "$root/data" ]]; then : >"$root/needs-rebuild"; fi
  _srv_log "postgres: promoting node $(_srv_pg_node_of_root "$sroot") ($sroot/data)"
  if ! out="$(cd "$sroot" && runuser -u postgres -- "$bin/pg_ctl" promote -D "$sroot/data" -w -t 60 2>&1)"; then
    printf '%s\n' "$out" >&2; _srv_err "promotion failed (log: $sroot/postgres.log)"; return 1
  fi
  _srv_pg_psql_root "$sroot" -q -d postgres -c "ALTER SYSTEM RESET primary_conninfo" -c "ALTER SYSTEM RESET primary_slot_name" -c "SELECT pg_reload_conf()" >/dev/null || true
  _srv_log "postgres: node $(_srv_pg_node_of_root "$sroot") is the primary on port $(_srv_pg_port "$sroot"); no standby until pg_rebuild_standby"
}

pg_rebuild_standby() { # DATA PORT
  local data port node
  data="$(_srv_data "${1:-}")" || return 1
  port="${2:-}"; _srv_check_port "$port" || return 1
  node="$(pg_primary_node "$data")" || return 1
  _srv_pg_build_standby "$data" "$((port + 2 - node))" "$((3 - node))" || return 1
  pg_sync "$data" on
}

pg_ha_status() { # DATA -> one line per node, then the primary's view of its standbys
  local data node root pid role port q
  data="$(_srv_data "${1:-}")" || return 1
  for node in 1 2; do
    root="$(_srv_pg_root "$data" "$node")"
    [[ -d "$root" ]] || continue
    if pid="$(_srv_pg_pid "$root")"; then
      port="$(_srv_pg_port "$root")"
      if [[ "$(_srv_pg_psql_root "$root" -qAt -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" == t ]]; then
        q="SELECT 'standby, receiver ' || coalesce((SELECT status || ' from port ' || sender_port FROM pg_stat_wal_receiver), 'not connected') || ', replayed ' || coalesce(pg_last_wal_replay_lsn()::text, '?')"
      else
        q="SELECT 'PRIMARY, wal ' || pg_current_wal_lsn() || ', synchronous_standby_names ''' || current_setting('synchronous_standby_names') || ''''"
      fi
      role="$(_srv_pg_psql_root "$root" -qAt -d postgres -c "$q" 2>/dev/null || echo "running (no answer)")"
      printf 'node %s  127.0.0.1:%-5s running (pid %s)  %s\n' "$node" "$port" "$pid" "$role"
    else
      printf 'node %s  %-15s not running%s\n' "$node" "" "$([[ -e "$root/needs-rebuild" ]] && echo ' (old primary: needs rebuild-standby)')"
    fi
  done
  root="$(_srv_pg_primary_root "$data")"
  if _srv_pg_pid "$root" >/dev/null && ! _srv_pg_is_standby "$root"; then
    _srv_pg_psql_root "$root" -qAt -F ' ' -d postgres -c "
      SELECT 'replication -> ' || application_name || ': ' || state || ', ' || sync_state
             || ', replay lag ' || coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) || ' bytes'
      FROM pg_stat_replication
      UNION ALL
      SELECT 'slot ' || slot_name || ': ' || CASE WHEN active THEN 'active' ELSE 'INACTIVE (WAL kept for it)' END
      FROM pg_replication_slots" 2>/dev/null || true
  fi
}

# ---------------------------------------------------------------------------------- redis

_srv_redis_pid() {
  local pid
  pid="$(_srv_first_line "$1/redis/redis.pid")"
  _srv_pid_in "$1/redis" "$pid" && printf '%s\n' "$pid"
}

redis_running() {
  local data
  data="$(_srv_data "${1:-}")" || return 1
  _srv_redis_pid "$data" >/dev/null
}

redis_start() {
  local data port dir pw i out running_port
  data="$(_srv_data "${1:-}" create)" || return 1
  port="${2:-}"; _srv_check_port "$port" || return 1
  command -v redis-server >/dev/null || { _srv_err "redis-server not installed (run servers_install)"; return 1; }
  dir="$data/redis"
  if _srv_redis_pid "$data" >/dev/null; then
    running_port="$(sed -n 's/^port //p' "$dir/redis.conf" 2>/dev/null)"
    [[ "$running_port" == "$port" ]] || { _srv_err "redis in $dir already runs on port $running_port, not $port"; return 1; }
    _srv_log "redis already running (port $port, $dir)"
    return 0
  fi
  if _srv_port_open "$port"; then _srv_err "port $port is already in use by another process"; return 1; fi
  mkdir -p "$dir" && chmod 700 "$dir" || return 1
  pw="$(_srv_secret "$data" redis.password)" || return 1
  rm -f "$dir/redis.pid"
  (umask 077; cat >"$dir/redis.conf" <<EOF
# Written by eng/lib/servers.sh on every redis_start -- edit the library, not this file.
port $port
bind 127.0.0.1
protected-mode yes
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
save ""
appendonly no
requirepass $pw
EOF
  ) || return 1
  _srv_log "redis: starting on 127.0.0.1:$port"
  if ! out="$(cd "$dir" && redis-server "$dir/redis.conf" 2>&1 </dev/null)"; then
    printf '%s\n' "$out" >&2; tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
    _srv_err "redis failed to start (log: $dir/redis.log)"; return 1
  fi
  for ((i = 0; i < 100; i++)); do
    if [[ "$(REDISCLI_AUTH="$pw" timeout 5 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; then
      _srv_log "redis: ready on 127.0.0.1:$port"; return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
  _srv_err "redis did not answer PING within 10 s (log: $dir/redis.log)"
}

redis_stop() {
  local data pid
  data="$(_srv_data "${1:-}")" || return 1
  pid="$(_srv_redis_pid "$data")" || return 0
  _srv_log "redis: stopping ($data/redis)"
  kill -TERM "$pid" 2>/dev/null || true
  _srv_wait_gone "$pid" 20 "$data/redis" && return 0
  kill -KILL "$pid" 2>/dev/null || true
  _srv_wait_gone "$pid" 5 "$data/redis" || { _srv_err "redis (pid $pid) does not stop"; return 1; }
}

redis_cs() {
  local data port pw
  data="$(_srv_data "${1:-}")" || return 1
  port="${2:-}"; _srv_check_port "$port" || return 1
  pw="$(_srv_existing_secret "$data" redis.password)" || return 1
  printf '127.0.0.1:%s,password=%s\n' "$port" "$pw"
}

# redis_cli DATA [redis-cli args...] -- authenticated redis-cli against this instance.
redis_cli() {
  local data pw port
  data="$(_srv_data "${1:-}")" || return 1
  shift
  pw="$(_srv_existing_secret "$data" redis.password)" || return 1
  port="$(sed -n 's/^port //p' "$data/redis/redis.conf" 2>/dev/null)"
  [[ -n "$port" ]] || { _srv_err "redis was never started in $data"; return 1; }
  REDISCLI_AUTH="$pw" redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# ---------------------------------------------------------------------------------- rabbitmq

_SRV_RMQ_BIN=/usr/lib/rabbitmq/bin

# _srv_rmq_env DATA -> sets RMQ_NODE RMQ_PORT RMQ_DIST_PORT RMQ_EPMD_PORT from instance.env
_srv_rmq_load() {
  local f="$1/rabbitmq/instance.env" k v
  RMQ_NODE=""; RMQ_PORT=""; RMQ_DIST_PORT=""; RMQ_EPMD_PORT=""
  [[ -r "$f" ]] || return 1
  while IFS='=' read -r k v; do
    case "$k" in
      NODE) RMQ_NODE="$v" ;; PORT) RMQ_PORT="$v" ;; DIST_PORT) RMQ_DIST_PORT="$v" ;; EPMD_PORT) RMQ_EPMD_PORT="$v" ;;
    esac
  done <"$f"
  [[ -n "$RMQ_NODE" && -n "$RMQ_PORT" && -n "$RMQ_EPMD_PORT" ]]
}

# Environment shared by the server and the CLI (run via `env -i`, so nothing leaks in).
_srv_rmq_envargs() { # DATA -> NUL-separated VAR=value list
  local r="$1/rabbitmq"
  printf '%s\0' \
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "HOME=$r/home" "LANG=C.UTF-8" "LC_ALL=C.UTF-8" \
    "RABBITMQ_NODENAME=$RMQ_NODE" \
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1" \
    "RABBITMQ_NODE_PORT=$RMQ_PORT" \
    "RABBITMQ_DIST_PORT=$RMQ_DIST_PORT" \
    "ERL_EPMD_PORT=$RMQ_EPMD_PORT" \
    "ERL_EPMD_ADDRESS=127.0.0.1" \
    "RABBITMQ_CONF_ENV_FILE=$r/rabbitmq-env.conf" \
    "RABBITMQ_CONFIG_FILE=$r/rabbitmq.conf" \
    "RABBITMQ_ADVANCED_CONFIG_FILE=$r/advanced.config" \
    "RABBITMQ_ENABLED_PLUGINS_FILE=$r/enabled_plugins" \
    "RABBITMQ_FEATURE_FLAGS_FILE=$r/feature_flags" \
    "RABBITMQ_MNESIA_BASE=$r/mnesia" \
    "RABBITMQ_LOG_BASE=$r/log" \
    "RABBITMQ_PID_FILE=$r/rabbitmq.pid" \
    "ERL_CRASH_DUMP=$r/log/erl_crash.dump"
}

_srv_rmq_run() { # DATA cmd args... -> runs cmd as rabbitmq with the instance environment
  local data="$1"; shift
  local -a envargs=()
  mapfile -d '' envargs < <(_srv_rmq_envargs "$data")
  (cd "$data/rabbitmq" && runuser -u rabbitmq -- env -i "${envargs[@]}" "$@")
}

_srv_rmq_pids() { # DATA -> pids (beam, launcher) that are alive and belong to this instance
  local r="$1/rabbitmq" pid found=1
  # beam.smp (RABBITMQ_PID_FILE, written a second or so into boot) runs with cwd $r
  pid="$(_srv_first_line "$r/rabbitmq.pid")"
  if _srv_pid_in "$r" "$pid"; then printf '%s\n' "$pid"; found=0; fi
  # launcher = our runuser process (cwd /); recognise it by the env args on its command line
  local -a args=()
  pid="$(_srv_first_line "$r/launcher.pid")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline"; then
    local a
    for a in "${args[@]}"; do
      if [[ "$a" == "RABBITMQ_MNESIA_BASE=$r/mnesia" ]]; then printf '%s\n' "$pid"; found=0; break; fi
    done
  fi
  return $found
}

rabbitmq_running() {
  local data
  data="$(_srv_data "${1:-}")" || return 1
  _srv_rmq_pids "$data" >/dev/null
}

rabbitmq_ctl() {
  local data
  data="$(_srv_data "${1:-}")" || return 1
  shift
  _srv_rmq_load "$data" || { _srv_err "rabbitmq was never started in $data"; return 1; }
  [[ -x "$_SRV_RMQ_BIN/rabbitmqctl" ]] || { _srv_err "rabbitmqctl not installed (run servers_install)"; return 1; }
  _srv_rmq_run "$data" "$_SRV_RMQ_BIN/rabbitmqctl" -n "$RMQ_NODE" "$@"
}

# RabbitMQ's internal password hash (rabbit_password_hashing_sha256):
# base64(salt4 ++ sha256(salt4 ++ password)).
_srv_rmq_hash() {
  local salt hash
  salt="$(od -An -vtx1 -N4 /dev/urandom | tr -d ' \n')"
  hash="$({ printf '%b' "$(sed 's/../\\x&/g' <<<"$salt")"; printf '%s' "$1"; } | sha256sum | cut -c1-64)"
  printf '%b' "$(sed 's/../\\x&/g' <<<"$salt$hash")" | base64 -w0
}

_srv_rmq_write_config() { # DATA PASSWORD COOKIE
  local r="$1/rabbitmq"
  mkdir -p "$r/home" "$r/mnesia" "$r/log" || return 1
  : >"$r/rabbitmq-env.conf"
  printf '[].\n' >"$r/enabled_plugins"      # no plugins (management stays off)
  cat >"$r/rabbitmq.conf" <<EOF
# Written by eng/lib/servers.sh on every rabbitmq_start -- edit the library, not this file.
listeners.tcp.1 = 127.0.0.1:$RMQ_PORT
loopback_users.guest = true
load_definitions = $r/definitions.json
log.console = false
log.file.level = info
EOF
  cat >"$r/advanced.config" <<'EOF'
%% Written by eng/lib/servers.sh: Erlang distribution listens on loopback only.
[{kernel, [{inet_dist_use_interface, {127,0,0,1}}]}].
EOF
  (umask 077; cat >"$r/definitions.json" <<EOF
{
  "vhosts": [{"name": "library"}],
  "users": [{"name": "library", "password_hash": "$(_srv_rmq_hash "$2")",
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
  "permissions": [{"user": "library", "vhost": "library", "configure": ".*", "write": ".*", "read": ".*"}]
}
EOF
  ) || return 1
  rm -f "$r/home/.erlang.cookie"
  (umask 077; printf '%s' "$3" >"$r/home/.erlang.cookie") || return 1
  chown -R rabbitmq:rabbitmq "$r" && chmod 700 "$r" "$r/home" && chmod 400 "$r/home/.erlang.cookie"
}

_srv_rmq_fail_logs() { # DATA
  local r="$1/rabbitmq" f
  for f in "$r/log/startup.log" "$r/log/$RMQ_NODE.log"; do
    [[ -s "$f" ]] || continue
    printf '[servers] --- tail of %s ---\n' "$f" >&2
    tail -n 40 "$f" >&2 || true
  done
}

rabbitmq_start() {
  local data port r node pw cookie i pid
  data="$(_srv_data "${1:-}" create)" || return 1
  port="${2:-}"; _srv_check_port "$port" || return 1
  [[ -x "$_SRV_RMQ_BIN/rabbitmq-server" ]] || { _srv_err "rabbitmq-server not installed (run servers_install)"; return 1; }
  r="$data/rabbitmq"

  if _srv_rmq_load "$data"; then node="$RMQ_NODE"; else node=""; fi
  if _srv_rmq_pids "$data" >/dev/null; then
    [[ "$RMQ_PORT" == "$port" ]] || { _srv_err "rabbitmq in $r already runs on port $RMQ_PORT, not $port"; return 1; }
    # Running (maybe still booting, e.g. started by a concurrent script): wait for AMQP.
    for ((i = 0; i < 900; i++)); do
      if _srv_port_open "$port"; then _srv_log "rabbitmq already running (node $node, port $port)"; return 0; fi
      _srv_rmq_pids "$data" >/dev/null || break
      sleep 0.1
    done
    _srv_rmq_fail_logs "$data"; _srv_err "rabbitmq node $node is running but AMQP port $port is not accepting"; return 1
  fi
  local p
  for p in "$port" "$((port + 1))" "$((port + 2))"; do
    if _srv_port_open "$p"; then _srv_err "port $p (rabbitmq AMQP/dist/epmd = PORT/PORT+1/PORT+2) is already in use"; return 1; fi
  done

  [[ -n "$node" ]] || node="library-$(printf '%s' "$data" | sha256sum | cut -c1-8)@localhost"
  RMQ_NODE="$node"; RMQ_PORT="$port"; RMQ_DIST_PORT="$((port + 1))"; RMQ_EPMD_PORT="$((port + 2))"
  mkdir -p "$r" || return 1
  printf 'NODE=%s\nPORT=%s\nDIST_PORT=%s\nEPMD_PORT=%s\n' "$RMQ_NODE" "$RMQ_PORT" "$RMQ_DIST_PORT" "$RMQ_EPMD_PORT" >"$r/instance.env"
  pw="$(_srv_secret "$data" rabbitmq.password)" || return 1
  cookie="$(_srv_secret "$data" rabbitmq.cookie)" || return 1
  _srv_rmq_write_config "$data" "$pw" "$cookie" || { _srv_err "cannot write rabbitmq config in $r"; return 1; }
  _srv_can_traverse rabbitmq "$r" || return 1
  rm -f "$r/rabbitmq.pid" "$r/launcher.pid"

  _srv_log "rabbitmq: starting node $node (amqp 127.0.0.1:$port, dist $RMQ_DIST_PORT, epmd $RMQ_EPMD_PORT)"
  local -a envargs=() detach=(setsid)
  mapfile -d '' envargs < <(_srv_rmq_envargs "$data")
  # setsid keeps a terminal Ctrl-C away from the broker; with job control on (interactive
  # shell) the job already has its own process group and setsid would fork (losing the pid).
  if [[ $- == *m* ]]; then detach=(); fi
  (cd "$r" && exec "${detach[@]}" runuser -u rabbitmq -- env -i "${envargs[@]}" "$_SRV_RMQ_BIN/rabbitmq-server") \
    </dev/null >>"$r/log/startup.log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$r/launcher.pid"

  # AMQP listeners open at the very end of boot (after definitions are imported).
  local deadline=$((SECONDS + ${SERVERS_RABBITMQ_TIMEOUT:-90}))
  while ((SECONDS < deadline)); do
    if _srv_port_open "$port"; then
      _srv_log "rabbitmq: ready on 127.0.0.1:$port (node $node)"
      return 0
    fi
    # $pid is our own background launcher: right after the fork it is still a copy of this
    # shell (its command line is not yet runuser's), so ask the kernel first, then the files.
    if ! kill -0 "$pid" 2>/dev/null && ! _srv_rmq_pids "$data" >/dev/null; then
      _srv_rmq_fail_logs "$data"; _srv_err "rabbitmq node $node exited during startup (logs: $r/log)"; return 1
    fi
    sleep 0.25
  done
  _srv_rmq_fail_logs "$data"
  _srv_err "rabbitmq node $node did not accept AMQP on port $port within ${SERVERS_RABBITMQ_TIMEOUT:-90} s (logs: $r/log)"
  return 1
}

_srv_rmq_kill_epmd() { # DATA -> stop this instance's private epmd if no node is registered
  local names
  [[ -n "${RMQ_EPMD_PORT:-}" ]] || return 0
  names="$(ERL_EPMD_PORT="$RMQ_EPMD_PORT" timeout 10 epmd -names 2>/dev/null)" || return 0   # not running
  if grep -q '^name ' <<<"$names"; then
    _srv_log "rabbitmq: epmd on port $RMQ_EPMD_PORT still has registered nodes; leaving it"
    return 0
  fi
  ERL_EPMD_PORT="$RMQ_EPMD_PORT" timeout 10 epmd -kill >/dev/null 2>&1 || true
}

rabbitmq_stop() {
  local data r pids pid beam i
  data="$(_srv_data "${1:-}")" || return 1
  r="$data/rabbitmq"
  _srv_rmq_load "$data" || return 0          # never started here
  if pids="$(_srv_rmq_pids "$data")"; then
    _srv_log "rabbitmq: stopping node $RMQ_NODE"
    # RabbitMQ >= 3.8 treats SIGTERM to beam.smp as a graceful "rabbitmqctl stop" (same
    # shutdown path, no CLI boot, no cookie round-trip). If beam's pid is not known yet
    # (still booting), the launcher script's TERM trap forwards it.
    beam="$(_srv_first_line "$r/rabbitmq.pid")"
    if _srv_pid_in "$r" "$beam"; then kill -TERM "$beam" 2>/dev/null || true
    else for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done; fi
    for ((i = 0; i < 650; i++)); do          # 60 s, then SIGKILL, then 5 s more
      pids="$(_srv_rmq_pids "$data")" || break
      if ((i == 600)); then
        _srv_log "rabbitmq: still running after 60 s, sending SIGKILL"
        for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
      fi
      sleep 0.1
    done
    if pids="$(_srv_rmq_pids "$data")"; then _srv_err "rabbitmq processes still alive: $(echo $pids)"; return 1; fi
  fi
  _srv_rmq_kill_epmd "$data"
  return 0
}

rabbitmq_cs() {
  local data port pw
  data="$(_srv_data "${1:-}")" || return 1
  port="${2:-}"; _srv_check_port "$port" || return 1
  pw="$(_srv_existing_secret "$data" rabbitmq.password)" || return 1
  printf 'amqp://library:%s@127.0.0.1:%s/library\n' "$pw" "$port"
}

# ---------------------------------------------------------------------------------- maildev
#
# MailDev (npm maildev, a real SMTP server with a web UI and a REST API: GET /api/email,
# DELETE /api/email/all in 3.x), installed repo-locally under $ROOT/.local/tools/maildev (git-ignored) from
# the npm registry, only when missing. It runs as root (it writes only under $DATA/maildev),
# SMTP on 127.0.0.1:SMTP_PORT, web/REST on 127.0.0.1:WEB_PORT; messages are kept in
# $DATA/maildev/mail, so a restart (the tests stop it to show an outage delays mail) keeps what
# arrived before.

_SRV_MAILDEV_VERSION=3.0.0
_srv_maildev_root() { printf '%s\n' "${SERVERS_MAILDEV_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/.local/tools/maildev}"; }
_srv_maildev_bin() { printf '%s/node_modules/maildev/dist/bin/maildev.js\n' "$(_srv_maildev_root)"; }

maildev_install() {
  local root out
  root="$(_srv_maildev_root)"
  [[ -f "$(_srv_maildev_bin)" && -f "$root/node_modules/maildev/package.json" ]] \
    && grep -q "\"version\": \"$_SRV_MAILDEV_VERSION\"" "$root/node_modules/maildev/package.json" && return 0
  command -v npm >/dev/null || { _srv_err "npm not found (Node.js is needed for MailDev)"; return 1; }
  _srv_log "installing maildev@$_SRV_MAILDEV_VERSION into $root (npm)"
  mkdir -p "$root" || return 1
  if ! out="$(npm install --prefix "$root" --no-audit --no-fund --loglevel=error "maildev@$_SRV_MAILDEV_VERSION" 2>&1)"; then
    printf '%s\n' "$out" | tail -n 30 >&2
    _srv_err "npm install maildev@$_SRV_MAILDEV_VERSION failed"; return 1
  fi
}

mail_ports() { # RABBIT_PORT -> "SMTP_PORT WEB_PORT"
  _srv_check_port "${1:-}" || return 1
  printf '%s %s\n' "${SERVERS_MAIL_SMTP_PORT:-$(($1 + 3))}" "${SERVERS_MAIL_WEB_PORT:-$(($1 + 4))}"
}

_srv_maildev_pid() {
  local pid
  pid="$(_srv_first_line "$1/maildev/maildev.pid")"
  _srv_pid_in "$1/maildev" "$pid" && printf '%s\n' "$pid"
}

maildev_running() {
  local data
  data="$(_srv_data "${1:-}")" || return 1
  _srv_maildev_pid "$data" >/dev/null
}

maildev_start() { # DATA SMTP_PORT WEB_PORT
  local data smtp web dir bin pid i
  data="$(_srv_data "${1:-}" create)" || return 1
  smtp="${2:-}"; web="${3:-}"
  _srv_check_port "$smtp" && _srv_check_port "$web" || { _srv_err "usage: maildev_start DATA SMTP_PORT WEB_PORT"; return 1; }
  bin="$(_srv_maildev_bin)"
  [[ -f "$bin" ]] || { _srv_err "maildev not installed (run servers_install)"; return 1; }
  dir="$data/maildev"
  if pid="$(_srv_maildev_pid "$data")"; then
    [[ "$(_srv_first_line "$dir/ports")" == "$smtp $web" ]] || { _srv_err "maildev in $dir already runs on $(_srv_first_line "$dir/ports"), not $smtp $web"; return 1; }
    _srv_log "maildev already running (smtp $smtp, web $web, $dir)"
    return 0
  fi
  if _srv_port_open "$smtp"; then _srv_err "port $smtp is already in use by another process"; return 1; fi
  if _srv_port_open "$web"; then _srv_err "port $web is already in use by another process"; return 1; fi
  mkdir -p "$dir/mail" && chmod 700 "$dir" || return 1
  printf '%s %s\n' "$smtp" "$web" >"$dir/ports"
  _srv_log "maildev: starting (smtp 127.0.0.1:$smtp, web http://127.0.0.1:$web)"
  # As rabbitmq_start: setsid keeps a terminal Ctrl-C away (with job control on the job has its
  # own process group already, and setsid would fork, losing the pid); cwd = $dir marks the
  # process as this instance's.
  local -a detach=(setsid)
  if [[ $- == *m* ]]; then detach=(); fi
  (cd "$dir" && exec "${detach[@]}" node "$bin" --smtp "$smtp" --ip 127.0.0.1 --web "$web" --web-ip 127.0.0.1 \
      --mail-directory "$dir/mail" >>"$dir/maildev.log" 2>&1 </dev/null) &
  printf '%s\n' "$!" >"$dir/maildev.pid"
  for ((i = 0; i < 200; i++)); do
    if _srv_port_open "$smtp" && curl -fsS -o /dev/null "http://127.0.0.1:$web/api/email" 2>/dev/null; then
      _srv_log "maildev: ready (smtp 127.0.0.1:$smtp, web http://127.0.0.1:$web)"; return 0
    fi
    _srv_maildev_pid "$data" >/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$dir/maildev.log" >&2 2>/dev/null || true
  _srv_err "maildev did not start within 20 s (log: $dir/maildev.log)"
}

maildev_stop() {
  local data pid
  data="$(_srv_data "${1:-}")" || return 1
  pid="$(_srv_maildev_pid "$data")" || return 0
  _srv_log "maildev: stopping ($data/maildev)"
  kill -TERM "$pid" 2>/dev/null || true
  _srv_wait_gone "$pid" 10 "$data/maildev" && return 0
  kill -KILL "$pid" 2>/dev/null || true
  _srv_wait_gone "$pid" 5 "$data/maildev" || { _srv_err "maildev (pid $pid) does not stop"; return 1; }
}

mail_cs() { # SMTP_PORT
  _srv_check_port "${1:-}" || return 1
  printf 'Endpoint=smtp://127.0.0.1:%s\n' "$1"
}

# ---------------------------------------------------------------------------------- all

servers_start_all() { # DATA PG_PORT REDIS_PORT RABBIT_PORT [ha]  (ha: PostgreSQL with a standby, pg_ha_start)
  local data rc=0 rpid
  data="$(_srv_data "${1:-}" create)" || return 1
  _srv_check_port "${2:-}" && _srv_check_port "${3:-}" && _srv_check_port "${4:-}" || {
    _srv_err "usage: servers_start_all DATA PG_PORT REDIS_PORT RABBIT_PORT [ha]"; return 1; }
  # RabbitMQ is the slowest (~10 s): boot it in the background while PG and Redis start.
  rabbitmq_start "$data" "$4" &
  rpid=$!
  if [[ "${5:-}" == ha ]]; then pg_ha_start "$data" "$2" || rc=1; else pg_start "$data" "$2" || rc=1; fi
  redis_start "$data" "$3" || rc=1
  # shellcheck disable=SC2046
  maildev_start "$data" $(mail_ports "$4") || rc=1
  wait "$rpid" || rc=1
  ((rc == 0)) || _srv_err "servers_start_all: some servers failed to start (see above)"
  return $rc
}

servers_stop_all() {
  local data rc=0 rpid
  data="$(_srv_data "${1:-}")" || return 1
  rabbitmq_stop "$data" &
  rpid=$!
  pg_stop "$data" || rc=1
  redis_stop "$data" || rc=1
  maildev_stop "$data" || rc=1
  wait "$rpid" || rc=1
  return $rc
}
