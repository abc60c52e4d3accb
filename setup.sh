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
extras=dev,libvirt
libvirt_uri=qemu:///system
# 1 once this run has installed libvirt-daemon-system (and with it libvirt's default network).
libvirt_new=0

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
    case " $(echo $missing) " in *" libvirt-daemon-system "*) libvirt_new=1 ;; esac
    stop_peer_services
}

# running PIDFILE: whether the daemon whose pid PIDFILE holds is running. Not pgrep: a fresh
# root is a chroot in the host's pid namespace, where pgrep also finds the host's daemons.
running() {
    local pid
    pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# libvirt's `default` network runs a dnsmasq on the host (192.168.122.0/24); pxelab's guests
# never use it (their lab is reached through a host bridge of its own, pxelab.machine.hostlink).
# pxelab's set-up must not start it: off where this run installed libvirt and systemd may have
# started it, and never autostarted by a libvirtd this script starts.
quiet_default_network() {
    virsh -q -c "$libvirt_uri" net-info default >/dev/null 2>&1 || return 0
    virsh -q -c "$libvirt_uri" net-autostart default --disable >/dev/null 2>&1 || true
    virsh -q -c "$libvirt_uri" net-destroy default >/dev/null 2>&1 || true
}

# libvirtd probes QEMU as the user it runs guests as (libvirt-qemu) and probes again at
# every domain start (~50 s under TCG) while that user cannot open /dev/kvm. In a
# container /dev/kvm may belong to a group with no name here, so no user can be in it:
# name that group, and put libvirt-qemu in it. A host whose /dev/kvm group has a name
# (Debian's kvm, which libvirt-qemu is in) is left as it is.
kvm_group_for_libvirt() {
    [ -c /dev/kvm ] && id libvirt-qemu >/dev/null 2>&1 || return 0
    local gid
    gid=$(stat -c %g /dev/kvm)
    getent group "$gid" >/dev/null && return 0
    say "naming /dev/kvm's group $gid pxelab-kvm for libvirt-qemu (a container's device)"
    step "groupadd" "add a group with gid $gid and put libvirt-qemu in it" \
        groupadd -g "$gid" pxelab-kvm
    step "usermod" "run 'usermod -aG pxelab-kvm libvirt-qemu'" usermod -aG pxelab-kvm libvirt-qemu
}

# The libvirt backend needs libvirtd (and its virtlogd). Under systemd their socket units start
# them on demand; without systemd (containers, CI, a fresh root) this script starts them.
start_libvirt() {
    if [ -d /run/systemd/system ]; then
        [ "$libvirt_new" -eq 0 ] || quiet_default_network
        return 0
    fi
    if ! running /run/virtlogd.pid; then
        say "starting virtlogd (no systemd here)"
        step "virtlogd -d" "run 'virtlogd -v' by hand to see why it stops" virtlogd -d
    fi
    if ! running /run/libvirtd.pid; then
        kvm_group_for_libvirt
        rm -f /etc/libvirt/qemu/networks/autostart/default.xml
        say "starting libvirtd (no systemd here)"
        step "libvirtd -d" "run 'libvirtd -v' by hand to see why it stops" libvirtd -d
    fi
    # A new libvirtd answers once it has probed the QEMU binaries (seconds under TCG).
    local deadline=$((SECONDS + 120))
    until timeout 30 virsh -q -c "$libvirt_uri" version >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "libvirtd does not answer on $libvirt_uri:" \
            "run 'virsh -c $libvirt_uri version' and read /var/log/libvirt/libvirtd.log"
        sleep 0.2
    done
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
    want=$({ cat pyproject.toml; echo "extras=$extras"; } | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    say "creating the virtualenv $venv"
    [ -x "$venv/bin/python" ] || step "python3 -m venv" "install python3-venv" python3 -m venv "$venv"
    step "pip install" "check network access to PyPI (pip's proxy and CA settings)" \
        "$venv/bin/pip" install -q --upgrade pip
    # The libvirt extra builds libvirt-python from source against libvirt-dev.
    step "pip install" "check network access to PyPI (pip's proxy and CA settings); a failed build of libvirt-python needs libvirt-dev, pkg-config, gcc and python3-dev" \
        "$venv/bin/pip" install -q -e ".[$extras]"
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
    start_libvirt
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
