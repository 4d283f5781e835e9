#!/usr/bin/env bash
# Install the Debian packages Nubo needs on this machine, and only those that are missing.
#
#   scripts/setup-system.sh [component ...]     (no argument: every component)
#
# Components: python node redis postgres chromium nginx libvirt nfs images. Each has a function `component_<name>` that
# checks what is already there and calls `want` for the packages still needed; nothing is installed
# when nothing is missing (no apt-get update either). As root, the missing packages are installed
# with one `apt-get update` and one `apt-get install`; otherwise the script prints the command to run
# and exits with status 1.
#
# Environment: PYTHON (interpreter for the virtualenv, default python3.11), REDIS_URL,
# DATABASE_URL (PostgreSQL for the tests), NUBO_SKIP_SYSTEM_PACKAGES=1 (check nothing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ALL_COMPONENTS=(python node redis postgres chromium nginx libvirt nfs images)
PACKAGES=()
REASONS=()

# want REASON PACKAGE...: record packages to install and why.
want() {
    REASONS+=("$1")
    shift
    PACKAGES+=("$@")
}

component_python() {
    local python="${PYTHON:-python3.11}"
    if ! have "$python"; then
        want "$python missing" python3 python3-venv
    elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        want "$python cannot create virtualenvs" python3-venv
    fi
}

component_node() {
    have node || want "node missing" nodejs
    have npm || want "npm missing" npm
}

component_redis() {
    local url="${REDIS_URL:-$DEFAULT_REDIS_URL}"
    redis_answers "$url" && return 0
    parse_url "$url"
    is_local_host "$URL_HOST" || return 0 # a remote Redis is not ours to install
    have redis-server || want "no Redis answers at $url" redis-server
}

component_postgres() {
    local url="${DATABASE_URL:-$DEFAULT_TEST_DATABASE_URL}"
    parse_url "$url" || die "DATABASE_URL is not a URL: $url"
    case "$URL_SCHEME" in postgres | postgresql | pgsql) ;; *) return 0 ;; esac
    { have psql && have pg_isready; } || want "PostgreSQL client missing" postgresql-client
    local host="${URL_HOST:-127.0.0.1}" port="${URL_PORT:-5432}"
    if ! pg_answers "$host" "$port" && is_local_host "$host"; then
        if ! have pg_ctlcluster || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
            want "no PostgreSQL answers at $host:$port" postgresql
        fi
    fi
}

component_chromium() {
    # Browser tests drive Debian's chromium with Playwright (executable_path=/usr/bin/chromium).
    [ -x /usr/bin/chromium ] || want "/usr/bin/chromium missing" chromium fonts-liberation
    [ -x /usr/bin/chromedriver ] || want "/usr/bin/chromedriver missing" chromium-driver
}

component_nginx() {
    # The console tests go through a TLS reverse proxy on one origin (docs/console.md's nginx example):
    # the tests run their own nginx with a private configuration; nothing here starts the system one.
    [ -x /usr/sbin/nginx ] || want "nginx missing (reverse-proxy console tests)" nginx-light openssl
}

component_libvirt() {
    # libvirtd + QEMU for the KVM hosts (this machine's own qemu:///system counts as one), and what
    # libvirt-python needs to build in the virtualenv: libvirt-dev, pkg-config, gcc, Python headers.
    # dnsmasq-base and iptables are installed in the same transaction, so before libvirtd first
    # starts (it checks for the firewall tools only at start-up). scripts/services.sh start-libvirtd
    # starts the daemons; no package here starts anything.
    local pkgs=(libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils libvirt-clients
        libvirt-dev pkg-config dnsmasq-base iptables gcc) installed missing=() p
    # One dpkg-query for all of them; a package never installed is absent from its output.
    installed="$(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null | awk '/ install ok installed$/ { print $1 }' || true)"
    for p in "${pkgs[@]}"; do
        grep -qxF "$p" <<<"$installed" || missing+=("$p")
    done
    ((${#missing[@]})) && want "libvirt/QEMU or the libvirt-python build tools missing" "${missing[@]}"
    local python="${PYTHON:-python3.11}" include
    if have "$python"; then
        include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)"
        if [ ! -f "$include/Python.h" ]; then
            # python3.11 -> python3.11-dev; python3 -> python3-dev
            want "Python headers missing (needed to build libvirt-python)" "$(basename "$python")-dev"
        fi
    fi
    return 0
}

component_nfs() {
    # mount.nfs, the helper `mount -t nfs` needs: NFS secondary storage is mounted on the management
    # side, and libvirtd mounts NFS primary storage (netfs pools) with it on this machine's KVM host.
    # No NFS server is installed or started (nfs-common brings rpcbind; nothing here starts it).
    [ -x /sbin/mount.nfs ] || [ -x /usr/sbin/mount.nfs ] || have mount.nfs || want "mount.nfs missing (NFS storage)" nfs-common
}

component_images() {
    # The tools `manage.py build_builtin_images` runs to make the built-in Tiny Linux template and
    # ISO (storage/images/builtin.py): a FAT file system (dosfstools, mtools), SYSLINUX and its MBR
    # (syslinux, syslinux-common), an MBR partition table (fdisk: sfdisk), the live ISO (isolinux,
    # xorriso) and the qcow2 conversion (qemu-utils). The kernel and busybox-static are not installed:
    # the build fetches them with `apt-get download` and only unpacks them.
    local pkgs=(dosfstools mtools syslinux syslinux-common isolinux fdisk xorriso qemu-utils) installed missing=() p
    installed="$(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null | awk '/ install ok installed$/ { print $1 }' || true)"
    for p in "${pkgs[@]}"; do
        grep -qxF "$p" <<<"$installed" || missing+=("$p")
    done
    ((${#missing[@]})) && want "tools to build the built-in images missing" "${missing[@]}"
    return 0
}

# Later components go here as component_<name> functions
# and into ALL_COMPONENTS.

main() {
    [ "${NUBO_SKIP_SYSTEM_PACKAGES:-}" = 1 ] && return 0
    local components=("$@") c
    ((${#components[@]})) || components=("${ALL_COMPONENTS[@]}")
    for c in "${components[@]}"; do
        declare -F "component_$c" >/dev/null || die "unknown component '$c' (known: ${ALL_COMPONENTS[*]})"
        "component_$c"
    done
    ((${#PACKAGES[@]})) || return 0

    local pkgs reasons
    pkgs="$(printf '%s\n' "${PACKAGES[@]}" | awk '!seen[$0]++' | tr '\n' ' ')"
    pkgs="${pkgs% }"
    reasons="$(printf '%s; ' "${REASONS[@]}")"
    reasons="${reasons%; }"

    if ! is_root; then
        printf 'Missing system packages (%s). Run: sudo apt-get update && sudo apt-get install -y --no-install-recommends %s\n' \
            "$reasons" "$pkgs" >&2
        exit 1
    fi
    have apt-get || die "missing system packages ($reasons) and no apt-get here: install the equivalents of: $pkgs"

    say "Installing system packages ($reasons): $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $pkgs
}

main "$@"
