"""Host link names: short, unique per lab, and readable back by the reaper."""

from __future__ import annotations

import pytest

from pxelab.core.errors import NetworkError
from pxelab.machine.hostlink import (
    HostLinkNames,
    host_link_names,
    lab_token,
    link_lab_token,
    stale_host_links,
)
from pxelab.machine.network import IFNAMSIZ

pytestmark = pytest.mark.unit

LAB = "pxl-gw1-4194303-12"  # the longest pid Linux gives out


@pytest.mark.parametrize("serial", [0, 35, 36, 36**3 - 1])
def test_names_fit_ifnamsiz_and_share_the_lab_token(serial: int) -> None:
    names = host_link_names(LAB, serial)
    for name, prefix in ((names.bridge, "pxh"), (names.veth, "pxv"), (names.port, "pxp")):
        assert len(name) <= IFNAMSIZ
        assert name.startswith(prefix + lab_token(LAB))
    assert names.bridge[3:] == names.veth[3:] == names.port[3:]


def test_names_differ_per_lab_and_per_serial() -> None:
    made = {host_link_names(f"pxl-m-{pid}-{n}", serial).bridge
            for pid in (100, 101) for n in (0, 1) for serial in (0, 1)}
    assert len(made) == 8
    assert host_link_names(LAB, 3) == host_link_names(LAB, 3)


def test_reaper_reads_the_lab_token_back() -> None:
    names = host_link_names(LAB, 7)
    assert link_lab_token(names.bridge) == lab_token(LAB)
    assert link_lab_token(names.veth) == lab_token(LAB)


@pytest.mark.parametrize("ifname", ["eth0", "pxtest0", "pxhbr", "pxp0123abcd0", "pxh0123abcd",
                                    "pxhXYZ3abcd0", "vnet0", "br0"])
def test_other_links_are_not_host_links(ifname: str) -> None:
    assert link_lab_token(ifname) is None


def test_given_bridge_name_names_the_veths() -> None:
    assert HostLinkNames.for_bridge("pxhmine") == HostLinkNames("pxhmine", "pxvmine", "pxpmine")


@pytest.mark.parametrize("name, says", [("br-lab", "must begin with 'pxh'"),
                                        ("pxh", "must begin with 'pxh'"),
                                        ("pxh0123456789abc", "longer than 15")])
def test_bad_bridge_names_say_why(name: str, says: str) -> None:
    with pytest.raises(NetworkError, match=says):
        HostLinkNames.for_bridge(name)


def test_stale_links_are_those_of_missing_or_orphaned_labs() -> None:
    running, gone, orphaned = "pxl-m-100-0", "pxl-m-200-0", "pxl-gw0-300-1"
    links = {ns: host_link_names(ns, 0) for ns in (running, gone, orphaned)}
    ifnames = ["eth0", "pxtest0", *(n for names in links.values()
                                      for n in (names.bridge, names.veth))]
    stale = stale_host_links(ifnames, [running, orphaned, "other-ns"],
                             alive=lambda pid: pid != 300)
    assert sorted(stale) == sorted([links[gone].bridge, links[gone].veth,
                                    links[orphaned].bridge, links[orphaned].veth])


def test_a_lab_not_named_by_pxelab_counts_while_it_exists() -> None:
    names = host_link_names("my-own-netns", 0)
    assert stale_host_links([names.bridge], ["my-own-netns"], alive=lambda pid: False) == []
    assert stale_host_links([names.bridge], [], alive=lambda pid: True) == [names.bridge]
