"""assemble: the same instance as the frozen dataclass's __init__ makes, or a TypeError."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from pxelab.core.frozen import assemble, replaced
from pxelab.server.dhcp4.codec import DhcpMessage, Op
from pxelab.server.match import ClientInfo

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Pair:
    a: int
    b: tuple[int, ...] = ()


@dataclass(frozen=True)
class Checked:
    a: int

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


@dataclass
class Mutable:
    a: int = 0


def test_same_as_init() -> None:
    built = assemble(Pair, a=1, b=(2,))
    assert built == Pair(1, (2,)) and hash(built) == hash(Pair(1, (2,)))
    assert replace(built, a=3) == Pair(3, (2,))
    with pytest.raises(AttributeError):
        built.a = 5  # type: ignore[misc]


def test_every_field_and_no_other() -> None:
    with pytest.raises(TypeError, match=r"missing \['b'\]"):
        assemble(Pair, a=1)
    with pytest.raises(TypeError, match=r"unknown \['c'\]"):
        assemble(Pair, a=1, b=(), c=3)


def test_only_plain_frozen_dataclasses() -> None:
    with pytest.raises(TypeError, match="__post_init__"):
        assemble(Checked, a=1)
    with pytest.raises(TypeError, match="not a frozen dataclass"):
        assemble(Mutable, a=1)


@pytest.mark.parametrize("cls", [DhcpMessage, ClientInfo])
def test_the_classes_the_dhcp_server_assembles_qualify(cls: type) -> None:
    # They may gain a field, never a __post_init__: assemble would skip it.
    assert not hasattr(cls, "__post_init__") and not hasattr(cls, "__slots__")


def test_a_message_assembled_is_one_decoded() -> None:
    msg = DhcpMessage(Op.BOOTREQUEST, 7, b"\x02" * 6, options=((53, b"\x01"),))
    fields = {name: getattr(msg, name) for name in (
        "op", "xid", "chaddr", "htype", "hops", "secs", "flags", "ciaddr", "yiaddr",
        "siaddr", "giaddr", "sname", "file", "options")}
    again = assemble(DhcpMessage, **fields)
    assert again == msg and again.message_type == msg.message_type and again.mac == msg.mac


def test_replaced_is_replace() -> None:
    pair = Pair(1, (2,))
    assert replaced(pair, b=(3,)) == replace(pair, b=(3,)) == Pair(1, (3,))
    assert replaced(pair) == pair and replaced(pair) is not pair
    with pytest.raises(TypeError, match="no field"):
        replaced(pair, c=1)


def test_replaced_runs_post_init_where_there_is_one() -> None:
    assert replaced(Checked(1), a=2) == Checked(2)
    with pytest.raises(ValueError, match="negative"):
        replaced(Checked(1), a=-1)
