"""DHCPv6 field failures of UEFI network boot over IPv6 (EDK2's HTTPv6 client).

Both entries run on ``uefi_http_ipv6``: OVMF's HTTPv6 boot option, the one
that needs an option 16 echo and the one that sends its DHCPv6 Release
before it starts the NBP (see each entry).
"""

from __future__ import annotations

from pxelab.scenarios.cases import Scenario
from pxelab.scenarios.regressions.registry import (
    Regression,
    register,
    with_faults,
    with_stage_timeout,
)
from pxelab.server.faults import DropPacket, OmitOption

__all__ = ["NO_VENDOR_CLASS", "RELEASE_UNANSWERED"]


# An Advertise without option 16 "HTTPClient" is no HTTP offer to EDK2
# (HttpBootParseDhcp6Packet): HttpBootDhcp6CallBack aborts at Dhcp6SelectAdvertise,
# so no Request is sent. With our Preference 255 the client selects at once: in the
# run (OVMF 2022.11-6+deb12u2, TCG) one Solicit, one Advertise, then ~5 s later
# "Error: Could not retrieve NBP file size from HTTP server." and "Error: Remote boot
# cancelled." and BdsDxe's "failed to load Boot0002 "UEFI HTTPv6", no "Station IPv6
# address" line. The 20 s bound is only a guard: should a firmware keep soliciting
# instead (IRT 4 s, MRC 4, MRT 32 s, MRD 60 s in HttpBootDhcp6Sarr), the Advertises
# of the first 20 s show the cause as well as a full minute would.
_NO_ECHO_WAIT = 20.0


def _omit_vendor_class(scenario: Scenario, argument: str | None) -> Scenario:
    return with_stage_timeout(with_faults(scenario, OmitOption("dhcp6.*", 16)), "fw_dhcp",
                              _NO_ECHO_WAIT)


NO_VENDOR_CLASS = Regression(
    name="dhcp6-no-vendor-class",
    summary="DHCPv6 Advertise/Reply to the UEFI HTTPv6 client without option 16 HTTPClient",
    scenario="uefi_http_ipv6",
    stage="fw_dhcp",
    cause="dhcp6.advertise_no_vendor_class",
    apply=_omit_vendor_class,
    report="UEFI HTTP boot over IPv6 prints 'Error: Could not retrieve NBP file size from "
           "HTTP server.' and 'Remote boot cancelled' right after 'Start HTTP Boot over "
           "IPv6', with no 'Station IPv6 address': the DHCPv6 server advertises an address "
           "and a boot-file-url but no vendor class 'HTTPClient', so the firmware never "
           "sends a Request",
)


# EDK2 sends the Release from HttpBootDxeLoadFile -> HttpBootStop -> Dhcp6->Stop, which
# polls until the Release is answered or its retransmissions (RFC 8415 REL_TIMEOUT 1 s,
# REL_MAX_RC 5) run out, and only then does BdsDxe start the NBP. Answered, "BdsDxe:
# starting" follows "Downloading...100%" within 15 ms. Measured once unanswered
# (OVMF 2022.11-6+deb12u2, TCG, nbp_start allowed 150 s): the NBP started 69.7 s after
# the download; six Releases went out, at +0, 1.7, 4.9, 9.9, 18.9 and 36.3 s, then the
# client waited out the last one (~34 s). PXEv6 (uefi_tftp_ipv6) releases too, but only
# once GRUB runs (its Release came after "Welcome to GRUB!": GRUB's efinet opens the NIC
# exclusively (grub-core/net/drivers/efi/efinet.c open_card), which stops the PXE
# driver), so the stall before the NBP is an HTTPv6 one. 20 s shows four or five
# Releases unanswered; the rest is the same silence.
_RELEASE_WAIT = 20.0


def _drop_release(scenario: Scenario, argument: str | None) -> Scenario:
    # count=0: every Release, retransmissions included.
    return with_stage_timeout(with_faults(scenario, DropPacket("dhcp6.release", count=0)),
                              "nbp_start", _RELEASE_WAIT)


RELEASE_UNANSWERED = Regression(
    name="dhcp6-release-unanswered",
    summary="the DHCPv6 server leaves the UEFI client's Release unanswered (a stall "
            "before the NBP starts)",
    scenario="uefi_http_ipv6",
    stage="nbp_start",
    cause="dhcp6.release_unanswered",
    apply=_drop_release,
    report="UEFI HTTP boot over IPv6 downloads the NBP ('Downloading...100%') and then "
           "hangs about a minute before 'BdsDxe: starting Boot...': the client's DHCPv6 "
           "Release gets no Reply from the server",
)

register(NO_VENDOR_CLASS, RELEASE_UNANSWERED)
