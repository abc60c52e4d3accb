"""The emulated machine and the lab network it boots on.

- ``network``: the lab's namespace, bridge and taps; ``capture``: its pcap;
- ``qemu``: the guest; ``kvm``: whether KVM works here; ``console``: the serial
  console and the milestones seen on it; ``firmware_log``: OVMF's debug port;
- ``firmware``: the firmware and boot programs on this host
  (``pxelab/data/firmware/catalog.toml``); ``ipxerom``: which iPXE ROM QEMU loads;
  ``nvram``: OVMF variable stores;
  ``edk2``: which EDK2 release an OVMF is, and what needs which release;
  ``fixed_waits``: what OVMF's network boot waits whatever the network answers
  (``pxelab/data/firmware/fixed-waits.toml``);
- ``nbp``: the network boot programs pxelab builds (GRUB); ``pe``: an EFI program's or
  kernel's Authenticode signature (found, taken off);
- ``payload/``: the kernel, initramfs and root file system the guest boots;
- ``nfs``: the NFS server that exports that root.

The machine needs nothing of the boot server: the two meet only on the lab network.

May import: pxelab.core.
"""
