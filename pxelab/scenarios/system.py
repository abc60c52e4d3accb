"""The user's own system under test, as a lab file describes it (pxelab.labfile).

A scenario with a :class:`SystemUnderTest` boots the user's data root, NFS root
and boot server (pxelab's own with the file's policy, or their real daemons)
instead of pxelab's payload and policy; the guest, firmware set and console
watching stay the scenario's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pxelab.daemons.spec import DaemonSpec
from pxelab.server.config import LabConfig


@dataclass(frozen=True)
class SystemUnderTest:
    # The lab file this system comes from (errors and the reproduce command name it).
    source: Path
    # The user's files, copied into each lab's data root; text files with {{ name }}
    # placeholders are filled in with the lab's values (pxelab.core.template).
    data_root: Path | None = None
    # Files of the firmware set put into the data root: (name there, catalog entry).
    firmware_files: tuple[tuple[str, str], ...] = ()
    # pxelab's payload: its kernel and initrd in the data root (vmlinuz, initrd.img),
    # its NFS root unless nfs_root is given, and {{ append }} its kernel command line.
    payload: bool = False
    # A Debian release whose official netboot tree is served unchanged beside the
    # user's files (pxelab.machine.netboot).
    netboot: str | None = None
    # Glob patterns (relative to data_root) copied as they are, never filled in.
    verbatim: tuple[str, ...] = ()
    # The user's root directory exported over NFS; None: pxelab's payload root, if any.
    nfs_root: Path | None = None
    # Serve the NFS export over NFSv3 as well (klibc nfsmount, initramfs-tools).
    nfs3: bool = False
    # pxelab's own boot server with the file's sections and rules; None: daemons.
    own_server: LabConfig | None = None
    # The user's daemons, started in this order (pxelab.daemons).
    daemons: tuple[DaemonSpec, ...] = ()
    # What the boot must end with: None, userspace from the NFS root with pxelab's
    # marker (payload); else the last milestone of the file's success pattern is enough.
    needs_marker: bool = True
    # The failure the file expects (a known-bad configuration kept as a test): stage
    # and cause code; None: the boot must succeed.
    expect_stage: str | None = None
    expect_cause: str | None = None

    @property
    def serves_nfs(self) -> bool:
        return self.nfs_root is not None or self.payload
