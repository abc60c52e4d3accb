"""The newc cpio writer: layout details, and round trips through GNU cpio."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from pxelab.machine.payload import cpio

pytestmark = pytest.mark.unit

ENTRIES = [
    cpio.directory("bin"),
    cpio.regular("bin/busybox", b"\x7fELF" + bytes(range(256)) * 3, 0o755),
    cpio.symlink("bin/sh", "busybox"),
    cpio.directory("dev"),
    cpio.char_device("dev/console", 5, 1),
    cpio.regular("init", b"#!/bin/sh\necho hi\n", 0o755),
    cpio.regular("empty", b""),
    cpio.regular("odd-name-len", b"x"),
]


def test_header_layout_of_first_member() -> None:
    archive = cpio.write_newc([cpio.regular("init", b"abc", 0o755)])
    assert archive[:6] == b"070701"
    header = archive[:110]
    fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
    ino, mode, uid, gid, nlink, mtime, size, _, _, rmaj, rmin, namesize, check = fields
    assert (ino, mode, uid, gid, nlink, mtime) == (1, 0o100755, 0, 0, 1, 0)
    assert (size, rmaj, rmin, namesize, check) == (3, 0, 0, len("init") + 1, 0)
    # name "init\0" ends at 115, padded to 116; data "abc" padded to 120
    assert archive[110:116] == b"init\0\0"
    assert archive[116:120] == b"abc\0"
    assert archive[120:126] == b"070701"


def test_every_member_starts_aligned_and_archive_ends_with_trailer() -> None:
    archive = cpio.write_newc(ENTRIES)
    assert len(archive) % 4 == 0
    assert b"TRAILER!!!\0" in archive[-20:]
    assert archive.count(b"070701") >= len(ENTRIES) + 1


def test_read_newc_returns_what_was_written() -> None:
    assert list(cpio.read_newc(cpio.write_newc(ENTRIES))) == ENTRIES


def test_write_is_deterministic() -> None:
    assert cpio.write_newc(ENTRIES) == cpio.write_newc(list(ENTRIES))


@pytest.mark.parametrize("name", ["", "/init", "TRAILER!!!"])
def test_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        cpio.write_newc([cpio.regular(name, b"")])


def test_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="twice"):
        cpio.write_newc([cpio.directory("bin"), cpio.directory("bin")])


needs_cpio = pytest.mark.pxelab_requires(tools=["cpio"], hint="apt-get install cpio")


@needs_cpio
def test_gnu_cpio_lists_members() -> None:
    result = subprocess.run(["cpio", "-t", "--quiet"], input=cpio.write_newc(ENTRIES),
                            capture_output=True, check=True)
    assert result.stdout.decode().split() == [e.name for e in ENTRIES]


@needs_cpio
def test_gnu_cpio_extracts_contents(tmp_path: Path) -> None:
    entries = [e for e in ENTRIES if not stat.S_ISCHR(e.mode)]  # mknod needs privileges
    subprocess.run(["cpio", "-i", "--quiet", "--no-absolute-filenames", "-d"],
                   input=cpio.write_newc(entries), cwd=tmp_path, check=True)
    assert (tmp_path / "bin/busybox").read_bytes() == ENTRIES[1].data
    assert stat.S_IMODE((tmp_path / "bin/busybox").stat().st_mode) == 0o755
    assert (tmp_path / "bin/sh").readlink() == Path("busybox")
    assert (tmp_path / "init").read_text() == "#!/bin/sh\necho hi\n"
    assert (tmp_path / "empty").read_bytes() == b""


@needs_cpio
def test_gnu_cpio_archive_is_read_back(tmp_path: Path) -> None:
    """GNU cpio's own newc output parses with read_newc (names, modes, data)."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d/f").write_bytes(b"hello")
    listing = b"d\nd/f\n"
    result = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=listing,
                            cwd=tmp_path, capture_output=True, check=True)
    got = {e.name: e for e in cpio.read_newc(result.stdout)}
    assert stat.S_ISDIR(got["d"].mode)
    assert got["d/f"].data == b"hello"
