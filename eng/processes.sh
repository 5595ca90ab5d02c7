#!/usr/bin/env bash
# eng/processes.sh -- the fault-injection and benchmark harness: the whole Library as plain
# processes that a test can kill one by one, with a PostgreSQL synchronous standby and failover.
#
# This is NOT how the Library is run: eng/run.sh runs the AppHost (Library.AppHost), which does
# ports, replicas, health waits, environment keys and start order. This script stays in bash
# because what it is for is not modelled by the AppHost yet: a second PostgreSQL node streaming
# synchronously, `failover` / `rebuild-standby`, and a SIGKILL of one chosen replica or server
# process under load (tests/Library.FaultTests, bench/). Moving those onto the AppHost (resource
# commands, a standby resource) is issue 16's work.
#
# eng/processes.sh -- runs the whole Library on this machine without Docker: PostgreSQL, Redis,
# RabbitMQ and MailDev (the mail server) as plain processes (eng/lib/servers.sh), then every service replica and the gateway
# as `dotnet <Project>.dll`, configured with exactly the keys the Aspire AppHost would give them.
#
#   eng/processes.sh               run in the foreground (logs on screen) until Ctrl-C, then stop all
#   eng/processes.sh start         start in the background; returns once every /health is Healthy
#   eng/processes.sh stop          stop the services, then the servers
#   eng/processes.sh restart       stop every service replica and the gateway at once (SIGTERM), start them
#                            again (the servers keep running); also starts replicas that died
#   eng/processes.sh rolling-restart [all|services|userservice|bookservice|lendingservice|gateway]
#                            in waves, one replica of each service at a time: replica 0 of every
#                            service named, SIGTERM (each drains: /health 503 while still serving,
#                            then finishes its requests), wait for their exit, start them, wait for
#                            their /health Healthy and for the gateway to probe them, then replica 1
#                            of each, and so on; the gateway processes last, one at a time (all, the
#                            default). With 2+ replicas of each, a restart costs no request.
#
# The gateway runs as LIBRARY_GATEWAY_REPLICAS processes (2) sharing LIBRARY_GATEWAY_PORT: each sets
# SO_REUSEPORT on its listening socket (Gateway:ReusePort) and the kernel spreads new connections
# over them; a stopping gateway closes its listening socket at once (new connections go to the
# other) and answers Connection: close while it finishes what it has. Each also listens on a port
# of its own (LIBRARY_GATEWAY_OWN_PORT + i), where status and the health waits reach that process.
#   eng/processes.sh status        processes, their /health, and the servers (exit 3 unless all up)
#   eng/processes.sh logs [svc]    follow the logs (svc = userservice|bookservice|lendingservice|gateway)
#   eng/processes.sh help
#
# PostgreSQL with a synchronous streaming standby (--ha anywhere on the line, or LIBRARY_PG_STANDBY=1;
# remembered: a data folder that has a standby node always starts with it):
#   eng/processes.sh --ha start    as start, plus a standby on LIBRARY_PG_PORT+1 (pg_basebackup, slot);
#                            services get Host=primary,standby;Target Session Attributes=primary
#   eng/processes.sh failover      promote the standby (stops the primary first if it still runs); the
#                            services reconnect by themselves; the old primary needs rebuild-standby
#   eng/processes.sh rebuild-standby  the node that is not primary: fresh base backup, synchronous again
#   eng/processes.sh sync on|off   commits wait for the standby (on, the default) or not (off)
#
# Environment (defaults): LIBRARY_DATA_DIR (<repo>/.local/processes), LIBRARY_REPLICAS (2),
#   LIBRARY_PG_PORT (55432; the standby node uses +1), LIBRARY_PG_STANDBY (0), LIBRARY_REDIS_PORT (56379), LIBRARY_RABBITMQ_PORT (55672; +1, +2 too; MailDev SMTP +3, web +4),
#   LIBRARY_GATEWAY_PORT (8080), LIBRARY_GATEWAY_REPLICAS (2), LIBRARY_GATEWAY_OWN_PORT (gateway port + 1;
#   gateway i's own port is + i), LIBRARY_USERSERVICE_PORT (5101), LIBRARY_BOOKSERVICE_PORT (5201),
#   LIBRARY_LENDINGSERVICE_PORT (5301) -- replica i listens on base + i,
#   LIBRARY_START_TIMEOUT (180 s), LIBRARY_STOP_TIMEOUT (45 s: SIGTERM, then SIGKILL),
#   LIBRARY_ROLLING_SETTLE (3 s: rolling-restart's wait after Healthy, > the gateway's 2 s probe),
#   LIBRARY_START_NICE (-10: the CPU weight of a starting process until its /health is Healthy,
#   then 0; see start_boost below; 0 leaves the scheduler alone),
#   LIBRARY_SERVICE_DRAIN_SECONDS (unset: the services' Shutdown:DrainSeconds default, 5 s; the
#   fault suite sets 2.5 with the gateway probing every 1 s, Gateway__HealthProbeSeconds),
#   LIBRARY_CATALOG_QUERY_CONCURRENCY, LIBRARY_LENDING_REQUEST_CONCURRENCY (each book-service
#   replica's Catalog:QueryConcurrency, each lending replica's Lending:RequestConcurrency: 2 per
#   core / LIBRARY_REPLICAS, at least 2),
#   LIBRARY_NO_BUILD=1 (use the last Release build),
#   LIBRARY_ENVIRONMENT (Production), LIBRARY_ADMIN_EMAIL / LIBRARY_ADMIN_PASSWORD,
#   OTEL_EXPORTER_OTLP_ENDPOINT (passed through when set).
# Layout: servers under $DATA (see servers.sh), $DATA/run/<svc>-<i>.pid, $DATA/logs/<svc>-<i>.log,
#   $DATA/secrets/admin.password.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/servers.sh
source "$ROOT/eng/lib/servers.sh"
# shellcheck source=lib/common.sh
source "$ROOT/eng/lib/common.sh"

# --ha may come anywhere on the command line; the other words are the verb and its argument.
ARGS=()
HA="${LIBRARY_PG_STANDBY:-0}"
for a in "$@"; do if [[ "$a" == --ha ]]; then HA=1; else ARGS+=("$a"); fi; done
set -- "${ARGS[@]+"${ARGS[@]}"}"

DATA="$(realpath -m "${LIBRARY_DATA_DIR:-$ROOT/.local/processes}")"
RUN_DIR="$DATA/run"
LOG_DIR="$DATA/logs"
PG_PORT="${LIBRARY_PG_PORT:-55432}"
REDIS_PORT="${LIBRARY_REDIS_PORT:-56379}"
RABBIT_PORT="${LIBRARY_RABBITMQ_PORT:-55672}"
GATEWAY_PORT="${LIBRARY_GATEWAY_PORT:-8080}"
REPLICAS="${LIBRARY_REPLICAS:-2}"
GATEWAY_REPLICAS="${LIBRARY_GATEWAY_REPLICAS:-2}"
GATEWAY_OWN_PORT="${LIBRARY_GATEWAY_OWN_PORT:-$((GATEWAY_PORT + 1))}"
START_TIMEOUT="${LIBRARY_START_TIMEOUT:-180}"
STOP_TIMEOUT="${LIBRARY_STOP_TIMEOUT:-45}"
[[ "$HA" == 1 || -d "$DATA/postgres-2" ]] && HA=1 || HA=0

SERVICES=(userservice bookservice lendingservice)   # started first; the gateway after them
declare -A PROJECT=([userservice]=Library.UserService [bookservice]=Library.BookService
                    [lendingservice]=Library.LendingService [gateway]=Library.Gateway)
declare -A BASE_PORT=([userservice]="${LIBRARY_USERSERVICE_PORT:-5101}"
                      [bookservice]="${LIBRARY_BOOKSERVICE_PORT:-5201}"
                      [lendingservice]="${LIBRARY_LENDINGSERVICE_PORT:-5301}"
                      [gateway]="$GATEWAY_OWN_PORT")   # each gateway's own port; they share GATEWAY_PORT
declare -A CS=()     # connection strings by Aspire resource name (userdb, ..., cache, messaging)
STARTED=()           # instances this invocation started (stopped again if the start fails)

log() { printf '[run] %s\n' "$*" >&2; }
die() { printf '[run] ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$REPLICAS" =~ ^[1-9][0-9]?$ ]] || die "LIBRARY_REPLICAS must be 1..99, not '$REPLICAS'"
[[ "$GATEWAY_REPLICAS" =~ ^[1-9]$ ]] || die "LIBRARY_GATEWAY_REPLICAS must be 1..9, not '$GATEWAY_REPLICAS'"
[[ "$STOP_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "LIBRARY_STOP_TIMEOUT must be whole seconds, not '$STOP_TIMEOUT'"

# ------------------------------------------------------------------------------- instances

# Instance names "<service>-<i>", services first and the gateway replicas last (the start order).
instances() {
  local s i
  for s in "${SERVICES[@]}"; do
    for ((i = 0; i < REPLICAS; i++)); do echo "$s-$i"; done
  done
  for ((i = 0; i < GATEWAY_REPLICAS; i++)); do echo "gateway-$i"; done
}
svc_of() { echo "${1%-*}"; }
port_of() { echo $((BASE_PORT[$(svc_of "$1")] + ${1##*-})); }
dll_of() { local p="${PROJECT[$(svc_of "$1")]}"; echo "$ROOT/$p/bin/Release/net10.0/$p.dll"; }

# pid_of INSTANCE -> prints the pid if its pid file names a live `dotnet <its dll>` process.
# Checking the command line (not just "a process with that pid exists") makes stale pid files
# harmless after a reboot or kill -9, when the number may belong to something else.
pid_of() {
  local pid="" cmd
  [[ -r "$RUN_DIR/$1.pid" ]] && read -r pid <"$RUN_DIR/$1.pid" || true
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ "$cmd" == *" $(dll_of "$1") "* ]] && echo "$pid"
}

port_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

port_owner() { # PORT -> "(held by <process>)" when ss can tell
  local who
  who="$(ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1, pid \2/p' | head -n1)" || true
  [[ -n "$who" ]] && echo " (by $who)"
  return 0
}

# health INSTANCE -> prints Healthy/Degraded/Unhealthy (or "no answer"); 0 only when it is an
# HTTP 200 whose top-level status is Healthy (HealthReportWriter writes "status" first).
health() {
  local out code body
  out="$(curl -s -m 3 -w '\n%{http_code}' "http://127.0.0.1:$(port_of "$1")/health" 2>/dev/null)" \
    || { echo "no answer"; return 1; }
  code="${out##*$'\n'}"; body="${out%$'\n'*}"
  if [[ "$body" =~ ^\{\"status\":\"([A-Za-z]+)\" ]]; then echo "${BASH_REMATCH[1]}"; else echo "HTTP $code"; fi
  [[ "$code" == 200 && "${BASH_REMATCH[1]:-}" == Healthy ]]
}

# ------------------------------------------------------------------------------- configuration

# The first admin's password: LIBRARY_ADMIN_PASSWORD, else generated once and kept (mode 600) so
# the account seeded into userdb keeps matching what we print.
# The lending service's client secret (service tokens), generated once and kept with the data.
client_secret() {
  local f="$DATA/secrets/lending-client.secret"
  if [[ ! -s "$f" ]]; then
    mkdir -p "$DATA/secrets"
    (umask 077; openssl rand -hex 24 2>/dev/null >"$f" || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f")
  fi
  cat "$f"
}

admin_password() {
  local f="$DATA/secrets/admin.password"
  if [[ -n "${LIBRARY_ADMIN_PASSWORD:-}" ]]; then echo "$LIBRARY_ADMIN_PASSWORD"; return; fi
  if [[ ! -s "$f" ]]; then
    mkdir -p "$DATA/secrets" && chmod 700 "$DATA/secrets"
    (umask 077; od -An -vtx1 -N10 /dev/urandom | tr -d ' \n' >"$f")
  fi
  tr -d '[:space:]' <"$f"
}

# Ensures servers, databases and logins exist; fills CS with what Aspire would inject.
prepare_servers() {
  local db
  servers_install
  if [[ "$HA" == 1 ]]; then
    servers_start_all "$DATA" "$PG_PORT" "$REDIS_PORT" "$RABBIT_PORT" ha
  else
    servers_start_all "$DATA" "$PG_PORT" "$REDIS_PORT" "$RABBIT_PORT"
  fi
  for db in userdb:userservice bookdb:bookservice lendingdb:lendingservice; do
    CS[${db%:*}]="$(ha_cs "$(pg_ensure_db "$DATA" "$(pg_primary_port)" "${db%:*}" "${db#*:}")")"
  done
  CS[cache]="$(redis_cs "$DATA" "$REDIS_PORT")"
  CS[messaging]="$(rabbitmq_cs "$DATA" "$RABBIT_PORT")"
  CS[mail]="$(mail_cs "$(mail_ports "$RABBIT_PORT" | cut -d' ' -f1)")"
}

# The port of the node running as primary (node 1 on PG_PORT unless a failover moved it).
pg_primary_port() {
  if [[ "$HA" == 1 ]]; then echo $((PG_PORT + $(pg_primary_node "$DATA") - 1)); else echo "$PG_PORT"; fi
}

# ha_cs CS -> with a standby, the multi-host form: both nodes, and Npgsql picks the primary (and
# finds the new one after a failover: a host it found down or standby is checked again after
# Host Recheck Seconds). Without a standby the string is unchanged.
ha_cs() {
  if [[ "$HA" == 1 ]]; then
    sed -E "s/^Host=127\.0\.0\.1;Port=[0-9]+;/Host=127.0.0.1:$PG_PORT,127.0.0.1:$((PG_PORT + 1));/; s/\$/;Target Session Attributes=primary;Host Recheck Seconds=2/" <<<"$1"
  else
    echo "$1"
  fi
}

# database_share -> each replica's share of the local PostgreSQL's cores for the work that takes
# turns (the catalog's searches, the lending service's requests), as the AppHost gives it
# (RuntimeSettings.DatabaseShare): 2 per core over the replicas, at least 2.
database_share() {
  local share=$(( 2 * $(nproc) / REPLICAS ))
  echo $(( share >= 2 ? share : 2 ))
}

# instance_env INSTANCE -> fills ENVV with the VAR=value list of that process (Aspire's keys).
instance_env() {
  local inst="$1" svc s i
  svc="$(svc_of "$inst")"
  ENVV=("ASPNETCORE_URLS=http://127.0.0.1:$(port_of "$inst")"
        "ASPNETCORE_ENVIRONMENT=${LIBRARY_ENVIRONMENT:-Production}"
        "OTEL_SERVICE_NAME=$svc")
  [[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]] && ENVV+=("OTEL_EXPORTER_OTLP_ENDPOINT=$OTEL_EXPORTER_OTLP_ENDPOINT")
  # The GC's gen0 budget and glibc's malloc arenas, as the AppHost sets them
  # (Library.AppHost/RuntimeSettings.cs says why); environment-only. A caller's values win
  # (DOTNET_GCgen0size=0: the runtime's default; MALLOC_ARENA_MAX=0: glibc's).
  ENVV+=("DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x1000000}" "MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}")
  case "$svc" in
    userservice)    ENVV+=("ConnectionStrings__userdb=${CS[userdb]}" "ConnectionStrings__messaging=${CS[messaging]}"
                           "Library__Admin__Email=${LIBRARY_ADMIN_EMAIL:-admin@library.local}"
                           "Library__Admin__Password=$(admin_password)"
                           "Auth__Clients__lendingservice__Secret=$(client_secret)") ;;
    # The sample catalog is loaded into an empty catalog only (a first run); LIBRARY_CATALOG
    # names another file (bench/generate-catalog.py's output), or "none" for an empty catalog.
    bookservice)    ENVV+=("ConnectionStrings__bookdb=${CS[bookdb]}" "ConnectionStrings__cache=${CS[cache]}"
                           "ConnectionStrings__messaging=${CS[messaging]}")
                    ENVV+=("Catalog__QueryConcurrency=${LIBRARY_CATALOG_QUERY_CONCURRENCY:-$(database_share)}")
                    [[ "${LIBRARY_CATALOG:-}" == none ]] || ENVV+=("Catalog__SeedFile=${LIBRARY_CATALOG:-$ROOT/data/sample-catalog.json}") ;;
    # The lending service's client credentials for its look-ups at the catalog and user service.
    lendingservice) ENVV+=("ConnectionStrings__lendingdb=${CS[lendingdb]}" "ConnectionStrings__messaging=${CS[messaging]}" "ConnectionStrings__mail=${CS[mail]}"
                           "Auth__Client__Id=lendingservice" "Auth__Client__Secret=$(client_secret)"
                           "Lending__RequestConcurrency=${LIBRARY_LENDING_REQUEST_CONCURRENCY:-$(database_share)}") ;;
    # The shared address (SO_REUSEPORT, Gateway:ReusePort) and the process's own one.
    gateway)        ENVV[0]="ASPNETCORE_URLS=http://127.0.0.1:$GATEWAY_PORT;http://127.0.0.1:$(port_of "$inst")"
                    ENVV+=("ConnectionStrings__cache=${CS[cache]}" "Gateway__ReusePort=true") ;;
  esac
  # A shorter drain only where the gateway probes correspondingly faster (the fault suite's stack).
  if [[ "$svc" != gateway && -n "${LIBRARY_SERVICE_DRAIN_SECONDS:-}" ]]; then
    ENVV+=("Shutdown__DrainSeconds=$LIBRARY_SERVICE_DRAIN_SECONDS")
  fi
  # Service discovery: every replica of every service, for every process.
  for s in "${SERVICES[@]}"; do
    for ((i = 0; i < REPLICAS; i++)); do ENVV+=("services__${s}__http__$i=http://127.0.0.1:$((BASE_PORT[$s] + i))"); done
  done
}

# ------------------------------------------------------------------------------- start / stop

# Refuses early (before installing or building anything) when a port we need is held by a
# process that is not ours.
check_ports() {
  local inst p gateways=0
  for inst in $(instances); do
    if pid_of "$inst" >/dev/null; then [[ "$inst" == gateway-* ]] && gateways=$((gateways + 1)); continue; fi
    p="$(port_of "$inst")"
    port_open "$p" && die "port $p (for $inst) is in use by another process$(port_owner "$p"); free it or change LIBRARY_*_PORT"
  done
  # The shared gateway port: ours only while one of our gateways holds it.
  ((gateways > 0)) || ! port_open "$GATEWAY_PORT" || die "port $GATEWAY_PORT (the gateway) is in use by another process$(port_owner "$GATEWAY_PORT"); set LIBRARY_GATEWAY_PORT"
  pg_running "$DATA" || [[ -e "$DATA/postgres/needs-rebuild" ]] || ! port_open "$PG_PORT" || die "port $PG_PORT (postgres) is in use$(port_owner "$PG_PORT"); set LIBRARY_PG_PORT"
  if [[ "$HA" == 1 ]]; then
    pg_running "$DATA" 2 || [[ -e "$DATA/postgres-2/needs-rebuild" ]] || ! port_open $((PG_PORT + 1)) \
      || die "port $((PG_PORT + 1)) (postgres standby) is in use$(port_owner $((PG_PORT + 1))); set LIBRARY_PG_PORT"
  fi
  redis_running "$DATA" || ! port_open "$REDIS_PORT" || die "port $REDIS_PORT (redis) is in use$(port_owner "$REDIS_PORT"); set LIBRARY_REDIS_PORT"
  if ! rabbitmq_running "$DATA"; then
    for p in "$RABBIT_PORT" $((RABBIT_PORT + 1)) $((RABBIT_PORT + 2)); do
      port_open "$p" && die "port $p (rabbitmq uses $RABBIT_PORT..$((RABBIT_PORT + 2))) is in use$(port_owner "$p"); set LIBRARY_RABBITMQ_PORT"
    done
  fi
  if ! maildev_running "$DATA"; then
    for p in $(mail_ports "$RABBIT_PORT"); do
      port_open "$p" && die "port $p (maildev: SMTP and web on RabbitMQ's port +3, +4) is in use$(port_owner "$p"); set LIBRARY_RABBITMQ_PORT or SERVERS_MAIL_SMTP_PORT/SERVERS_MAIL_WEB_PORT"
    done
  fi
  return 0
}

launch() { # INSTANCE -- starts it in the background unless it already runs
  local inst="$1" dll log pidf i
  pid_of "$inst" >/dev/null && return 0
  dll="$(dll_of "$inst")"; log="$LOG_DIR/$inst.log"; pidf="$RUN_DIR/$inst.pid"
  [[ -f "$dll" ]] || die "$dll not found (build first, or drop LIBRARY_NO_BUILD=1)"
  [[ -f "$log" ]] && mv -f "$log" "$log.1"     # keep the previous run's log for a post-mortem
  rm -f "$pidf"
  instance_env "$inst"
  # setsid: own session, so a terminal Ctrl-C reaches only this script, which then stops things
  # in order; nohup: `start` returns and the terminal may close; the ( ... &) double fork: the
  # service is not our child, so bash prints no job notices when it ends. The inner bash writes
  # its own pid and execs dotnet, so the pid file holds dotnet's pid even if setsid has to fork.
  # The working directory is the build output: the content root where appsettings.json lies.
  (cd "$(dirname "$dll")" || exit 1
   setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" env "${ENVV[@]}" dotnet "$dll" </dev/null >>"$log" 2>&1 &)
  for ((i = 0; i < 100; i++)); do [[ -s "$pidf" ]] && break; sleep 0.05; done
  start_boost "$inst" "${LIBRARY_START_NICE:--10}"
  STARTED+=("$inst")
  log "started $inst on http://127.0.0.1:$(port_of "$inst")$([[ "$inst" == gateway-* ]] && echo " and the shared :$GATEWAY_PORT") (pid $(cat "$pidf" 2>/dev/null || echo '?'), log $log)"
}

fail_instance() { # INSTANCE REASON
  printf '[run] ERROR: %s %s. Last 40 lines of %s:\n' "$1" "$2" "$LOG_DIR/$1.log" >&2
  tail -n 40 "$LOG_DIR/$1.log" >&2 2>/dev/null || true
  exit 1
}

# exited INSTANCE -- true when the instance's process is gone: pid_of fails three times over a
# second. Once is not enough: while the launcher execs env and then dotnet (slow on a loaded
# machine), /proc/<pid>/cmdline can read empty, and a starting replica was taken for a dead one.
exited() {
  local i
  for ((i = 0; i < 3; i++)); do
    pid_of "$1" >/dev/null && return 1
    sleep 0.3
  done
  return 0
}

# start_boost INSTANCE NICE -- the CPU weight of the instance's session (its autogroup: each
# instance runs in a session of its own, setsid) while it starts. Linux shares the CPU fairly
# between autogroups, so on this 2-core machine under the fault suite's load a starting replica
# got one share of about a dozen (every other replica, the gateways, PostgreSQL's two nodes,
# RabbitMQ, the load itself): its start, 3 s alone, took 31-38 s (start to Healthy). In a
# deployment a replica has cores of its own. At nice -10 (about 9 times a normal share) until
# its /health is Healthy, the same start under the same load took 6 s; the others keep serving
# meanwhile, on less CPU. Best effort: needs the right to raise a priority (root, CAP_SYS_NICE).
start_boost() {
  local pid="" nice="${2:-0}"
  [[ "${LIBRARY_START_NICE:--10}" == 0 ]] && return 0
  # The pid file's pid, not pid_of's check of the command line: right after the launch it is
  # still the launcher's bash (it execs dotnet under the same pid, in the same session).
  [[ -r "$RUN_DIR/$1.pid" ]] && read -r pid <"$RUN_DIR/$1.pid" || true
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  echo "$nice" >"/proc/$pid/autogroup" 2>/dev/null || true
}

# wait_healthy INSTANCE... -- polls /health until all answer Healthy, one dies, or the deadline;
# each one's start boost (start_boost) ends once it is Healthy.
wait_healthy() {
  local -a pending=("$@") left
  local inst
  while ((${#pending[@]})); do
    left=()
    for inst in "${pending[@]}"; do
      exited "$inst" && fail_instance "$inst" "exited during startup"
      if health "$inst" >/dev/null; then start_boost "$inst" 0; else left+=("$inst"); fi
    done
    pending=("${left[@]+"${left[@]}"}")
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= DEADLINE)); then
      # Those never Healthy keep running (for their logs), at the normal weight again.
      for inst in "${pending[@]}"; do start_boost "$inst" 0; done
      fail_instance "${pending[0]}" "is not healthy after ${START_TIMEOUT} s ($(health "${pending[0]}" || true))"
    fi
    sleep 0.5
  done
}

# stop_instances [INSTANCE...] -- the given instances, or every one with a pid file (whatever
# LIBRARY_REPLICAS is now). SIGTERM first (graceful: /health turns 503 while the process serves
# for Shutdown:DrainSeconds, then in-flight requests and events finish), up to LIBRARY_STOP_TIMEOUT,
# then SIGKILL. "Alive" is pid_of, not kill -0: an exited service is re-parented to
# init and may linger as a zombie, which kill -0 still finds.
stop_instances() {
  local f inst pid i
  local -a insts=("$@") left
  if ((${#insts[@]} == 0)); then
    for f in "$RUN_DIR"/*.pid; do [[ -e "$f" ]] && insts+=("$(basename "$f" .pid)"); done
  fi
  local -a all=("${insts[@]+"${insts[@]}"}")
  for inst in "${all[@]+"${all[@]}"}"; do
    if pid="$(pid_of "$inst")"; then log "stopping $inst (pid $pid)"; kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for ((i = 0; i <= STOP_TIMEOUT * 10; i++)); do
    left=()
    for inst in "${insts[@]+"${insts[@]}"}"; do pid_of "$inst" >/dev/null && left+=("$inst"); done
    insts=("${left[@]+"${left[@]}"}")
    ((${#insts[@]})) || break
    sleep 0.1
  done
  for inst in "${insts[@]+"${insts[@]}"}"; do
    if pid="$(pid_of "$inst")"; then log "$inst (pid $pid) ignored SIGTERM for $STOP_TIMEOUT s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
  for inst in "${all[@]+"${all[@]}"}"; do rm -f "$RUN_DIR/$inst.pid"; done
}

pg_all_running() { # every node (both with a standby) runs
  if [[ "$HA" == 1 ]]; then pg_running "$DATA" 1 && pg_running "$DATA" 2; else pg_running "$DATA"; fi
}

ms() { echo $((${EPOCHREALTIME/./} / 1000)); }          # wall clock in milliseconds
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); } # 12345 -> 12.3

start_all() { # -> everything up and healthy, or exit non-zero
  local t0 tb build_ms=0 build="skipped" inst running=0 total=0 all_up=""
  t0="$(ms)"
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  for inst in $(instances); do total=$((total + 1)); pid_of "$inst" >/dev/null && running=$((running + 1)); done
  if ((running == total)) && pg_all_running && redis_running "$DATA" && rabbitmq_running "$DATA" && maildev_running "$DATA"; then
    log "already running ($DATA); checking health"
    all_up=yes
  else
    check_ports
    prepare_servers
    log "servers ready after $(secs $(($(ms) - t0))) s"
    if ((running > 0)); then
      # MSBuild would overwrite the DLLs the running replicas have loaded.
      log "$running of $total processes already run: not rebuilding (eng/processes.sh stop first to pick up changes)"
    elif [[ "${LIBRARY_NO_BUILD:-0}" != 1 ]]; then
      tb="$(ms)"
      log "building (Release)"
      library_build_settings; dotnet build "$ROOT/Library.sln" -c Release -nologo -clp:ErrorsOnly
      build_ms=$(($(ms) - tb)); build="$(secs "$build_ms") s"
    fi
  fi
  DEADLINE=$((SECONDS + START_TIMEOUT))
  local -a svcs=() gws=()
  for inst in $(instances); do if [[ "$inst" == gateway-* ]]; then gws+=("$inst"); else svcs+=("$inst"); fi; done
  [[ -n "$all_up" ]] || for inst in "${svcs[@]}"; do launch "$inst"; done
  # Like Aspire's WaitFor: the gateway starts once its destinations are healthy, so its first
  # active health probes do not mark them down (and route 503s) for the first seconds.
  wait_healthy "${svcs[@]}"
  [[ -n "$all_up" ]] || log "services healthy after $(secs $(($(ms) - t0 - build_ms))) s (build excluded)"
  [[ -n "$all_up" ]] || for inst in "${gws[@]}"; do launch "$inst"; done
  wait_healthy "${gws[@]}"
  STARTED=()
  summary "$(secs $(($(ms) - t0 - build_ms)))" "$build" "$all_up"   # start time excludes the build
}

summary() { # SECONDS BUILD ALREADY
  local inst pwfile="$DATA/secrets/admin.password"
  [[ -n "${LIBRARY_ADMIN_PASSWORD:-}" ]] && pwfile="LIBRARY_ADMIN_PASSWORD"
  echo
  echo "Library is up (data: $DATA)"
  printf '  %-16s %s\n' gateway "http://127.0.0.1:$GATEWAY_PORT   (try: curl http://127.0.0.1:$GATEWAY_PORT/api/books; $GATEWAY_REPLICAS processes share it)"
  for inst in $(instances); do
    printf '  %-16s http://127.0.0.1:%s%s\n' "$inst" "$(port_of "$inst")" "$([[ "$inst" == gateway-* ]] && echo "  (this gateway process only)")"
  done
  echo "  every process: /health (readiness, JSON) and /alive; each service: /openapi/v1.json"
  printf '  %-16s %s\n' postgres "127.0.0.1:$PG_PORT$([[ "$HA" == 1 ]] && echo ",127.0.0.1:$((PG_PORT + 1)) (primary node $(pg_primary_node "$DATA"), synchronous standby)")  (databases userdb, bookdb, lendingdb; passwords in $DATA/secrets)" \
    redis "127.0.0.1:$REDIS_PORT" rabbitmq "amqp://127.0.0.1:$RABBIT_PORT  (vhost library, user library)" \
    admin "${LIBRARY_ADMIN_EMAIL:-admin@library.local} / $(admin_password)  (kept in $pwfile)" \
    logs "$LOG_DIR  (eng/processes.sh logs [service])"
  if [[ -n "$3" ]]; then echo "Already running; all healthy."; else echo "Started in $1 s (build $2)."; fi
}

# ------------------------------------------------------------------------------- verbs

cmd_start() {
  # A failed start leaves no half-started replicas behind (the servers stay: cheap to reuse).
  trap 'rc=$?; trap - EXIT; if ((rc != 0 && ${#STARTED[@]})); then stop_instances "${STARTED[@]}"; fi; exit $rc' EXIT
  trap 'exit 130' INT TERM
  start_all
  echo "Stop with: eng/processes.sh stop"
}

cmd_restart() {
  stop_instances
  cmd_start
}

# In waves, so every service keeps a replica serving: wave i is replica i of every service named
# (as a rollout of several deployments runs side by side: each service loses one replica at a
# time, not the Library one process at a time), then each gateway process alone (they share one
# port). Per wave: SIGTERM (each drains), their exit, start them again, their /health Healthy,
# then LIBRARY_ROLLING_SETTLE seconds so that the gateway's active health check (every 2 s) has
# seen them back before the next wave stops their siblings. Stops at the first wave that does not
# come back (the rest keep running).
cmd_rolling_restart() {
  local which="${1:-all}" inst t0 t1 t2 t3 i n=0 settle="${LIBRARY_ROLLING_SETTLE:-3}"
  local -a todo=() wave waves=()
  case "$which" in
    all) mapfile -t todo < <(instances) ;;
    services) mapfile -t todo < <(instances | grep -v '^gateway-') ;;
    userservice | bookservice | lendingservice | gateway) mapfile -t todo < <(instances | grep "^$which-") ;;
    *) die "usage: eng/processes.sh rolling-restart [all|services|userservice|bookservice|lendingservice|gateway]" ;;
  esac
  for inst in $(instances); do
    pid_of "$inst" >/dev/null || die "$inst is not running: 'eng/processes.sh start' first (it also starts what died)"
  done
  ((REPLICAS > 1)) || [[ "$which" == gateway ]] || log "WARNING: LIBRARY_REPLICAS=1: each service is down while its one replica restarts"
  ((GATEWAY_REPLICAS > 1)) || [[ "$which" != all && "$which" != gateway ]] || log "WARNING: LIBRARY_GATEWAY_REPLICAS=1: the gateway is down while it restarts"
  for ((i = 0; i < REPLICAS; i++)); do
    wave=()
    for inst in "${todo[@]}"; do [[ "$inst" != gateway-* && "${inst##*-}" == "$i" ]] && wave+=("$inst"); done
    ((${#wave[@]} == 0)) || waves+=("${wave[*]}")
  done
  for inst in "${todo[@]}"; do [[ "$inst" != gateway-* ]] || waves+=("$inst"); done
  prepare_servers   # the servers run already; this fills in the connection strings
  t0="$(ms)"
  for i in "${waves[@]}"; do
    read -ra wave <<<"$i"
    t1="$(ms)"
    stop_instances "${wave[@]}"
    t2="$(ms)"
    DEADLINE=$((SECONDS + START_TIMEOUT))
    for inst in "${wave[@]}"; do launch "$inst"; done
    wait_healthy "${wave[@]}"
    t3="$(ms)"
    STARTED=()
    [[ "${wave[0]}" == gateway-* ]] || sleep "$settle"
    for inst in "${wave[@]}"; do
      n=$((n + 1))
      log "$inst restarted and healthy in $(secs $(($(ms) - t1))) s (stop $(secs $((t2 - t1))) s, start to Healthy $(secs $((t3 - t2))) s; $n of ${#todo[@]})"
    done
  done
  log "rolling restart of ${#todo[@]} processes in ${#waves[@]} waves done in $(secs $(($(ms) - t0))) s"
}

cmd_stop() {
  stop_instances
  servers_stop_all "$DATA"
  log "stopped ($DATA)"
}

cmd_foreground() {
  local inst tail_pid
  local -A reported=()
  for inst in $(instances); do
    pid_of "$inst" >/dev/null && die "already running ($inst, from 'start' or another foreground run); use 'eng/processes.sh logs', or 'eng/processes.sh stop' first"
  done
  # Whatever happens (Ctrl-C, SIGTERM, a failed start): stop the services, then the servers.
  trap 'rc=$?; trap - EXIT INT TERM; [[ -n "${tail_pid:-}" ]] && kill "$tail_pid" 2>/dev/null; echo >&2
        log "shutting down"; stop_instances; servers_stop_all "$DATA" || true; exit $rc' EXIT
  trap 'exit 130' INT TERM
  start_all
  echo "Following the logs; Ctrl-C stops everything."
  tail -n 0 -F "$LOG_DIR"/*.log &
  tail_pid=$!
  while true; do
    sleep 2 & wait $! || true   # `wait` returns at once when a trapped signal arrives
    for inst in $(instances); do
      if ! pid_of "$inst" >/dev/null && [[ -z "${reported[$inst]:-}" ]]; then
        reported[$inst]=1; log "WARNING: $inst has exited (log: $LOG_DIR/$inst.log)"
      fi
    done
  done
}

cmd_status() {
  local inst pid state h rc=0 f
  echo "Library processes (data: $DATA)"
  for inst in $(instances); do
    if pid="$(pid_of "$inst")"; then
      state="running (pid $pid)"; h="$(health "$inst")" || rc=3
    else
      state="not running"; h="-"; rc=3
    fi
    printf '  %-16s %-22s http://127.0.0.1:%-6s health: %s\n' "$inst" "$state" "$(port_of "$inst")" "$h"
  done
  for f in "$RUN_DIR"/*.pid; do    # replicas started with a larger LIBRARY_REPLICAS
    inst="$(basename "$f" .pid)"
    [[ -e "$f" ]] && ! grep -qx "$inst" <(instances) && pid="$(pid_of "$inst")" || continue
    printf '  %-16s running (pid %s), beyond LIBRARY_REPLICAS=%s (stop stops it)\n' "$inst" "$pid" "$REPLICAS"
  done
  echo "Servers"
  if [[ "$HA" == 1 ]]; then
    pg_ha_status "$DATA" | sed 's/^/  postgres /'
    pg_primary_node "$DATA" >/dev/null 2>&1 || rc=3
  else
    printf '  %-16s %s\n' postgres "$(pg_running "$DATA" && echo "running  127.0.0.1:$PG_PORT" || echo "not running")"
  fi
  printf '  %-16s %s\n' redis "$(redis_running "$DATA" && echo "running  127.0.0.1:$REDIS_PORT" || echo "not running")"
  printf '  %-16s %s\n' rabbitmq "$(rabbitmq_running "$DATA" && echo "running  127.0.0.1:$RABBIT_PORT" || echo "not running")"
  printf '  %-16s %s\n' maildev "$(maildev_running "$DATA" && echo "running  smtp 127.0.0.1:$(mail_ports "$RABBIT_PORT" | cut -d' ' -f1), web http://127.0.0.1:$(mail_ports "$RABBIT_PORT" | cut -d' ' -f2)" || echo "not running")"
  pg_all_running && redis_running "$DATA" && rabbitmq_running "$DATA" && maildev_running "$DATA" || rc=3
  if rabbitmq_running "$DATA"; then
    # Events each service's queue holds, and what failed for good (read them with
    # rabbitmq_ctl ... or the management UI under the AppHost).
    echo "Event queues (messages waiting)"
    rabbitmq_ctl "$DATA" list_queues -q -p library name messages 2>/dev/null \
      | awk 'NF == 2 && $1 != "name" { printf "  %-30s %s%s\n", $1, $2, ($1 ~ /dead-letter$/ && $2 > 0) ? "  <- dead letters: see why in the service log" : "" }' \
      | sort
  fi
  return $rc
}

cmd_logs() {
  local -a files=()
  case "${1:-}" in
    "") files=("$LOG_DIR"/*.log) ;;
    userservice | bookservice | lendingservice | gateway) files=("$LOG_DIR/$1"-*.log) ;;
    *) die "unknown service '$1' (userservice|bookservice|lendingservice|gateway)" ;;
  esac
  [[ -e "${files[0]}" ]] || die "no logs in $LOG_DIR yet (eng/processes.sh start first)"
  exec tail -n 20 -F "${files[@]}"
}

need_standby() { [[ "$HA" == 1 ]] || die "no standby in $DATA: start with 'eng/processes.sh --ha start' (or LIBRARY_PG_STANDBY=1)"; }

cmd_failover() {
  need_standby
  pg_failover "$DATA"
  log "primary is now node $(pg_primary_node "$DATA") (127.0.0.1:$(pg_primary_port)); services reconnect by themselves"
  log "no standby until: eng/processes.sh rebuild-standby"
}

cmd_rebuild_standby() {
  need_standby
  pg_rebuild_standby "$DATA" "$PG_PORT"
}

cmd_sync() {
  need_standby
  case "${1:-}" in on | off) pg_sync "$DATA" "$1" ;; *) die "usage: eng/processes.sh sync on|off" ;; esac
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

case "${1:-}" in
  "") cmd_foreground ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_restart ;;
  rolling-restart) cmd_rolling_restart "${2:-}" ;;
  status) cmd_status ;;
  logs) cmd_logs "${2:-}" ;;
  failover) cmd_failover ;;
  rebuild-standby) cmd_rebuild_standby ;;
  sync) cmd_sync "${2:-}" ;;
  help | -h | --help) usage ;;
  *) usage >&2; printf "\n[run] ERROR: unknown verb '%s'\n" "$1" >&2; exit 2 ;;
esac
