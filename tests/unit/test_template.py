"""pxelab's one template syntax (pxelab.core.template)."""

import pytest

from pxelab.core.errors import ConfigError
from pxelab.core.template import is_template, placeholders, render

pytestmark = pytest.mark.unit


def test_fills_names_with_or_without_spaces() -> None:
    assert render("http://{{ server }}/{{mac}}", {"server": "[2001:db8::1]", "mac": "52:54"}) \
        == "http://[2001:db8::1]/52:54"


def test_leaves_other_syntaxes_alone() -> None:
    text = 'chain ${next-server} $base {"a": {"b": 1}} {{"Dhcp4": {}}} subnet { }'
    assert render(text, {}) == text
    assert not is_template(text)


def test_unknown_name_names_source_line_and_known_values() -> None:
    with pytest.raises(ConfigError, match=r"menu.cfg:2: \{\{ sever \}\} .*use one of: server"):
        render("a\nkernel http://{{ sever }}/vmlinuz", {"server": "x"}, source="menu.cfg")


def test_placeholders_lists_what_a_text_asks_for() -> None:
    assert placeholders("{{ a }} {{b}} {{ a }}") == {"a", "b"}
