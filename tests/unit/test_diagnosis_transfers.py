"""transfer.short over TFTP: a transfer that ended below the tsize its OACK announced."""

from __future__ import annotations

import pytest
from test_diagnosis import IP, NORMAL_BOOTS, Boot, only

from pxelab.analysis.diagnosis import transfers

pytestmark = pytest.mark.unit


def _cut(boot: Boot, sent: int, tsize: str = "14190528") -> None:
    boot.event(1.0, "tftp", "oack", client=IP, file="vmlinuz",
               options={"blksize": "1432", "tsize": tsize})
    boot.event(1.4, "tftp", "sent", client=IP, file="vmlinuz", bytes=sent, size=sent)


def test_a_tftp_transfer_below_its_oack_tsize_is_short() -> None:
    boot = Boot("legacy_pxe_ipv6")
    _cut(boot, 4_000_000)
    evidence = boot.evidence("kernel_fetch", "iPXE: Connection timed out", 17.0)
    cause = only(transfers.short, evidence, "transfer.short")
    assert "4000000 of 14190528 bytes" in cause.summary and "TFTP" in cause.summary


@pytest.mark.parametrize("sent, tsize", [(14_190_528, "14190528"), (4_000_000, "0")])
def test_quiet_for_a_whole_transfer_or_no_size_announced(sent: int, tsize: str) -> None:
    boot = Boot("legacy_pxe_ipv6")
    _cut(boot, sent, tsize)
    assert transfers.short(boot.evidence("kernel", "timeout", 60.0)) is None


@pytest.mark.parametrize("name", sorted(NORMAL_BOOTS))
def test_quiet_on_normal_boots(name: str) -> None:
    boot = NORMAL_BOOTS[name]()
    assert transfers.short(boot.evidence("userspace", "timeout", 90.0)) is None


def test_a_capture_that_lost_frames_of_a_whole_transfer_is_no_short_transfer() -> None:
    # A busy tcpdump kept 422 of grubx64.efi's 441 blocks; the last one came.
    boot = Boot("uefi_tftp_ipv6")
    boot.event(1.0, "tftp", "oack", client=IP, file="grubx64.efi",
               options={"blksize": "1228", "tsize": "540672"})
    boot.event(1.2, "tftp", "sent", client=IP, file="grubx64.efi", bytes=517_340,
               size=517_340, blksize=1228, last_block=441, **{"from": "capture"})
    assert transfers.short(boot.evidence("kernel", "timeout", 60.0)) is None
    boot.events[-1].details["last_block"] = 420  # it did stop early
    assert transfers.short(boot.evidence("kernel", "timeout", 60.0)) is not None
