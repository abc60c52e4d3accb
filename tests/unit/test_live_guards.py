"""The live guards on event sequences as recorded boots had them, on a fake clock.

Each failure has a near miss beside it that a healthy boot produces and that must
stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from pxelab.analysis.live import (
    EventGuard,
    IgnoredOffersGuard,
    ShortTransferGuard,
    UnansweredGuard,
    WithheldGuard,
)
from pxelab.core.events import Event

pytestmark = pytest.mark.unit

MAC = "52:54:00:12:34:56"
T0 = 1_800_000_000.0
RULE = "rule 'pool allows members of pxeclients only': withhold"
INIT = "DISCOVER no arch (option 93 absent) vendor-class=pxelab-init"


def ev(at: float, source: str, kind: str, **fields: Any) -> Event:
    return Event(source, kind, time=T0 + at, **fields)


def withheld(at: float, reason: str = RULE, source: str = "dhcp4", mac: str = MAC) -> Event:
    return ev(at, source, "withheld", client=mac, mac=mac, request=INIT, reason=reason)


def offer(at: float, kind: str = "offer") -> Event:
    return ev(at, "dhcp4", kind, client=MAC, mac=MAC, answer=f"{kind.upper()} yiaddr=192.0.2.100")


def dropped(at: float, request: str, client: str = MAC) -> Event:
    return ev(at, "fault", "injected", client=client, request=request,
              reason="drop every dhcp6.release", details={"fault": "DropPacket"})


def http_get(at: float, path: str, sent: int, size: int, *, status: int = 200,
             reason: str = "") -> Event:
    return ev(at, "http", "get", client="192.0.2.100", mac=MAC, file=path,
              request=f"GET {path}", answer=f"{status} {sent} bytes", reason=reason,
              details={"status": status, "bytes": sent, "size": size})


def tftp(at: float, kind: str, file: str, sent: int | None = None, size: int | None = None,
         *, reason: str = "") -> Event:
    details = {} if sent is None else {"bytes": sent, "size": size}
    return ev(at, "tftp", kind, client="192.0.2.100", file=file, request=file, reason=reason,
              details=details)


def run(guard_type: type[EventGuard], events: list[Event], until: float
        ) -> tuple[float, Any] | None:
    """Feed ``events`` to a new guard as they happen, asking it every 0.25 s up to
    ``until`` seconds: (when it gave a verdict, the verdict), or None."""
    now = [T0]
    guard = guard_type(MAC, clock=lambda: now[0])
    pending = sorted(events, key=lambda e: e.time)
    for step in range(int(until / 0.25) + 1):
        now[0] = T0 + step * 0.25
        while pending and pending[0].time <= now[0]:
            guard.observe(pending.pop(0))
        if (verdict := guard.check()) is not None:
            return step * 0.25, verdict
    return None


# -- withheld --------------------------------------------------------------------------------

def test_withheld_twice_by_a_rule_ends_at_the_second() -> None:
    found = run(WithheldGuard, [offer(0.4), offer(0.4, "ack"), withheld(6.3), withheld(8.0)], 20)
    assert found is not None
    at, verdict = found
    assert 8.0 <= at < 8.5
    assert verdict.code == "dhcp.withheld"
    assert RULE in verdict.text and "pxelab-init" in verdict.text
    assert verdict.ago == pytest.approx(at - 8.0)


def test_withheld_over_dhcpv6_too() -> None:
    found = run(WithheldGuard, [withheld(3.0, "rule 'known hosts only': withhold", "dhcp6"),
                                withheld(4.1, "rule 'known hosts only': withhold", "dhcp6")], 10)
    assert found is not None and "DHCPv6" in found[1].text


def test_min_secs_retry_answered_stays_quiet() -> None:
    # ISC dhcpd's min-secs: the first DISCOVER (secs=0) is withheld, the retry answered.
    min_secs = "OFFER withheld: secs=0 < min_secs=2"
    assert run(WithheldGuard, [withheld(1.0, min_secs), offer(3.0), offer(3.1, "ack")],
               20) is None


def test_min_secs_withheld_many_times_is_not_a_refusal() -> None:
    events = [withheld(t, f"OFFER withheld: secs={t:.0f} < min_secs=60") for t in (1, 3, 5, 7)]
    assert run(WithheldGuard, events, 20) is None


def test_an_answer_between_withholdings_resets_the_count() -> None:
    assert run(WithheldGuard, [withheld(1.0), offer(1.5), withheld(6.0)], 20) is None


def test_a_proxy_without_boot_file_leaves_the_client_to_the_dhcp_server() -> None:
    reason = "proxy mode: no boot file for this client (no rule)"
    assert run(WithheldGuard, [withheld(1.0, reason), withheld(3.0, reason)], 10) is None


def test_another_guests_events_are_not_this_boots() -> None:
    other = "52:54:00:00:00:99"
    assert run(WithheldGuard, [withheld(1.0, mac=other), withheld(3.0, mac=other)], 10) is None


# -- unanswered requests ---------------------------------------------------------------------

def test_dropped_dhcpv6_releases_end_after_three_and_four_seconds() -> None:
    # EDK2's Release retransmissions as measured: +0, 1.7, 4.9, 9.9 s.
    events = [dropped(7.4 + t, f"dhcp6.release #{n}") for n, t in
              enumerate((0.0, 1.7, 4.9, 9.9), 1)]
    found = run(UnansweredGuard, events, 30)
    assert found is not None
    at, verdict = found
    assert 12.3 <= at < 12.6
    assert verdict.code == "request.unanswered"
    assert "3 DHCPv6 Releases" in verdict.text and "drop every dhcp6.release" in verdict.text


def test_received_dhcpv6_requests_without_reply() -> None:
    events = [ev(t, "dhcp6", "request", client=MAC, mac=MAC, details={"xid": 1})
              for t in (1.0, 2.0, 3.0)]
    found = run(UnansweredGuard, events, 10)
    assert found is not None and found[0] == 5.0  # four seconds after the first


def test_answered_dhcpv6_exchange_stays_quiet() -> None:
    events = []
    for t in (3.7, 7.2, 7.7):
        events += [ev(t, "dhcp6", "request", client=MAC, mac=MAC),
                   ev(t + 0.01, "dhcp6", "reply", client=MAC, mac=MAC, answer="REPLY",
                      details={"in_reply_to": "request"})]
    assert run(UnansweredGuard, events, 20) is None


def test_one_dropped_offer_then_answered_stays_quiet() -> None:
    events = [dropped(1.0, "dhcp4.offer #1"), offer(5.0), dropped(5.1, "dhcp4.ack #1"),
              dropped(7.0, "dhcp4.ack #2"), offer(9.0, "ack")]
    assert run(UnansweredGuard, events, 20) is None


def test_dropped_tftp_rrqs_name_the_file() -> None:
    events = [dropped(t, f"tftp.rrq #{n} (ldlinux.c32)", client="192.0.2.100")
              for n, t in enumerate((0.5, 1.5, 3.5, 7.5), 1)]
    found = run(UnansweredGuard, events, 20)
    assert found is not None and "TFTP RRQs" in found[1].text and "ldlinux.c32" in found[1].text


def test_a_delay_fault_is_no_drop() -> None:
    events = [ev(t, "fault", "injected", client=MAC, request=f"dhcp4.offer #{n}",
                 details={"fault": "DelayPacket"}) for n, t in enumerate((1, 2, 3, 4), 1)]
    assert run(UnansweredGuard, events, 20) is None


# -- transfers cut short ---------------------------------------------------------------------

def test_http_get_cut_short_then_silence() -> None:
    events = [http_get(0.83, "/vmlinuz", 7_000_000, 14_190_528,
                       reason="fault: truncated to 7000000 of 14190528 bytes, then closed"),
              http_get(0.97, "/initrd.img", 2_276_231, 2_276_231)]
    found = run(ShortTransferGuard, events, 30)
    assert found is not None
    at, verdict = found
    assert 3.97 <= at < 4.25  # three quiet seconds after the last request
    assert verdict.code == "transfer.short"
    assert "GET /vmlinuz: 7000000 of 14190528 bytes" in verdict.text
    assert verdict.ago == pytest.approx(at - 0.83)


def test_tftp_transfer_timed_out_part_way() -> None:
    events = [tftp(1.0, "rrq", "pxelinux.0"),
              tftp(7.0, "error", "pxelinux.0", 2864, 42430, reason="timed out: 5 retransmissions")]
    found = run(ShortTransferGuard, events, 20)
    assert found is not None and "TFTP pxelinux.0: 2864 of 42430" in found[1].text


def test_ovmf_size_probe_stays_quiet() -> None:
    probe = "size probe: client sent ERROR 8 'User aborted the transfer' after the OACK"
    events = [tftp(5.58, "rrq", "syslinux.efi"),
              tftp(5.58, "aborted", "syslinux.efi", 0, 176_256, reason=probe)]
    assert run(ShortTransferGuard, events, 20) is None


def test_grub_closing_its_config_then_reading_it_whole_stays_quiet() -> None:
    events = [tftp(5.10, "aborted", "/grub/grub.cfg", 0, 883,
                   reason="client sent ERROR 0 'closed' after 0 blocks"),
              tftp(5.11, "sent", "/grub/grub.cfg", 883, 883)]
    assert run(ShortTransferGuard, events, 20) is None


@pytest.mark.parametrize("event", [
    # uefi_http_ipv6's deliberate HTTPv4 404: its body is the error page.
    http_get(7.13, "/no-http-boot-over-ipv4.efi", 140, 0, status=404),
    # A HEAD has no body; a 206 answers a range of a bigger file.
    ev(7.35, "http", "head", client="2001:db8::1:0", file="/snponly.efi",
       details={"status": 200, "bytes": 0, "size": 296_448}),
    http_get(7.4, "/initrd.img", 65_536, 2_276_231, status=206),
    # PXELINUX's config search.
    tftp(0.53, "not_found", "pxelinux.cfg/C0000264"),
])
def test_healthy_boot_answers_are_no_short_transfer(event: Event) -> None:
    assert run(ShortTransferGuard, [event], 20) is None


def test_a_quiet_healthy_boot_stays_quiet_for_every_guard() -> None:
    # iPXE waits ~15 s for a configurator with nothing on the wire.
    events = [offer(0.4), offer(0.4, "ack"), http_get(1.2, "/boot.ipxe", 447, 447)]
    for guard_type in (WithheldGuard, UnansweredGuard, ShortTransferGuard):
        assert run(guard_type, events, 20) is None


# -- offers without a boot file ------------------------------------------------------------

UEFI = "PXEClient:Arch:00007:UNDI:003000"


def bare_offer(at: float, kind: str = "offer", vendor_class: str = UEFI,
               user_classes: list[str] | None = None) -> Event:
    return ev(at, "dhcp4", kind, client=MAC, mac=MAC, answer=f"{kind.upper()} yiaddr=192.0.2.100",
              reason="arch 7 (UEFI x64) has no rule: address only",
              details={"vendor_class": vendor_class, "user_classes": user_classes or []})


def test_a_pxe_client_ignoring_two_offers_without_a_file_ends_at_the_second() -> None:
    found = run(IgnoredOffersGuard, [bare_offer(1.0), bare_offer(5.0)], 60)
    assert found is not None
    at, verdict = found
    assert at == 5.0 and verdict.code == "dhcp.offer_no_boot_file"
    assert "has no rule" in verdict.text and "no boot file" in verdict.text


def test_offers_without_the_httpclient_echo_left_untaken_end_at_the_second() -> None:
    http = "HTTPClient:Arch:00016:UNDI:003000"
    offers = [ev(at, "dhcp4", "offer", client=MAC, mac=MAC, file="http://192.0.2.1/x.efi",
                 answer="OFFER", reason="rule 'http'", details={"vendor_class": http})
              for at in (1.0, 5.0)]
    found = run(IgnoredOffersGuard, offers, 60)
    assert found is not None and found[0] == 5.0 and found[1].code == "dhcp.offer_unused"
    assert "no option 60" in found[1].text


@pytest.mark.parametrize("events", [
    # iPXE of legacy_pxe_ipv6 takes the address-only offer; its file comes from DHCPv6.
    [bare_offer(0.3), bare_offer(0.35, "ack"), bare_offer(9.0)],
    # iPXE asks again a second after an offer while it waits for ProxyDHCP (recorded on
    # uefi_ipxe_ipv4[e1000] with trixie's snponly.efi), then takes one.
    [bare_offer(5.94, user_classes=["iPXE"]), bare_offer(6.92, user_classes=["iPXE"]),
     bare_offer(14.0, "ack", user_classes=["iPXE"])],
    # a client that asks again at once and takes the second offer.
    [bare_offer(1.0), bare_offer(2.5), bare_offer(2.6, "ack")],
    # the initramfs asks for an address only.
    [bare_offer(1.0, vendor_class="pxelab-init"), bare_offer(5.0, vendor_class="pxelab-init")],
])
def test_an_address_only_answer_a_client_takes_is_no_failure(events: list[Event]) -> None:
    assert run(IgnoredOffersGuard, events, 30) is None


def test_a_tftp_transfer_ended_below_its_oack_tsize_is_short() -> None:
    oack = ev(1.0, "tftp", "oack", client="2001:db8::1:0", file="vmlinuz",
              details={"options": {"blksize": "1432", "tsize": "14190528"}})
    found = run(ShortTransferGuard, [oack, tftp(1.4, "sent", "vmlinuz", 4_000_000, 4_000_000)],
                20)
    assert found is not None
    at, verdict = found
    assert at == 4.5 and "4000000 of 14190528 bytes" in verdict.text


def test_ovmfs_size_probe_tsize_is_no_short_transfer() -> None:
    oack = ev(1.0, "tftp", "oack", client="192.0.2.100", file="grubx64.efi",
              details={"options": {"tsize": "540672"}})
    events = [oack, tftp(1.1, "aborted", "grubx64.efi", 0, 540672, reason="size probe"),
              tftp(1.5, "sent", "grubx64.efi", 540672, 540672)]
    assert run(ShortTransferGuard, events, 20) is None
