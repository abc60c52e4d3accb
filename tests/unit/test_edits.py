"""Lab edits (pxelab.scenarios.edits): data-root changes that leave no fault event."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.scenarios.cases import reproduce_command
from pxelab.scenarios.edits import (
    CutFile,
    NoNfsServer,
    RemoveFile,
    RenameFile,
    ReplaceText,
    edit_data_root,
    serves_nfs,
)
from pxelab.scenarios.matrix import find_case

pytestmark = pytest.mark.unit


@pytest.fixture
def root(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "initrd.img").write_bytes(bytes(range(200)))
    data = tmp_path / "data"
    (data / "pxelinux.cfg").mkdir(parents=True)
    os.link(cache / "initrd.img", data / "initrd.img")  # as dataroot.place links
    (data / "pxelinux.cfg" / "default").write_text("KERNEL http://192.0.2.1/vmlinuz\n")
    (data / "ldlinux.c32").write_bytes(b"ld")
    return data


def test_edits_change_the_data_root_in_order(root: Path) -> None:
    edit_data_root(root, (RenameFile("ldlinux.c32", "LDLINUX.C32"),
                          RemoveFile("LDLINUX.C32"),
                          ReplaceText("pxelinux.cfg/default", "/vmlinuz", "/vmlinux"),
                          NoNfsServer()))
    assert sorted(p.name for p in root.iterdir()) == ["initrd.img", "pxelinux.cfg"]
    assert "/vmlinux\n" in (root / "pxelinux.cfg" / "default").read_text()


def test_a_cut_file_leaves_the_cache_it_was_linked_from_whole(root: Path) -> None:
    edit_data_root(root, (CutFile("initrd.img", 0.25),))
    assert (root / "initrd.img").stat().st_size == 50
    assert (root.parent / "cache" / "initrd.img").stat().st_size == 200


@pytest.mark.parametrize("edit", [RemoveFile("nope"), CutFile("nope"),
                                  ReplaceText("pxelinux.cfg/default", "tftp://", "http://")])
def test_an_edit_of_what_is_not_there_says_what_is(root: Path, edit: object) -> None:
    with pytest.raises(ConfigError, match="edit"):
        edit_data_root(root, (edit,))  # type: ignore[arg-type]


def test_no_nfs_server() -> None:
    assert serves_nfs(()) and not serves_nfs((NoNfsServer(),))


def test_the_reproduce_command_says_which_edits_it_cannot_carry() -> None:
    case = replace(find_case("legacy_pxe_ipv4"), edits=(RemoveFile("pxelinux.cfg/default"),))
    assert reproduce_command(case, "art") == (
        "pxelab boot legacy_pxe_ipv4 --artifacts art  # with the lab edited: "
        "remove pxelinux.cfg/default")
