# Shared helpers for scripts/setup-system.sh and scripts/services.sh (sourced, not run).
# shellcheck shell=bash disable=SC2034,SC2016  # variables are used by the scripts that source this

DEFAULT_REDIS_URL="redis://127.0.0.1:6379/0"
DEFAULT_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/nubo"

say() { printf '%s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# url_decode STRING: undo %XX escapes (passwords in URLs).
url_decode() { local s="${1//+/ }"; printf '%b' "${s//%/\\x}"; }

# parse_url URL: sets URL_SCHEME URL_USER URL_PASSWORD URL_HOST URL_PORT URL_PATH
# (scheme://[user[:password]@]host[:port][/path][?query]; IPv6 hosts in brackets).
parse_url() {
    local url="$1" re='^([A-Za-z0-9+.-]+)://(([^:@/]*)(:([^@/]*))?@)?(\[[^]/]*\]|[^:/?]*)(:([0-9]*))?(/([^?#]*))?'
    URL_SCHEME="" URL_USER="" URL_PASSWORD="" URL_HOST="" URL_PORT="" URL_PATH=""
    [[ $url =~ $re ]] || return 1
    URL_SCHEME="${BASH_REMATCH[1]}"
    URL_USER="$(url_decode "${BASH_REMATCH[3]}")"
    URL_PASSWORD="$(url_decode "${BASH_REMATCH[5]}")"
    URL_HOST="${BASH_REMATCH[6]}"
    URL_HOST="${URL_HOST#[}"
    URL_HOST="${URL_HOST%]}"
    URL_PORT="${BASH_REMATCH[8]}"
    URL_PATH="$(url_decode "${BASH_REMATCH[10]}")"
}

# is_local_host HOST: true for this machine's loopback names.
is_local_host() {
    case "$1" in
        "" | localhost | 127.0.0.1 | ::1 | "$(hostname 2>/dev/null)") return 0 ;;
        *) return 1 ;;
    esac
}

# tcp_open HOST PORT: true when something accepts a TCP connection (2 s limit).
tcp_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# redis_answers URL: true when a Redis server answers PING at URL (an authentication
# error also counts: something that speaks Redis is there).
redis_answers() {
    local url="$1" reply
    parse_url "$url" || die "REDIS_URL is not a URL: $url"
    local host="${URL_HOST:-127.0.0.1}" port="${URL_PORT:-6379}"
    if have redis-cli; then
        reply="$(timeout 3 redis-cli -u "$url" --no-auth-warning ping 2>&1 || true)"
        [[ $reply == PONG || $reply == *NOAUTH* || $reply == *WRONGPASS* || $reply == *"AUTH failed"* ]]
        return
    fi
    reply="$(timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "PING\r\n" >&3 && head -c 1 <&3' _ "$host" "$port" 2>/dev/null || true)"
    [[ $reply == "+" || $reply == "-" ]]
}

# pg_answers HOST PORT: true when a PostgreSQL server accepts connections there.
pg_answers() {
    if have pg_isready; then
        pg_isready -q -h "$1" -p "$2" -t 3
    else
        tcp_open "$1" "$2"
    fi
}

# wait_until SECONDS COMMAND...: poll COMMAND every 0.2 s until it succeeds or time runs out.
wait_until() {
    local limit="$1" tries
    shift
    tries=$((limit * 5))
    while ((tries-- > 0)); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
