"""The guest payload: a Debian kernel, a busybox initramfs that mounts an NFSv4 root, and
that root file system.

    payload = build_payload(PayloadSpec(nic_modules=("virtio_net",)))
    qemu ... -kernel payload.kernel -initrd payload.initrd \\
        -append kernel_cmdline("192.0.2.1:/pxelab")   # or "[2001:db8::1]:/pxelab"

and export ``payload.rootfs`` (see pxelab.machine.nfs.Ganesha). The console lines the guest
prints are in pxelab.machine.payload.contract.
"""

from __future__ import annotations

from pxelab.machine.payload.builder import (
    Initramfs,
    Payload,
    PayloadSpec,
    build_payload,
    load_payload,
)
from pxelab.machine.payload.cache import default_cache_dir
from pxelab.machine.payload.contract import (
    INIT_DHCP,
    INIT_FAILED,
    INIT_IPV6,
    INIT_MODULES_LOADED,
    INIT_NFS_MOUNTED,
    INIT_PANIC,
    INIT_START,
    USERSPACE,
    initramfs_tools_cmdline,
    kernel_cmdline,
    userspace_line,
)

__all__ = [
    "INIT_DHCP",
    "INIT_FAILED",
    "INIT_IPV6",
    "INIT_MODULES_LOADED",
    "INIT_NFS_MOUNTED",
    "INIT_PANIC",
    "INIT_START",
    "USERSPACE",
    "Initramfs",
    "Payload",
    "PayloadSpec",
    "build_payload",
    "default_cache_dir",
    "initramfs_tools_cmdline",
    "kernel_cmdline",
    "load_payload",
    "userspace_line",
]
