"""Regressions, DHCPv6 area: each field failure reproduced, named, and fixed.

Each test boots the recorded case twice: with the fault (the boot fails at the
entry's stage, for the entry's reason) and fixed (it reaches userspace).

    pytest tests/boot/test_regress_dhcp6.py -k release
"""

from __future__ import annotations

from typing import Any

import pytest
from regress import FixedBoots, boot_as_recorded

from pxelab.lab import BootResult
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import get_regression

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

_FIXED = FixedBoots()


def dhcp6(result: BootResult, kind: str) -> list[Any]:
    mac = find_case("uefi_http_ipv6").guest.mac
    return [e for e in result.events if e.source == "dhcp6" and e.kind == kind
            and e.client == mac]


def test_dhcp6_no_vendor_class(boot_scenario: Any) -> None:
    entry = get_regression("dhcp6-no-vendor-class")
    result = boot_as_recorded(boot_scenario, entry)
    timeline = result.timeline
    # HTTPv4 failed at once, HTTPv6 started, and its DHCPv6 never got an address: EDK2
    # gives up on the first Advertise (see the entry) and says so misleadingly.
    assert [h.name for h in timeline.hits] == ["fw_http4_skip", "firmware"]
    assert "Station IPv6 address" not in timeline.console_tail
    assert "Could not retrieve NBP file size" in timeline.console_tail
    advertises = dhcp6(result, "advertise")
    assert advertises, "the server answered the Solicits"
    assert all(e.details["vendor_class_echo"] is None for e in advertises)
    assert all(e.details["vendor_class"].startswith("HTTPClient") for e in dhcp6(
        result, "solicit"))
    assert not dhcp6(result, "request"), "an Advertise without HTTPClient gets no Request"
    assert any(e.source == "fault" and e.request == "dhcp6.advertise" for e in result.events)
    _FIXED.boot(boot_scenario, entry)


def test_dhcp6_release_unanswered(boot_scenario: Any) -> None:
    entry = get_regression("dhcp6-release-unanswered")
    result = boot_as_recorded(boot_scenario, entry)
    timeline = result.timeline
    # The NBP came down; the client then released its lease and got no Reply.
    assert [h.name for h in timeline.hits][-2:] == ["nbp_url", "nbp"]
    assert dhcp6(result, "reply"), "the Request was answered"
    dropped = [e for e in result.events if e.source == "fault"
               and e.request.startswith("dhcp6.release")]
    assert dropped, "the client sent a Release and the server dropped it"
    # The Release comes after the NBP download (the firmware is silent until it times out).
    nbp = find_case(entry.scenario).loader.nbp
    downloaded = [e for e in result.events if e.source == "http" and e.kind == "get"
                  and e.details.get("path", "").endswith(nbp)
                  and e.details.get("status") == 200]
    assert downloaded and dropped[0].time >= downloaded[-1].time
    assert not any(e.source == "dhcp6" and e.kind == "reply"
                   and e.details.get("in_reply_to") == "release" for e in result.events)
    _FIXED.boot(boot_scenario, entry)
