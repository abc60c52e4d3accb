#!/usr/bin/env bash
# Set up pxelab on Debian 12 or 13 (as root) and run one job. Idempotent: a second run
# installs nothing and goes straight to the job.
#
#   ./setup.sh boot [SCENARIO] [ARGS]  boot a scenario (default legacy_pxe_ipv4), print its timeline
#   ./setup.sh test [PYTEST ARGS]      run the test suite
#   ./setup.sh install                 only set up
set -eEuo pipefail
cd "$(dirname "$0")"
here=$(pwd)
venv="$here/.venv"
apt_log=/var/log/pxelab-setup-apt.log

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fail() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

# logged FILE COMMAND...: append COMMAND's output to FILE; on failure show its end.
logged() {
    local file=$1 rc=0
    shift
    "$@" >> "$file" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || tail -n 25 "$file" >&2
    return "$rc"
}

# step NAME HINT COMMAND...: run COMMAND; if it fails, say which step failed and what to do.
step() {
    local name=$1 hint=$2
    shift 2
    "$@" || fail "step '$name' failed (exit $?): $hint"
}

# Any other command that fails still names itself instead of ending the script silently.
trap 'fail "line $LINENO: \"$BASH_COMMAND\" failed (exit $?)"' ERR

supported_host() {
    local id="" version=""
    # shellcheck disable=SC1091
    [ -r /etc/os-release ] && . /etc/os-release && id=${ID:-} version=${VERSION_ID:-}
    case "$id:$version" in
        debian:12|debian:13) ;;
        *) say "warning: pxelab supports Debian 12 and 13 hosts; this is ${PRETTY_NAME:-unknown}" ;;
    esac
    command -v apt-get >/dev/null || fail "apt-get not found: pxelab installs its host packages with apt (Debian 12 or 13)"
}

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "pxelab needs root (network namespaces, taps, NFS server): run as root" >&2
        exit 2
    fi
}

install_debian_packages() {
    local wanted installed missing
    wanted=$(grep -v -e '^#' -e '^$' debian-packages.txt | sort -u)
    # dpkg-query exits 1 when any name is not installed; what it prints is still the answer.
    # shellcheck disable=SC2086
    installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $wanted 2>/dev/null \
        | awk '$1 == "ii" {print $2}' | sort -u || true)
    missing=$(comm -13 <(echo "$installed") <(echo "$wanted"))
    [ -z "$missing" ] && return 0
    export DEBIAN_FRONTEND=noninteractive
    say "installing Debian packages: $(echo $missing) (apt's output: $apt_log)"
    step "apt-get update" "check the host's apt sources and network access to its Debian mirror" \
        logged "$apt_log" apt-get update
    # shellcheck disable=SC2086
    step "apt-get install" "read $apt_log, or run 'apt-get install $(echo $missing)' by hand" \
        logged "$apt_log" apt-get install -y --no-install-recommends $missing
    stop_peer_services
}

# tftpd-hpa, the DHCP servers, radvd and nginx are installed as benchmark peers, test
# clients and the daemons a lab file may run inside a lab namespace (pxelab.daemons), never
# on the host; their packages start host-wide services that would hold ports 67, 69, 80 and
# 547 beside `pxelab serve` and send RAs on the host's links. pxelab does not depend on them
# running or not.
stop_peer_services() {
    command -v systemctl >/dev/null || return 0
    local service
    for service in tftpd-hpa atftpd isc-dhcp-server kea-dhcp4-server \
            kea-dhcp6-server radvd nginx; do
        systemctl disable --now "$service" >/dev/null 2>&1 || true
    done
}

install_python() {
    local stamp="$venv/.pxelab-installed"
    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    say "creating the virtualenv $venv"
    [ -x "$venv/bin/python" ] || step "python3 -m venv" "install python3-venv" python3 -m venv "$venv"
    step "pip install" "check network access to PyPI (pip's proxy and CA settings)" \
        "$venv/bin/pip" install -q --upgrade pip
    step "pip install" "check network access to PyPI (pip's proxy and CA settings)" \
        "$venv/bin/pip" install -q -e ".[dev]"
    echo "$want" > "$stamp"
}

build_payload() {
    say "building the guest payload (cached)"
    step "pxelab payload" "read the error above; rerun with '$venv/bin/pxelab -v payload'" \
        "$venv/bin/pxelab" payload
}

setup() {
    require_root
    supported_host
    install_debian_packages
    install_python
    build_payload
}

job=${1:-boot}
[ $# -gt 0 ] && shift
case "$job" in
    install) setup ;;
    boot)
        setup
        scenario=${1:-legacy_pxe_ipv4}
        [ $# -gt 0 ] && shift
        exec "$venv/bin/pxelab" boot "$scenario" "$@" ;;
    test)
        setup
        exec "$venv/bin/pytest" --pxelab-strict -n 2 "$@" ;;
    *)
        echo "usage: $0 {boot [SCENARIO]|test [PYTEST ARGS]|install}" >&2
        exit 2 ;;
esac
