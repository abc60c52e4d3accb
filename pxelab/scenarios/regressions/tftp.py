"""Area ``tftp``: PXELINUX's "Failed to load ldlinux.c32" and TFTP negotiation faults.

The field report behind the ldlinux entries: PXELINUX 6.03 loaded and printed
its banner, then, after a long silence, "Failed to load ldlinux.c32" — on some
NICs only. The known causes are reproduced one by one: the file is not there,
it is another syslinux build's, or its RRQs go unanswered (the lwIP/UNDI
hang). The block-size and OACK entries are the other TFTP traps firmware falls
into: a block size the path cannot carry, and an option acknowledgement the
client rejects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pxelab.core.errors import ConfigError
from pxelab.machine import firmware
from pxelab.scenarios.cases import Scenario
from pxelab.scenarios.regressions.registry import (
    Regression,
    register,
    with_faults,
    with_stage_timeout,
)
from pxelab.server.faults import DropPacket, OackFault, OackMode, RemoveFile, ReplaceFile

LDLINUX = "ldlinux.c32"


# -- ldlinux.c32 missing --------------------------------------------------------------------

def _ldlinux_missing(scenario: Scenario, argument: str | None) -> Scenario:
    return with_faults(scenario, RemoveFile(LDLINUX))


# -- ldlinux.c32 of another build -----------------------------------------------------------

# The default foreign ldlinux: the same syslinux release's EFI x64 build (ldlinux.e64),
# which every host with pxelab's syslinux files has. PXELINUX reads its ELF headers,
# closes the transfer, searches its fallback directories, then prints "Failed to load
# ldlinux.c32" — the field report's console. Another *release* (6.03 against 6.04) is
# what the field usually mixed; Debian carries 6.04 builds only, and a rebuild of 6.04
# (trixie's, gcc 14) loads fine beside bookworm's pxelinux.0, so it is no mismatch. The
# efi32 build's ldlinux.e32 loads and then hangs silently: not the field's symptom.
FOREIGN_BUILDS = {"efi64": "ldlinux.e64"}
DEFAULT_FOREIGN = "efi64"


def _ldlinux_foreign(scenario: Scenario, argument: str | None) -> Scenario:
    assert argument is not None
    if argument in FOREIGN_BUILDS:
        name = FOREIGN_BUILDS[argument]
        source, origin = firmware.locate(name), f"{name} of the syslinux {argument} build"
    else:
        source, origin = Path(argument).expanduser(), argument
        if not source.is_file():
            raise ConfigError(f"--fault ldlinux-foreign={argument}: no such file; give "
                              "'efi64' or the path of an ldlinux.c32 from another syslinux "
                              "build than pxelinux.0's")
    return with_faults(scenario, ReplaceFile(LDLINUX, source.resolve(), origin=origin))


# -- RRQs for ldlinux.c32 unanswered ----------------------------------------------------------

# PXELINUX asks for ldlinux.c32 beside pxelinux.0 and then in its fallback
# directories (/boot/isolinux/, /isolinux/, /boot/syslinux/, /syslinux/, /): the glob
# silences all of them, as a client whose packets never leave the NIC would be.
LDLINUX_ANYWHERE = f"*{LDLINUX}"
# Measured (PXELINUX 6.04 under TCG): 31 RRQs per path on a back-off over ~131 s, then
# the next path; "Failed to load ldlinux.c32" only after all six, ~13 minutes. The
# config stage waits 30 s instead: ~23 unanswered RRQs by then are evidence enough.
RRQ_DROPPED_WAIT = 30.0


def _ldlinux_rrq_dropped(scenario: Scenario, argument: str | None) -> Scenario:
    dropped = with_faults(scenario, DropPacket("tftp.rrq", count=0, file=LDLINUX_ANYWHERE))
    return with_stage_timeout(dropped, "config", RRQ_DROPPED_WAIT)


# -- TFTP block size above the link MTU ------------------------------------------------------

DEFAULT_MTU = "1200"
IPV4_UDP_TFTP = 20 + 8 + 4  # bytes of headers around a DATA block


def _mtu(argument: str | None) -> int:
    try:
        mtu = int(argument or DEFAULT_MTU)
    except ValueError:
        raise ConfigError(f"--fault tftp-blksize-mtu={argument}: give the link MTU in bytes, "
                          "e.g. tftp-blksize-mtu=1200") from None
    # 576: every IPv4 host takes datagrams this large; 1468 + 32 and more carries every
    # block size firmware asks for, so there would be no fault.
    if not 576 <= mtu < 1468 + IPV4_UDP_TFTP:
        raise ConfigError(f"--fault tftp-blksize-mtu={mtu}: give an MTU from 576 to "
                          f"{1468 + IPV4_UDP_TFTP - 1} (smaller than a 1468-byte block needs)")
    return mtu


def _blksize_mtu(scenario: Scenario, argument: str | None) -> Scenario:
    return replace(scenario, link_mtu=_mtu(argument))


# The fixed configuration is a path that carries the MTU (the scenario as it is). Capping
# the block size alone is not enough here: with tftp_max_blksize = MTU - 32 PXELINUX got
# through TFTP and then stalled loading the kernel over HTTP, whose TCP segments the
# small hop drops too ("Boot failed: press a key to retry").


# -- option acknowledgement faults ----------------------------------------------------------

# OVMF asks tsize, blksize and windowsize: "timeout" is an option it knows and did
# not ask for, which EDK2's Mtftp4RrqOackValid() refuses (an unknown name it ignores).
EXTRA_OPTION = ("timeout", "5")


def _oack(mode: OackMode) -> Callable[[Scenario, str | None], Scenario]:
    def apply(scenario: Scenario, argument: str | None) -> Scenario:
        return with_faults(scenario, OackFault(mode, file=argument or "*",
                                               option=EXTRA_OPTION))
    return apply


register(
    Regression(
        name="ldlinux-missing",
        summary="the TFTP root has pxelinux.0 but not ldlinux.c32 beside it",
        scenario="legacy_pxe_ipv4", stage="config", cause="file.not_found",
        apply=_ldlinux_missing,
        report="PXELINUX prints its banner, then 'Failed to load ldlinux.c32' and reboots"),
    Regression(
        name="ldlinux-foreign",
        summary="ldlinux.c32 comes from another syslinux build than pxelinux.0",
        scenario="legacy_pxe_ipv4", stage="config", cause="tftp.ldlinux_mismatch",
        apply=_ldlinux_foreign, default=DEFAULT_FOREIGN,
        argument="efi64, or the path of another build's ldlinux.c32",
        report="'Failed to load ldlinux.c32' although the file is there and is fetched"),
    Regression(
        name="ldlinux-rrq-dropped",
        summary="every RRQ for ldlinux.c32 goes unanswered after the NBP (lwIP/UNDI silence)",
        scenario="legacy_pxe_ipv4", stage="config", cause="request.unanswered",
        apply=_ldlinux_rrq_dropped,
        report="PXELINUX banner, a long silence with no TFTP traffic answered, then "
               "'Failed to load ldlinux.c32'"),
    Regression(
        name="tftp-blksize-mtu",
        summary="the guest's link carries a smaller MTU than the TFTP block size agreed",
        scenario="legacy_pxe_ipv4", stage="nbp", cause="tftp.blksize_above_mtu",
        apply=_blksize_mtu, argument="link MTU in bytes",
        default=DEFAULT_MTU,
        report="the NBP download stalls at its first block and times out "
               "(iPXE 'Connection timed out'); small files load, large blocks never arrive"),
    Regression(
        name="oack-malformed",
        summary="the TFTP server's OACK is not a list of NUL-terminated option pairs",
        scenario="uefi_tftp_ipv4", stage="nbp", cause="tftp.oack_malformed",
        apply=_oack(OackMode.CORRUPT), argument="file glob", default="*",
        report="OVMF PXE: 'NBP filesize is 0 Bytes', then 'PXE-E99: Unexpected network "
               "error.'; the client aborted the size probe right after the OACK"),
    Regression(
        name="oack-extra-option",
        summary="the TFTP server's OACK carries an option the client did not ask for",
        # OVMF itself takes an OACK with an unasked-for timeout and loads syslinux.efi;
        # syslinux's TFTP client answers it with ERROR 8 and gives up on ldlinux.e64.
        scenario="uefi_tftp_ipv4", stage="config", cause="tftp.oack_unrequested_option",
        apply=_oack(OackMode.ADD_OPTION), argument="file glob", default="*",
        report="the NBP loads, then 'Failed to load ldlinux.e64' (syslinux aborts the "
               "transfer with 'TFTP protocol error' after the OACK)"),
)
