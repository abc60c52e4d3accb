"""Every template pxelab ships or samples renders with the values pxelab gives, in one syntax.

The guard: no file under pxelab/data/templates, fixtures/labs or fixtures/ipxe still
uses a syntax pxelab filled in before ``{{ name }}`` (``$kernel``, ``${append}`` of
string.Template, ``{server}`` of str.format); GRUB's ``$prefix`` and iPXE's ``${base}``
are the files' own variables and stay.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.core.template import PLACEHOLDER
from pxelab.scenarios import dataroot
from pxelab.server.config import load_lab_config
from pxelab.server.http import template as http_template
from pxelab.server.policy import BOOT_FILE_NAMES

pytestmark = pytest.mark.unit

REPO = Path(__file__).parents[2]
TEMPLATES = REPO / "pxelab" / "data" / "templates"
APPEND = "console=ttyS0 pxelab.nfsroot=192.0.2.1:/pxelab"
# Every name pxelab fills in somewhere: a $name or ${name} of one of these is a leftover.
OURS = {*BOOT_FILE_NAMES, *http_template.PLACEHOLDERS, *dataroot.menu_values("", "")}
DOLLAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
FORMAT_FIELD = re.compile(r"(?<![{$])\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}(?!\})")


def guarded_files() -> list[Path]:
    return sorted(p for directory in (TEMPLATES, REPO / "fixtures" / "labs",
                                      REPO / "fixtures" / "ipxe")
                  for p in directory.rglob("*") if p.is_file())


def test_the_shipped_templates_are_the_ones_pxelab_renders() -> None:
    on_disk = {p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*") if p.is_file()}
    assert on_disk == set(dataroot.SHIPPED)
    assert dataroot.templates_dir().joinpath("ipxe").joinpath("boot.ipxe").is_file()


@pytest.mark.parametrize("name", dataroot.SHIPPED)
@pytest.mark.parametrize("base", ["http://[2001:db8::1]/", "(http,192.0.2.1)/", ""])
def test_each_shipped_template_renders_with_pxelabs_values(name: str, base: str) -> None:
    text = dataroot.render_template(name, dataroot.menu_values(base, APPEND))
    assert PLACEHOLDER.search(text) is None and "{{" not in text
    assert f"{base}vmlinuz" in text and f"{base}initrd.img" in text and APPEND in text


def test_a_shipped_template_missing_a_value_names_the_file() -> None:
    with pytest.raises(ConfigError, match=r"pxelab/data/templates/grub/grub\.cfg:\d+: "
                                          r"\{\{ kernel \}\}.*use one of: append"):
        dataroot.render_template(dataroot.GRUB_CONFIG, {"append": APPEND})


@pytest.mark.parametrize("path", sorted((REPO / "fixtures" / "ipxe").glob("*.tmpl")),
                         ids=lambda p: p.name)
def test_sample_http_templates_use_only_per_client_names(path: Path) -> None:
    values = {name: f"<{name}>" for name in http_template.PLACEHOLDERS}
    text = http_template.render(path.read_text(), values, source=path.name)
    assert "{{" not in text and "<mac>" in text


@pytest.mark.parametrize("path", guarded_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_file_uses_an_old_placeholder_syntax(path: Path) -> None:
    text = path.read_text()
    dollars = sorted({m[1] for m in DOLLAR.finditer(text)} & OURS)
    fields = sorted({m[1] for m in FORMAT_FIELD.finditer(text)})
    assert not dollars and not fields, (
        f"{path.relative_to(REPO)}: write {{{{ name }}}} (docs/templates.md) instead of "
        f"{', '.join([f'${n}' for n in dollars] + [f'{{{n}}}' for n in fields])}")


def test_unknown_name_in_a_lab_rule_fails_at_load(tmp_path: Path) -> None:
    lab = tmp_path / "site.toml"
    lab.write_text('[server]\ninterface = "eth0"\ndata_root = "/srv/tftp"\n'
                   'ipv4 = "192.0.2.1/24"\nipv6 = false\n'
                   '[[rule]]\nname = "bios"\nboot_file = "http://{{ server }}/{{ arc }}.0"\n')
    with pytest.raises(ConfigError) as caught:
        load_lab_config(lab)
    message = str(caught.value)
    assert message.startswith(f"{lab}: rule[0].boot_file: rule 'bios': {{{{ arc }}}} is not")
    assert "did you mean 'arch'?" in message
    assert "the names are server, server_ip, mac, mac_hyphen, ip, arch" in message
