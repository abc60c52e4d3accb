"""Known limits: cases a firmware set's own pieces cannot boot, and why.

Some builds cannot boot each other whatever the lab does: Debian 12's signed GRUB
network image has no http module, so GRUB started by UEFI HTTP boot cannot read its
grub.cfg. Such a case still runs on that set; it must fail at the stage, with the
cause, the limit names (the test suite makes it a strict expected failure), and a
build that lifts the limit makes it boot again, which the same test notices.

Each limit tests the set's files, not their version strings, so a user's own build
is judged by what it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pxelab.machine.fwsets import FirmwareSet
from pxelab.machine.grubimage import modules_of
from pxelab.scenarios.cases import Scenario


@dataclass(frozen=True)
class KnownLimit:
    """Scenarios ``scenarios`` cannot boot on a set where ``applies`` holds."""

    name: str
    scenarios: tuple[str, ...]  # base names (without a NIC variant)
    applies: Callable[[FirmwareSet], bool]
    stage: str  # where the boot must fail
    cause: str  # the diagnosis code it must fail with
    reason: str

    def describe(self, fwset: FirmwareSet) -> str:
        return (f"known limit {self.name} of firmware set {fwset.name}: {self.reason}; "
                f"expected to fail at {self.stage} with {self.cause}")


def _signed_grub_lacks_http(fwset: FirmwareSet) -> bool:
    return "http" not in modules_of(fwset.locate("grubnetx64.efi"))


KNOWN_LIMITS = (
    KnownLimit(
        "signed-grub-without-http", ("uefi_http_ipv4_secureboot", "uefi_http_ipv6_secureboot"),
        _signed_grub_lacks_http, "bootloader", "grub.no_http_module",
        "the set's signed GRUB network image (grub-efi-amd64-signed's grubnetx64.efi) has no "
        "http module, and Secure Boot forbids loading one, so GRUB started by HTTP boot "
        "cannot read grub.cfg (Debian 12's GRUB 2.06; Debian 13's 2.12 has it)"),
)


def known_limit(scenario: Scenario, fwset: FirmwareSet) -> KnownLimit | None:
    """The limit that keeps ``scenario`` from booting on ``fwset``, if any."""
    return next((limit for limit in KNOWN_LIMITS
                 if scenario.base_name in limit.scenarios and limit.applies(fwset)), None)
