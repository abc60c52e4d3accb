"""examples/min-secs without booting: its three lab files load, and their dhcpd
configurations differ only in the ``min-secs`` line (the shared dhcpd.conf is included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxelab.daemons.spec import DaemonType
from pxelab.daemons.stack import DaemonStack
from pxelab.labfile import load_lab_file
from pxelab.labfile.dataroot import lab_values
from pxelab.machine.network import LabNetwork
from pxelab.scenarios.cases import IpVersion

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).parents[2] / "examples" / "min-secs"
VALUES = lab_values(LabNetwork.ipv4, LabNetwork.ipv6, IpVersion.IPV4, interface="br0",
                    data_root=Path("/srv/tftp"), nfs_source="192.0.2.1:/pxelab",
                    mac="52:54:00:12:34:56", append="console=ttyS0")


def dhcpd(name: str, artifacts: Path) -> tuple[str, dict[str, str], Path]:
    """The rendered dhcpd configuration of lab file ``name``, its included files and the
    workdir they land in."""
    lab = load_lab_file(EXAMPLE / f"{name}.pxelab.toml")
    stack = DaemonStack(lab.system.daemons, VALUES, None, artifacts)
    daemon = next(d for d in stack.daemons if d.type is DaemonType.DHCPD)
    return daemon.rendered, daemon.included, daemon.workdir


def test_without_min_secs_the_site_configuration_runs_as_it_is(tmp_path: Path) -> None:
    rendered, included, _ = dhcpd("no-min-secs", tmp_path)
    assert "subnet 192.0.2.0 netmask 255.255.255.0 {" in rendered
    assert "min-secs" not in rendered
    assert included == {}
    assert load_lab_file(EXAMPLE / "no-min-secs.pxelab.toml").system.expect_cause is None


@pytest.mark.parametrize(("seconds", "expect"), [
    (2, None),
    (30, ("rom_dhcp", "dhcp.withheld_min_secs")),
])
def test_min_secs_is_the_one_line_added(tmp_path: Path, seconds: int,
                                        expect: tuple[str, str] | None) -> None:
    site, _, _ = dhcpd("no-min-secs", tmp_path / "site")
    rendered, included, workdir = dhcpd(f"min-secs-{seconds}", tmp_path / "secondary")
    assert f"\nmin-secs {seconds};\n" in rendered
    assert f'include "{workdir}/dhcpd.conf";' in rendered
    assert included == {"dhcpd.conf": site}
    system = load_lab_file(EXAMPLE / f"min-secs-{seconds}.pxelab.toml").system
    assert ((system.expect_stage, system.expect_cause) if expect else system.expect_cause) \
        == expect
