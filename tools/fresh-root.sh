#!/usr/bin/env bash
# Run one of the README's commands as a newcomer would: in a freshly bootstrapped,
# minimal Debian root, as root, from a clone of this project.
#
#   tools/fresh-root.sh RELEASE JOB [ARGS...]
#
#   RELEASE  bookworm (12) or trixie (13); sid also works
#   JOB      boot | test | install: runs ./setup.sh JOB ARGS inside the root
#            run COMMAND...: runs COMMAND (a bash command line) there instead
#
# The minbase root is bootstrapped once and kept as a tarball in the cache; every run
# unpacks a new copy, so nothing of an earlier run is left in it. The copy behaves like
# a machine: / is a mount point, /proc, /sys and /dev are mounted, /run is a tmpfs and
# /etc/mtab exists. The host's pip configuration, CA bundle and local apt settings are
# carried in (a TLS-intercepting proxy otherwise breaks pip, a mirror's rules apt). Everything is unmounted and removed
# when the job ends, fails, times out or is interrupted.
#
# Environment:
#   PXELAB_FRESH_ROOT_CACHE    where the bootstrapped tarballs live (/var/cache/pxelab/fresh-root)
#   PXELAB_FRESH_ROOT_DIR      where the run's root is unpacked (/var/tmp/pxelab-fresh-root)
#   PXELAB_FRESH_ROOT_TIMEOUT  seconds the job may take (3600)
#   PXELAB_FRESH_ROOT_MIRROR   Debian mirror (http://deb.debian.org/debian)
#   PXELAB_FRESH_ROOT_KEEP=1   leave the unpacked root in place (still unmounted), to
#                              look into it or to run in it again with:
#   PXELAB_FRESH_ROOT_REUSE=DIR  run in that kept root (its clone moved to this HEAD)
set -eEuo pipefail

project=$(cd "$(dirname "$0")/.." && pwd)
cache=${PXELAB_FRESH_ROOT_CACHE:-/var/cache/pxelab/fresh-root}
workdir=${PXELAB_FRESH_ROOT_DIR:-/var/tmp/pxelab-fresh-root}
limit=${PXELAB_FRESH_ROOT_TIMEOUT:-3600}
mirror=${PXELAB_FRESH_ROOT_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# A root grows to about 4 GB: QEMU, firmware, ganesha, the venv, kernel packages, payloads.
need_gb=8
root=""

say() { printf '\033[1mfresh-root: %s\033[0m\n' "$*" >&2; }
die() { printf 'fresh-root: %s\n' "$*" >&2; exit 2; }

usage() {
    cat >&2 <<EOF
usage: $0 RELEASE JOB [ARGS...]
  RELEASE  a Debian release: bookworm (12), trixie (13) or sid
  JOB      boot | test | install  (./setup.sh JOB ARGS, run inside the fresh root)
           run COMMAND...         (a bash command line, run in the clone inside the root)
example: $0 trixie test tests/unit
EOF
    exit 2
}

release_name() {
    case "$1" in
        12|bookworm) echo bookworm ;;
        13|trixie) echo trixie ;;
        sid|unstable) echo sid ;;
        *) return 1 ;;
    esac
}

check_host() {
    [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mounts, and pxelab itself): run as root"
    command -v git >/dev/null || die "git not found: apt-get install git"
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap on the host"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null \
            || die "could not install debootstrap: apt-get install debootstrap"
    fi
    [ -r "$keyring" ] || die "$keyring missing: apt-get install debian-archive-keyring"
    mkdir -p "$cache" "$workdir"
    local free_kb
    free_kb=$(df -Pk "$workdir" | awk 'NR == 2 {print $4}')
    [ "$free_kb" -ge $((need_gb * 1024 * 1024)) ] || die \
        "only $((free_kb / 1024 / 1024)) GB free in $workdir; a fresh root needs $need_gb GB:" \
        "free some space or set PXELAB_FRESH_ROOT_DIR to a roomier disk"
}

# The cached minbase tarball of $1, bootstrapped if missing.
bootstrap_tarball() {
    local release=$1 tarball="$cache/$1-minbase.tar" tmp
    if [ -s "$tarball" ]; then
        echo "$tarball"
        return 0
    fi
    tmp=$(mktemp -d "$workdir/bootstrap-$release.XXXXXX")
    say "bootstrapping a minimal $release root (cached as $tarball)"
    if ! debootstrap --variant=minbase --keyring="$keyring" "$release" "$tmp" "$mirror" \
            > "$tmp.log" 2>&1; then
        tail -20 "$tmp.log" >&2
        rm -rf "$tmp"
        die "debootstrap $release failed (log above, whole log in $tmp.log); check network access to $mirror"
    fi
    tar -C "$tmp" --numeric-owner -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$tmp" "$tmp.log"
    echo "$tarball"
}

# The mounts below $root, deepest first.
mounts_below() {
    awk -v root="$root" '$5 == root || index($5, root "/") == 1 {print $5}' /proc/self/mountinfo \
        | sort -r
}

# Processes whose root directory is inside the fresh root (daemons, a stray QEMU).
processes_inside() {
    local link pid
    for link in /proc/[0-9]*/root; do
        pid=${link#/proc/}
        pid=${pid%/root}
        case "$(readlink "$link" 2>/dev/null)" in
            "$root"|"$root"/*) echo "$pid" ;;
        esac
    done
}

cleanup() {
    local rc=$? pids mount
    trap - EXIT INT TERM
    [ -n "$root" ] && [ -d "$root" ] || exit "$rc"
    pids=$(processes_inside)
    if [ -n "$pids" ]; then
        say "stopping processes left in the root: $(echo $pids)"
        kill -TERM $pids 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            pids=$(processes_inside)
            [ -z "$pids" ] && break
            sleep 0.5
        done
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    fi
    for mount in $(mounts_below); do
        umount "$mount" 2>/dev/null || umount -l "$mount" || true
    done
    if [ -n "$(mounts_below)" ]; then
        say "still mounted below $root, not removing it:"
        mounts_below >&2
        exit 1
    fi
    if [ "${PXELAB_FRESH_ROOT_KEEP:-}" = 1 ] || [ -n "${PXELAB_FRESH_ROOT_REUSE:-}" ]; then
        say "kept $root"
    else
        rm -rf "$root"
    fi
    exit "$rc"
}

make_machine_like() {
    # / must be a mount point: `ip netns exec` remounts / as rslave.
    mount --bind "$root" "$root"
    mount --make-private "$root"
    mount -t proc proc "$root/proc"
    # rslave: unmounting them here must never unmount anything on the host.
    mount --rbind /sys "$root/sys"
    mount --make-rslave "$root/sys"
    mount --rbind /dev "$root/dev"
    mount --make-rslave "$root/dev"
    mount -t tmpfs -o mode=755 tmpfs "$root/run"
    # ganesha's VFS FSAL reads the mount table from /etc/mtab.
    ln -sf ../proc/self/mounts "$root/etc/mtab"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    # Package scripts must not start daemons: they would run outside any lab, hold
    # ports on the host's network and keep the root busy after the job.
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
}

# The CA bundle pip and Python should trust, as the host configures it.
host_ca_bundle() {
    local candidate
    for candidate in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" "${REQUESTS_CA_BUNDLE:-}" \
            /etc/ssl/certs/ca-certificates.crt; do
        [ -n "$candidate" ] && [ -s "$candidate" ] && { echo "$candidate"; return 0; }
    done
}

carry_host_settings() {
    local file ca
    for file in /etc/pip.conf /etc/xdg/pip "$HOME/.config/pip" "$HOME/.pip"; do
        [ -e "$file" ] || continue
        mkdir -p "$root$(dirname "$file")"
        cp -a "$file" "$root$(dirname "$file")/"
    done
    # The machine's own network settings for apt (proxy, a mirror's validity rules):
    # Acquire:: parts of apt.conf.d that no Debian package ships. pxelab's private apt
    # configuration reads them too.
    for file in /etc/apt/apt.conf.d/*; do
        [ -f "$file" ] && grep -q '^[[:space:]]*Acquire::' "$file" || continue
        dpkg-query --search "$file" >/dev/null 2>&1 && continue
        cp -a "$file" "$root/etc/apt/apt.conf.d/"
    done
    # Outside /etc/ssl: installing ca-certificates in the root rewrites that bundle.
    ca=$(host_ca_bundle || true)
    if [ -n "$ca" ]; then
        mkdir -p "$root/usr/local/share/pxelab-host"
        cp -L "$ca" "$root/usr/local/share/pxelab-host/ca-bundle.crt"
    fi
}

# The environment of the job: a login-like root shell plus the host's pip settings.
job_environment() {
    local name ca_in_root=/usr/local/share/pxelab-host/ca-bundle.crt
    echo HOME=/root
    echo PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    echo LANG=C.UTF-8
    echo TERM=dumb
    for name in $(compgen -e | grep -E '^(PIP_|https?_proxy$|HTTPS?_PROXY$|no_proxy$|NO_PROXY$)'); do
        case "$name" in PIP_CERT) continue ;; esac
        echo "$name=${!name}"
    done
    if [ -s "$root$ca_in_root" ]; then
        echo "PIP_CERT=$ca_in_root"
        echo "SSL_CERT_FILE=$ca_in_root"
        echo "REQUESTS_CA_BUNDLE=$ca_in_root"
    fi
}

run_job() {
    local job=$1
    shift
    local started=$SECONDS rc=0 env_args=() script='cd /root/pxelab && exec ./setup.sh "$@"'
    local argv=("$job" "$@")
    if [ "$job" = run ]; then
        script='cd /root/pxelab && eval "$*"'
        argv=("$@")
    fi
    mapfile -t env_args < <(job_environment)
    say "$release root $root: $job $* (time limit ${limit} s)"
    # --foreground keeps the job in this process group, so Ctrl-C reaches it.
    timeout --foreground --kill-after=30 "$limit" \
        chroot "$root" /usr/bin/env -i "${env_args[@]}" /bin/bash -c "$script" fresh-root "${argv[@]}" \
        || rc=$?
    [ "$job" = run ] || set -- "./setup.sh $job" "$@"
    if [ "$rc" -eq 124 ]; then
        say "$release: $* ran out of its ${limit} s (PXELAB_FRESH_ROOT_TIMEOUT)"
    fi
    say "$release: $* exited $rc after $((SECONDS - started)) s"
    return "$rc"
}

# A new root from the cached tarball, or the kept one named by PXELAB_FRESH_ROOT_REUSE.
prepare_root() {
    local reuse=${PXELAB_FRESH_ROOT_REUSE:-}
    if [ -n "$reuse" ]; then
        [ -d "$reuse/root/pxelab/.git" ] || die "PXELAB_FRESH_ROOT_REUSE=$reuse is not a kept root"
        root=$(cd "$reuse" && pwd)
        trap cleanup EXIT
        git -C "$root/root/pxelab" fetch -q "$project" HEAD
        git -C "$root/root/pxelab" reset -q --hard FETCH_HEAD
        return 0
    fi
    local tarball
    tarball=$(bootstrap_tarball "$release")
    root=$(mktemp -d "$workdir/$release.XXXXXX")
    trap cleanup EXIT
    tar -C "$root" --numeric-owner -xf "$tarball"
    # A machine's / is 0755 (mktemp and the tarball's ./ make it 0700): daemons that drop root,
    # such as libvirt's QEMU running as libvirt-qemu, must be able to look below it.
    chmod 0755 "$root"
    git clone --quiet "$project" "$root/root/pxelab"
}

main() {
    [ $# -ge 2 ] || usage
    release=$(release_name "$1") || { echo "fresh-root: unknown release '$1'" >&2; usage; }
    local job=$2
    shift 2
    case "$job" in boot|test|install|run) ;; *) echo "fresh-root: unknown job '$job'" >&2; usage ;; esac
    check_host
    trap 'exit 130' INT
    trap 'exit 143' TERM
    prepare_root
    make_machine_like
    carry_host_settings
    say "$release root ready: $(git -C "$root/root/pxelab" log -1 --format='%h %s' | cut -c1-72)"
    run_job "$job" "$@"
}

main "$@"
