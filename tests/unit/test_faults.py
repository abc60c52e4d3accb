"""The fault injector: which packet a fault hits, and the event that says so."""

from __future__ import annotations

import pytest

from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.server.bootserver import BootServer, ServerConfig
from pxelab.server.faults import (
    DelayPacket,
    DropPacket,
    FaultInjector,
    HttpError,
    LieTsize,
    OackFault,
    OackMode,
    TruncateFile,
    WithholdOffers,
)
from pxelab.server.policy import ClientInfo, Match, RulePolicy

pytestmark = pytest.mark.unit


def injector(*faults: object) -> tuple[FaultInjector, EventLog]:
    events = EventLog()
    return FaultInjector(tuple(faults), events), events  # type: ignore[arg-type]


def test_no_faults_passes_everything_and_emits_nothing() -> None:
    faults, events = injector()
    assert not faults.packet("dhcp4.offer", "m")
    assert faults.tftp("pxelinux.0").oack is None
    assert len(events) == 0


def test_drop_hits_only_the_nth_packet_of_its_kind() -> None:
    faults, events = injector(DropPacket("dhcp4.offer", nth=2))
    verdicts = [faults.packet("dhcp4.offer", "m").drop for _ in range(3)]
    assert verdicts == [False, True, False]
    assert not faults.packet("dhcp4.ack", "m")
    [fired] = events
    assert (fired.source, fired.kind) == ("fault", "injected")
    assert fired.request == "dhcp4.offer #2"
    assert fired.reason == "drop dhcp4.offer x1 from #2"


def test_count_zero_drops_every_packet_from_nth_on() -> None:
    faults, _ = injector(DropPacket("tftp.rrq", nth=1, count=0))
    assert all(faults.packet("tftp.rrq").drop for _ in range(5))


def test_delay_and_match_by_client_class() -> None:
    http = ClientInfo(mac="52:54:00:00:00:01", arch=16)
    bios = ClientInfo(mac="52:54:00:00:00:02", arch=0)
    faults, _ = injector(DelayPacket("dhcp4.offer", 1.5, count=0, match=Match(arch=(16,))))
    assert faults.packet("dhcp4.offer", bios.mac, bios).delay == 0
    assert faults.packet("dhcp4.offer", http.mac, http).delay == 1.5


def test_withhold_names_the_fault() -> None:
    faults, events = injector(WithholdOffers(Match(vendor_class="HTTPClient")))
    assert faults.withhold(ClientInfo(mac="52:54:00:00:00:01")) is None
    reason = faults.withhold(ClientInfo(mac="52:54:00:00:00:01", vendor_class="HTTPClient:x"))
    assert reason == "fault: withhold offers from vendor-class=HTTPClient"
    assert len(events) == 1


def test_tftp_faults_apply_by_file_glob() -> None:
    faults, events = injector(OackFault(OackMode.CORRUPT, file="ldlinux.*"),
                              LieTsize(12, file="*.0"), TruncateFile(100, file="vmlinuz"))
    assert faults.tftp("pxelinux.0").tsize == 12
    assert faults.tftp("/ldlinux.c32").oack == OackFault(OackMode.CORRUPT, file="ldlinux.*")
    assert faults.tftp("vmlinuz").truncate == 100
    assert faults.truncate("vmlinuz") == 100
    assert faults.tftp("initrd.img") == faults.tftp("other")
    assert len(events) == 4


def test_http_error_status() -> None:
    faults, _ = injector(HttpError(404, path="*.efi"))
    assert faults.http_status("/ipxe.efi") == 404
    assert faults.http_status("/script.ipxe") is None


@pytest.mark.parametrize(("make", "message"), [
    (lambda: DropPacket("dhcp4.offer", nth=0), "counted from 1"),
    (lambda: DropPacket("dhcp4.offer", count=-1), "count=-1"),
    (lambda: DelayPacket("dhcp4.offer", 0), "outside"),
    (lambda: HttpError(200), "not an error"),
])
def test_invalid_faults_are_config_errors(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]


def test_faults_travel_beside_the_policy_not_in_it() -> None:
    server = BootServer(ServerConfig(), RulePolicy(), EventLog(), faults=[HttpError(500)])
    assert server.faults.faults == (HttpError(500),)
    assert not hasattr(RulePolicy(), "faults")


def test_a_matched_fault_counts_only_the_packets_it_matches() -> None:
    http = ClientInfo(mac="52:54:00:00:00:01", arch=16)
    bios = ClientInfo(mac="52:54:00:00:00:02", arch=0)
    faults, _ = injector(DropPacket("dhcp4.offer", nth=1, match=Match(arch=(16,))))
    assert not faults.packet("dhcp4.offer", bios.mac, bios)
    assert faults.packet("dhcp4.offer", http.mac, http).drop  # the first offer to arch 16
    assert not faults.packet("dhcp4.offer", http.mac, http)
