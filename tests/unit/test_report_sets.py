"""`pxelab report` over a matrix run on several firmware sets: the case x set table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from html_page import Page, assert_self_contained
from report_samples import T0, good_evidence, hits, in_set, write_boot

from pxelab.analysis.diagnosis import Cause, Diagnosis
from pxelab.analysis.evidence import Evidence
from pxelab.analysis.report.boots import load_boot
from pxelab.analysis.report.html import write_report
from pxelab.analysis.report.sets import set_grid, set_order

pytestmark = pytest.mark.unit

VERSIONS = {
    "bookworm": {"ovmf": "2022.11-6+deb12u2", "seabios": "1.16.2-1",
                 "ipxe-qemu": "1.0.0+git-20190125", "grub-efi-amd64-bin": "2.06-13+deb12u1",
                 "linux-image-cloud-amd64": "6.1"},
    "trixie": {"ovmf": "2025.02-8", "seabios": "1.16.3-2", "ipxe-qemu": "1.21.1+git20250317",
               "grub-efi-amd64-bin": "2.12-9"},
    "sid": {"ovmf-generic": "2025.05-1", "seabios": "1.17.0-1",
            "ipxe-qemu": "1.21.1+git20250601", "grub-efi-amd64-bin": "2.12-10"},
}
NO_RNG = Cause("firmware.no_rng_device", "nbp", "OVMF offers no network boot without an RNG",
               fix="add -device virtio-rng-pci")


def failed(scenario: str) -> Evidence:
    """A boot of ``scenario`` that stopped before its NBP."""
    good = good_evidence(scenario)
    timeline = replace(good.timeline, hits=hits(("firmware", 0.1)), failed_stage="nbp",
                       failure="no nbp within 30s", failed_at=30.1)
    return replace(good, timeline=timeline)


def boot(root: Path, name: str, evidence: Evidence, diagnosis: Diagnosis | None = None) -> Path:
    ok = diagnosis or Diagnosis(evidence.scenario, ok=True)
    return write_boot(root / name, evidence, ok)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """Three cases on bookworm, trixie and sid; sid fails uefi_http_ipv6, trixie lacks e1000."""
    root = tmp_path / "run"
    for fwset in ("bookworm", "trixie", "sid"):
        for case, scale in (("legacy_pxe_ipv4", 1.0), ("uefi_http_ipv6", 2.0),
                            ("legacy_pxe_ipv4[e1000]", 1.5)):
            if (case, fwset) == ("legacy_pxe_ipv4[e1000]", "trixie"):
                continue
            if (case, fwset) == ("uefi_http_ipv6", "sid"):
                evidence = in_set(failed(case), fwset, VERSIONS[fwset])
                diagnosis = Diagnosis(case, ok=False, failed_stage="nbp", causes=(NO_RNG,))
                boot(root, f"test_boot_{case}-{fwset}_", evidence, diagnosis)
                continue
            boot(root, f"test_boot_{case}-{fwset}_",
                 in_set(good_evidence(case, scale), fwset, VERSIONS[fwset]))
    return root


def sets_table(root: Path) -> Page:
    out = write_report(root)
    page = Page(out.read_text())
    assert_self_contained(page, out.parent)
    return page


def row_cells(page: Page) -> dict[str, dict[str, str]]:
    """case -> set -> the text of its cell."""
    table: dict[str, dict[str, str]] = {}
    case = ""
    for element in page.elements:
        if element.tag == "tr" and "#set-rows" in element.parents:
            case = element.attrs["data-case"]
            table[case] = {}
        elif element.tag == "td" and "#set-rows" in element.parents and "data-set" in element.attrs:
            table[case][element.attrs["data-set"]] = " ".join("".join(element.text).split())
    return table


def test_a_row_per_case_and_a_column_per_set_in_release_order(run: Path):
    page = sets_table(run)
    heads = [h.attrs["data-set"] for h in page.find("th", inside="sets") if "data-set" in h.attrs]
    assert heads == ["bookworm", "trixie", "sid"]
    assert "Debian trixie" in "".join(page.find("th", inside="sets")[2].text)
    table = row_cells(page)
    assert list(table) == ["legacy_pxe_ipv4", "legacy_pxe_ipv4[e1000]", "uefi_http_ipv6"]
    assert all(list(sets) == heads for sets in table.values())


def test_cells_show_verdict_seconds_and_the_cause_of_a_failure(run: Path):
    table = row_cells(sets_table(run))
    assert table["legacy_pxe_ipv4"] == {s: "ok 8.0s" for s in ("bookworm", "trixie", "sid")}
    assert table["uefi_http_ipv6"] == {"bookworm": "ok 16.0s", "trixie": "ok 16.0s",
                                       "sid": "FAILED firmware.no_rng_device"}
    assert table["legacy_pxe_ipv4[e1000]"]["trixie"] == "not run"
    assert table["legacy_pxe_ipv4[e1000]"]["sid"] == "ok 12.0s"


def test_a_case_that_boots_in_one_set_and_fails_in_another_is_marked(run: Path):
    page = sets_table(run)
    mixed = [r.attrs["data-case"] for r in page.find("tr", inside="set-rows", cls="mixed")]
    assert mixed == ["uefi_http_ipv6"]
    totals = {c.attrs["data-set"]: "".join(c.text) for c in page.find("td", inside="set-totals")
              if "data-set" in c.attrs}
    assert totals == {"bookworm": "3 of 3", "trixie": "2 of 2", "sid": "2 of 3"}


def test_the_head_shows_each_sets_key_package_versions(run: Path):
    page = sets_table(run)
    versions = {c.attrs["data-set"]: "".join(c.text) for c in page.find("td", inside="set-versions")
                if "data-set" in c.attrs}
    # One line a package (<br> between), in KEY_PACKAGES order.
    assert versions["bookworm"] == "".join(f"{name} {VERSIONS['bookworm'][name]}" for name in (
        "ovmf", "seabios", "ipxe-qemu", "grub-efi-amd64-bin"))
    assert "ovmf-generic 2025.05-1" in versions["sid"] and "ovmf " not in versions["sid"]
    assert "linux-image" not in "".join(versions.values())  # only the firmware packages


def test_a_verdict_links_to_that_boots_own_page(run: Path):
    page = sets_table(run)
    links = [a.attrs["href"] for a in page.find("a", inside="set-rows")]
    assert len(links) == 8
    assert "test_boot_uefi_http_ipv6-sid_/report.html" in links


def test_one_set_only_has_no_set_table_and_boots_without_a_set_count_as_host(tmp_path: Path):
    root = tmp_path / "run"
    for case in ("legacy_pxe_ipv4", "uefi_http_ipv6"):
        boot(root, case, good_evidence(case))  # no firmware_set property: older boots
    page = Page(write_report(root).read_text())
    assert not [e for e in page.elements if e.attrs.get("id") == "sets"]
    boot(root, "trixie", in_set(good_evidence("uefi_http_ipv6"), "trixie", VERSIONS["trixie"]))
    page = sets_table(root)
    assert list(row_cells(page)["uefi_http_ipv6"]) == ["host", "trixie"]
    assert row_cells(page)["legacy_pxe_ipv4"] == {"host": "ok 8.0s", "trixie": "not run"}
    chart_rows = [r.attrs["data-case"] for r in page.find("g", inside="matrix-chart", cls="row")]
    assert chart_rows == ["legacy_pxe_ipv4", "uefi_http_ipv6", "uefi_http_ipv6 @trixie"]


def test_boots_of_one_case_and_set_share_a_cell_oldest_first(tmp_path: Path):
    # Two CI machines ran the host set: both boots show, and both hosts' versions.
    root = tmp_path / "run"
    first = in_set(good_evidence("legacy_pxe_ipv4"), "host", {"seabios": "1.16.2-1"}, T0)
    second = in_set(failed("legacy_pxe_ipv4"), "host", {"seabios": "1.16.3-2"}, T0 + 60)
    boot(root, "b", second, Diagnosis("legacy_pxe_ipv4", ok=False, failed_stage="nbp"))
    boot(root, "a", first)
    boot(root, "c", in_set(good_evidence("legacy_pxe_ipv4"), "sid", VERSIONS["sid"]))
    grid = set_grid([load_boot(root / d) for d in ("b", "c", "a")])
    assert [b.ok for b in grid.boots("legacy_pxe_ipv4", "host")] == [True, False]
    assert grid.versions["host"] == {"seabios": ("1.16.2-1", "1.16.3-2")}
    page = sets_table(root)
    shown = ["".join(s.text) for s in page.find("span", inside="set-rows", cls="boot")]
    assert shown == ["ok 8.0s", "FAILED at nbp, no cause named", "ok 8.0s"]  # host, host, sid
    versions = "".join(page.find("td", inside="set-versions", cls="versions")[0].text)
    assert versions == "seabios 1.16.2-1 | 1.16.3-2"


def test_sets_are_ordered_host_then_releases_then_user_sets_by_name():
    assert set_order(["my-edk2", "sid", "bookworm", "host", "a-build", "sid"]) == (
        "host", "bookworm", "sid", "a-build", "my-edk2")
