"""Imports every area module of the regressions, so that each registers its entries.

Each area's module is owned by whoever builds its entries; add a line here per area.
"""
from pxelab.scenarios.regressions import (
    dhcp4,  # noqa: F401
    dhcp6,  # noqa: F401
    firmware,  # noqa: F401
    initrd,  # noqa: F401
    sbat,  # noqa: F401
    secureboot,  # noqa: F401
    tftp,  # noqa: F401
)
