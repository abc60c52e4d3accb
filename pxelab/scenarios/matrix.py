"""The scenario matrix: every scenario on each of its NIC models, and how to narrow it.

A *case* is a :class:`~pxelab.scenarios.cases.Scenario` on one NIC model. Its name is
the scenario's (``legacy_pxe_ipv4``) or, for a NIC variant, the scenario's with
the model in brackets (``legacy_pxe_ipv4[e1000]``); names are pytest ids and
CLI names alike. Every case carries the words that select it — firmware
(``seabios``/``ovmf``), family (``legacy``/``uefi``), transport (``pxe``,
``http``, ``tftp``, ``ipxe``) and IP version (``ipv4``/``ipv6``) — which the
pytest plugin turns into markers.

The matrix is computed from :data:`~pxelab.scenarios.cases.SCENARIOS` on each call,
so scenarios added there appear in it without further ado.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pxelab.core.errors import ConfigError
from pxelab.machine.payload.nics import nic_driver
from pxelab.machine.qemu import Firmware
from pxelab.scenarios.cases import SCENARIOS, BootMode, IpVersion, Scenario, get_scenario

# Every word a case can be selected by (a pytest marker each), and what it means.
MARKS: dict[str, str] = {
    "seabios": "firmware: SeaBIOS (legacy BIOS) with an iPXE option ROM",
    "ovmf": "firmware: OVMF (UEFI)",
    "legacy": "boot mode family: BIOS firmware",
    "uefi": "boot mode family: UEFI firmware",
    "pxe": "transport: PXE (TFTP) from the BIOS iPXE ROM",
    "http": "transport: HTTP boot (iPXE chain-load or UEFI HTTP)",
    "tftp": "transport: UEFI PXE, EFI boot program over TFTP",
    "ipxe": "transport: the iPXE EFI client under OVMF",
    "ipv4": "IP version 4",
    "ipv6": "IP version 6",
    "secureboot": "OVMF with Secure Boot enforced: shim, signed GRUB, signed kernel",
}


def _check_marks() -> None:
    """Every value a scenario can have must be a registered mark (--strict-markers)."""
    words = {str(f) for f in Firmware} | {str(v) for v in IpVersion}
    words |= {m.firmware_family for m in BootMode} | {m.transport for m in BootMode}
    missing = words - set(MARKS)
    if missing:
        raise ConfigError(f"pxelab.scenarios.matrix.MARKS lacks {sorted(missing)}: add a "
                          "description for each new firmware, mode or IP version")


_check_marks()


def cases(scenarios: Mapping[str, Scenario] | None = None) -> list[Scenario]:
    """Every scenario on each of its NIC models, sorted by name."""
    chosen = SCENARIOS if scenarios is None else scenarios
    found = [case for scenario in chosen.values() for case in scenario.variants()]
    return sorted(found, key=lambda case: case.name)


def find_case(name: str, nic: str | None = None) -> Scenario:
    """The case ``name`` ("legacy_pxe_ipv4" or "legacy_pxe_ipv4[e1000]"), on ``nic`` if given.

    Any NIC with a known guest driver may be asked for, not only a scenario's
    declared variants (those are the ones the test matrix runs).
    """
    base, bracket, rest = name.partition("[")
    named_nic = rest.removesuffix("]") if bracket else None
    if bracket and (not rest.endswith("]") or not named_nic):
        raise ConfigError(f"case name {name!r}: write SCENARIO or SCENARIO[NIC], e.g. "
                          "legacy_pxe_ipv4[e1000]")
    if named_nic and nic and named_nic != nic:
        raise ConfigError(f"case {name!r} names NIC {named_nic}, but {nic} was asked for")
    scenario = get_scenario(base)
    model = nic or named_nic
    return scenario.with_nic(model) if model else scenario


@dataclass(frozen=True)
class Selection:
    """Which cases to run: only these NIC models and firmware (None: all)."""

    nics: frozenset[str] | None = None
    firmware: frozenset[str] | None = None

    @classmethod
    def parse(cls, nics: str | Iterable[str] | None = None,
              firmware: str | Iterable[str] | None = None) -> Selection:
        """From comma-separated lists ("virtio-net-pci,e1000"); unknown names are errors."""
        chosen_nics = _names(nics)
        chosen_firmware = _names(firmware)
        if chosen_nics is not None:
            for model in chosen_nics:
                nic_driver(model)  # a ConfigError listing the known models
        if chosen_firmware is not None:
            unknown = chosen_firmware - {str(f) for f in Firmware}
            if unknown:
                raise ConfigError(f"unknown firmware {sorted(unknown)}; choose from "
                                  f"{', '.join(str(f) for f in Firmware)}")
        return cls(chosen_nics, chosen_firmware)

    def accepts(self, case: Scenario) -> bool:
        return ((self.nics is None or case.nic_model in self.nics)
                and (self.firmware is None or str(case.guest.firmware) in self.firmware))

    def __str__(self) -> str:
        parts = [f"{what} {','.join(sorted(names))}"
                 for what, names in (("NIC", self.nics), ("firmware", self.firmware)) if names]
        return "; ".join(parts) or "everything"


def _names(value: str | Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = frozenset(item.strip() for item in items if item.strip())
    if not names:
        raise ConfigError("an empty list selects nothing; leave the option out to keep all")
    return names


def describe(case: Scenario) -> dict[str, str]:
    """The columns ``pxelab scenarios`` prints for a case."""
    return {"name": case.name, "firmware": str(case.guest.firmware),
            "mode": str(case.mode), "ip": str(case.ip), "nic": case.nic_model,
            "kernel": case.payload.kernel_flavour, "description": case.description}

