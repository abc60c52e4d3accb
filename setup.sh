#!/usr/bin/env bash
# Set up pxelab on Debian 12 (as root) and run one job. Idempotent: a second run
# installs nothing and goes straight to the job.
#
#   ./setup.sh boot [SCENARIO] [ARGS]  boot a scenario (default legacy_pxe_ipv4), print its timeline
#   ./setup.sh test [PYTEST ARGS]      run the test suite
#   ./setup.sh install                 only set up
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
venv="$here/.venv"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "pxelab needs root (network namespaces, taps, NFS server): run as root" >&2
        exit 2
    fi
}

install_debian_packages() {
    local wanted missing
    wanted=$(grep -v -e '^#' -e '^$' debian-packages.txt)
    # shellcheck disable=SC2086
    missing=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $wanted 2>/dev/null \
        | awk '$1 == "ii" {print $2}' | sort | comm -13 - <(echo "$wanted" | sort))
    # The payload builder resolves and downloads kernel packages with apt, so
    # the package lists must exist even when nothing is missing.
    if [ -z "$missing" ] && compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    [ -z "$missing" ] && return 0
    say "installing Debian packages: $(echo $missing)"
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
    stop_peer_services
}

# tftpd-hpa and friends are installed only as benchmark peers and test clients; their
# packages start host-wide services that would hold port 69 beside `pxelab serve`.
stop_peer_services() {
    command -v systemctl >/dev/null || return 0
    local service
    for service in tftpd-hpa atftpd; do
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
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -e ".[dev]"
    echo "$want" > "$stamp"
}

build_payload() {
    say "building the guest payload (cached)"
    "$venv/bin/pxelab" payload
}

setup() {
    require_root
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
