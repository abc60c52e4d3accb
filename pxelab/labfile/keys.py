"""Every key of a lab file (``*.pxelab.toml``), in one table: what the reader accepts
and what docs/lab-files.md lists (``python -m pxelab.labfile.keys docs/lab-files.md``
rewrites it; a unit test keeps the two the same).

A lab file with ``[boot_server] type = "pxelab"`` also takes the boot server's own
sections (``[dhcp4]``, ``[[rule]]``, ...: :data:`pxelab.server.config_keys.LAB_TABLES`,
all but ``[server]``, whose interface, addresses and data root the lab sets).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pxelab.server.config_keys import LabKey, LabTable, splice

LAB_FILE_TABLES: tuple[LabTable, ...] = (
    LabTable("lab", (
        LabKey("name", "the first word of every test id; default: the file name without "
               "`.pxelab.toml`"),
        LabKey("description", "one line, shown before the boot"))),
    LabTable("guest", (
        LabKey("mode", "how the firmware boots: `legacy_pxe`, `legacy_http`, `uefi_tftp`, "
               "`uefi_http`, `uefi_ipxe` (the built-in scenario of that mode and IP version "
               "gives the machine)", required=True),
        LabKey("ip", "`ipv4` (default) or `ipv6`"),
        LabKey("name", "a word added to the test id (`uefi_http_ipv4-menu`)"),
        LabKey("nic_models", "QEMU NIC models, one test each (default: the built-in "
               "scenario's, e.g. `[\"virtio-net-pci\", \"e1000\"]`)"),
        LabKey("firmware_sets", "`host`, `bookworm`, `trixie`, `sid` or a set file, one test "
               "each (default `[\"host\"]`; `--pxelab-firmware-set` overrides)"),
        LabKey("memory", "MiB (default 512)"),
        LabKey("mac", "the NIC's MAC address, e.g. to match a host entry of your DHCP "
               "configuration (default `52:54:00:12:34:56`; `{{ mac }}` in templates)"),
        LabKey("guests", "how many of this machine the lab powers on at once (default 1, at "
               "most 64): one lab and boot server, each guest with its own MAC counting up "
               "from `mac`, its own console and diagnosis; the test passes when every guest "
               "does, no address was leased to two guests at once and no transfer was lost"),
        LabKey("qemu_args", "extra QEMU arguments, e.g. `[\"-device\", \"virtio-rng-pci\"]`"),
        LabKey("milestone", "`[[guest.milestone]]`: this guest's own milestones, after the "
               "file's (keys as in `[[milestone]]`)"),
        LabKey("expect", "this guest's `[expect]`: `{ stage = \"initramfs_dhcp\", cause = "
               "\"initrd.no_network_driver\" }` (a NIC known to fail where another guest "
               "boots); replaces the file's")),
        array=True),
    LabTable("data_root", (
        LabKey("path", "the directory of your files, relative to the lab file; each boot "
               "serves a copy, with `{{ name }}` placeholders in text files filled in"),
        LabKey("firmware", "files taken from the firmware set: `{ \"undionly.kpxe\" = "
               "\"undionly.kpxe\", \"ipxe.efi\" = \"snponly.efi\" }` (name in the data root = "
               "firmware catalog entry)"),
        LabKey("payload", "`true`: pxelab's kernel and initrd as `vmlinuz` and `initrd.img`, "
               "its NFS root, and `{{ append }}` its kernel command line"),
        LabKey("verbatim", "globs of files copied as they are, never filled in"),
        LabKey("netboot", "a Debian release (`bookworm`, `trixie`): its official netboot "
               "tree (debian-installer-N-netboot-amd64), fetched from the archive and "
               "served unchanged, beside your files"))),
    LabTable("nfs", (
        LabKey("root", "your root directory, exported as `{{ nfs_root }}` (default with "
               "`payload = true`: pxelab's)"),
        LabKey("nfsv3", "also serve NFSv3 (klibc's nfsmount, initramfs-tools' `boot=nfs`)"))),
    LabTable("boot_server", (
        LabKey("type", "`pxelab` (default: pxelab's server with this file's `[dhcp4]`, "
               "`[[rule]]`, ... sections) or `daemons` (the `[[daemon]]`s below)"),)),
    LabTable("daemon", (
        LabKey("type", "`dnsmasq`, `kea-dhcp4`, `kea-dhcp6`, `dhcpd`, `dhcpd6`, `radvd`, "
               "`tftpd-hpa`, `nginx`", required=True),
        LabKey("config", "your configuration file, relative to the lab file, templated "
               "(*required* but for `tftpd-hpa`)"),
        LabKey("args", "more command-line words"),
        LabKey("includes", "files your configuration includes, relative to the lab file: "
               "each is templated like it and written to `{{ workdir }}/NAME` (dhcpd: "
               "`include \"{{ workdir }}/site.conf\";`)"),
        LabKey("directory", "`tftpd-hpa` only (default `{{ data_root }}`)"),
        LabKey("address", "`tftpd-hpa` only (default `:69`)"),
        LabKey("options", "`tftpd-hpa` only (default `--secure`)")),
        array=True),
    LabTable("success", (
        LabKey("console", "a regular expression on the serial console that proves the boot "
               "worked (a login prompt, the installer's first screen); default with "
               "`payload = true`: pxelab's userspace line from the NFS root"),
        LabKey("timeout", "seconds after the last milestone (default 120)"),
        LabKey("stages", "built-in milestone tables the file extends, in order: `firmware` "
               "(the guest mode's; default), `pxelab_payload` (pxelab's kernel to userspace), "
               "`initramfs_tools` (Debian's initramfs-tools NFS root, up to the root mount: "
               "`console` says what your root prints)"),
        LabKey("failures", "`[{ pattern = \"...\", cause = \"...\" }]`: console text that "
               "ends the wait for success at once, with what it means"))),
    LabTable("milestone", (
        LabKey("name", "the stage name in the timeline", required=True),
        LabKey("pattern", "a regular expression on the serial console", required=True),
        LabKey("timeout", "seconds after the previous milestone (default 60)"),
        LabKey("description"),
        LabKey("answer", "keys typed on the console when the milestone is seen: text and "
               "key names such as `<Enter>`, `<Tab>`, `<Space>`, `<Esc>`, `<F10>`, "
               "`<Ctrl-X>` (`<<` types `<`)"),
        LabKey("failures", "as in `[success]`")),
        array=True),
    LabTable("expect", (
        LabKey("stage", "the stage the boot must fail at (a known-bad configuration kept as "
               "a test)"),
        LabKey("cause", "the cause code the diagnosis must name first"))),
)

TABLES = {table.name: table for table in LAB_FILE_TABLES}


def markdown_table() -> str:
    rows = ["| section | keys |", "|---|---|"]
    rows += [f"| `{table.header}` | " + "; ".join(key.markdown() for key in table.keys) + " |"
             for table in LAB_FILE_TABLES]
    return "\n".join(rows) + "\n"


BEGIN = ("<!-- keys: made from pxelab/labfile/keys.py by `python -m pxelab.labfile.keys "
         "docs/lab-files.md`; edit the table there -->\n")


def with_table(text: str) -> str:
    """``text`` with the part between :data:`BEGIN` and the end marker made anew."""
    return splice(text, BEGIN, markdown_table())


if __name__ == "__main__":
    for name in sys.argv[1:] or ["docs/lab-files.md"]:
        path = Path(name)
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
