"""The one exception tree of pxelab.

Every message says what was checked and what the user can do about it.
"""

from __future__ import annotations


class PxelabError(Exception):
    """Base of every error pxelab raises on purpose."""


class HostCapabilityError(PxelabError):
    """The host lacks a tool, package or kernel feature (pytest turns it into a skip)."""


class ConfigError(PxelabError):
    """A configuration value is invalid; the message names the key and the fix."""


class NotApplicableError(ConfigError):
    """A regression does not apply where it was asked for: there it would not reproduce
    its failure (the firmware predates the bug); the message says why."""


class NetworkError(PxelabError):
    """The lab network (namespace, bridge, tap, capture) could not be set up."""


class ServerError(PxelabError):
    """The boot server could not start or stopped unexpectedly."""


class DaemonError(ServerError):
    """A third-party daemon (dhcpd, Kea, dnsmasq, ...) exited at start or never bound its port;
    the message names the daemon, the port, its log and the log's last lines."""


class PayloadError(PxelabError):
    """The guest payload (kernel, initramfs, root filesystem) could not be built."""


class NfsError(PxelabError):
    """The NFS server (nfs-ganesha) could not start or serve the export."""


class GuestError(PxelabError):
    """The QEMU guest could not be started or controlled."""


class WaitTimeoutError(PxelabError):
    """A wait for an event ran out of time; the message says what was awaited and seen."""
