#!/usr/bin/env bash
# Start the local services Nubo uses, when they are not already answering.
#
#   scripts/services.sh start-redis      Redis at REDIS_URL (default redis://127.0.0.1:6379/0)
#   scripts/services.sh start-postgres   PostgreSQL at DATABASE_URL (default
#                                        postgresql://postgres@127.0.0.1:5432/nubo), then create
#                                        its role and database when they are missing
#   scripts/services.sh start-libvirtd   virtlogd + libvirtd for qemu:///system on this machine (root),
#                                        after writing the qemu.conf settings guests need here
#   scripts/services.sh status           one line per service
#
# Idempotent: a service that answers is left alone. Only services on this machine are started;
# for a remote URL the script only checks that it answers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_DIR="$PWD"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

REDIS_WAIT_SECONDS=10
POSTGRES_WAIT_SECONDS=30
LIBVIRT_WAIT_SECONDS=30

# --- Redis -------------------------------------------------------------------------------------

start_redis() {
    local url="${REDIS_URL:-$DEFAULT_REDIS_URL}"
    redis_answers "$url" && return 0
    parse_url "$url" || die "REDIS_URL is not a URL: $url"
    local host="${URL_HOST:-127.0.0.1}" port="${URL_PORT:-6379}"
    is_local_host "$host" ||
        die "no Redis answers at $url. Start that server, or unset REDIS_URL to use a local one."
    have redis-server ||
        die "no Redis answers at $url and redis-server is not installed: run 'make deps' as root, or: sudo apt-get install -y redis-server"

    local log="$REPO_DIR/var/log/redis.log" auth=()
    mkdir -p "$REPO_DIR/var/log"
    [ -n "$URL_PASSWORD" ] && auth=(--requirepass "$URL_PASSWORD")
    say "Starting redis-server on port $port (log: var/log/redis.log)"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no \
        --logfile "$log" "${auth[@]}" ||
        die "redis-server failed to start; see $log"
    wait_until "$REDIS_WAIT_SECONDS" redis_answers "$url" ||
        die "redis-server started but did not answer at $url within ${REDIS_WAIT_SECONDS} s; see $log"
}

# --- PostgreSQL --------------------------------------------------------------------------------

pg_parse() {
    PG_URL="${DATABASE_URL:-$DEFAULT_TEST_DATABASE_URL}"
    parse_url "$PG_URL" || die "DATABASE_URL is not a URL: $PG_URL"
    case "$URL_SCHEME" in
        postgres | postgresql) ;;
        *) die "DATABASE_URL must be a postgresql:// URL here, not $URL_SCHEME://" ;;
    esac
    PG_HOST="${URL_HOST:-127.0.0.1}"
    PG_PORT="${URL_PORT:-5432}"
    PG_USER="${URL_USER:-postgres}"
    PG_PASSWORD="$URL_PASSWORD"
    PG_DB="${URL_PATH:-nubo}"
}

# The local cluster (version and name) that listens on PG_PORT, from Debian's pg_lsclusters;
# creates the default cluster when the server package is installed but has none.
pg_local_cluster() {
    local cluster version
    cluster="$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2; exit }')"
    if [ -z "$cluster" ] && [ -z "$(pg_lsclusters -h 2>/dev/null)" ] && [ "$PG_PORT" = 5432 ] && is_root; then
        version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" 2>/dev/null | sort -V | tail -n 1)"
        [ -n "$version" ] || die "no PostgreSQL server found under /usr/lib/postgresql"
        say "Creating PostgreSQL cluster $version/main" >&2
        pg_createcluster "$version" main >&2
        cluster="$version main"
    fi
    [ -n "$cluster" ] ||
        die "no local PostgreSQL cluster listens on port $PG_PORT (pg_lsclusters: $(pg_lsclusters -h 2>/dev/null | awk '{print $1 "/" $2 ":" $3}' | tr '\n' ' '))"
    printf '%s\n' "$cluster"
}

pg_start_local() {
    { have pg_ctlcluster && have pg_lsclusters; } ||
        die "no PostgreSQL answers at $PG_HOST:$PG_PORT and the server is not installed: run 'make deps' as root, or: sudo apt-get install -y postgresql"
    local cluster version name
    cluster="$(pg_local_cluster)"
    read -r version name <<<"$cluster"
    say "Starting PostgreSQL cluster $version/$name on port $PG_PORT"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start ||
        die "pg_ctlcluster could not start $version/$name; see /var/log/postgresql/postgresql-$version-$name.log"
    wait_until "$POSTGRES_WAIT_SECONDS" pg_answers "$PG_HOST" "$PG_PORT" ||
        die "PostgreSQL $version/$name started but did not answer at $PG_HOST:$PG_PORT within ${POSTGRES_WAIT_SECONDS} s; see /var/log/postgresql/postgresql-$version-$name.log"
}

# pg_try_url: connect with DATABASE_URL itself; the error text goes to PG_ERROR.
pg_try_url() {
    PG_ERROR="$(PGCONNECT_TIMEOUT=5 psql "$PG_URL" -wXqtA -c 'SELECT 1' </dev/null 2>&1 >/dev/null)" && return 0
    return 1
}

# pg_psql ARGS...: psql with the URL's password (if any) and a connect timeout.
pg_psql() {
    if [ -n "$PG_PASSWORD" ]; then
        PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=5 psql "$@"
    else
        PGCONNECT_TIMEOUT=5 psql "$@"
    fi
}

# pg_admin: run SQL from stdin (psql variables u, p, d set) as someone allowed to create roles
# and databases: the URL's own user on database "postgres", else (root, local server) the
# postgres OS user over the Unix socket.
pg_admin() {
    local vars=(-v "u=$PG_USER" -v "p=$PG_PASSWORD" -v "d=$PG_DB" -v ON_ERROR_STOP=1 -XqtA)
    local conn=(-h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres)
    if pg_psql "${conn[@]}" -wXqtA -c 'SELECT 1' </dev/null >/dev/null 2>&1; then
        pg_psql "${conn[@]}" -w "${vars[@]}"
    elif is_root && is_local_host "$PG_HOST" && id postgres >/dev/null 2>&1; then
        (cd / && runuser -u postgres -- psql -p "$PG_PORT" "${vars[@]}")
    else
        return 1
    fi
}

pg_ensure_role_and_database() {
    pg_try_url && return 0
    local first_error="$PG_ERROR" exists
    exists="$(pg_admin <<<"SELECT count(*) FROM pg_roles WHERE rolname = :'u';")" ||
        die "cannot connect to $PG_URL ($first_error) and cannot connect as an administrator to create its role and database. Create them yourself, or set DATABASE_URL to a database you can use."
    if [ "$exists" = 0 ]; then
        say "Creating PostgreSQL role $PG_USER"
        if [ -n "$PG_PASSWORD" ]; then
            pg_admin <<<"CREATE ROLE :\"u\" LOGIN CREATEDB PASSWORD :'p';"
        else
            pg_admin <<<"CREATE ROLE :\"u\" LOGIN CREATEDB;"
        fi
    fi
    exists="$(pg_admin <<<"SELECT count(*) FROM pg_database WHERE datname = :'d';")"
    if [ "$exists" = 0 ]; then
        say "Creating PostgreSQL database $PG_DB (owner $PG_USER)"
        pg_admin <<<"CREATE DATABASE :\"d\" OWNER :\"u\";"
    fi
    pg_try_url && return 0

    # Debian's default pg_hba.conf asks for a password over TCP; a URL without one (the default
    # postgresql://postgres@127.0.0.1:5432/nubo) then cannot log in. On a local server, as root,
    # let that one role in from loopback without a password.
    if [[ $PG_ERROR == *"password authentication failed"* || $PG_ERROR == *"no password supplied"* ]] &&
        [ -z "$PG_PASSWORD" ] && is_root && is_local_host "$PG_HOST"; then
        local hba marker="# added by Nubo scripts/services.sh: passwordless loopback login for the test database"
        hba="$(cd / && runuser -u postgres -- psql -p "$PG_PORT" -XqtA -c 'SHOW hba_file')"
        if ! grep -qF "$marker" "$hba"; then
            say "Allowing role $PG_USER to log in without a password from 127.0.0.1 and ::1 ($hba)"
            {
                printf '%s\n' "$marker"
                printf 'host all %s 127.0.0.1/32 trust\n' "$PG_USER"
                printf 'host all %s ::1/128 trust\n' "$PG_USER"
                cat "$hba"
            } >"$hba.nubo-new"
            chown --reference="$hba" "$hba.nubo-new"
            chmod --reference="$hba" "$hba.nubo-new"
            mv "$hba.nubo-new" "$hba"
            (cd / && runuser -u postgres -- psql -p "$PG_PORT" -XqtA -c 'SELECT pg_reload_conf()' >/dev/null)
            sleep 0.5
        fi
        pg_try_url && return 0
    fi
    die "cannot connect to $PG_URL: $PG_ERROR"
}

start_postgres() {
    pg_parse
    have psql ||
        die "psql is not installed: run 'make deps' as root, or: sudo apt-get install -y postgresql-client"
    if ! pg_answers "$PG_HOST" "$PG_PORT"; then
        is_local_host "$PG_HOST" ||
            die "no PostgreSQL answers at $PG_HOST:$PG_PORT. Start that server, or set DATABASE_URL to one that runs."
        pg_start_local
    fi
    pg_ensure_role_and_database
}

# --- libvirtd ----------------------------------------------------------------------------------
# No systemd here: the daemons are started by hand, in the order ../shared/notes/platform.md
# measured (virtlogd, then libvirtd), with what they expect a package's maintainer scripts or
# systemd units to have prepared: the libvirt-qemu user and its groups, log and run directories.

LIBVIRT_URI="qemu:///system"
QEMU_CONF=/etc/libvirt/qemu.conf
QEMU_CONF_MARKER="# Set by Nubo scripts/services.sh start-libvirtd (guests run as root: no per-define QEMU re-probe)"
# Guests run as root: with no udev, /dev/kvm stays root-only, and guests run as libvirt-qemu make
# libvirt re-probe QEMU on every define (about 8 s each instead of about 20 ms).
QEMU_CONF_SETTINGS=(
    'user = "root"'
    'group = "root"'
    'dynamic_ownership = 0'
    'remember_owner = 0'
    'security_driver = "none"'
)

libvirt_answers() {
    timeout 5 virsh -c "$LIBVIRT_URI" version >/dev/null 2>&1
}

# daemon_pid NAME: the pid of a running NAME (virtlogd, libvirtd) from its pid file, or nothing.
daemon_pid() {
    local pid
    pid="$(cat "/run/$1.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] &&
        printf '%s\n' "$pid"
    return 0
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }
no_libvirtd_process() { ! pgrep -x libvirtd >/dev/null; }

libvirt_ensure_accounts() {
    local g
    for g in kvm libvirt-qemu; do
        getent group "$g" >/dev/null || { say "Creating group $g"; groupadd --system "$g"; }
    done
    if ! id libvirt-qemu >/dev/null 2>&1; then
        say "Creating user libvirt-qemu (libvirtd resolves it even when qemu.conf says root)"
        useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
            --gid libvirt-qemu --groups kvm libvirt-qemu
    fi
    mkdir -p /var/log/libvirt/qemu /run/libvirt /var/lib/libvirt/qemu /var/lib/libvirt/images /var/cache/libvirt
}

# qemu_conf_wanted: qemu.conf as it should be, on stdout: the current file without any
# uncommented line setting one of our keys (libvirt takes a key's first value), plus our block.
qemu_conf_wanted() {
    local keys=() setting
    for setting in "${QEMU_CONF_SETTINGS[@]}"; do keys+=("${setting%% *}"); done
    if [ -f "$QEMU_CONF" ]; then
        awk -v keys="${keys[*]}" -v marker="$QEMU_CONF_MARKER" '
            BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) ours[k[i]] = 1 }
            $0 == marker { next }
            { line = $0; sub(/^[ \t]+/, "", line); split(line, f, /[ \t=]+/) }
            (f[1] in ours) && line !~ /^#/ { next }
            { print }' "$QEMU_CONF"
    fi
    printf '%s\n' "$QEMU_CONF_MARKER" "${QEMU_CONF_SETTINGS[@]}"
}

# libvirt_write_qemu_conf: write qemu.conf when it differs; true when it changed.
libvirt_write_qemu_conf() {
    local wanted
    wanted="$(qemu_conf_wanted)"
    [ -f "$QEMU_CONF" ] && [ "$wanted" = "$(cat "$QEMU_CONF")" ] && return 1
    say "Writing guest settings to $QEMU_CONF (${QEMU_CONF_SETTINGS[*]})"
    mkdir -p "$(dirname "$QEMU_CONF")"
    printf '%s\n' "$wanted" >"$QEMU_CONF.nubo-new"
    mv "$QEMU_CONF.nubo-new" "$QEMU_CONF"
    return 0
}

# libvirt_install_hook: Nubo's network hook (scripts/libvirt-network-hook: puts the zone's guest
# uplink into a shared-segment bridge) as /etc/libvirt/hooks/network.d/nubo; true when it changed
# (libvirtd reads its hooks when it starts).
NETWORK_HOOK=/etc/libvirt/hooks/network.d/nubo
libvirt_install_hook() {
    local source
    source=scripts/libvirt-network-hook  # the script cds to the checkout first
    [ -f "$NETWORK_HOOK" ] && cmp -s "$source" "$NETWORK_HOOK" && return 1
    say "Installing Nubo's libvirt network hook as $NETWORK_HOOK"
    mkdir -p "$(dirname "$NETWORK_HOOK")"
    install -m 0755 "$source" "$NETWORK_HOOK.nubo-new"
    mv "$NETWORK_HOOK.nubo-new" "$NETWORK_HOOK"
    return 0
}

start_libvirtd() {
    if ! is_root; then
        libvirt_answers && return 0
        local why
        why="$(timeout 5 virsh -c "$LIBVIRT_URI" version 2>&1 | grep -i error | tail -n 1 || true)"
        die "$LIBVIRT_URI does not answer ${why:+($why) }for user $(id -un); starting or configuring libvirtd needs root: sudo scripts/services.sh start-libvirtd"
    fi
    { have libvirtd && have virtlogd && have virsh; } ||
        die "libvirt is not installed: run 'make deps' as root, or: scripts/setup-system.sh libvirt"

    libvirt_ensure_accounts
    local conf_changed=0 pid
    libvirt_write_qemu_conf && conf_changed=1
    libvirt_install_hook && conf_changed=1

    pid="$(daemon_pid libvirtd)"
    if [ -n "$pid" ] && ((conf_changed)); then
        say "Restarting libvirtd (pid $pid) to apply $QEMU_CONF and $NETWORK_HOOK"
        kill -TERM "$pid"
        wait_until 15 pid_gone "$pid" ||
            die "libvirtd (pid $pid) did not exit within 15 s after SIGTERM; stop it, then run this again"
        pid=""
    fi

    if [ -z "$(daemon_pid virtlogd)" ]; then
        say "Starting virtlogd (log: /var/log/libvirt/virtlogd.log)"
        LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/virtlogd.log" virtlogd -d ||
            die "virtlogd failed to start; see /var/log/libvirt/virtlogd.log"
    fi
    if [ -z "$pid" ] && pgrep -x libvirtd >/dev/null && ! libvirt_answers; then
        # A libvirtd without a pid file that does not answer is one shutting down: let it finish.
        wait_until 15 no_libvirtd_process ||
            die "a libvirtd process (pid $(pgrep -x libvirtd | tr '\n' ' ')) runs but does not answer at $LIBVIRT_URI; stop it, then run this again"
    fi
    if [ -z "$pid" ]; then
        if pgrep -x libvirtd >/dev/null; then
            # A libvirtd without our pid file (started by someone else): leave it, but say so.
            say "A libvirtd without /run/libvirtd.pid is running; using it as it is$( ((conf_changed)) && printf "%s" " (restart it to apply $QEMU_CONF and $NETWORK_HOOK)")"
        else
            say "Starting libvirtd (log: /var/log/libvirt/libvirtd.log)"
            LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/libvirtd.log" libvirtd -d ||
                die "libvirtd failed to start; see /var/log/libvirt/libvirtd.log"
        fi
    fi
    # A deadline rather than wait_until's count of tries: one try can itself take seconds (the
    # first connection after a start probes QEMU's capabilities).
    local deadline=$((SECONDS + LIBVIRT_WAIT_SECONDS))
    until libvirt_answers; do
        ((SECONDS < deadline)) || die "libvirtd is running but 'virsh -c $LIBVIRT_URI version' did not answer within ${LIBVIRT_WAIT_SECONDS} s: $(timeout 5 virsh -c "$LIBVIRT_URI" version 2>&1 | tail -n 1); see /var/log/libvirt/libvirtd.log"
        sleep 0.2
    done
}

# --- status ------------------------------------------------------------------------------------

status() {
    local url="${REDIS_URL:-$DEFAULT_REDIS_URL}"
    if redis_answers "$url"; then say "redis     OK    $url"; else say "redis     DOWN  $url"; fi
    pg_parse
    if pg_answers "$PG_HOST" "$PG_PORT"; then
        say "postgres  OK    $PG_HOST:$PG_PORT"
    else
        say "postgres  DOWN  $PG_HOST:$PG_PORT"
    fi
    if have virsh && libvirt_answers; then say "libvirtd  OK    $LIBVIRT_URI"; else say "libvirtd  DOWN  $LIBVIRT_URI"; fi
}

case "${1:-}" in
    start-redis) start_redis ;;
    start-postgres) start_postgres ;;
    start-libvirtd) start_libvirtd ;;
    status) status ;;
    *)
        say "usage: $0 start-redis|start-postgres|start-libvirtd|status" >&2
        exit 2
        ;;
esac
