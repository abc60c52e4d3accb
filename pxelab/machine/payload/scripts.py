"""The shell scripts the guest runs: initramfs /init, its udhcpc hook, the rootfs /sbin/init.

They run under busybox ash. The lines they print are a contract with the console
watcher; pxelab.machine.payload.contract holds the same strings for the Python side. Their
text is hashed into the payload cache key, so editing them rebuilds the payload.
"""

from __future__ import annotations

INIT = r"""#!/bin/sh
# pxelab initramfs /init: load the NIC and NFSv4 modules, get an address (DHCPv4, or
# IPv6 SLAAC when the server is an IPv6 address), mount the NFS root, switch_root
# into it. Kernel parameters:
#   pxelab.nfsroot=<server>:<path>        required, e.g. 192.0.2.1:/pxelab or
#                                         [2001:db8::1]:/pxelab (IPv6 in brackets)
#   pxelab.iface=<name>                   default: first interface backed by a device
#   pxelab.nfsopts=<options>              appended to the NFS mount options
#   pxelab.init=<path>                    default: /sbin/init
# Console contract (keep in step with pxelab/machine/payload/contract.py):
#   pxelab-init: start | modules loaded | dhcp <iface> <ip>/<prefix>
#   pxelab-init: ipv6 <iface> <ip6>/<prefix> by slaac
#   pxelab-init: nfs root mounted <source> on /newroot type <fstype>
#   pxelab-init: FAILED <modules|link|dhcp|ipv6|nfs|switch_root>: <why>   (then power off)
#   pxelab-init: PANIC link: no devices to configure: <why>   (then exit: kernel panic)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
exec </dev/console >/dev/console 2>&1

say() { echo "pxelab-init: $*"; }
fail() {
    say "FAILED $1: $2"
    poweroff -f
    exit 1  # PID 1 exiting panics the kernel; with panic=-1 and -no-reboot QEMU exits
}
# Give up as a distribution initramfs does when it cannot reach its root: PID 1 exits
# and the kernel panics ("Attempted to kill init!"), which panic=-1 turns into a reset.
panic() {
    say "PANIC $1: $2"
    exit 1
}
param() {
    set -f  # the command line is split into words, never globbed
    for word in $(cat /proc/cmdline); do
        case "$word" in "$1="*) set +f; echo "${word#*=}"; return 0 ;; esac
    done
    set +f
    return 1
}
# poll CONDITION up to TENTHS times, 0.1 s apart; true as soon as it holds
wait_for() {
    tries=$1; shift
    while [ "$tries" -gt 0 ]; do
        "$@" && return 0
        tries=$((tries - 1))
        sleep 0.1
    done
    return 1
}

say start
mkdir -p /proc /sys /dev /run /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

nfsroot=$(param pxelab.nfsroot) \
    || fail nfs "no pxelab.nfsroot=<server>:<path> on the kernel command line"
case "$nfsroot" in
\[*\]:*)  # [2001:db8::1]:/path
    family=6
    server=${nfsroot%%]:*}; server=${server#?}
    path=${nfsroot#*]:}
    ;;
*)
    family=4
    server=${nfsroot%%:*}
    path=${nfsroot#*:}
    ;;
esac
[ "$server" != "$nfsroot" ] && [ -n "$server" ] && [ -n "$path" ] \
    || fail nfs "pxelab.nfsroot=$nfsroot is not <server-ipv4>:<path> or [<server-ipv6>]:<path>"

while read -r module; do
    [ -n "$module" ] || continue
    out=$(insmod "/lib/modules/$module" 2>&1) || fail modules "insmod $module: $out"
done < /etc/pxelab/modules
say "modules loaded"

wanted=$(param pxelab.iface)
iface=""
find_iface() {
    if [ -n "$wanted" ]; then
        [ -e "/sys/class/net/$wanted" ] && iface=$wanted
    else
        for dev in /sys/class/net/*; do
            [ -e "$dev/device" ] && { iface=${dev##*/}; return 0; }
        done
    fi
    [ -n "$iface" ]
}
if ! wait_for 100 find_iface; then
    have=$(ls /sys/class/net | tr '\n' ' ')
    [ -n "$wanted" ] && fail link "no network interface $wanted after 10 s; have: $have"
    panic link "no devices to configure: no network interface with a device after 10 s \
(is the NIC's driver in the initramfs? it has: $(tr '\n' ' ' < /etc/pxelab/modules)); have: $have"
fi
if [ "$family" = 6 ]; then
    # SLAAC from the lab's router advertisement, set before the link comes up: no
    # duplicate address detection (one host per address on a lab link) and no 1 s
    # delay before the router solicitation, so the address is usable at once.
    conf=/proc/sys/net/ipv6/conf/$iface
    for knob in accept_dad=0 router_solicitation_delay=0 accept_ra=1 autoconf=1; do
        echo "${knob#*=}" > "$conf/${knob%%=*}" || fail ipv6 "cannot set $conf/${knob%%=*}"
    done
fi
ip link set "$iface" up || fail link "ip link set $iface up failed"
has_carrier() { [ "$(cat "/sys/class/net/$iface/carrier" 2>/dev/null)" = 1 ]; }
wait_for 100 has_carrier || fail link "$iface has no carrier after 10 s"

if [ "$family" = 6 ]; then
    # The first global, non-tentative address the router advertisement gave us.
    slaac_addr() {
        address=$(ip -6 addr show dev "$iface" scope global | while read -r kind addr rest; do
            case "$kind $rest" in "inet6 "*tentative*) ;; "inet6 "*) echo "$addr"; break ;; esac
        done)
        [ -n "$address" ]
    }
    wait_for 150 slaac_addr || fail ipv6 "no global IPv6 address on $iface by SLAAC after 15 s \
(is the boot server sending router advertisements with an autonomous prefix?); have: \
$(ip -6 addr show dev "$iface" | tr '\n' ' ' | tail -c 200)"
    say "ipv6 $iface $address by slaac"
else
    rm -f /run/pxelab-dhcp
    out=$(udhcpc -i "$iface" -f -q -n -t 6 -T 2 -V pxelab-init -s /etc/udhcpc.script 2>&1) \
        || fail dhcp "udhcpc on $iface got no lease (6 tries, 2 s apart): \
$(echo $out | tail -c 200)"
    [ -s /run/pxelab-dhcp ] || fail dhcp "udhcpc on $iface exited without configuring an address"
    read -r lease_iface lease_addr < /run/pxelab-dhcp
    say "dhcp $lease_iface $lease_addr"
fi

# The NFSv4 client names itself to the server by the host name (RFC 8881 2.4: a
# client owner unique per client). Every guest of this initramfs would be "(none)",
# and a server refuses the same owner from a second address (NFS4ERR_CLID_INUSE,
# "permission denied"): several guests in one lab need names of their own.
mac=$(cat "/sys/class/net/$iface/address") \
    && echo "pxelab-$(echo "$mac" | tr -d :)" > /proc/sys/kernel/hostname

# A refused or unanswered TCP connect explains itself in seconds; a mount would hang.
reachable() { out=$(nc -w 4 "$server" 2049 -e true 2>&1); }
reachable || reachable || fail nfs "cannot connect to $server port 2049 (twice, 4 s each): $out"
# The kernel takes the server address from addr= (IPv6 without brackets); proto= must
# name the same address family (tcp6 for IPv6) or it refuses the mount.
opts="addr=$server,proto=tcp,sec=sys"
[ "$family" = 6 ] && opts="addr=$server,proto=tcp6,sec=sys"
extra=$(param pxelab.nfsopts) && opts="$opts,$extra"
out=$(timeout 30 mount -t nfs4 -o "$opts" "$nfsroot" /newroot 2>&1) \
    || fail nfs "mount -t nfs4 -o $opts $nfsroot /newroot: ${out:-failed or timed out after 30 s}"
source="" fstype=""
while read -r src mnt type rest; do
    [ "$mnt" = /newroot ] && { source=$src; fstype=$type; }
done < /proc/mounts
[ -n "$source" ] || fail nfs "mount returned success but /newroot is not in /proc/mounts"
say "nfs root mounted $source on /newroot type $fstype"

init=$(param pxelab.init) || init=/sbin/init
[ -x "/newroot$init" ] || fail switch_root "$init is missing or not executable on $nfsroot"
for fs in dev proc sys; do
    if [ -d "/newroot/$fs" ]; then
        mount -o move "/$fs" "/newroot/$fs" || fail switch_root "cannot move /$fs to /newroot/$fs"
    else
        umount -l "/$fs"
    fi
done
exec switch_root /newroot "$init"
"""

UDHCPC = r"""#!/bin/sh
# udhcpc hook (pxelab initramfs): $1 is deconfig|bound|renew|leasefail|nak; udhcpc
# exports ip, mask (prefix length), router, serverid, siaddr, boot_file, ...
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    prefix=${mask:-24}
    ip -4 addr flush dev "$interface"
    ip -4 addr add "$ip/$prefix" broadcast + dev "$interface" || exit 1
    for gateway in $router; do
        ip -4 route add default via "$gateway" dev "$interface" && break
    done
    echo "$interface $ip/$prefix" > /run/pxelab-dhcp
    env | grep -E '^(ip|mask|router|serverid|siaddr|sname|boot_file|dns|domain|lease)=' \
        > /run/pxelab-dhcp.env
    ;;
esac
exit 0
"""

ROOTFS_INIT = r"""#!/bin/sh
# pxelab root file system /sbin/init: report what / is mounted from, then power off
# so that QEMU (run with -no-reboot) exits. Contract (pxelab/machine/payload/contract.py):
#   PXELAB-USERSPACE root=<mount source> fstype=<fstype>
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
[ -r /proc/mounts ] || mount -t proc proc /proc
root="" fstype=""
while read -r src mnt type rest; do
    [ "$mnt" = / ] && { root=$src; fstype=$type; }
done < /proc/mounts
echo "PXELAB-USERSPACE root=$root fstype=$fstype"
poweroff -f
"""
