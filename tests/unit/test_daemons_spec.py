"""pxelab.daemons without starting anything: [[daemon]] checks, rendering, command lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.daemons.base import MOUNT_SCRIPT
from pxelab.daemons.dhcpd import Dhcpd
from pxelab.daemons.nginx import listen_ports
from pxelab.daemons.sockets import Port, Proto, parse_proc_net
from pxelab.daemons.spec import (
    DaemonSpec,
    DaemonType,
    Role,
    TftpdOptions,
    check_daemons,
    dnsmasq_roles,
    parse_daemon,
)
from pxelab.daemons.stack import DaemonStack, make_daemon
from pxelab.daemons.tftpd import address_port

pytestmark = pytest.mark.unit

CONFIGS = Path(__file__).parents[1] / "netns" / "daemon_configs"
WHERE = "lab.pxelab.toml: [[daemon]] 2 (dhcpd)"
VALUES = {
    "interface": "br0", "server_ipv4": "192.0.2.1", "server_ipv6": "2001:db8::1",
    "server": "192.0.2.1", "subnet4": "192.0.2.0", "netmask4": "255.255.255.0",
    "prefix4": "192.0.2.0/24", "subnet6": "2001:db8::", "prefix6": "2001:db8::/64",
    "pool4_first": "192.0.2.100", "pool4_last": "192.0.2.199",
    "pool6_first": "2001:db8::100", "pool6_last": "2001:db8::1ff", "data_root": "/srv/tftp",
    "nfs_server": "192.0.2.1", "nfs_export": "/pxelab", "nfs_root": "192.0.2.1:/pxelab",
    "mac": "52:54:00:12:34:56", "mac_hyphen": "52-54-00-12-34-56", "append": "",
}


def error(entry: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_daemon(entry, WHERE, CONFIGS)
    message = str(caught.value)
    assert message.startswith(WHERE + ": ")
    return message.removeprefix(WHERE + ": ")


# -- parse_daemon ----------------------------------------------------------------------------

def test_a_daemon_with_its_config_and_args() -> None:
    spec = parse_daemon({"type": "dhcpd", "config": "dhcpd.conf", "args": ["-q"]}, WHERE,
                        CONFIGS)
    assert spec == DaemonSpec(DaemonType.DHCPD, CONFIGS / "dhcpd.conf", ("-q",), where=WHERE)


def test_tftpd_hpa_takes_its_settings_with_defaults() -> None:
    spec = parse_daemon({"type": "tftpd-hpa", "address": "192.0.2.1:69"}, WHERE, CONFIGS)
    assert spec.tftpd == TftpdOptions(directory="{{ data_root }}", address="192.0.2.1:69",
                                      options="--secure")
    assert spec.config is None


def test_missing_type() -> None:
    assert error({"config": "dhcpd.conf"}) == (
        "type is missing; set type to one of: dnsmasq, kea-dhcp4, kea-dhcp6, dhcpd, dhcpd6, "
        "radvd, tftpd-hpa, nginx")


@pytest.mark.parametrize("value", ["isc-dhcpd", 4])
def test_unknown_type(value: object) -> None:
    assert error({"type": value}).startswith(
        f"type = {value!r} is not a daemon pxelab runs; use one of: dnsmasq, ")


def test_unknown_key_suggests_the_close_one() -> None:
    assert error({"type": "dhcpd", "confg": "dhcpd.conf"}) == (
        "unknown key 'confg' (did you mean 'config'?); the keys of a dhcpd daemon are: "
        "type, config, args, includes")


def test_tftpd_hpa_has_no_config_file() -> None:
    message = error({"type": "tftpd-hpa", "config": "tftpd.conf"})
    assert message.startswith("unknown key 'config': tftpd-hpa has no configuration file")
    assert "TFTP_DIRECTORY" in message


def test_missing_config() -> None:
    assert error({"type": "nginx"}) == (
        f"config is missing; set config to your nginx configuration file, relative to {CONFIGS}")


def test_config_file_not_there() -> None:
    message = error({"type": "dhcpd", "config": "dhcpd.cnf"})
    assert message.startswith(f"config = 'dhcpd.cnf': {CONFIGS / 'dhcpd.cnf'} is not a file")
    assert "fix the path" in message


def test_config_of_the_wrong_type() -> None:
    assert error({"type": "dhcpd", "config": 3}) == "config must be a string, not int (3); quote it"


@pytest.mark.parametrize("args", ["-d", [1, 2]])
def test_args_must_be_a_list_of_strings(args: object) -> None:
    assert error({"type": "radvd", "config": "radvd.conf", "args": args}).startswith(
        "args must be a list of strings (extra command-line words), e.g. args = [\"-d\", \"3\"]")


def test_tftpd_setting_of_the_wrong_type() -> None:
    assert error({"type": "tftpd-hpa", "address": 69}) == (
        "address must be a string, not int (69); quote it")


# -- check_daemons -----------------------------------------------------------------------------

def spec(kind: str, config: str | None = None) -> DaemonSpec:
    entry: dict[str, object] = {"type": kind}
    if kind != "tftpd-hpa":
        entry["config"] = config or f"{kind}.conf"
    return parse_daemon(entry, f"[[daemon]] ({kind})", CONFIGS)


def test_the_classic_stack_is_fine() -> None:
    check_daemons([spec("dhcpd"), spec("dhcpd6"), spec("radvd"), spec("tftpd-hpa"),
                   spec("nginx")], "lab.pxelab.toml")
    check_daemons([spec("radvd"), spec("kea-dhcp4")], "lab.pxelab.toml")  # no DHCPv6: fine


def test_two_dhcpv4_servers_are_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        check_daemons([spec("radvd"), spec("dhcpd"), spec("kea-dhcp4")], "lab.pxelab.toml")
    assert str(caught.value) == (
        "lab.pxelab.toml: [[daemon]] 2 (dhcpd) and 3 (kea-dhcp4) both serve DHCPv4 on the lab "
        "link; a client would take either answer: keep DHCPv4 in one of them")


def test_dnsmasq_with_tftp_beside_tftpd_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"1 \(dnsmasq\) and 2 \(tftpd-hpa\) both serve TFTP"):
        check_daemons([spec("dnsmasq"), spec("tftpd-hpa")], "lab.pxelab.toml")


def test_the_same_daemon_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"\[\[daemon\]\] 1 and 2 are both nginx; a lab runs "
                                          "each daemon once"):
        check_daemons([spec("nginx"), spec("nginx")], "lab.pxelab.toml")


def test_dnsmasq_roles_from_its_configuration() -> None:
    text = ("dhcp-range={{ pool6_first }},{{ pool6_last }},64\n"
            "# dhcp-range=192.0.2.10,192.0.2.20\nenable-tftp\n")
    assert dnsmasq_roles(text) == {Role.DHCP6, Role.TFTP}
    assert dnsmasq_roles("", ["--dhcp-range=192.0.2.10,192.0.2.20"]) == {Role.DHCP4}
    assert dnsmasq_roles("dhcp-range=::,constructor:br0,ra-stateless") == {Role.DHCP6}
    # Router advertisements only: no DHCPv6 server, no port 547 to wait for.
    assert dnsmasq_roles("dhcp-range=::,constructor:br0,ra-only") == set()
    assert dnsmasq_roles("dhcp-range={{ subnet6 }},ra-only,64\nenable-tftp") == {Role.TFTP}


# -- rendering and command lines ----------------------------------------------------------------

def test_configs_are_rendered_before_anything_starts(tmp_path: Path) -> None:
    stack = DaemonStack([spec("dhcpd"), spec("kea-dhcp6")], VALUES, "pxl-x", tmp_path)
    dhcpd = stack.daemons[0]
    assert "subnet 192.0.2.0 netmask 255.255.255.0 {" in dhcpd.rendered
    assert "range 192.0.2.100 192.0.2.199;" in dhcpd.rendered
    assert '"subnet": "2001:db8::/64"' in stack.daemons[1].rendered
    assert not (tmp_path / "daemons").exists()  # nothing written before start()
    assert stack.logs[DaemonType.DHCPD] == tmp_path / "daemons" / "dhcpd.log"


def test_a_template_typo_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    config = tmp_path / "dhcpd.conf"
    config.write_text("subnet {{ subnet4 }} netmask {{ netmask }} {}\n")
    typo = parse_daemon({"type": "dhcpd", "config": "dhcpd.conf"}, WHERE, tmp_path)
    with pytest.raises(ConfigError, match=re.escape(f"{config}:1: {{{{ netmask }}}} is not")):
        DaemonStack([typo], VALUES, "pxl-x", tmp_path)


def test_workdir_and_log_are_template_values(tmp_path: Path) -> None:
    config = tmp_path / "kea.conf"
    config.write_text('{"output": "{{ log }}", "socket": "{{ workdir }}/kea.sock"}')
    kea = make_daemon(parse_daemon({"type": "kea-dhcp4", "config": "kea.conf"}, WHERE,
                                   tmp_path), VALUES, None, tmp_path / "art")
    assert kea.rendered == ('{"output": "' f"{tmp_path}/art/daemons/kea-dhcp4.log" '", '
                            '"socket": "' f"{tmp_path}/art/daemons/kea-dhcp4" '/kea.sock"}')


def test_included_files_are_rendered_into_the_workdir(tmp_path: Path) -> None:
    (tmp_path / "site.conf").write_text("subnet {{ subnet4 }} netmask {{ netmask4 }} {}\n")
    (tmp_path / "dhcpd.conf").write_text('min-secs 2;\ninclude "{{ workdir }}/site.conf";\n')
    entry = {"type": "dhcpd", "config": "dhcpd.conf", "includes": ["site.conf"]}
    spec = parse_daemon(entry, WHERE, tmp_path)
    assert spec.includes == (tmp_path / "site.conf",)
    dhcpd = make_daemon(spec, VALUES, None, tmp_path / "art")
    assert dhcpd.rendered == f'min-secs 2;\ninclude "{dhcpd.workdir}/site.conf";\n'
    assert dhcpd.included == {"site.conf": "subnet 192.0.2.0 netmask 255.255.255.0 {}\n"}


@pytest.mark.parametrize(("includes", "says"), [
    ("site.conf", "includes must be a list of file names"),
    (["absent.conf"], "absent.conf is not a file"),
    (["dhcpd.conf", "sub/dhcpd.conf"], "dhcpd.conf named twice"),
])
def test_includes_mistakes(tmp_path: Path, includes: object, says: str) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("dhcpd.conf", "sub/dhcpd.conf", "site.conf"):
        (tmp_path / name).write_text("")
    with pytest.raises(ConfigError, match=re.escape(says)):
        parse_daemon({"type": "dhcpd", "config": "dhcpd.conf", "includes": includes}, WHERE,
                     tmp_path)


def test_a_template_typo_in_an_included_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "dhcpd.conf").write_text("")
    (tmp_path / "site.conf").write_text("range {{ pool_first }};\n")
    spec = parse_daemon({"type": "dhcpd", "config": "dhcpd.conf", "includes": ["site.conf"]},
                        WHERE, tmp_path)
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'site.conf'}:1:")):
        make_daemon(spec, VALUES, None, tmp_path / "art")

def test_dhcpd_command_line(tmp_path: Path) -> None:
    dhcpd = make_daemon(spec("dhcpd"), VALUES, "pxl-x", tmp_path)
    work = tmp_path / "daemons" / "dhcpd"
    assert dhcpd.arguments() == ["dhcpd", "-4", "-d", "-cf", f"{tmp_path}/daemons/dhcpd.conf",
                                 "-lf", f"{work}/dhcpd.leases", "-pf", f"{work}/dhcpd.pid",
                                 "br0"]
    command = dhcpd.command
    assert command[:9] == ["ip", "netns", "exec", "pxl-x", "unshare", "--mount",
                           "--propagation", "private", "sh"]
    assert command[10] == MOUNT_SCRIPT
    binds = command[command.index("pxelab-dhcpd") + 2:command.index("--")]
    assert binds == [f"{work}/root/run", "/run", f"{work}/root/var/lib/dhcp", "/var/lib/dhcp"]
    assert dhcpd.ports() == {Port(67)}


def test_tftpd_hpa_command_line_from_its_settings(tmp_path: Path) -> None:
    options = {"type": "tftpd-hpa", "address": "[{{ server_ipv6 }}]:6969",
               "options": "--secure --verbose --blocksize 1468"}
    tftpd = make_daemon(parse_daemon(options, WHERE, CONFIGS), VALUES, None, tmp_path)
    assert tftpd.arguments() == ["in.tftpd", "--foreground", "--listen", "--user", "root",
                                 "--address", "[2001:db8::1]:6969", "--secure", "--verbose",
                                 "--blocksize", "1468", "/srv/tftp"]
    assert tftpd.ports() == {Port(6969)}
    assert "TFTP_DIRECTORY=/srv/tftp\n" in tftpd.rendered


@pytest.mark.parametrize(("address", "port"), [(":69", 69), ("0.0.0.0:6969", 6969),
                                               ("[::]:69", 69), ("192.0.2.1", 69),
                                               ("2001:db8::1", 69), ("[2001:db8::1]", 69)])
def test_tftp_address_port(address: str, port: int) -> None:
    assert address_port(address) == port


def test_tftp_address_with_a_bad_port() -> None:
    with pytest.raises(ConfigError, match="'tftp' is not a port"):
        address_port(":tftp")


def test_nginx_gets_its_log_without_an_edited_user_file(tmp_path: Path) -> None:
    nginx = make_daemon(spec("nginx"), VALUES, None, tmp_path)
    log = tmp_path / "daemons" / "nginx.log"
    assert f"http {{\n    access_log {log};" in nginx.rendered
    assert "root /srv/tftp;" in nginx.rendered
    assert nginx.arguments()[-2:] == ["-g", f"daemon off; error_log {log} info;"]
    assert nginx.ports() == {Port(80, Proto.TCP)}


def test_nginx_listen_ports() -> None:
    text = ("listen 8080;\n  listen [::]:80 ipv6only=on;\nlisten 192.0.2.1;\n"
            "listen unix:/run/x.sock;\n listen localhost:81 default_server;\n")
    assert listen_ports(text) == {8080, 80, 81}
    assert listen_ports("server { root /srv; }") == {80}


def test_dnsmasq_waits_for_what_its_config_serves(tmp_path: Path) -> None:
    dnsmasq = make_daemon(spec("dnsmasq"), VALUES, None, tmp_path)
    assert dnsmasq.ports() == {Port(67), Port(69)}  # port=0: no DNS


def test_a_missing_binary_names_the_package(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Dhcpd, "binary", "dhcpd-not-installed")
    dhcpd = make_daemon(spec("dhcpd"), VALUES, "pxl-x", tmp_path)
    with pytest.raises(HostCapabilityError) as caught:
        dhcpd.start()
    assert str(caught.value) == (
        "dhcpd-not-installed not found, needed for the dhcpd daemon of [[daemon]] (dhcpd); "
        "install it: apt-get install isc-dhcp-server")
    assert dhcpd.process is None


def test_proc_net_tables() -> None:
    udp = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
           "  timeout inode ref pointer drops\n"
           "12309: 010200C0:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000"
           "     0        0 1824144 2 000000005ac09758 0\n")
    assert parse_proc_net(udp, Proto.UDP) == {1824144: Port(67)}
    tcp = ("  sl  local_address rem_address   st ...\n"
           "   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
           "     0        0 111 1 0 100 0 0 10 0\n"
           "   1: 0100007F:0050 0100007F:A000 01 00000000:00000000 00:00000000 00000000"
           "     0        0 222 1 0 100 0 0 10 0\n")
    assert parse_proc_net(tcp, Proto.TCP) == {111: Port(80, Proto.TCP)}  # LISTEN only
