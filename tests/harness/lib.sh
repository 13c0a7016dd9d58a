# shellcheck shell=bash
# Shared helpers for the tests/harness/*-up / *-down scripts.
# Sourced, never run: the caller sets `set -euo pipefail` itself.

HARNESS_ROOT=${GALYLEO_HARNESS_ROOT:-/srv/galyleo-test}
# shellcheck disable=SC2034  # used by the scripts that source this
HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS_LOGDIR=$HARNESS_ROOT/logs
HARNESS_NAME=${HARNESS_NAME:-$(basename "$0")}
HARNESS_LOG=$HARNESS_LOGDIR/$HARNESS_NAME.log
HARNESS_T0=${EPOCHREALTIME/./}
# shellcheck disable=SC2034
GALYLEO_TEST_USER=galytest
# shellcheck disable=SC2034
# A second unprivileged user, created like the test user: the hostile neighbour of
# the shared-cluster tests (her own shell, files and Slurm jobs on the same hosts).
GALYLEO_NEIGHBOUR_USER=mallory

# --- the cluster's topology (README "Topology"): one network namespace and one
# UTS name per host, two bridges in a switch namespace of their own, addresses
# from 198.18.0.0/15 (RFC 2544: never routed). The root namespace is the laptop.
# shellcheck disable=SC2034
{
    NET_PREFIX=galyleo              # netns names: galyleo-<host>, galyleo-net (the switch)
    CLUSTER_NET=198.18.0.0/24       # login, nodes, the proxy's inside leg, DNS
    PUBLIC_NET=198.19.0.0/24        # the laptop and the proxy's public leg
    SAFETY_NET=198.18.0.0/15        # unreachable from the laptop whatever the typo
    SAFETY_METRIC=4242              # marks the harness's unreachable routes
    LAPTOP_ADDR=198.19.0.1
    PROXY_PUBLIC_ADDR=198.19.0.2
    LOGIN_PUBLIC_ADDR=198.19.0.3    # login's leg on the public network: users ssh there (ssh-up)
    GATEWAY_HOST=gateway            # the bastion (gateway-up): public leg + cluster leg, sshd with TOTP
    GATEWAY_PUBLIC_ADDR=198.19.0.4
    GATEWAY_CLUSTER_ADDR=198.18.0.3
    LAPTOP_IF=galyleo-pub
    LOGIN_HOST=login
    CLUSTER_NODES="node1 node2"
    CLUSTER_HOSTS="proxy login node1 node2"
    declare -A HOST_ADDR=([proxy]=198.18.0.1 [login]=198.18.0.2 [node1]=198.18.0.11 [node2]=198.18.0.12)
}

# on HOST CMD...: run CMD as root on a test host (see tests/harness/on).
on() { "$HARNESS_DIR/on" "$@"; }

# The scripts take no arguments: anything given (even --help) prints the
# header comment and exits before touching anything.
harness_no_args() {
    (($# == 0)) && return 0
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" | grep -v '^shellcheck'
    [[ $1 == -h || $1 == --help ]] && exit 0
    exit 2
}

# Everything detailed goes to the log; the caller's terminal gets one line.
# fd 3 keeps the original stderr for that line and for fatal errors; daemons are
# started with `3>&-`, or they would hold the caller's pipe open for ever.
harness_log_start() {
    mkdir -p "$HARNESS_LOGDIR"
    chmod 755 "$HARNESS_ROOT" "$HARNESS_LOGDIR"
    exec 3>&2
    exec >>"$HARNESS_LOG" 2>&1
    # A command failing under set -e must still say what failed, not exit mute.
    set -o errtrace
    trap 'die "failed (line $LINENO): $BASH_COMMAND"' ERR
    echo "=== $HARNESS_NAME $(date -Is)"
}

log() { echo "[$(date +%T.%N | cut -c1-12)] $*"; }

# Seconds since the script started, one decimal (EPOCHREALTIME: bash 5, no bc).
elapsed() {
    local us=$((${EPOCHREALTIME/./} - HARNESS_T0))
    printf '%d.%ds' $((us / 1000000)) $((us % 1000000 / 100000))
}

# One-line summary on the original stderr (also kept in the log).
summary() {
    log "SUMMARY: $*"
    echo "$HARNESS_NAME: $* ($(elapsed); log $HARNESS_LOG)" >&3
}

die() {
    log "ERROR: $*"
    echo "$HARNESS_NAME: ERROR: $* (log $HARNESS_LOG; last lines below)" >&3
    tail -n 25 "$HARNESS_LOG" | sed 's/^/    /' >&3
    exit 1
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s, die after SECONDS.
wait_for() {
    local limit=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + limit))
    until "$@" >/dev/null 2>&1; do
        if (($(date +%s) >= deadline)); then
            die "timed out after ${limit}s waiting for: $what"
        fi
        sleep 0.2
    done
    log "ok: $what"
}

# apt_ensure PKG...: install the packages that are missing. Another helper may
# run apt at the same time, hence the lock timeout. `apt-get update` runs only
# when a package has no install candidate or the install fails (stale lists).
apt_ensure() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "apt: installing ${missing[*]}"
    local apt=(apt-get -o DPkg::Lock::Timeout=600)
    export DEBIAN_FRONTEND=noninteractive
    for p in "${missing[@]}"; do
        if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then
            "${apt[@]}" update -q
            break
        fi
    done
    if ! "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}"; then
        "${apt[@]}" update -q
        "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" ||
            die "apt-get install ${missing[*]} failed"
    fi
}

# env_set KEY VALUE: set `export KEY=VALUE` in $HARNESS_ROOT/env.sh, replacing
# only that key's line. Other helpers write their own keys into the same file,
# so never truncate it; the flock serialises concurrent writers that use this.
env_set() {
    local key=$1 value=$2 file=$HARNESS_ROOT/env.sh
    mkdir -p "$HARNESS_ROOT"
    (
        flock -w 60 9 || die "could not lock $file"
        touch "$file"
        local tmp
        tmp=$(mktemp "$file.XXXXXX")
        grep -v "^export $key=" "$file" >"$tmp" || true
        # Plain when safe, else single-quoted: readable, and valid for sh/bash.
        if [[ ! $value =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
            value="'${value//\'/\'\\\'\'}'"
        fi
        printf 'export %s=%s\n' "$key" "$value" >>"$tmp"
        chmod 644 "$tmp"
        mv -f "$tmp" "$file"
    ) 9>"$HARNESS_ROOT/.env.sh.lock"
}

# pid_alive PIDFILE NAME: the pid in PIDFILE is running and is NAME.
pid_alive() {
    local pid
    [[ -r $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$2" ]]
}

# stop_daemons PIDFILE NAME [PIDFILE NAME...]: SIGTERM them all at once (each
# Slurm daemon takes about 2 s to exit), wait up to 15 s, then SIGKILL.
stop_daemons() {
    local pids=() names=() pid i alive
    while (($# >= 2)); do
        if pid_alive "$1" "$2"; then
            pid=$(<"$1")
            log "stopping $2 (pid $pid)"
            kill "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$2")
        fi
        rm -f "$1"
        shift 2
    done
    for ((i = 0; i < 75; i++)); do
        alive=0
        for pid in "${!pids[@]}"; do
            [[ "$(cat "/proc/${pids[pid]}/comm" 2>/dev/null)" == "${names[pid]}" ]] && alive=1
        done
        ((alive)) || return 0
        sleep 0.2
    done
    for pid in "${!pids[@]}"; do
        if [[ "$(cat "/proc/${pids[pid]}/comm" 2>/dev/null)" == "${names[pid]}" ]]; then
            log "${names[pid]} did not stop on SIGTERM, killing"
            kill -9 "${pids[pid]}" 2>/dev/null || true
        fi
    done
    sleep 0.5
}

# stop_pidfile PIDFILE NAME: stop one daemon (kept for the satellite-* scripts).
stop_pidfile() { stop_daemons "$1" "$2"; }

# served_sum FILE WORD...: one sha256 over FILE's content and the WORDs (a daemon's program
# and command line): what it serves, whatever the file's date (a new clone's files are new).
served_sum() {
    { cat "$1" && shift && printf '%s\n' "$@"; } | sha256sum | cut -d' ' -f1
}

# serves_other STAMP SUM PIDFILE [SRC]: true when the running daemon of PIDFILE serves
# something else than SUM now. STAMP holds "PID SUM" as written at its start; a daemon
# without its stamp (started before stamps, or by a script that writes none) is taken as
# it is (its stamp written) unless SRC is newer than PIDFILE.
serves_other() {
    local stamp=$1 sum=$2 pidfile=$3 src=${4:-} pid
    pid=$(cat "$pidfile" 2>/dev/null) || return 0
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$pid "* && -n $src && ! $src -nt $pidfile ]]; then
        printf '%s %s\n' "$pid" "$sum" >"$stamp"
    fi
    [[ "$(cat "$stamp" 2>/dev/null)" != "$pid $sum" ]]
}
