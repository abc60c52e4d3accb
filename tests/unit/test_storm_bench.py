"""bench/storm.py, the pure parts of the storm benchmark: what curl and /proc say, the
expected TFTP datagrams, a round's statistics, the tables and the profile summary."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def storm() -> ModuleType:
    spec = importlib.util.spec_from_file_location("storm", REPO / "bench/storm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("storm", module)
    spec.loader.exec_module(module)
    return module


SNMP = """\
Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 1200
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors
Udp: 100 0 3 250 3 0
Tcp: RtoAlgorithm RetransSegs
Tcp: 1 7
"""


def test_curl_write_out_gives_status_bytes_and_seconds() -> None:
    assert storm().parse_curl("200 14190528 0.153212\n") == (200, 14190528, 0.153212)
    assert storm().parse_curl("404 153 0,002") == (404, 153, 0.002)  # a comma locale
    with pytest.raises(ValueError, match="not 'status bytes seconds'"):
        storm().parse_curl("curl: (7) Failed to connect")


def test_snmp_counters_are_named_by_group_and_subtracted() -> None:
    s = storm()
    before = s.parse_snmp(SNMP)
    assert before["Udp.OutDatagrams"] == 250
    assert before["Udp.RcvbufErrors"] == 3
    assert before["Tcp.RetransSegs"] == 7
    after = dict(before, **{"Udp.OutDatagrams": 1250})
    assert s.delta(before, after)["Udp.OutDatagrams"] == 1000
    assert s.delta(before, after)["Tcp.RetransSegs"] == 0
    with pytest.raises(ValueError, match="header followed by"):
        s.parse_snmp("Ip: A\nUdp: 1\n")


def test_proc_stat_cpu_counts_reaped_children_and_survives_odd_names() -> None:
    # pid (comm) state ppid ... utime=14th, stime, cutime, cstime (fields 14-17)
    fields = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", "150", "50", "30", "20"]
    line = "42 (in.tftpd (x) y) " + " ".join(fields) + " 20 0 1"
    assert storm().proc_cpu_seconds(line, 100) == pytest.approx(2.5)


def test_tftp_expects_an_oack_and_every_block_once_per_client() -> None:
    s = storm()
    assert s.tftp_blocks(1468 * 3, 1468) == 4  # an empty last block ends the transfer
    assert s.tftp_blocks(1000, 512) == 2
    assert s.tftp_server_datagrams(1000, 512, clients=4) == 4 * 3


def a_round(s: ModuleType, server: str, seconds: list[float], wall: float, *,
            cell: object = None, failed: int = 0, cpu: float | None = 1.0) -> object:
    cell = cell or s.Cell("tftp", "vmlinuz", 16 * MIB, 1468, 1)
    clients = [s.ClientRun(t, 16 * MIB, True) for t in seconds]
    clients += [s.ClientRun(wall, 5, False, "exit 1: timeout") for _ in range(failed)]
    return s.Round(server, cell, tuple(clients), wall, cpu, retransmits=3, drops=1)


def test_a_round_counts_only_whole_files_over_its_wall_time() -> None:
    s = storm()
    one = a_round(s, "pxelab", [1.0, 2.0, 4.0], 4.0, failed=1)
    assert one.n == 4
    assert one.failed == 1
    assert one.aggregate == pytest.approx(12.0)  # 3 x 16 MiB in 4 s; the cut one not
    assert one.slowest == 4.0
    assert s.Cell("tftp", "vmlinuz", 16 * MIB, 1468, 4).label == "vmlinuz (16.0 MiB) 1468x4"
    assert s.Cell("http", "initrd.img", 2 * MIB).label == "initrd.img (2.0 MiB)"


def test_the_median_round_is_the_middle_aggregate_and_the_lower_of_two() -> None:
    s = storm()
    slow, middle, fast = (a_round(s, "pxelab", [1.0], w) for w in (4.0, 2.0, 1.0))
    assert s.median_round([fast, slow, middle]) is middle
    assert s.median_round([fast, slow]) is slow


def test_the_transfer_tables_compare_pxelab_with_the_faster_peer() -> None:
    s = storm()
    rounds = [a_round(s, "pxelab", [2.0] * 4, 2.0), a_round(s, "tftpd-hpa", [1.0] * 4, 1.0),
              a_round(s, "dnsmasq", [2.0] * 3, 4.0, failed=1, cpu=None)]
    text = s.render_transfers(rounds, ["pxelab", "tftpd-hpa", "dnsmasq"],
                              ["tftpd-hpa", "dnsmasq"])
    lines = text.splitlines()
    assert lines[0] == "| file | clients | pxelab | tftpd-hpa | dnsmasq | pxelab / faster peer |"
    assert lines[2] == ("| vmlinuz (16.0 MiB) 1468x1 | 4 | 32.0 (2.00 s) | 64.0 (1.00 s) | "
                        "12.0 (4.00 s) | 0.50 |")
    assert lines[-1] == ("| vmlinuz (16.0 MiB) 1468x1 | 4 | 1.00 (50%) / 3 / 1 / 0 | "
                         "1.00 (100%) / 3 / 1 / 0 | n/a / 3 / 1 / 1 |")


def test_a_server_without_a_cell_is_na_and_so_is_the_ratio() -> None:
    s = storm()
    windowed = s.Cell("tftp", "vmlinuz", 16 * MIB, 1468, 16)
    text = s.render_transfers([a_round(s, "pxelab", [1.0], 1.0, cell=windowed)],
                              ["pxelab", "dnsmasq"], ["dnsmasq"])
    assert text.splitlines()[2] == "| vmlinuz (16.0 MiB) 1468x16 | 1 | 16.0 (1.00 s) | n/a | n/a |"


def test_the_lease_table_takes_medians_sums_losses_and_compares_with_dnsmasq() -> None:
    s = storm()
    rounds = [s.LeaseRound("pxelab", "dhcp4 DORA", 64, 2000, rate, 12.0, 1, 0, 200.0, 2)
              for rate in (1000.0, 3000.0, 2000.0)]
    rounds.append(s.LeaseRound("dnsmasq", "dhcp4 DORA", 64, 2000, 4000.0, 5.5, 0, 0, 75.0))
    lines = s.render_leases(rounds, ["pxelab", "dnsmasq"]).splitlines()
    assert lines[2] == ("| dhcp4 DORA | 64 | 2000 (12.0, 3, 6, 200) | 4000 (5.5, 0, 0, 75) | "
                        "0.50 |")


def test_the_profile_summary_leaves_out_start_up_and_blocked_threads() -> None:
    transfer = "thread (7): tftp 10.0.0.2:3456;_run (pxelab/server/tftp/transfer.py:330)"
    raw = "\n".join([
        f"{transfer};send (pxelab/x.py:9) 60",
        f"{transfer};recv_into (pxelab/x.py:5) 30",
        "thread (1): MainThread;_run_once (asyncio/base_events.py:1922) 40",
        "thread (1): MainThread;<module> (pxelab/server/bootserver.py:35) 500",
        "garbage"])
    text = storm().summarize_stacks(raw)
    assert text.splitlines()[0] == "100 busy samples, 30 idle, 500 at start-up"
    assert "   60.0%  tftp" in text
    assert "   40.0%  MainThread" in text
    assert "   60.0%  send (pxelab/x.py:9)" in text
    assert "   60.0%  _run (pxelab/server/tftp/transfer.py:330)" in text
