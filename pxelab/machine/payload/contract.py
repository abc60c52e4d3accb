"""What the guest prints and how it is told what to do: the console lines and the cmdline.

The shell scripts in pxelab.machine.payload.scripts print these lines on the serial console
(ttyS0); the console watcher and the tests match them. Keep both sides in step.
"""

from __future__ import annotations

import ipaddress
import re

from pxelab.core.errors import ConfigError

INIT_START = "pxelab-init: start"
INIT_MODULES_LOADED = "pxelab-init: modules loaded"
# pxelab-init: dhcp <iface> <ip>/<prefix>
INIT_DHCP = re.compile(r"pxelab-init: dhcp (?P<iface>\S+) (?P<address>[0-9.]+)/(?P<prefix>\d+)")
# pxelab-init: ipv6 <iface> <ip6>/<prefix> by slaac   (when pxelab.nfsroot names an IPv6 server)
INIT_IPV6 = re.compile(
    r"pxelab-init: ipv6 (?P<iface>\S+) (?P<address>[0-9a-f:]+)/(?P<prefix>\d+) by (?P<how>slaac)"
)
# pxelab-init: nfs root mounted <source> on /newroot type <fstype>
INIT_NFS_MOUNTED = re.compile(
    r"pxelab-init: nfs root mounted (?P<source>\S+) on /newroot type (?P<fstype>\S+)"
)
# pxelab-init: FAILED <stage>: <why>
INIT_FAILED = re.compile(
    r"pxelab-init: FAILED (?P<stage>modules|link|dhcp|ipv6|nfs|switch_root): (?P<why>.*)"
)
# pxelab-init: PANIC <stage>: <why>   (then /init exits: "Kernel panic - not syncing",
# as a real initramfs that cannot reach its root ends). Printed when no network
# device appeared at all: "no devices to configure: ...".
INIT_PANIC = re.compile(r"pxelab-init: PANIC (?P<stage>link): (?P<why>.*)")
# PXELAB-USERSPACE root=<mount source> fstype=<fstype>
USERSPACE = re.compile(r"PXELAB-USERSPACE root=(?P<root>\S+) fstype=(?P<fstype>\S+)")


def userspace_line(root: str, fstype: str = "nfs4") -> str:
    """The exact marker the rootfs init prints when ``root`` is mounted as ``fstype``."""
    return f"PXELAB-USERSPACE root={root} fstype={fstype}"


def kernel_cmdline(nfsroot: str, extra: str = "") -> str:
    """The kernel command line every caller uses to boot the payload.

    ``nfsroot`` is ``<server-ipv4>:<path>`` (e.g. ``192.0.2.1:/pxelab``: the initramfs
    gets an address by DHCPv4) or ``[<server-ipv6>]:<path>`` (e.g.
    ``[2001:db8::1]:/pxelab``: it gets one by SLAAC and mounts over IPv6). ``panic=-1``
    makes a panic reboot at once, which QEMU's ``-no-reboot`` turns into an exit.
    """
    if not _valid_nfsroot(nfsroot) or any(c.isspace() for c in nfsroot):
        raise ConfigError(
            f"nfsroot {nfsroot!r} must be <server-ipv4>:<absolute path> or "
            "[<server-ipv6>]:<absolute path>, e.g. 192.0.2.1:/pxelab or [2001:db8::1]:/pxelab"
        )
    return " ".join(part for part in ("console=ttyS0", "panic=-1", f"pxelab.nfsroot={nfsroot}",
                                      extra.strip()) if part)


# NFS server port named in nfsroot= for initramfs-tools: klibc's nfsmount asks the
# portmapper only for the ports it is not given (usr/kinit/nfsmount/mount.c).
NFS3_PORT = 2049


# The options klibc nfsmount takes a number for (usr/kinit/nfsmount/main.c, int_opts);
# any other value it refuses with "<value>: invalid value for <option>".
NFSMOUNT_NUMBERS = ("port", "nfsvers", "vers", "rsize", "wsize", "timeo", "retrans",
                    "acregmin", "acregmax", "acdirmin", "acdirmax")


def initramfs_tools_cmdline(nfsroot: str, extra: str = "") -> str:
    """The command line for a Debian initramfs-tools initrd mounting ``nfsroot`` over NFSv3.

    ``boot=nfs`` runs its scripts/nfs; ``ip=dhcp`` makes configure_networking run klibc
    ipconfig; klibc nfsmount gets ``tcp,vers=3,port=2049`` (it has no option for the
    MOUNT port: that one it asks the server's portmapper for). IPv4 only.
    """
    if nfsroot.startswith("[") or not _valid_nfsroot(nfsroot) or any(
            c.isspace() or c == "," for c in nfsroot):
        raise ConfigError(f"nfsroot {nfsroot!r}: initramfs-tools needs <server-ipv4>:<absolute "
                          "path>, e.g. 192.0.2.1:/pxelab (klibc nfsmount speaks IPv4 only)")
    words = ("console=ttyS0", "panic=-1", "boot=nfs",
             f"nfsroot={nfsroot},tcp,vers=3,port={NFS3_PORT}", "ip=dhcp", extra.strip())
    return " ".join(word for word in words if word)


def _valid_nfsroot(nfsroot: str) -> bool:
    if nfsroot.startswith("["):
        server, sep, path = nfsroot[1:].partition("]:")
        kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address] = ipaddress.IPv6Address
    else:
        server, sep, path = nfsroot.partition(":")
        kind = ipaddress.IPv4Address
    try:
        kind(server)
    except ValueError:
        return False
    return bool(sep) and path.startswith("/")
