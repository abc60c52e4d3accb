"""The ONC RPC / NFSv4 request codec pxelab.machine.nfs uses to probe ganesha (RFC 5531, 7530)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pxelab.machine import nfs

pytestmark = pytest.mark.unit


def test_null_call_layout() -> None:
    record = nfs.rpc_null_call(0x01020304)
    assert len(record) == 4 + 40
    mark, *words = struct.unpack(">11I", record)
    assert mark == 0x80000000 | 40
    assert words == [0x01020304, 0, 2, 100003, 4, 0, 0, 0, 0, 0]


def test_compound_lookup_args() -> None:
    args = nfs.compound_lookup_args("/pxelab", tag="t")
    assert args == (struct.pack(">I", 1) + b"t\0\0\0" + struct.pack(">III", 0, 2, 24)
                    + struct.pack(">II", 15, 6) + b"pxelab\0\0")


def test_auth_sys_credential() -> None:
    flavor, body = nfs.auth_sys("ab", 0, 0)
    assert flavor == 1
    assert body == struct.pack(">II", 0, 2) + b"ab\0\0" + struct.pack(">III", 0, 0, 0)


def reply(xid: int, accept_stat: int = 0, reply_stat: int = 0, result: bytes = b"") -> bytes:
    body = struct.pack(">5I", xid, 1, reply_stat, 0, 0)
    body += struct.pack(">I", accept_stat) + result
    return struct.pack(">I", 0x80000000 | len(body)) + body


def test_accepted_reply_yields_result() -> None:
    assert nfs.rpc_reply_result(reply(7, result=b"\0\0\0\2"), 7) == b"\0\0\0\2"


@pytest.mark.parametrize(("record", "message"), [
    (reply(8), "not a reply to xid"),
    (reply(7, accept_stat=2), "PROG_MISMATCH"),
    (reply(7, reply_stat=1), "denied"),
    (b"\x80\0\0\x04abcd", "too short"),
])
def test_bad_replies(record: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        nfs.rpc_reply_result(record, 7)


def test_config_keeps_all_state_in_workdir() -> None:
    text = nfs.ganesha_config(export_dir=Path("/srv/root"), workdir=Path("/w"),
                              bind_address="192.0.2.1", pseudo_path="/pxelab",
                              read_only=True, dbus_prefix="pxelab_1_1")
    assert 'RecoveryRoot = "/w/recovery"' in text
    assert 'CCacheDir = "/w/krb5"' in text
    assert "Protocols = 4;" in text and "Transports = TCP;" in text
    assert "Access_Type = RO;" in text and "Squash = No_Root_Squash;" in text
    assert 'Pseudo = "/pxelab"' in text and "Bind_addr = 192.0.2.1;" in text


@pytest.mark.parametrize(("output", "release"), [
    ("NFS-Ganesha Release = V4.3\n", (4, 3)),
    ("NFS-Ganesha Release = V6.5\n", (6, 5)),
    ("NFS-Ganesha Release = V6-dev.19\n", (6, 0)),
    ("ganesha.nfsd: invalid option -- 'v'\n", None),
])
def test_release_from_version_output(output: str, release: tuple[int, int] | None) -> None:
    assert nfs.parse_release(output) == release


def _core_param(release: tuple[int, int] | None) -> str:
    text = nfs.ganesha_config(export_dir=Path("/srv/root"), workdir=Path("/w"),
                              bind_address="192.0.2.1", pseudo_path="/pxelab",
                              read_only=True, dbus_prefix="pxelab_1_1", release=release)
    return text.split("NFS_CORE_PARAM {", 1)[1].split("}", 1)[0]


def test_io_flusher_key_only_for_releases_that_know_it() -> None:
    # 6.0 stops at start when PR_SET_IO_FLUSHER fails with EPERM; 6.1 added the key that
    # lets it go on; 4.3 refuses the unknown key ("Unknown parameter", fatal).
    assert "Allow_Set_Io_Flusher_Fail = true;" in _core_param((6, 5))
    assert "Allow_Set_Io_Flusher_Fail = true;" in _core_param((6, 1))
    for release in ((4, 3), (6, 0), None):
        assert "Io_Flusher" not in _core_param(release)
